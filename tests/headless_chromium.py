"""A headless Chromium driven over the DevTools protocol on a pipe, for page tests.

`--remote-debugging-pipe` makes Chromium read NUL-terminated JSON commands on
file descriptor 3 and write replies and events on descriptor 4, so no
WebSocket client, driver binary or pip package is needed, and no port is
opened. Only the few protocol methods the tests use are wrapped.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find() -> str | None:
    """The browser executable: $CHROMIUM, else the first of the usual names on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class Browser:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        # close-on-exec copies above 10, so placing them on 3 and 4 in the child cannot clobber one with the other
        child_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def onto_3_and_4() -> None:  # dup2 leaves the targets inheritable: exactly 3 and 4 survive the exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        flags = ["--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--no-default-browser-check", "--disable-dev-shm-usage", "--disable-extensions",
                 f"--user-data-dir={self.profile}", "about:blank"]
        # the log goes to a file: an unread stderr pipe would stall a chatty browser once it filled up
        self.log = Path(self.profile) / "browser.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([executable, *flags], preexec_fn=onto_3_and_4, close_fds=False,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(child_in)
        os.close(child_out)
        self.send_fd, self.receive_fd = to_browser_write, from_browser_read
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []
        self.session = None

    def __enter__(self) -> Browser:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self.send_fd, self.receive_fd):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.send_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.receive_fd], [], [], left)[0]:
                raise TimeoutError(f"no reply from the browser in {self.timeout}s")
            chunk = os.read(self.receive_fd, 1 << 16)
            if not chunk:
                error = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the browser exited (code {self.process.poll()}): {error}")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    # -- page

    def open(self, url: str) -> None:
        """Navigate and wait until the page's own script marked it ready (or the load finished)."""
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.05)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page; page exceptions are raised here."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the first element matching `selector`."""
        box = self.evaluate(
            f"(function () {{ var e = document.querySelector({json.dumps(selector)}); if (!e) {{ return null; }}"
            "e.scrollIntoView({block: 'center'}); var r = e.getBoundingClientRect();"
            "return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        if box is None:
            raise LookupError(f"no element matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                                                   "clickCount": 1}, session=True)

    def page_errors(self) -> list[str]:
        """Uncaught exceptions the page threw so far."""
        return [json.dumps(e["params"]["exceptionDetails"])[:500] for e in self.events
                if e.get("method") == "Runtime.exceptionThrown"]
