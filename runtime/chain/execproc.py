"""exec's new process, between fork and execve (the runtime side is chain/parent.start_exec).

Born in the container's pid namespace, it joins the other namespaces with one setns(pidfd) (user
first, as the kernel orders them), takes the init's root (a chroot to /proc/PID/root, opened before
the joins: right for pivot_root and --no-pivot alike), applies the process settings, says READY,
and after GO (it is in the cgroups) runs the finalize steps the init runs (chain/finalize.py).
"""
import os
import stat

from .. import linux as L
from .. import process, procfs, program, sync
from ..errors import Error, describe, why
from . import finalize

_PASSWD_MAX = 4 << 20  # read of the container's /etc/passwd, at most


def main(ch, c, pidfd, rootfd, flags, tail, console, console_size, placement):
    """Never returns."""
    try:
        # our copy of the runtime's lock fd (closing a copy keeps the runtime's flock): a process
        # that hangs before execve must never keep `delete --force` out
        c.unlock()
        if placement is not None:
            placement.join()  # v1 `tasks` files (cgroups.Placement), while they are the host's
        _setup(ch, c.data["pid"], pidfd, rootfd, flags, tail, console, console_size)
    except Error as e:
        ch.error(str(e))
    except OSError as e:
        ch.error(describe(e))
    except BaseException as e:  # noqa: BLE001 - never unwind into the runtime's code
        ch.error(f"exec: {type(e).__name__}: {e}")
    os._exit(255)


def _setup(ch, init_pid, pidfd, rootfd, flags, tail, console, console_size):
    plan = tail.plan
    os.setsid()  # runc's processes lead a session of their own
    if flags & L.CLONE_NEWUSER:
        # joining our own user namespace is EINVAL: only join one that differs
        if os.stat(f"/proc/{init_pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino:
            flags &= ~L.CLONE_NEWUSER
    # from the mount namespace join on, files are the container's: never import them as our code,
    # and never reach /proc but beneath the host's, opened now (runtime/procfs.py)
    procfs.root()
    process.seal_imports()
    if flags:
        try:
            L.setns(pidfd, flags)
        except OSError as e:
            raise Error(f"joining the namespaces of the container: {why(e)}") from None
    os.close(pidfd)
    if flags & L.CLONE_NEWUSER:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    os.fchdir(rootfd)
    os.chroot(".")
    os.close(rootfd)
    env = process.env_dict(plan.env)
    if "HOME" not in env:
        env["HOME"] = _home(plan.uid)
    try:
        program.chdir_in_root(plan.cwd)  # never a leaked host fd's /proc/self/fd link (CVE-2024-21626)
    except OSError as e:
        raise Error(f"unable to start container process: chdir to cwd ({plan.cwd!r}) set in config.json "
                    f"failed: {why(e).lower()}") from None
    try:
        prog = program.resolve(plan.args, env)  # in the root, by fd: see runtime/program.py
    except Error as e:
        raise Error(f"unable to start container process: {e}") from None
    process.apply_early(plan)
    if tail.attrs is not None:
        from .. import procattr
        procattr.apply(tail.attrs)
    if console is not None:
        from .. import tty
        tty.setup(console.child, console_size, plan.uid, mount_console=False)
        console.child = None
    ch.send(sync.READY)
    ch.expect(sync.GO, eof=sync.exit_now)  # the runtime gave up on us: exit
    tail.program, tail.env = prog, env
    try:
        finalize.run(tail)  # the steps init takes too, in its order; execve does not return
    except Error as e:
        raise Error(f"unable to start container process: {e}") from None


def _home(uid):
    """HOME of UID from the container's /etc/passwd, else "/" (what runc does). The file is the
    container's: opened in the root without magic links, never blocking (a FIFO there), a
    regular file only, and read up to a bound (/dev/zero there)."""
    try:
        fd = program.open_in_root("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
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
