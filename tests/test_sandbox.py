"""The sandbox against hostile programs.

Each hostile program is written so that it exits 0 only if its attack worked. Every one must
end as a failure with a reason, leave the host untouched (canaries intact, nothing written
outside its workspace, this test process alive) and leave the sandbox usable for the next
program. The destructive ones aim at canaries made for the test, never at real files.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from harness import sandbox
from harness.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout_s=4, cpu_s=2, memory_mb=512, file_size_mb=8, workspace_mb=32, processes=16,
                open_files=64, output_bytes=4096)
SECRET = "sk-test-" + uuid.uuid4().hex


def run(source: str, stdin: str | None = None, **limits) -> sandbox.Verdict:
    return sandbox.run_program(textwrap.dedent(source), dataclasses.replace(LIMITS, **limits), stdin=stdin)


def assert_next_program_runs() -> None:
    verdict = run("print('still fine')")
    assert (verdict.status, verdict.reason, verdict.stdout) == ("passed", "exit 0", "still fine\n"), verdict


@pytest.fixture(scope="module")
def protections() -> dict:
    return sandbox.isolation()


def require(protections: dict, *names: str) -> None:
    """Skip, naming the protection, where the kernel refuses it (no user namespaces for unprivileged
    users, or a container without CAP_SYS_ADMIN): the verdict then records it as off, which
    test_the_isolation_report_names_the_active_protections checks."""
    missing = [name for name in names if not protections.get(name)]
    if missing:
        pytest.skip(f"this machine refuses the sandbox {', '.join(missing)} protection (user namespaces or "
                    f"CAP_SYS_ADMIN blocked); verdicts record {missing[0]}: {protections.get(missing[0])!r}")


@pytest.fixture()
def canaries(tmp_path):
    """A file outside any workspace, a folder inside the repository, and paths that must stay absent."""
    tag = uuid.uuid4().hex[:12]
    outside = tmp_path / "canary.txt"
    outside.write_text("precious")
    in_repo = (ROOT if os.access(ROOT, os.W_OK) else tmp_path) / f".sandbox-canary-{tag}"
    in_repo.mkdir()
    (in_repo / "keep.txt").write_text("precious")
    absent = [folder / f"sandbox-probe-{tag}" for folder in (Path("/tmp"), ROOT, Path.home())]
    yield {"outside": outside, "in_repo": in_repo, "absent": absent}
    shutil.rmtree(in_repo, ignore_errors=True)
    for path in absent:
        if path.exists():
            path.unlink()


# --- ordinary programs -----------------------------------------------------------------------------

def test_passing_and_failing_programs_get_status_reason_and_output():
    ok = run("print('hello')")
    assert (ok.status, ok.reason, ok.returncode, ok.stdout, ok.stderr) == ("passed", "exit 0", 0, "hello\n", "")
    assert ok.passed and 0 < ok.wall_s < LIMITS.timeout_s and ok.cpu_s is not None

    bad = run("raise ValueError('boom')")
    assert (bad.status, bad.returncode) == ("failed", 1)
    assert bad.reason == "error: ValueError: boom"

    wrong = run("assert 1 + 1 == 3, 'arithmetic'")
    assert wrong.status == "failed" and wrong.reason == "assertion failed: AssertionError: arithmetic"

    exited = run("import sys; sys.exit(3)")
    assert (exited.status, exited.returncode, exited.reason) == ("failed", 3, "exit code 3")

    as_json = json.loads(ok.to_json())
    assert as_json["status"] == "passed" and as_json["isolation"] == ok.isolation


def test_stdin_is_passed_and_the_workspace_is_private_and_removed():
    verdict = run("""
        import os, sys
        print(sys.stdin.read().upper())
        open("scratch.txt", "w").write("x" * 1000)   # the workspace is writable
        print(os.getcwd())
        print(os.environ["HOME"] == os.getcwd() == os.environ["TMPDIR"])
    """, stdin="abc")
    assert verdict.status == "passed", verdict
    upper, workspace, same = verdict.stdout.splitlines()
    assert upper == "ABC" and same == "True"
    assert Path(workspace).name.startswith("harness-sandbox-") and not Path(workspace).exists()


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=0)
    assert Limits.for_timeout(2.5).cpu_s == 3


def test_programs_run_concurrently_without_mixing_output():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda i: run(f"print({i} * 7)"), range(6)))
    assert [v.stdout for v in verdicts] == [f"{i * 7}\n" for i in range(6)]
    assert all(v.status == "passed" for v in verdicts)


def test_the_isolation_report_names_the_active_protections(protections):
    assert set(protections) >= {"network", "pid", "mount", "filesystem_readonly", "user", "rlimits", "interpreter",
                                "filesystem", "host_files_hidden", "hidden"}
    assert sandbox.network_isolated() == protections["network"]
    # never claimed without the mount namespace that makes it true
    assert protections["filesystem"] in ("minimal root", "host, read-only", "host")
    assert protections["host_files_hidden"] == (protections["filesystem"] == "minimal root")
    if not protections["mount"]:
        assert protections["filesystem"] == "host" and not protections["host_files_hidden"]
        assert protections["hidden"] == [] and not protections["filesystem_readonly"]
    if os.geteuid() == 0:   # root: all of them are available, and the program runs as an unused uid
        assert protections["network"] and protections["pid"] and protections["filesystem_readonly"]
        assert protections["proc_private"] and protections["user"].startswith("uid ")
        assert set(protections["rlimits"]) == {"core", "cpu", "address_space", "file_size", "open_files", "processes"}


# --- hostile programs ------------------------------------------------------------------------------

HOSTILE = {
    # name: (source, limit overrides, expected status, expected reason prefix, protections it needs)
    "fork bomb": ("""
        import os
        while True:
            os.fork()
    """, {}, "failed", "process limit", ()),
    "memory bomb": ("""
        x = bytearray(8 * 1024 ** 3)
    """, {}, "failed", "memory limit", ()),
    "growing memory": ("""
        chunks = []
        while True:
            chunks.append(bytearray(32 * 1024 ** 2))
    """, {}, "failed", "memory limit", ()),
    "infinite loop": ("""
        while True:
            pass
    """, {"cpu_s": 1}, "killed", "cpu time limit", ()),
    "sleeping loop": ("""
        import time
        while True:
            time.sleep(0.05)
    """, {"timeout_s": 1.5}, "timeout", "timeout", ()),
    "giant file": ("""
        with open("big.bin", "wb") as f:
            f.write(b"x" * (64 * 1024 ** 2))
    """, {}, "failed", "file size limit", ()),
    "filling the workspace": ("""
        for i in range(64):
            with open(f"part{i}.bin", "wb") as f:
                f.write(b"x" * (4 * 1024 ** 2))
    """, {}, "failed", "workspace full", ("mount",)),
    "open files": ("""
        handles = [open("/dev/null") for _ in range(10_000)]
    """, {}, "failed", "open files limit", ()),
    "remount read-write": ("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.mount(None, b"/", None, 32 | 4096, None) == 0, f"mount failed, errno {ctypes.get_errno()}"
    """, {}, "failed", "assertion failed", ()),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_fails_with_a_reason(name, canaries, protections):
    source, overrides, status, reason, needs = HOSTILE[name]
    require(protections, *needs)
    verdict = run(source, **overrides)
    assert verdict.status == status, verdict
    assert verdict.reason.startswith(reason), verdict.reason
    assert canaries["outside"].read_text() == "precious"
    assert_next_program_runs()


# outside the workspace a path is either absent from the program's view or read-only
REFUSED = ("permission denied", "not found")


def test_deleting_files_outside_the_workspace_is_refused(canaries, protections):
    require(protections, "filesystem_readonly")
    outside, in_repo = canaries["outside"], canaries["in_repo"]
    for attack in (f"import os; os.remove({str(outside)!r})",
                   f"import shutil; shutil.rmtree({str(in_repo)!r})",
                   f"import os; os.rename({str(in_repo / 'keep.txt')!r}, {str(in_repo / 'moved.txt')!r})",
                   "import os; os.remove('/usr/bin/env')"):
        verdict = run(attack)
        assert verdict.status == "failed" and verdict.reason.startswith(REFUSED), verdict.reason
    assert outside.read_text() == "precious" and (in_repo / "keep.txt").read_text() == "precious"
    assert Path("/usr/bin/env").exists()
    assert_next_program_runs()


def test_writing_outside_the_workspace_is_refused(canaries, protections):
    require(protections, "filesystem_readonly")
    for target in [*canaries["absent"], Path("/usr/lib") / canaries["absent"][0].name]:
        verdict = run(f"open({str(target)!r}, 'w').write('pwned')")
        assert verdict.status == "failed" and verdict.reason.startswith(REFUSED), (target, verdict.reason)
        assert not target.exists()
    shared_memory = Path("/dev/shm") / canaries["absent"][0].name   # the run's own tmpfs, or refused
    verdict = run(f"open({str(shared_memory)!r}, 'w').write('pwned')")
    assert verdict.status == "passed" or verdict.reason.startswith("permission denied"), verdict
    assert not shared_memory.exists()
    assert_next_program_runs()


@pytest.fixture()
def planted_secrets():
    """World-readable secret files in world-readable folders where credentials live: a temp folder, a
    home folder's token and .netrc files, /var/tmp, the harness's checkout, the venv beside its
    site-packages. Removed afterwards."""
    tag = uuid.uuid4().hex[:12]
    made, files = [], []

    def plant(path: Path) -> None:
        if not os.access(next(p for p in path.parents if p.exists()), os.W_OK):
            return   # not this user's to write (run as an ordinary user): nothing planted there
        for folder in reversed([p for p in path.parents if not p.exists()]):
            folder.mkdir()
            os.chmod(folder, 0o755)
            made.append(folder)
        path.write_text(f"{SECRET}-{path.name}")
        os.chmod(path, 0o644)
        files.append(path)

    temp = Path(tempfile.mkdtemp(prefix="sandbox-secrets-", dir="/tmp"))
    os.chmod(temp, 0o755)
    plant(temp / "credentials.json")
    home = Path("/home") / f"sandbox-user-{tag}" if os.access("/home", os.W_OK) else Path.home() / f".sandbox-{tag}"
    plant(home / ".cache" / "huggingface" / "token")
    plant(home / ".netrc")
    if os.access("/var/tmp", os.W_OK):
        plant(Path("/var/tmp") / f"sandbox-secret-{tag}")
    plant(ROOT / f".sandbox-secret-{tag}")
    packages = Path(sandbox._interpreters()[0]["env"]["PYTHONPATH"].split(os.pathsep)[0])
    plant(packages.parent / f"sandbox-secret-{tag}")      # in the venv, beside (not in) site-packages
    inside = packages / f"sandbox-secret-{tag}.txt"       # in site-packages: visible unless hidden
    plant(inside)
    yield {"files": files, "inside_packages": inside, "temp": temp, "home": home}
    for path in files:
        path.unlink(missing_ok=True)
    for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(temp, ignore_errors=True)


READ_ALL = """
import sys
for path in sys.argv[1:] if len(sys.argv) > 1 else PATHS:
    try:
        with open(path) as f:
            print(path, "READ", repr(f.read()))
    except OSError as err:
        print(path, type(err).__name__)
"""


def test_private_files_on_the_host_are_not_readable(planted_secrets, protections):
    require(protections, "host_files_hidden")
    files = planted_secrets["files"]
    hidden_file = planted_secrets["inside_packages"]
    source = f"PATHS = {[str(p) for p in files]!r}\n" + READ_ALL
    verdict = sandbox.run_program(source, LIMITS, hide=(str(hidden_file),))
    assert verdict.status == "passed", verdict
    lines = dict(line.split(" ", 1) for line in verdict.stdout.splitlines())
    assert set(lines) == {str(p) for p in files}
    for path in files:
        if path == hidden_file:
            assert lines[str(path)] == "READ ''"          # covered by an empty file
        else:
            assert lines[str(path)] == "FileNotFoundError", (path, lines[str(path)])
    assert SECRET not in verdict.stdout + verdict.stderr
    assert [os.path.realpath(p) for p in verdict.isolation["covered"]] == [os.path.realpath(hidden_file)]
    hidden = verdict.isolation["hidden"]
    assert any(entry.startswith("/tmp (all but") for entry in hidden) and "/var" in hidden
    assert any(entry.split(" ")[0] == "/" + ROOT.parts[1] for entry in hidden)   # the checkout's top folder
    assert {"/home", "/mnt", "/srv", "/media"} & set(hidden) == {p for p in ("/home", "/mnt", "/srv", "/media")
                                                                 if Path(p).exists()}

    # without `hide`, a file inside site-packages is part of the interpreter's view, as it must be
    shown = sandbox.run_program(f"PATHS = [{str(hidden_file)!r}]\n" + READ_ALL, LIMITS)
    assert shown.stdout.strip() == f"{hidden_file} READ {SECRET + '-' + hidden_file.name!r}"


def test_the_interpreter_still_has_what_programs_need(protections):
    require(protections, "host_files_hidden")
    verdict = run("""
        import json, multiprocessing, os, sqlite3, sys, tempfile, time, zlib
        import numpy
        with multiprocessing.Pool(2) as pool:                     # semaphores in the private /dev/shm
            squares = pool.map(abs, [-3, -4])
        with tempfile.NamedTemporaryFile("w", delete=False) as f:   # TMPDIR: the workspace
            f.write("x")
        os.write(os.open("/dev/null", os.O_WRONLY), b"discarded")
        print(squares, sorted(os.listdir("/")), time.localtime().tm_year > 2000, sqlite3.sqlite_version > "3",
              int(numpy.arange(4).sum()), os.path.dirname(f.name) == os.getcwd())
    """, memory_mb=1024)
    assert verdict.status == "passed", (verdict.reason, verdict.stderr[-500:])
    squares, rest = verdict.stdout.split("] ", 1)
    assert squares == "[3, 4" and rest.rstrip().endswith("True True 6 True")
    top = json.loads(rest.split("]")[0].replace("'", '"') + "]")
    assert {"usr", "proc", "dev", "tmp"} <= set(top) and not {"home", "var", "mnt", "srv", "media", "opt"} & set(top)


def test_the_network_is_unreachable(protections):
    if not protections["network"]:
        pytest.skip("this kernel allows no network namespace; the verdict says network_isolated: false")
    for attack in ("import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)",
                   "import socket; socket.getaddrinfo('pypi.org', 443)",
                   "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53))",
                   "import urllib.request; urllib.request.urlopen('http://example.com', timeout=2)"):
        verdict = run(attack)
        assert verdict.status == "failed" and verdict.network_isolated, verdict
        assert "network unreachable" in verdict.reason or "URLError" in verdict.reason, verdict.reason
    assert_next_program_runs()


def test_killing_the_harness_fails_and_the_harness_survives(protections):
    if not protections.get("pid") and protections.get("user") in ("unchanged", None):
        pytest.skip("this machine refuses both a PID namespace and a uid of the program's own (user namespaces or "
                    "CAP_SYS_ADMIN blocked): a program may signal the harness, its own uid's process")
    me = os.getpid()
    for attack in ("import os; os.kill(os.getppid(), 9)", f"import os; os.kill({me}, 9)",
                   "import os; os.kill(-1, 9)", "import os, signal; os.killpg(os.getpgid(0), signal.SIGKILL)"):
        verdict = run(attack)
        if protections["user"].startswith("uid "):   # its own uid: it may signal no process but its own
            assert verdict.status in ("failed", "killed") and verdict.reason, (attack, verdict)
    assert_next_program_runs()   # reaching this line means this process, the harness, was not killed


def test_secrets_in_the_harness_environment_are_not_readable(monkeypatch, protections):
    if not protections.get("proc_private") and not protections.get("user", "").startswith("uid "):
        pytest.skip("this machine refuses both a private /proc and a uid of the program's own (user namespaces "
                    "or CAP_SYS_ADMIN blocked), so /proc/<harness>/environ is the program's own uid's to read")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    verdict = run(f"""
        import glob, os
        seen = [repr(dict(os.environ))]
        for path in glob.glob("/proc/*/environ") + ["/proc/{os.getpid()}/environ", "/proc/{os.getppid()}/environ"]:
            try:
                seen.append(open(path, "rb").read().decode(errors="replace"))
            except OSError:
                pass
        print("\\n".join(seen))
        needle = {SECRET[:10]!r} + {SECRET[10:]!r}   # split, so the source line in a traceback is no leak
        assert any(needle in text for text in seen), "no secret found"
    """)
    assert verdict.status == "failed" and verdict.reason == "assertion failed: AssertionError: no secret found"
    assert SECRET not in verdict.stdout + verdict.stderr
    names = set(eval(verdict.stdout.splitlines()[0]))   # the program's environment, printed as a dict literal
    assert names <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH",
                     "LC_CTYPE"}


def test_the_reason_comes_from_the_exception_line_when_tracebacks_interleave():
    # two forked children's tracebacks, interleaved so that the text ends on a frame line
    stderr = ("Traceback (most recent call last):\nTraceback (most recent call last):\n"
              '  File "/tmp/w/program.py", line 3, in <module>\n'
              "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
              '  File "/tmp/w/program.py", line 3, in <module>\n    os.fork()\n')
    assert sandbox._error_reason(stderr, 1) == \
        "process limit: BlockingIOError: [Errno 11] Resource temporarily unavailable"
    assert sandbox._error_reason("  indented only\n", 3) == "exit code 3"


def test_huge_output_is_cut_and_does_not_stall_the_harness():
    flood = run("""
        import sys
        while True:
            sys.stdout.write("x" * 65536)
    """, timeout_s=1.5)
    assert flood.status == "timeout" and flood.reason.startswith("timeout")
    assert flood.stdout_truncated and len(flood.stdout) == LIMITS.output_bytes

    chatty = run("""
        import sys
        sys.stdout.write("y" * (16 * 1024 ** 2))
        sys.stderr.write("z" * (1024 ** 2) + "\\nlast line\\n")
    """)
    assert chatty.status == "passed", chatty.reason   # read and dropped, not left to block the pipe
    assert chatty.stdout == "y" * LIMITS.output_bytes and chatty.stdout_truncated
    assert chatty.stderr_truncated and chatty.stderr.endswith("last line\n") and "bytes cut" in chatty.stderr
    assert_next_program_runs()


# --- the command line ------------------------------------------------------------------------------

def test_cli_prints_the_verdict_and_hides_its_own_environment(tmp_path, protections):
    if not protections.get("proc_private") and not protections.get("user", "").startswith("uid "):
        pytest.skip("no private /proc and no uid of its own on this machine: the harness's environ is readable")
    program = tmp_path / "steal.py"
    program.write_text(textwrap.dedent(f"""
        import glob
        found = []
        for path in glob.glob("/proc/*/environ"):
            try:
                found.append(open(path, "rb").read().decode(errors="replace"))
            except OSError:
                pass
        print(found)
        needle = {SECRET[:10]!r} + {SECRET[10:]!r}
        assert any(needle in text for text in found), "no secret found"
    """))
    env = {**os.environ, "ANTHROPIC_API_KEY": SECRET}
    done = subprocess.run([sys.executable, "-m", "harness", "sandbox", "run", str(program), "--timeout", "5"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["status"] == "failed" and verdict["reason"] == "assertion failed: AssertionError: no secret found"
    assert SECRET not in done.stdout and SECRET not in done.stderr


def test_cli_missing_program_is_a_one_line_error(tmp_path, capsys):
    from harness.cli import main

    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.py" in err and "cannot read the program" in err


# --- the unprivileged path -------------------------------------------------------------------------

UNPRIVILEGED_CHECK = """
import json, sys
from harness.sandbox import Limits, TestCode, run_program, run_tests
limits = Limits(timeout_s=5, cpu_s=2, processes=16, memory_mb=512)
programs = {"ok": "print('fine')", "write": "open('/tmp/sandbox-unprivileged-probe', 'w')",
            "fork": "import os\\nwhile True:\\n    os.fork()",
            "remount": "import ctypes\\nassert ctypes.CDLL(None).mount(None, b'/', None, 32 | 4096, None) == 0",
            "net": "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)",
            "secret": f"print(open({sys.argv[1]!r}).read())"}
verdicts = {name: run_program(source, limits).to_dict() for name, source in programs.items()}
tests = TestCode(tests="assert add(2, 3) == 5", entry_point="add")
verdicts["tests"] = run_tests("def add(a, b):\\n    return a + b", tests, limits).to_dict()
verdicts["exit 0"] = run_tests("import os\\ndef add(a, b):\\n    os._exit(0)", tests, limits).to_dict()
print(json.dumps(verdicts))
"""


def test_unprivileged_user_gets_user_namespaces_and_limits(planted_secrets):
    """As root, also check the path that ordinary users take: a system Python run as an unused uid."""
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or not shutil.which("setpriv") or not system_python:
        pytest.skip("needs root, setpriv and a system python3 to act as an unprivileged user")
    uid = 3_000_000 + os.getpid() % 1000
    secret = planted_secrets["temp"] / "credentials.json"
    done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", system_python, "-c",
                           UNPRIVILEGED_CHECK, str(secret)], capture_output=True, text=True, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=120)
    if "Permission denied" in done.stderr and "harness" in done.stderr:
        pytest.skip("the repository is not readable by other users")
    assert done.returncode == 0, done.stderr
    verdicts = json.loads(done.stdout)
    if not verdicts["ok"]["isolation"].get("user_namespace"):
        pytest.skip("this kernel does not let unprivileged users create user namespaces")
    assert verdicts["ok"]["status"] == "passed" and verdicts["ok"]["isolation"]["user"] == "user namespace"
    assert verdicts["write"]["reason"].startswith("permission denied")
    assert verdicts["fork"]["reason"].startswith("process limit")
    assert verdicts["remount"]["reason"].startswith("assertion failed")
    assert verdicts["net"]["reason"].startswith("network unreachable")
    assert not Path("/tmp/sandbox-unprivileged-probe").exists()
    assert verdicts["secret"]["reason"].startswith("not found") and SECRET not in json.dumps(verdicts)
    assert verdicts["ok"]["isolation"]["host_files_hidden"] and verdicts["ok"]["isolation"]["proc_private"]
    assert verdicts["tests"]["status"] == "passed", verdicts["tests"]["reason"]
    assert verdicts["tests"]["isolation"]["judge"] == "separate process, user namespace"
    assert verdicts["exit 0"]["status"] == "failed" and verdicts["exit 0"]["reason"].startswith("exited early")
