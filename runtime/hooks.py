"""Running OCI hooks (config.md "POSIX-platform Hooks").

A hook gets the container state JSON on stdin, its own args and env, and an optional timeout.
What else it gets is runc's (checked against runc 1.1.5, see tests/test_parity_hooks_seccomp.py):
- only fds 0-2: every other descriptor, the caller's included (a lock file, a pipe an engine
  forgot to mark close-on-exec), is close-on-exec in the hook's child before execve;
- no `env` in the config (absent or null): the environment of who runs it (RUNTIME_PHASES: the
  runtime's, so the caller's; createContainer: the container process's env; startContainer: that
  plus the HOME the init computed); an explicit list, even empty, is exactly that list;
- its working directory: the bundle for the RUNTIME_PHASES (runc chdirs to it; hook libraries
  open relative paths), the rootfs for createContainer (hook libraries rely on it), the
  process's cwd for startContainer (it runs where the process would);
- startContainer runs as the container process would: after the user switch, the capability
  drop, noNewPrivileges and the seccomp filter (chain/init.py), so the code here that runs then
  degrades when the filter denies what it would like (memfd_create, pidfd_open, close_range).

No hook can block pyrunc past its timeout, whatever it does:
- stdin is a sealed memfd holding the state, not a pipe: a hook that never reads it cannot block
  a writer (there is none), and states of any size (4 MiB of annotations and more) are fine;
- stdout and stderr are pipes that pyrunc drains while it waits, keeping the first OUT_CAP bytes
  of each for the error message (a chatty hook never blocks, and never fills our memory);
- the wait is for the hook process itself (a pidfd), never for EOF on its output: a descendant
  that keeps the pipes open does not hold us;
- with a timeout, the whole run (start to exit) is bounded by it. Without one, pyrunc waits for
  the hook's exit without limit, as runc does (libcontainer/configs Command.Run): the config's
  author chose no limit, and a long hook may be legitimate.

On failure (timeout, non-zero exit, signal) the hook's whole process tree is killed: the hook
starts in its own session (its own process group, killed as one), pyrunc is a child subreaper
while it runs, so descendants that left the group (setsid, double fork) are reparented to us when
their parent dies, and are killed too. The hook also gets PR_SET_PDEATHSIG: a pyrunc killed while
waiting takes the hook with it. Not covered: descendants of a hook that pyrunc's own death leaves
behind (only the hook itself has the death signal), processes a hook asks another service to
start, and, inside a container's pid namespace (createContainer/startContainer hooks run by the
init, pid 1), the sweep of orphans: there the failed init's exit ends the namespace and kills
them all.
"""
import os
import select
import time

from .errors import Error, why
from .hotpath import SIGKILL, sig

# hooks whose failure aborts the operation; the rest only warn (config.md)
FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")
# run by the runtime (in its namespaces), in the bundle directory; the other two run in the init
RUNTIME_PHASES = ("prestart", "createRuntime", "poststart", "poststop")
OUT_CAP = 4096  # bytes of each of stdout and stderr kept for the error message
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_F_ADD_SEALS, _SEALS = 1033, 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL, SHRINK, GROW, WRITE
_SWEEP = 5.0  # seconds allowed to kill and reap what a failed hook left


def run_hook(hook, state_json, phase, index, env=None, cwd=None, prog=None):
    """Run one hook to completion; raises Error on a non-zero exit, a signal or a timeout.
    ENV (a mapping) is what a hook without `env` inherits (default: ours); CWD its working
    directory (default: ours; one that is gone leaves ours, as for runc's delete). PROG: the
    startContainer hook's program, opened by resolve_start (the hook runs it and closes it)."""
    path = hook["path"]
    args = hook.get("args") or [path]
    timeout = hook.get("timeout")
    what = f"error running {phase} hook #{index}: {path}"  # runc's words, and the path
    data = state_json.encode() if isinstance(state_json, str) else state_json
    envd = _environment(hook, phase, index, env)
    if "\0" in path:
        raise Error(f"hooks.{phase}[{index}].path: contains a NUL byte")
    for j, a in enumerate(args):
        if "\0" in a:
            raise Error(f"hooks.{phase}[{index}].args[{j}]: contains a NUL byte")
    if phase == "startContainer" and prog is None:
        prog = _resolve(hook, index)
    if prog is not None:
        from . import program
    stdin = _state_memfd(data)
    orout, owout = os.pipe2(os.O_CLOEXEC)
    orerr, owerr = os.pipe2(os.O_CLOEXEC)
    rfail, wfail = os.pipe2(os.O_CLOEXEC)  # why execve failed; EOF at a successful one
    from . import linux
    was_reaper = _subreaper(linux)
    kids_before = _children() if was_reaper is not None else None
    deadline = time.monotonic() + timeout if timeout else None
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child: no Python-level locks are held (pyrunc is single-threaded)
        try:
            os.setsid()  # its own session and process group: killed as one
            linux.prctl(_PR_SET_PDEATHSIG, SIGKILL)
            if os.getppid() != parent:
                os._exit(127)  # the runtime died before the death signal was armed
            _stdio(stdin, owout, owerr)
            _only_stdio(linux)
            if cwd is not None:
                try:
                    os.chdir(cwd)
                except OSError:
                    pass
            if prog is not None:
                program.execute(prog, envd)
            os.execve(path, args, envd)
        except BaseException as e:
            try:
                if isinstance(e, Error):
                    msg = str(e)
                elif isinstance(e, OSError):
                    msg = why(e)
                else:
                    msg = "cannot execute"
                os.write(wfail, msg.encode(errors="replace")[:1024])
            finally:
                os._exit(127)
    if prog is not None:
        os.close(prog.fd)
    os.close(stdin)
    os.close(owout)
    os.close(owerr)
    os.close(wfail)
    out, err = _Capture(orout), _Capture(orerr)
    ok = False
    try:
        failed = _exec_failure(rfail, deadline)
        if failed:
            raise Error(f"{what}: {failed}")
        status = _wait(pid, deadline, (out, err))
        if status is None:
            # runc's words after ours
            raise Error(f"{what}: timed out: hook ran past specified timeout of "
                        f"{float(timeout):.1f}s")
        if os.WIFSIGNALED(status):
            n = os.WTERMSIG(status)
            raise Error(f"{what}: killed by signal {n}: {_signal_name(n)}{_output(out, err)}")
        code = os.WEXITSTATUS(status)
        if code:
            raise Error(f"{what}: exit status {code}{_output(out, err)}")
        ok = True
    finally:
        if ok:
            os.waitpid(pid, 0)  # exited: no wait
        else:
            _kill_tree(pid, kids_before)  # and reaps the leader
        out.close()
        err.close()
        os.close(rfail)
        if was_reaper is False:
            linux.prctl(_PR_SET_CHILD_SUBREAPER, 0)


def resolve_start(hooks_cfg):
    """The programs of the startContainer hooks, opened now: their paths resolve in the
    container, after pivot_root, to files of the image, opened in the root (openat2) and run by
    descriptor as the container's own program is (runtime/program.py). Done before the seccomp
    filter goes in: a profile may deny openat2 (runc's seccomp.bats)."""
    return [_resolve(h, i) for i, h in enumerate(hooks_cfg.get("startContainer") or [])]


def _resolve(hook, index):
    from . import program
    path = hook["path"]
    if "\0" in path:
        raise Error(f"hooks.startContainer[{index}].path: contains a NUL byte")
    return program.resolve_path(path, hook.get("args") or [path],
                                f"error running startContainer hook #{index}")  # names the path


def _signal_name(n):
    """"bad system call" for SIGSYS: what runc (Go) says, lowercase."""
    try:
        name = sig.strsignal(n) or ""
    except ValueError:
        name = ""
    return (name[:1].lower() + name[1:]) if name else f"signal {n}"


def _exec_failure(fd, deadline):
    """What the child wrote before exiting when execve failed; "" once execve closed the pipe;
    None at the deadline (the wait then reports the timeout)."""
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    while True:
        ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
        if poll.poll(ms):
            try:
                return os.read(fd, 1024).decode(errors="replace")
            except OSError:
                return ""
        if deadline is not None and time.monotonic() >= deadline:
            return None


def _environment(hook, phase, index, inherited):
    """The hook's environment as a dict: its `env` when given, else the inherited one."""
    env = hook.get("env")
    if env is None:
        return dict(os.environ if inherited is None else inherited)
    out = {}
    for j, e in enumerate(env):
        k, sep, v = e.partition("=")
        if "\0" in e:
            raise Error(f"hooks.{phase}[{index}].env[{j}]: contains a NUL byte")
        if sep and k:
            out[k] = v  # a repeated name: the last one wins, as for runc
    return out


_CLOSE_RANGE_CLOEXEC = 4


def _stdio(*fds):
    """FDS as 0, 1, 2, whatever numbers they have (a runtime started with 0-2 closed gets them
    for its own pipes): moved above 2 first, so that no dup2 overwrites one still to be moved."""
    import fcntl
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in fds]
    for n, fd in enumerate(high):
        os.dup2(fd, n)  # inheritable


def _only_stdio(linux):
    """In the hook's child: every fd from 3 up close-on-exec (runc's hooks get 0-2 only). The
    container's seccomp filter may deny close_range (startContainer): then one by one."""
    try:
        linux.close_range(3, 0xFFFFFFFF, _CLOSE_RANGE_CLOEXEC)
        return
    except OSError:
        pass
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        import resource
        fds = range(3, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 20))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _state_memfd(data):
    """The state as a sealed memfd, read-only for the hook, at offset 0; a pipe holding it when
    the container's seccomp filter denies memfd_create (startContainer)."""
    try:
        fd = os.memfd_create("hook-state", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return _state_pipe(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    import fcntl
    try:
        fcntl.fcntl(fd, _F_ADD_SEALS, _SEALS)
    except OSError:
        pass
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _state_pipe(data):
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        import fcntl
        try:
            fcntl.fcntl(w, 1031, max(len(data), 4096))  # F_SETPIPE_SZ
        except OSError:
            pass
        os.set_blocking(w, False)
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]  # more than the pipe holds: EAGAIN, never a block
    except BlockingIOError:
        os.close(r)
        raise Error(f"hook state of {len(data)} bytes does not fit in a pipe, and memfd_create "
                    "is denied") from None
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r


def _subreaper(linux):
    """Make us a child subreaper when our pids are those /proc shows (not pid 1 of a namespace,
    whose orphans are its own anyway); returns whether we already were, or None when not."""
    try:
        if os.getpid() == 1 or os.readlink("/proc/self") != str(os.getpid()):
            return None
    except OSError:
        return None
    try:
        cur = linux.get_child_subreaper()
        if not cur:
            linux.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return None
    return cur


def _children():
    """Our children (ppid == our pid), from /proc (no /proc/PID/task/TID/children here)."""
    me = str(os.getpid()).encode()
    out = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(b")") + 2:].split()
        if len(rest) > 1 and rest[1] == me:
            out.add(int(p))
    return out


def _kill_tree(pid, kids_before):
    """SIGKILL the hook's process group (its leader still unreaped: the pgid cannot be reused),
    then, as a subreaper, every new child of ours: the descendants that had left the group and
    were reparented to us. Bounded by _SWEEP seconds."""
    try:
        os.killpg(pid, SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    if kids_before is None:
        return
    end = time.monotonic() + _SWEEP
    while time.monotonic() < end:
        extra = _children() - kids_before
        if not extra:
            break
        for k in extra:  # our unreaped children: their pids cannot be reused meanwhile
            try:
                os.killpg(k, SIGKILL)  # when it leads a group of its own (setsid)
            except OSError:
                pass
            try:
                os.kill(k, SIGKILL)
            except OSError:
                pass
        for k in extra:
            _reap(k, end)


def _reap(pid, end):
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        if time.monotonic() >= end:
            return
        time.sleep(0.005)


class _Capture:
    """A non-blocking read end kept up to OUT_CAP bytes; the rest is read and dropped."""

    def __init__(self, fd):
        os.set_blocking(fd, False)
        self.fd = fd
        self.buf = bytearray()

    def fileno(self):
        return self.fd

    def drain(self, limit=1 << 20):
        """Read what is there now (at most LIMIT bytes); False at EOF."""
        got = 0
        while got < limit:
            try:
                b = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not b:
                return False
            got += len(b)
            if len(self.buf) < OUT_CAP:
                self.buf += b[:OUT_CAP - len(self.buf)]  # bytearray: no quadratic copy
        return True

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _wait(pid, deadline, captures):
    """Wait for the hook's exit, draining its output; the wait status, or None at the deadline."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # denied by the container's seccomp filter (startContainer): poll its state
        return _wait_polling(pid, deadline, captures)
    try:
        poll = select.poll()
        poll.register(pidfd, select.POLLIN)
        open_ = {c.fd: c for c in captures}
        for fd in open_:
            poll.register(fd, select.POLLIN)
        while True:
            if deadline is None:
                ms = None
            else:
                ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = poll.poll(ms)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                return None
            for fd, _ in ready:
                if fd == pidfd:
                    continue
                c = open_.get(fd)
                if c is not None and not c.drain():
                    poll.unregister(fd)
                    del open_[fd]
            if any(fd == pidfd for fd, _ in ready):
                for c in captures:
                    c.drain()  # what it wrote before exiting (bounded: never waits for EOF)
                return _status(pid)
    finally:
        os.close(pidfd)


def _wait_polling(pid, deadline, captures):
    """_wait without a pidfd: the output drained at least every 50 ms, the exit checked then."""
    poll = select.poll()
    open_ = {c.fd: c for c in captures}
    for fd in open_:
        poll.register(fd, select.POLLIN)
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            for c in captures:
                c.drain()
            return _status(pid)
        ms = 50
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ms = min(ms, int(left * 1000) + 1)
        for fd, _ in poll.poll(ms):
            c = open_.get(fd)
            if c is not None and not c.drain():
                poll.unregister(fd)
                del open_[fd]


def _status(pid):
    """The wait status of the exited hook, leaving it unreaped (the group is killed first)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    return info.si_status & 0x7F  # killed (or dumped core)


def _output(out, err):
    parts = []
    for name, c in (("stdout", out), ("stderr", err)):
        text = c.buf.decode(errors="replace").strip()
        if text:
            parts.append(f"{name}: {' '.join(text.split())}")
    return (", " + ", ".join(parts)) if parts else ""


def run_hooks(hooks_cfg, phase, state_json, warn=None, env=None, cwd=None, progs=None):
    """Run every hook of PHASE in order. Fatal phases raise; the others report through warn().
    ENV and CWD: see run_hook; a runtime phase's cwd defaults to the state's bundle. PROGS:
    resolve_start's, for startContainer; those of hooks not run are closed at execve (CLOEXEC)
    or with the init's exit."""
    hooks = (hooks_cfg or {}).get(phase) or []
    if hooks and cwd is None and phase in RUNTIME_PHASES:
        cwd = _bundle(state_json)
    for i, hook in enumerate(hooks):
        try:
            run_hook(hook, state_json, phase, i, env=env, cwd=cwd,
                     prog=progs[i] if progs is not None else None)
        except Error as e:
            if phase in FATAL or warn is None:
                raise
            warn(str(e))


def in_container(state_json, status):
    """The state for a hook run in the container's namespaces (createContainer, startContainer)
    from the one the init got (createRuntime's): STATUS ("creating", "created" for
    startContainer, as runc's) and the pid as the container sees it (config.md / runtime.md
    "state": for hooks in the container namespace, the pid seen there; 1 with its own pid
    namespace)."""
    import json  # the init's: loaded before the clone (chain/__init__.preload_init)
    st = json.loads(state_json)
    st["status"] = status
    st["pid"] = os.getpid()
    return json.dumps(st)


def _bundle(state_json):
    import json
    try:
        b = json.loads(state_json).get("bundle")
    except (ValueError, AttributeError):
        return None
    return b if isinstance(b, str) and b else None
