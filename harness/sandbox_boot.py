"""The first code of every sandboxed run: namespaces, a minimal root, limits, then `exec` of the program.

`harness.sandbox` runs this file's code with `python -I -S -c BOOTSTRAP` in a fresh session: the
bootstrap reads the compiled code and the run's configuration (`marshal` format) from stdin,
never from the command line, which other processes can read in /proc. It imports nothing from the harness and nothing
outside the standard library (not even `json`, whose `re` import costs more CPU than the rest
of the boot): it runs before the program, in a process that is about to give up its
privileges. Python 3.11 has no `os.unshare`, so the system calls go through ctypes (unshare(2),
mount(2), pivot_root(2), prctl(2)).

The order matters:

1. `unshare` the network, mount, PID, IPC and UTS namespaces. Not root: a user namespace
   first, which is what makes the others allowed (unshare(2), user_namespaces(7)).
2. Fork: the child is PID 1 of the new PID namespace ("init"). In the private mount
   namespace it builds a minimal root on a small tmpfs: read-only binds of the system
   folders (/usr and the /bin, /lib links), a handful of /etc files the C library reads, the
   interpreter's own files (its executable, standard library, site-packages and libpython,
   wherever they live, /root included, and nothing else of the folders around them), a few
   /dev nodes, a fresh /proc that shows only the run's own processes (mounted before the
   pivot: in a user namespace the kernel allows a new proc only while a full one is in
   view), and size-capped tmpfs on the workspace (the one writable place) and on /dev/shm
   (multiprocessing needs it; this one is private to the run). Files the caller names (an
   eval's own test data, say) are covered by empty ones. Then `pivot_root` into it and
   detach the host's tree: home folders, /root, /tmp, /var, /mnt, /media, /srv, /run, /opt
   and the harness's checkout are simply not there (the verdict lists them). The idea is
   bubblewrap's (github.com/containers/bubblewrap). Where pivot_root is refused, the host's
   tree stays, remounted read-only, and the verdict says so. mount(2):
   MS_REMOUNT|MS_BIND|MS_RDONLY must repeat the mount's locked flags, or a user namespace
   gets EPERM.
3. Init forks the program, which drops its privileges (root: an unused uid, so the kernel
   enforces RLIMIT_NPROC, from which root is exempt; otherwise: a nested user namespace, so
   it has no capability over the mounts made read-only in step 2), sets its rlimits and
   no_new_privs, and execs the interpreter. For a test run (`harness.sandbox.run_tests`)
   init first forks the judge (`harness/sandbox_judge.py`), as a second unused uid, not
   dumpable, so the program can neither trace it nor read its memory; the judge runs the
   tests against the program over two pipes and alone holds the report pipe and the token.
4. Init reaps until the program (test run: the judge) exits, reports the wait statuses, and
   exits. When the init of a PID namespace dies the kernel kills everything left in it
   (pid_namespaces(7)), so no forked or daemonised process survives the run.

Each step writes one line (a Python literal) to the report pipe saying what it achieved, so the verdict
names the protections that were really active, not the ones that were asked for.
"""

import ctypes
import marshal
import os
import resource
import signal
import sys
import types

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
                      "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "loongarch64": 41, "ppc64le": 203, "ppc64": 203,
                  "s390x": 217}
NAMESPACES = {"network": CLONE_NEWNET, "mount": CLONE_NEWNS, "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC,
              "uts": CLONE_NEWUTS}
INNER_UID, INNER_JUDGE_UID = 1000, 1001   # uids inside their own user namespaces (unprivileged path)
DEVICES = ("null", "zero", "full", "random", "urandom")
SERVER_LOADER = "import marshal, sys; exec(marshal.loads(bytes.fromhex(sys.argv.pop(1))))"
JUDGE_SCRATCH = "/run/judge"              # the judge's own small tmpfs, for test code that needs a temp folder
TESTS_FAILED = 3                          # the judge's, init's and the boot's exit status when the tests did not pass


config: dict = globals()["config"]   # given, with this code, by the bootstrap in harness.sandbox
REPORT = config["report_fd"]
os.set_inheritable(REPORT, False)   # closed by exec: the program cannot forge a report
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def say(**event) -> None:
    """One line of the report: a Python literal, which the harness reads with ast.literal_eval."""
    os.write(REPORT, (repr(event) + "\n").encode())


def unshare(flags: int) -> bool:
    return libc.unshare(flags) == 0


def mount(source, target, fstype, flags, data=None) -> bool:
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    return libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0


def must_mount(source, target, fstype, flags, data=None) -> None:
    if not mount(source, target, fstype, flags, data):
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source or fstype} on {target}: {os.strerror(errno)}")


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


def make_readonly(keep: set, under: str = "") -> list:
    """Remount read-only every mount (below `under`, if given) but those in `keep`, keeping its other
    flags; returns the mount points that refused."""
    refused = []
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.split()
        point, options = unescape(fields[4]), fields[5].split(",")
        if point in keep or (under and point != under and not point.startswith(under + "/")):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= MOUNT_OPTION_FLAGS.get(option, 0)
        if not mount(None, point, None, flags) and "ro" not in options:
            refused.append(point[len(under):] or "/")
    return refused


def mount_workspace(target: str, owner: int, files: dict) -> None:
    """A fresh tmpfs of capped size on the workspace: the only writable place, gone after the run."""
    size = f"size={config['workspace_mb']}m,nr_inodes={config['workspace_inodes']},mode=700,uid={owner},gid={owner}"
    must_mount("sandbox", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, size)
    for name, data in files.items():
        path = os.path.join(target, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, owner, owner)


def mount_shm(target: str) -> bool:
    return mount("sandbox-shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 f"size={config['shm_mb']}m,nr_inodes=1024,mode=1777")


# --- the minimal root ------------------------------------------------------------------------------

def place(new: str, path: str, bound: list, depth: int = 0) -> None:
    """Make host `path` appear at the same place under `new`: symlinks on the way are recreated
    (so /lib -> usr/lib and a venv's python -> /root/.pyenv/... resolve as on the host), and the
    path they lead to is bind-mounted. Parent folders are new, empty and world-searchable."""
    if depth > 32:
        raise OSError(40, f"too many symbolic links in {path}")
    parts = [part for part in path.split("/") if part]
    current = ""
    for index, part in enumerate(parts):
        current += "/" + part
        if os.path.islink(current):
            link = new + current
            if not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(os.readlink(current), link)
            target = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
            place(new, "/".join([target, *parts[index + 1:]]), bound, depth + 1)
            return
    if not current or not os.path.exists(current):
        return
    if any(current == done or current.startswith(done + "/") for done in bound):
        return
    if new == current or new.startswith(current + "/") or current.startswith(new + "/"):
        raise OSError(22, f"{current} contains the sandbox's own root")
    target = new + current
    if os.path.isdir(current):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    must_mount(current, target, None, MS_BIND | MS_REC)
    bound.append(current)


def cover(new: str, path: str) -> bool:
    """Hide a file or folder inside a visible one behind an empty one."""
    target = new + path
    if not os.path.lexists(target) or os.path.islink(target):
        return False
    if os.path.isdir(target):
        return mount("sandbox-hidden", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=555")
    return mount(new + "/dev/null", target, None, MS_BIND)


def hidden_from(bound: list, workspace: str) -> list:
    """What of the host's top level the program cannot see: whole folders, or all but a few paths."""
    hidden = []
    for name in sorted(os.listdir("/")):
        top = "/" + name
        if name in ("proc", "dev") or os.path.islink(top) or top in bound:
            continue
        shown = [path for path in bound if path.startswith(top + "/")]
        parts = [f"{len(shown)} path{'s' if len(shown) > 1 else ''}"] if shown else []
        if workspace.startswith(top + "/"):
            parts.append("the workspace")
        hidden.append(f"{top} (all but {' and '.join(parts)})" if parts else top)
    return hidden


def enter_root(new: str) -> str:
    """Make `new` the root and detach the host's tree; chroot where pivot_root is unknown or refused."""
    os.chdir(new)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None and libc.syscall(ctypes.c_long(number), b".", b".") == 0:
        if libc.umount2(b".", MNT_DETACH) != 0:   # the old root, stacked on the new one by pivot_root(".", ".")
            raise OSError(ctypes.get_errno(), "cannot detach the host's root")
        os.chdir("/")
        return "pivot_root"
    must_mount(".", "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    return "chroot"


def build_root(workspace: str, owner: int, files: dict, judge_owner, pid_namespace: bool) -> dict:
    """The program's whole filesystem: a tmpfs root on the workspace path, then pivot_root into it."""
    new = workspace   # an empty folder of ours; the tmpfs covers it (its files are already read)
    must_mount("sandbox-root", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,nr_inodes=4096,mode=755")
    bound = []
    for path in sorted(config["view"]["binds"], key=len):
        place(new, path, bound)
    os.makedirs(new + "/dev/shm")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            open(new + "/dev/" + name, "w").close()
            must_mount("/dev/" + name, new + "/dev/" + name, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, new + "/dev/" + name)
    covered = [path for path in config["view"]["hide"] if cover(new, path)]
    os.makedirs(new + "/proc")
    # before pivot_root: in a user namespace the kernel mounts a new proc only while a full one is in view
    proc_private = pid_namespace and mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(new + workspace, exist_ok=True)
    mount_workspace(new + workspace, owner, files)
    shm = mount_shm(new + "/dev/shm")
    keep = {new + workspace, new + "/dev/shm", new + "/proc"}   # /proc stays writable: uid_map for the program
    if judge_owner is not None:
        os.makedirs(new + JUDGE_SCRATCH)
        must_mount("sandbox-judge", new + JUDGE_SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   f"size=16m,nr_inodes=1024,mode=700,uid={judge_owner},gid={judge_owner}")
        keep.add(new + JUDGE_SCRATCH)
    refused = make_readonly(keep, under=new)
    hidden = hidden_from(bound, workspace)
    how = enter_root(new)
    return {"filesystem": "minimal root", "root_by": how, "visible": sorted(bound), "hidden": hidden,
            "covered": covered, "readonly_refused": refused, "workspace_tmpfs": True, "private_shm": shm,
            "proc_private": bool(proc_private)}


def host_view(workspace: str, owner: int, files: dict, error: str, pid_namespace: bool) -> dict:
    """Where no minimal root could be built: the host's tree, every mount read-only but the workspace."""
    os.chdir("/")
    libc.umount2(workspace.encode(), MNT_DETACH)   # whatever part of the minimal root was made
    refused = make_readonly({workspace, "/proc"})
    tmpfs = True
    try:
        mount_workspace(workspace, owner, files)
    except OSError:
        tmpfs = False
    proc_private = pid_namespace and mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return {"filesystem": "host, read-only", "root_error": error, "hidden": [], "readonly_refused": refused,
            "workspace_tmpfs": tmpfs, "private_shm": mount_shm("/dev/shm"), "proc_private": bool(proc_private)}


# --- the processes ---------------------------------------------------------------------------------

def drop_privileges(root: bool, run_uid: int, inner_uid: int) -> str:
    """Root: become an unused uid. Otherwise: a nested user namespace with a non-zero uid, so the
    process holds no capability in the namespace that owns the read-only mounts."""
    try:
        if root:
            os.setgroups([])
            os.setresgid(run_uid, run_uid, run_uid)
            os.setresuid(run_uid, run_uid, run_uid)
            return f"uid {run_uid}"
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)   # init's setting would leave /proc/self/uid_map owned by host root
        uid, gid = os.getuid(), os.getgid()       # read before unshare: inside, both are unmapped (65534)
        if unshare(CLONE_NEWUSER):
            map_user(inner_uid, uid, gid)
            os.setresgid(inner_uid, inner_uid, inner_uid)
            os.setresuid(inner_uid, inner_uid, inner_uid)
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


def run_program(root: bool, workspace: str, pid_namespace: bool, pipes=None) -> None:
    """In the forked program child: never returns. `pipes`: (requests, replies) of a test run."""
    try:
        if pid_namespace:
            os.setsid()   # its own process group: killpg(0) from the program reaches only itself
        for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        stdin = os.open(os.path.join(workspace, config["stdin"]) if config["stdin"] else os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        user = drop_privileges(root, config["uid"], INNER_UID)
        applied = set_limits(own_uid=bool(user))
        no_new_privs = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0   # setuid binaries cannot raise privileges
        os.chdir(workspace)
        say(event="program", rlimits=applied, user=user, no_new_privs=no_new_privs)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workspace, "TMPDIR": workspace,
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        if pipes is not None:
            for fd in pipes:
                os.set_inheritable(fd, True)
        errors = []
        for interpreter in config["interpreters"]:
            path = interpreter["path"]
            if pipes is None:
                command = [config["program"]]
            elif interpreter.get("same"):   # the harness's own Python: its compiled code, no compiling here
                command = ["-c", SERVER_LOADER, config["judge"]["server"].hex(), *map(str, pipes), config["program"]]
            else:
                command = ["-c", config["judge"]["source"], *map(str, pipes), config["program"]]
            say(event="exec", interpreter=path)
            try:
                os.execve(path, [path, *interpreter["args"], *command], {**env, **interpreter["env"]})
            except OSError as err:
                errors.append(f"{path}: {err.strerror}")
        say(event="boot_error", error="no interpreter could be started: " + "; ".join(errors))
    except BaseException as err:  # anything here is a sandbox fault, reported rather than printed
        say(event="boot_error", error=f"{type(err).__name__}: {err}")
    os._exit(127)


def run_judge(root: bool, pipes: tuple, ready: int) -> None:
    """In the forked judge child: run the tests against the program; never returns.

    It is never dumpable (set before the program exists, and again after the uid change), so
    the program can neither ptrace it nor open its /proc files, and its uid differs from the
    program's (root). Its result goes to the report pipe, with the run's token.
    """
    spec = config["judge"]
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        user = drop_privileges(root, spec["uid"], INNER_JUDGE_UID)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        set_limits(own_uid=root and bool(user))
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        scratch = JUDGE_SCRATCH if os.path.isdir(JUDGE_SCRATCH) and os.access(JUDGE_SCRATCH, os.W_OK) else None
        os.chdir(scratch or "/")
        os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        if scratch:
            os.environ.update({"TMPDIR": scratch, "HOME": scratch})
        sys.path.extend(spec["path"])
        os.write(ready, b"1")
        os.close(ready)
        module = types.ModuleType("sandbox_judge")
        sys.modules["sandbox_judge"] = module
        exec(marshal.loads(spec["code"]), module.__dict__)
        result = module.judge(pipes[0], pipes[1], spec["setup"], spec["tests"], spec["entry_point"])
        say(event="tests", token=spec["token"], user=user, **result)
    except BaseException as err:
        say(event="boot_error", error=f"judge: {type(err).__name__}: {err}")
        os._exit(1)
    os._exit(0 if result["completed"] else TESTS_FAILED)


def descendants(ancestor: int) -> dict:
    """pid -> parent pid for every process below `ancestor`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = {}, [ancestor]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = parent
                frontier.append(child)
    return found


def sweep(ancestor: int, spare=None) -> None:
    """Kill every process below `ancestor` except `spare` and those below it."""
    for _ in range(3):
        below = descendants(ancestor)
        spared = set()
        if spare is not None:
            spared = {spare, *descendants(spare)}
        targets = [pid for pid in below if pid not in spared]
        if not targets:
            return
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def init(root: bool, workspace: str, active: dict, files: dict) -> None:
    """PID 1 of the run: build the program's filesystem, start the judge (test runs) and the program,
    reap everything, report the wait statuses.

    The filesystem is built here, not before the fork, because a fresh /proc shows the new PID
    namespace only when mounted from inside it, and must be mounted before pivot_root.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # a signal from the program must not end the report
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)               # nothing can ptrace it or read its /proc files
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)        # orphans come back here, not to the host's init
    pid_namespace = active["pid"]
    owner = config["uid"] if root else 0
    judge_owner = None if not config.get("judge") else (config["judge"]["uid"] if root else 0)
    view = {"filesystem": "host", "hidden": [], "readonly_refused": None, "workspace_tmpfs": False,
            "private_shm": False, "proc_private": False}
    if active["mount"]:   # without a mount namespace nothing is mounted: it would change the host's tree
        try:
            view = build_root(workspace, owner, files, judge_owner, pid_namespace)
        except OSError as err:
            view = host_view(workspace, owner, files, f"{err.strerror or err}", pid_namespace)
    proc_private = view.pop("proc_private")
    say(event="namespaces", **active, **view)
    say(event="init", proc_private=proc_private)
    me = os.getpid()
    judge = pipes = None
    if config.get("judge"):
        requests, replies, ready = os.pipe(), os.pipe(), os.pipe()
        judge = os.fork()
        if judge == 0:
            for fd in (requests[0], replies[1], ready[0]):
                os.close(fd)
            run_judge(root, (requests[1], replies[0]), ready[1])
        for fd in (requests[1], replies[0], ready[1]):
            os.close(fd)
        started = os.read(ready[0], 1)   # the judge is not dumpable and has its own uid: now the program may start
        os.close(ready[0])
        if not started:
            say(event="boot_error", error="the judge did not start")
            os._exit(1)
        pipes = (requests[0], replies[1])
    program = os.fork()
    if program == 0:
        run_program(root, workspace, pid_namespace, pipes)
    if pipes:
        for fd in pipes:
            os.close(fd)
    program_end = judge_status = None
    while (judge_status is None) if judge else (program_end is None):
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            say(event="boot_error", error="the program vanished")
            os._exit(1)
        if pid == program:
            program_end = (status, usage, False)
            if judge:   # leftovers could hold the program's pipe ends open and keep the judge waiting
                sweep(me, spare=judge)
        elif pid == judge:
            judge_status = status
    if program_end is None:   # the tests are over: the program is stopped (unless it is exiting anyway)
        sweep(me)
        _, status, usage = os.wait4(program, 0)
        stopped = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        program_end = (status, usage, stopped)
    if not pid_namespace:
        sweep(me)
    status, usage, after_tests = program_end
    signalled = os.WIFSIGNALED(status)
    say(event="exit", code=None if signalled else os.WEXITSTATUS(status),
        signal=os.WTERMSIG(status) if signalled else None, after_tests=after_tests,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3), max_rss_mb=round(usage.ru_maxrss / 1024, 1))
    if not judge:
        os._exit(0)
    signalled = os.WIFSIGNALED(judge_status)
    say(event="judge_exit", code=None if signalled else os.WEXITSTATUS(judge_status),
        signal=os.WTERMSIG(judge_status) if signalled else None)
    # the exit status carries the judge's word to the harness as well: unlike a report line, no process of
    # the program can forge it (every process on the way is not dumpable, and has its own uid where it can)
    os._exit(0 if not signalled and os.WEXITSTATUS(judge_status) == 0 else TESTS_FAILED)


def main() -> None:
    os.umask(0o022)
    root = os.geteuid() == 0
    workspace = config["workspace"]
    files = {}
    for name in config["files"]:
        with open(os.path.join(workspace, name), "rb") as f:
            files[name] = f.read()
    active = enter_namespaces(root)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)   # after the uid map is written: now no one can open its /proc files
    # private first: a mount made below a shared one would show up on the host too
    active["mount"] = active["mount"] and mount(None, "/", None, MS_REC | MS_PRIVATE)
    child = os.fork()
    if child == 0:
        try:
            init(root, workspace, active, files)
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
