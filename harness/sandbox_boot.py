"""The first code of every sandboxed run: namespaces, mounts, limits, then `exec` of the program.

`harness.sandbox` runs this file's *source* with `python -I -S -c SOURCE CONFIG` in a fresh
session, so it imports nothing from the harness and nothing outside the standard library: it
runs before the program, in a process that is about to give up its privileges. Python 3.11
has no `os.unshare`, so the system calls go through ctypes (unshare(2), mount(2), prctl(2)).

The order matters:

1. `unshare` the network, mount, PID, IPC and UTS namespaces. Not root: a user namespace
   first, which is what makes the others allowed (unshare(2), user_namespaces(7)).
2. In the private mount namespace, remount every mount read-only, then mount size-capped
   tmpfs on the workspace, the one writable place, and on /dev/shm (multiprocessing needs
   it for semaphores; this one is private to the run). mount(2): MS_REMOUNT|MS_BIND|MS_RDONLY
   must repeat the mount's locked flags, or a user namespace gets EPERM. As root, the
   harness's own Python may sit under a folder the run's uid cannot enter (/root/.pyenv):
   that folder is covered by an empty tmpfs holding a read-only bind of the interpreter's
   prefix alone, so programs run on the harness's interpreter and packages.
3. Fork: the child is PID 1 of the new PID namespace ("init"). It mounts a fresh /proc, so
   the program sees only its own processes, not the harness or its environment.
4. Init forks the program, which drops its privileges (root: an unused uid, so the kernel
   enforces RLIMIT_NPROC, from which root is exempt; otherwise: a nested user namespace, so
   it has no capability over the mounts made read-only in step 2), sets its rlimits and
   no_new_privs, and execs the interpreter.
5. Init reaps until the program exits, reports the wait status, and exits. When the init of
   a PID namespace dies the kernel kills everything left in it (pid_namespaces(7)), so no
   forked or daemonised process survives the run.

Each step writes one JSON line to the report pipe saying what it achieved, so the verdict
names the protections that were really active, not the ones that were asked for.
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
                      "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
NAMESPACES = {"network": CLONE_NEWNET, "mount": CLONE_NEWNS, "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC,
              "uts": CLONE_NEWUTS}
INNER_UID = 1000   # the program's uid inside its own user namespace (unprivileged path)

config = json.loads(sys.argv[1])
REPORT = config["report_fd"]
os.set_inheritable(REPORT, False)   # closed by exec: the program cannot forge a report
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def say(**event) -> None:
    os.write(REPORT, (json.dumps(event) + "\n").encode())


def unshare(flags: int) -> bool:
    return libc.unshare(flags) == 0


def mount(source, target, fstype, flags, data=None) -> bool:
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    return libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def map_user(inside: int, outside_uid: int, outside_gid: int) -> None:
    """Map one uid and gid into the user namespace just created (the unprivileged form)."""
    write("/proc/self/setgroups", "deny")
    write("/proc/self/uid_map", f"{inside} {outside_uid} 1")
    write("/proc/self/gid_map", f"{inside} {outside_gid} 1")


def enter_namespaces(root: bool) -> dict:
    """Unshare as many namespaces as the kernel allows; returns what is active."""
    active = {"user": False, **{name: False for name in NAMESPACES}}
    uid, gid = os.getuid(), os.getgid()
    every = sum(NAMESPACES.values())
    if not root:
        if not unshare(CLONE_NEWUSER):
            return active   # no user namespaces: unprivileged, nothing else is allowed either
        try:
            map_user(0, uid, gid)
        except OSError:
            return active   # a namespace without capabilities (e.g. AppArmor's userns restriction)
        active["user"] = True
    if unshare(every):
        return {**active, **{name: True for name in NAMESPACES}}
    for name, flag in NAMESPACES.items():   # some kernels or container runtimes refuse only some
        active[name] = unshare(flag)
    return active


def unescape(path: str) -> str:
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def expose(entries: list) -> bool:
    """Cover each closed folder with an empty tmpfs that holds read-only binds of the listed paths only."""
    handles = [(hide, path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for hide, path in entries]
    covered = set()
    for hide, path, handle in handles:   # open first: once covered, the paths are gone from view
        if hide not in covered:
            if not mount("sandbox-expose", hide, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755"):
                return False
            covered.add(hide)
        os.makedirs(path, mode=0o755, exist_ok=True)
        if not mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC):
            return False
        os.close(handle)
    return True


def make_readonly(workspace: str) -> list:
    """Remount every mount read-only, keeping its other flags; returns the mount points that refused."""
    refused = []
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.split()
        point, options = unescape(fields[4]), fields[5].split(",")
        if point == workspace:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= MOUNT_OPTION_FLAGS.get(option, 0)
        if not mount(None, point, None, flags) and "ro" not in options:
            refused.append(point)
    return refused


def mount_workspace(workspace: str, owner: int, files: dict) -> bool:
    """A fresh tmpfs of capped size on the workspace: the only writable place, gone after the run."""
    size = f"size={config['workspace_mb']}m,nr_inodes={config['workspace_inodes']},mode=700,uid={owner},gid={owner}"
    if not mount("sandbox", workspace, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, size):
        return False
    for name, data in files.items():
        path = os.path.join(workspace, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, owner, owner)
    return True


def drop_privileges(root: bool) -> str:
    """Root: become an unused uid. Otherwise: a nested user namespace with a non-zero uid, so the
    program holds no capability in the namespace that owns the read-only mounts."""
    try:
        if root:
            run_uid = config["uid"]
            os.setgroups([])
            os.setresgid(run_uid, run_uid, run_uid)
            os.setresuid(run_uid, run_uid, run_uid)
            return f"uid {run_uid}"
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)   # init's setting would leave /proc/self/uid_map owned by host root
        uid, gid = os.getuid(), os.getgid()       # read before unshare: inside, both are unmapped (65534)
        if unshare(CLONE_NEWUSER):
            map_user(INNER_UID, uid, gid)
            os.setresgid(INNER_UID, INNER_UID, INNER_UID)
            os.setresuid(INNER_UID, INNER_UID, INNER_UID)
            return "user namespace"
    except OSError:   # root without CAP_SETUID (some containers), or a user namespace without capabilities
        pass
    return ""


def tasks_of(uid: int) -> int:
    """Threads that `uid` runs now: RLIMIT_NPROC counts them all, the harness's own included."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, ValueError, KeyError):
            continue
    return count


def set_limits(own_uid: bool) -> list:
    """The rlimits; without a uid of its own the process limit sits on top of what the uid already runs."""
    limits = config["limits"]
    mb = 1024 * 1024
    processes = limits["processes"] + (0 if own_uid else tasks_of(os.getuid()))
    wanted = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, limits["cpu_s"]),
              (resource.RLIMIT_AS, limits["memory_mb"] * mb), (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb),
              (resource.RLIMIT_NOFILE, limits["open_files"]), (resource.RLIMIT_NPROC, processes)]
    names = {resource.RLIMIT_CORE: "core", resource.RLIMIT_CPU: "cpu", resource.RLIMIT_AS: "address_space",
             resource.RLIMIT_FSIZE: "file_size", resource.RLIMIT_NOFILE: "open_files",
             resource.RLIMIT_NPROC: "processes"}
    applied = []
    for which, value in wanted:
        soft, hard = value, value + 1 if which == resource.RLIMIT_CPU else value   # SIGXCPU, then SIGKILL
        try:
            resource.setrlimit(which, (soft, hard))
            applied.append(names[which])
        except (ValueError, OSError):
            pass
    return applied


def run_program(root: bool, workspace: str, pid_namespace: bool) -> None:
    """In the forked program child: never returns."""
    try:
        if pid_namespace:
            os.setsid()   # its own process group: killpg(0) from the program reaches only itself
        for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        stdin = os.open(os.path.join(workspace, config["stdin"]) if config["stdin"] else os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        user = drop_privileges(root)
        applied = set_limits(own_uid=bool(user))
        no_new_privs = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0   # setuid binaries cannot raise privileges
        os.chdir(workspace)
        say(event="program", rlimits=applied, user=user, no_new_privs=no_new_privs)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workspace, "TMPDIR": workspace,
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        errors = []
        for interpreter in config["interpreters"]:
            path = interpreter["path"]
            say(event="exec", interpreter=path)
            try:
                os.execve(path, [path, *interpreter["args"], config["program"]], {**env, **interpreter["env"]})
            except OSError as err:
                errors.append(f"{path}: {err.strerror}")
        say(event="boot_error", error="no interpreter could be started: " + "; ".join(errors))
    except BaseException as err:  # anything here is a sandbox fault, reported rather than printed
        say(event="boot_error", error=f"{type(err).__name__}: {err}")
    os._exit(127)


def sweep_descendants(ancestor: int) -> None:
    """Kill every process below `ancestor` (only needed without a PID namespace)."""
    for _ in range(3):
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        found, frontier = [], [ancestor]
        while frontier:
            pid = frontier.pop()
            children = [p for p, parent in parents.items() if parent == pid]
            found += children
            frontier += children
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def init(root: bool, workspace: str, pid_namespace: bool) -> None:
    """PID 1 of the run: start the program, reap everything, report the program's wait status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # a signal from the program must not end the report
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)               # nothing can ptrace it or read its /proc files
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)        # orphans come back here, not to the host's init
    proc_private = pid_namespace and mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    say(event="init", proc_private=bool(proc_private))
    program = os.fork()
    if program == 0:
        run_program(root, workspace, pid_namespace)
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            say(event="boot_error", error="the program vanished")
            os._exit(1)
        if pid == program:
            break
    if not pid_namespace:
        sweep_descendants(os.getpid())
    signalled = os.WIFSIGNALED(status)
    say(event="exit", code=None if signalled else os.WEXITSTATUS(status),
        signal=os.WTERMSIG(status) if signalled else None,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3), max_rss_mb=round(usage.ru_maxrss / 1024, 1))
    os._exit(0)


def main() -> None:
    os.umask(0o022)
    root = os.geteuid() == 0
    workspace = config["workspace"]
    files = {}
    for name in config["files"]:
        with open(os.path.join(workspace, name), "rb") as f:
            files[name] = f.read()
    active = enter_namespaces(root)
    refused, tmpfs, exposed, shm = None, False, None, False
    # private first: a mount made below a shared one would show up on the host too
    active["mount"] = active["mount"] and mount(None, "/", None, MS_REC | MS_PRIVATE)
    if active["mount"]:
        exposed = expose(config["expose"]) if config["expose"] else None
        os.makedirs(workspace, exist_ok=True)         # in case an exposed folder covered it
        refused = make_readonly(workspace)
        owner = config["uid"] if root else 0
        tmpfs = mount_workspace(workspace, owner, files)
        shm = mount("sandbox-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    f"size={config['shm_mb']}m,nr_inodes=1024,mode=1777")
    say(event="namespaces", **active, readonly_refused=refused, workspace_tmpfs=tmpfs, exposed=exposed,
        private_shm=shm)
    child = os.fork()
    if child == 0:
        try:
            init(root, workspace, active["pid"])
        except BaseException as err:
            say(event="boot_error", error=f"{type(err).__name__}: {err}")
            os._exit(1)
    _, status = os.waitpid(child, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


try:
    main()
except BaseException as err:
    say(event="boot_error", error=f"{type(err).__name__}: {err}")
    os._exit(1)
