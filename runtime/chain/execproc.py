"""exec's new process, between fork and execve (the runtime side is chain/parent.start_exec).

Born in the container's pid namespace, it joins the other namespaces with one setns(pidfd) (user
first, as the kernel orders them), takes the init's root (a chroot to /proc/PID/root, opened before
the joins: right for pivot_root and --no-pivot alike), applies the process settings, says READY,
and after GO (it is in the cgroups) runs the finalize steps the init runs (chain/finalize.py).
"""
import os

from .. import linux as L
from .. import process, procfs, sync
from ..errors import Error, describe, unexpected, why
from . import finalize

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
        ch.error(f"exec: {unexpected(e)}")
    os._exit(255)


def _setup(ch, init_pid, pidfd, rootfd, flags, tail, console, console_size):
    plan = tail.plan
    os.setsid()  # runc's processes lead a session of their own
    if flags & L.CLONE_NEWUSER:
        # joining our own user namespace is EINVAL: only join one that differs
        if os.stat(f"/proc/{init_pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino:
            flags &= ~L.CLONE_NEWUSER
    # from the mount namespace join on, files are the container's: never import them as our code.
    # We are visible in the container's pid namespace from our fork on: never hold a procfs
    # root of the host's (not even one the runtime opened before the fork), whose
    # /proc/<us>/fd/N link a process of the container with CAP_SYS_PTRACE could follow to the
    # host's /proc/sys. /proc is the container's, opened beneath our new root when needed and
    # verified (runtime/procfs.py).
    procfs.close()
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
    prog, env = finalize.open_process(plan, tail.attrs)
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
