"""runc exec: start one more process inside a running container.

The runtime (P) opens a pidfd on the container's init, moves its own pid-namespace-for-children
(and time namespace) there with setns(pidfd), and forks: the child (G) is born inside the
container's pid namespace and stays P's child, so P can wait for it without a second fork. G
joins the other namespaces with one setns(pidfd) (user first, as the kernel orders them), takes
the init's root (chroot to /proc/PID/root, opened before joining: right for pivot_root and
--no-pivot alike), applies the process settings and execs. P meanwhile writes G into the
container's cgroups and only then lets G go on to execve.

P is made non-dumpable before the fork, so G never is dumpable inside the container before its
execve (no ptrace, no /proc/G/exe from the container).

Protocol (P <-> G, a pair of pipes, G's ends O_CLOEXEC):
  G -> "ready"          namespaces joined, root and cwd taken, settings checked
  P -> "go"             G is in the cgroups
  G -> "err:<message>"  a failure; else EOF at G's execve
"""
import os
import stat

from . import linux as L
from . import state
from .errors import Error

NS_FLAGS = {
    "pid": L.CLONE_NEWPID, "network": L.CLONE_NEWNET, "mount": L.CLONE_NEWNS, "ipc": L.CLONE_NEWIPC,
    "uts": L.CLONE_NEWUTS, "user": L.CLONE_NEWUSER, "cgroup": L.CLONE_NEWCGROUP, "time": L.CLONE_NEWTIME,
}
_PASSWD_MAX = 4 << 20  # read of the container's /etc/passwd, at most
_FOR_CHILDREN = L.CLONE_NEWPID | L.CLONE_NEWTIME  # setns applies these to children only


def _load_json(path):
    import json
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Error(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        p = json.loads(data)
    except ValueError as e:
        raise Error(f"{path}: invalid JSON: {e}") from None
    if not isinstance(p, dict):
        raise Error(f"{path}: the process must be a JSON object")
    return p


def _validate(p, where):
    """runc's validateProcessSpec, plus types the plan relies on."""
    cwd = p.get("cwd")
    if not cwd:
        raise Error("Cwd property must not be empty")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise Error("Cwd must be an absolute path")
    args = p.get("args")
    if not args:
        raise Error("args must not be empty")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise Error(f"{where}.args: must be a list of strings")
    env = p.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise Error(f"{where}.env: must be a list of strings")
    user = p.get("user") or {}
    if not isinstance(user, dict):
        raise Error(f"{where}.user: must be an object")
    for k in ("uid", "gid"):
        v = user.get(k, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise Error(f"{where}.user.{k}: must be an unsigned 32-bit integer, got {v!r}")
    size = p.get("consoleSize")
    if size is not None and not (isinstance(size, dict) and all(
            isinstance(size.get(k, 0), int) and 0 <= size.get(k, 0) < 65536 for k in ("height", "width"))):
        raise Error(f"{where}.consoleSize: height and width must be integers 0..65535")


def process_from_flags(base, o, args):
    """runc's exec without -p: the container's process, overridden by the flags."""
    p = dict(base or {})  # state.json's copy, read for this exec only: nested changes are harmless
    p["args"] = list(args)
    if o["cwd"]:
        p["cwd"] = o["cwd"]
    if o["apparmor"]:
        p["apparmorProfile"] = o["apparmor"]
    if o["process-label"]:
        p["selinuxLabel"] = o["process-label"]
    if o["cap"]:
        caps = p.setdefault("capabilities", {})
        for c in o["cap"]:
            for kind in ("bounding", "effective", "permitted", "ambient"):
                caps.setdefault(kind, [])
                caps[kind] = list(caps[kind] or []) + [c]
    p["env"] = list(p.get("env") or []) + list(o["env"])
    p["terminal"] = bool(o["tty"])
    if o["no-new-privs"]:
        p["noNewPrivileges"] = True
    user = dict(p.get("user") or {})
    if o["user"]:
        uid, sep, gid = o["user"].partition(":")
        try:
            user["uid"] = int(uid)
        except ValueError:
            raise Error(f"parsing {uid} as int for uid failed: invalid syntax") from None
        if sep:
            try:
                user["gid"] = int(gid)
            except ValueError:
                raise Error(f"parsing {gid} as int for gid failed: invalid syntax") from None
    for g in o["additional-gids"]:
        try:
            n = int(g)
        except ValueError:
            raise Error(f"invalid value {g!r} for flag -additional-gids: parse error") from None
        if n < 0:
            raise Error(f"additional-gids must be a positive number {n}")
        user.setdefault("additionalGids", [])
        user["additionalGids"] = list(user["additionalGids"] or []) + [n]
    p["user"] = user
    return p


def _dedup_env(env):
    """Later entries win, first position kept (what runc passes to execve)."""
    out, pos = [], {}
    for e in env:
        k = e.partition("=")[0]
        if k in pos:
            out[pos[k]] = e
        else:
            pos[k] = len(out)
            out.append(e)
    return out


def run(root, cid, o, args):
    """The exec verb; returns the exit status (foreground) or 0 (detached)."""
    if not o["process"] and not args:
        raise Error("process args cannot be empty")
    # the --preserve-fds the caller really passed, checked before we open any fd of our own
    # (the state lock, a pidfd) that could take a free number in the range and reach the program
    preserved = []
    for fd in range(3, 3 + o["preserve-fds"]):
        try:
            os.fstat(fd)
            preserved.append(fd)
        except OSError:
            pass
    c = state.Container(root, cid).open(shared=True)
    try:
        st = c.status()
        if st == "stopped":
            raise Error("cannot exec in a stopped container")
        if st == "paused" and not o["ignore-paused"]:
            raise Error("cannot exec in a paused container (use --ignore-paused to override)")
        if st == "creating":
            raise Error("cannot exec in a container that is being created")
        d = c.data
        cfg = d.get("config") or {}
        if o["process"]:
            proc = _load_json(o["process"])
            _validate(proc, "process")  # as in runc, the JSON alone decides (--tty is for flags)
        else:
            proc = process_from_flags(cfg.get("process"), o, args)
            _validate(proc, "process")
        detach = bool(o["detach"])
        terminal = bool(proc.get("terminal"))
        if terminal or o["console-socket"]:
            from . import tty
            tty.check_flags(terminal, o["console-socket"], detach)
        from . import process
        plan = process.plan_process(proc)
        plan.env = _dedup_env(plan.env)
        linux = cfg.get("linux") or {}
        seccomp = linux.get("seccomp")
        flags = 0
        for ns in linux.get("namespaces") or []:
            flags |= NS_FLAGS.get(ns.get("type"), 0)
        return _spawn(c, d, plan, proc, flags, seccomp, terminal, o, detach, preserved)
    finally:
        c.unlock()


def _spawn(c, d, plan, proc, flags, seccomp, terminal, o, detach, preserved):
    pid = d["pid"]
    try:
        pidfd = L.pidfd_open(pid)
    except OSError:
        raise Error("cannot exec in a stopped container") from None
    console = prepared = None
    psock = csock = None
    rootfd = -1
    try:
        if not state.proc_alive(pid, d.get("pid_start")):
            raise Error("cannot exec in a stopped container")
        if terminal:
            from . import tty
            console = tty.Console(o["console-socket"])
        if seccomp is not None:
            from . import seccomp as sc
            prepared = sc.prepare(seccomp)  # libseccomp cannot be loaded after the chroot
            sc.connect_listener(seccomp)
        tail = _tail(d, plan, proc, seccomp, prepared, preserved, o["preserve-fds"])
        # everything the child imports must be loaded now: after its chroot, sys.path is gone
        import _signal  # noqa: F401 - built in; not signal, whose enum import costs ~4 ms
        from . import finalize, rootfs, program, procfs  # noqa: F401 - the child's own steps
        if proc.get("ioPriority") or proc.get("scheduler"):
            from . import procattr  # noqa: F401
        if seccomp is not None and seccomp.get("listenerPath"):
            import json  # noqa: F401 - send_notify_fd's
        placement = None
        if d.get("cgroup"):
            from . import cgroups
            # as root, G is born in its cgroup2 dir and joins its v1 cgroups itself (cgroups.Placement)
            placement = cgroups.load_manager(d["cgroup"]).place(self_join=os.geteuid() == 0)
        rootfd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        psock, csock = _Chan.pair()
        L.prctl(L.PR_SET_DUMPABLE, 0)
        if flags & _FOR_CHILDREN:
            jf = flags & _FOR_CHILDREN
            if flags & L.CLONE_NEWUSER and os.geteuid() != 0:
                jf |= L.CLONE_NEWUSER  # rootless: only the container's user namespace gives the right
            try:
                L.setns(pidfd, jf)
            except OSError as e:
                raise Error(f"joining the pid namespace of the container: {e.strerror}") from None
        if not detach:
            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)  # its forks are reaped by us, like runc
        try:
            child = placement.spawn(fork=os.fork) if placement is not None else os.fork()
        except OSError as e:
            if flags & L.CLONE_NEWPID and not state.proc_alive(pid, d.get("pid_start")):
                raise Error("cannot exec in a stopped container") from None  # its pid ns is gone
            raise Error(f"fork: {e.strerror}") from None
        if child == 0:
            psock.close()
            _child(csock, pidfd, rootfd, flags & ~_FOR_CHILDREN, tail, console, proc.get("consoleSize"),
                   c, d, placement)
        csock.close()
        csock = None
        os.close(rootfd)
        rootfd = -1
        if console is not None:
            console.close_child()
        if seccomp is not None:
            sc.close_listener()
        try:
            msg = _recv(psock)
            if msg != b"ready":
                raise Error(f"sync: unexpected message {msg[:40]!r}")
            if placement is not None:
                placement.finish(child)  # what G did not join itself
            if not detach and console is None:
                # before "go": a signal sent once the program runs must find the forwarder
                from .signals import forward_to
                forward_to(child)
            psock.send(b"go")
            msg = psock.recv_all()  # EOF: execve done
            if msg.startswith(b"err:"):
                raise Error(msg[4:].decode(errors="replace"))
        except BaseException:
            from .lifecycle import kill_reap
            kill_reap(child)
            raise
        if o["pid-file"]:
            from .lifecycle import write_pid_file
            write_pid_file(o["pid-file"], child)
    except BaseException:
        if console is not None:
            console.close()
        raise
    finally:
        os.close(pidfd)
        if rootfd >= 0:
            os.close(rootfd)
        for s in (psock, csock):
            if s is not None:
                s.close()
    c.unlock()  # the process runs: never block delete/kill while we wait for it
    if detach:
        if console is not None:
            console.close()
        return 0
    if console is not None:
        try:
            console.receive()
            return _code(tty_proxy(console, child))
        finally:
            console.close()
    return _code(_wait(child))


def tty_proxy(console, pid):
    from . import tty
    return tty.proxy(console.master, pid)


class _Chan:
    """One end of the sync channel: two O_CLOEXEC pipes (lighter than importing socket; a pipe
    write up to PIPE_BUF is atomic, and the child's ends close at its execve)."""

    def __init__(self, r, w):
        self.r, self.w = r, w

    @classmethod
    def pair(cls):
        r1, w1 = os.pipe2(os.O_CLOEXEC)  # child -> runtime
        r2, w2 = os.pipe2(os.O_CLOEXEC)  # runtime -> child
        return cls(r1, w2), cls(r2, w1)

    def send(self, data):
        os.write(self.w, data)

    def recv(self, n):
        return os.read(self.r, n)

    def recv_all(self):
        out = b""
        while True:
            b = os.read(self.r, 65536)
            if not b:
                return out
            out += b

    def close(self):
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1


def _recv(sock):
    try:
        msg = sock.recv(1 << 16)
        if msg.startswith(b"err:"):
            msg += sock.recv_all()
    except OSError:
        msg = b""
    if msg.startswith(b"err:"):
        raise Error(msg[4:].decode(errors="replace"))
    if not msg:
        raise Error("exec: the process exited before it was ready")
    return msg


def _wait(pid):
    """Foreground: the wait status of the process (signals are forwarded to it meanwhile)."""
    while True:
        try:
            p, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255 << 8
        if p == pid:
            return status


def _code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


# ---------------------------------------------------------------- the new process (G)
def _tail(d, plan, proc, seccomp, prepared, preserved, preserve_fds):
    """The finalize plan of the new process (runtime/finalize.py), computed before the fork."""
    from . import finalize
    attrs = mpol = None
    if proc.get("ioPriority") or proc.get("scheduler"):
        from . import procattr
        attrs = procattr.plan(proc, {})
    mp = ((d.get("config") or {}).get("linux") or {}).get("memoryPolicy")
    if mp is not None:  # the container's NUMA policy: we do not descend from its init
        from . import mempolicy
        mpol = mempolicy.plan(mp)
    notify = None
    if seccomp is not None and seccomp.get("listenerPath"):
        import json
        from .lifecycle import oci_state
        st = json.loads(oci_state(_StateView(d), "running"))
        notify = lambda: st  # noqa: E731
    return finalize.Tail(plan, preserved, 3 + preserve_fds, attrs, mpol, seccomp, prepared, notify)


def _child(sock, pidfd, rootfd, flags, tail, console, console_size, c, d, placement=None):
    """Between fork and execve; never returns."""
    try:
        # our copy of the runtime's lock fd (closing a copy keeps the runtime's flock): a G that
        # hangs before execve must never keep `delete --force` out
        c.unlock()
        if placement is not None:
            placement.join()  # v1 `tasks` files (cgroups.Placement), while they are the host's
        _child_setup(sock, pidfd, rootfd, flags, tail, console, console_size, d)
    except Error as e:
        _report(sock, str(e))
    except OSError as e:
        _report(sock, f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
    except BaseException as e:  # noqa: BLE001 - never unwind into the runtime's code
        _report(sock, f"exec: {type(e).__name__}: {e}")
    os._exit(255)


def _report(sock, msg):
    try:
        sock.send(b"err:" + msg.encode(errors="replace"))
    except OSError:
        pass


def _child_setup(sock, pidfd, rootfd, flags, tail, console, console_size, d):
    from . import finalize, process
    plan = tail.plan
    os.setsid()  # runc's processes lead a session of their own
    if flags & L.CLONE_NEWUSER:
        # joining our own user namespace is EINVAL: only join one that differs
        if os.stat(f"/proc/{d['pid']}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino:
            flags &= ~L.CLONE_NEWUSER
    # from the mount namespace join on, files are the container's: never import them as our code,
    # and never reach /proc but beneath the host's, opened now (runtime/procfs.py)
    from . import procfs
    procfs.root()
    process.seal_imports()
    if flags:
        try:
            L.setns(pidfd, flags)
        except OSError as e:
            raise Error(f"joining the namespaces of the container: {e.strerror}") from None
    os.close(pidfd)
    if flags & L.CLONE_NEWUSER:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    os.fchdir(rootfd)
    os.chroot(".")
    os.close(rootfd)
    env = process.env_dict(plan.env)
    if "HOME" not in env:
        home = _home(plan.uid)
        plan.env.append("HOME=" + home)
        env["HOME"] = home
    try:
        from . import rootfs
        rootfs.chdir_in_root(plan.cwd)  # never a leaked host fd's /proc/self/fd link (CVE-2024-21626)
    except OSError as e:
        raise Error(f"unable to start container process: chdir to cwd ({plan.cwd!r}) set in config.json "
                    f"failed: {(e.strerror or '').lower()}") from None
    from . import program
    try:
        prog = program.resolve(plan.args, env)  # in the root, by fd: see runtime/program.py
    except Error as e:
        raise Error(f"unable to start container process: {e}") from None
    process.apply_early(plan)
    if tail.attrs is not None:
        from . import procattr
        procattr.apply(tail.attrs)
    if console is not None:
        from . import tty
        tty.setup(console.child, console_size, plan.uid, mount_console=False)
        console.child = None
    sock.send(b"ready")
    msg = sock.recv(64)
    if msg != b"go":
        os._exit(255)  # the runtime gave up on us
    tail.program, tail.env = prog, env
    try:
        finalize.run(tail)  # the steps init takes too, in its order; execve does not return
    except Error as e:
        raise Error(f"unable to start container process: {e}") from None


class _StateView:
    def __init__(self, d):
        self.data = d
        self.id = d.get("id", "")


def _home(uid):
    """HOME of UID from the container's /etc/passwd, else "/" (what runc does). The file is the
    container's: opened in the root without magic links, never blocking (a FIFO there), a
    regular file only, and read up to a bound (/dev/zero there)."""
    from . import program
    try:
        fd = program._openat2("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        data = os.pread(fd, _PASSWD_MAX, 0)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    want = str(uid)
    for line in data.split(b"\n"):
        parts = line.decode(errors="replace").split(":")
        if len(parts) >= 6 and parts[2] == want:
            return parts[5] or "/"
    return "/"
