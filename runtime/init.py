"""The container's init process: everything between clone() and execve() of the user program.

Runs in the child created by container.spawn(). It is single-threaded, uses no logging, no locks and
no threads, and talks to the runtime only through its sync channel (runtime/sync.py, which also
lists the protocol). Every descriptor it opens is O_CLOEXEC, so nothing of the runtime reaches the
user program. Any failure is sent to the runtime as ERR and the child exits.
"""
import os

from . import linux as L
from . import finalize, process, procfs, program, rootfs, sync
from .errors import Error
from .state import INIT_COMM  # our comm until execve: state tells created from started


def child_main(ctx, ch):
    """Entry of the cloned child; never returns."""
    code = 1
    try:
        _init(ctx, ch)
    except Error as e:
        _report(ctx, ch, str(e))
    except OSError as e:
        _report(ctx, ch, f"{e.strerror or e} ({e.filename})" if e.filename else str(e.strerror or e))
    except BaseException as e:  # noqa: BLE001 - the child must never unwind into the runtime
        _report(ctx, ch, f"container init: {type(e).__name__}: {e}")
    os._exit(code)


def _report(ctx, ch, msg):
    """To the runtime that created us; after start, through the exec FIFO to `start` too (the
    creating runtime is long gone then)."""
    data = b"err:" + msg.encode(errors="replace")
    ch.error(msg)
    if ctx.started and ctx.fifo_fd >= 0:
        try:
            os.write(ctx.fifo_fd, data[:4096])
        except OSError:
            pass


def slow_path_main(ctx, ch):
    """Intermediate process for namespace paths to join: join them, make the new ones, then fork
    the init (a pid namespace, joined or new, only applies to children)."""
    try:
        joins = ctx.ns_joins  # [(type, path, nstype flag)] with user first
        fds = [(t, os.open(p, os.O_RDONLY | os.O_CLOEXEC), flag) for t, p, flag in joins]
        for t, fd, flag in fds:
            if t == "user":
                L.setns(fd, flag)
        if ctx.new_flags & L.CLONE_NEWUSER:
            L.unshare(L.CLONE_NEWUSER)
            ch.send(sync.USERNS)
            ch.expect(sync.MAPPED, eof=sync.exit_now)
        for t, fd, flag in fds:
            if t != "user":
                try:
                    L.setns(fd, flag)
                except OSError as e:
                    raise Error(f"linux.namespaces: joining {t} namespace {ctx.ns_paths[t]}: {e.strerror}") from None
            os.close(fd)
        L.unshare(ctx.new_flags & ~(L.CLONE_NEWUSER | L.CLONE_NEWCGROUP | L.CLONE_NEWTIME))
        pid = os.fork()
        if pid == 0:
            child_main(ctx, ch)
        ch.send(sync.PID, b"%d" % pid)
        os._exit(0)
    except Error as e:
        _report(ctx, ch, str(e))
    except OSError as e:
        _report(ctx, ch, str(e.strerror or e))
    except BaseException as e:  # noqa: BLE001
        _report(ctx, ch, f"container init: {type(e).__name__}: {e}")
    os._exit(1)


def _init(ctx, ch):
    ctx.sync = ch  # rootfs asks the runtime for idmapped mounts in a user namespace
    os.setsid()  # as runc's: a session of its own, no controlling terminal unless process.terminal
    ctx.placement.join()  # our v1 cgroups, joined by ourselves (cgroups.Placement)
    procfs.root()  # /proc is still the host's: every /proc access from now on goes beneath it
    procfs.write("self/comm", INIT_COMM)
    # No process in the container may read our memory or /proc/self/exe (CVE-2019-5736): stay
    # non-dumpable until execve, which resets it.
    # /proc/self files turn root-owned when we go non-dumpable, which a user namespace's root
    # cannot open: take what we need first (the offsets are applied at write time).
    timens_fd = -1
    if ctx.new_flags & L.CLONE_NEWTIME and ctx.time_offsets:
        timens_fd = procfs.open("self/timens_offsets", os.O_WRONLY)
    rootless = ctx.rootless
    if not rootless:
        L.prctl(L.PR_SET_DUMPABLE, 0)
    # Mounting needs neither the id maps nor the cgroups when there is no user or cgroup
    # namespace to make (nor a time namespace, kept in its order): then the mounts are made
    # while the runtime moves us into the cgroups, whose first cgroup.procs write waits for an
    # RCU grace period (milliseconds) in the kernel.
    early = not (ctx.userns or ctx.cgroupns or rootless or ctx.new_flags & L.CLONE_NEWTIME)
    if early:
        rootfs.setup_rootfs(ctx)
    state_json = ch.expect(sync.GO, eof=sync.exit_now)
    if rootless:
        # only now: an unprivileged runtime (and newuidmap, which checks the owner of /proc/PID)
        # can write the id maps of a dumpable process only
        L.prctl(L.PR_SET_DUMPABLE, 0)
    if ctx.userns:
        # now mapped: become the namespace's root so files owned by it are ours
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if ctx.new_flags & L.CLONE_NEWCGROUP:
        L.unshare(L.CLONE_NEWCGROUP)  # after the runtime moved us: our cgroup becomes the root
    if ctx.new_flags & L.CLONE_NEWTIME:
        L.unshare(L.CLONE_NEWTIME)
        if timens_fd >= 0:
            for clock, off in ctx.time_offsets.items():
                os.write(timens_fd, f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n".encode())
            os.close(timens_fd)
        fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
        L.setns(fd, L.CLONE_NEWTIME)
        os.close(fd)
    if ctx.hostname is not None:
        L.sethostname(ctx.hostname)
    if ctx.domainname is not None:
        L.setdomainname(ctx.domainname)
    if ctx.new_flags & L.CLONE_NEWNET:
        _loopback_up()

    if not early:
        rootfs.setup_rootfs(ctx)
    if ctx.runtime_hooks:
        ch.send(sync.HOOKS)
        ch.expect(sync.OK, eof=sync.exit_now)
    if ctx.hooks and ctx.hooks.get("createContainer"):
        from . import hooks
        hooks.run_hooks(ctx.hooks, "createContainer", state_json)
    process.seal_imports()
    rootfs.pivot(ctx.rootfs, ctx.no_pivot)
    if ctx.console is not None:
        from . import tty  # the pty comes from the container's own devpts, so after pivot_root
        tty.setup(ctx.console, ctx.console_size, ctx.proc.uid, mount_console=True)
    if ctx.sysctl:
        from . import sysctl
        sysctl.apply(ctx.sysctl)
    rootfs.finish_rootfs(ctx)

    p = ctx.proc
    env = process.env_dict(p.env)
    try:
        rootfs.chdir_in_root(p.cwd)
    except OSError as e:
        raise Error(f"process.cwd: {p.cwd}: {e.strerror}") from None
    prog = program.resolve(p.args, env)  # opened now, in the root: see runtime/program.py
    process.apply_early(p)
    if ctx.attrs is not None:
        from . import procattr
        procattr.apply(ctx.attrs)
    seccomp_prepared = None
    if ctx.seccomp is not None:
        from . import seccomp
        seccomp_prepared = seccomp.prepare(ctx.seccomp)
    t = finalize.Tail(p, ctx.preserved, 3 + ctx.preserve_fds, ctx.attrs, ctx.mempolicy, ctx.seccomp,
                      seccomp_prepared, notify_state=lambda: _state_dict(state_json))
    t.program, t.env = prog, env

    # Privileges go before the wait, as runc's do, so that `start` only waits for execve — unless
    # startContainer hooks must still run with them, or the seccomp filter has to go in before
    # the capabilities go (no noNewPrivileges) and we keep it out of our own waiting.
    through_user = finalize.USER_SWITCH + 1
    before = not (ctx.hooks and ctx.hooks.get("startContainer")) and not (
        seccomp_prepared is not None and not p.nnp)
    if before:
        finalize.run(t, 0, through_user)

    # ready: wait for start (the exec FIFO for create, the channel for run)
    ch.send(sync.READY)
    if ctx.fifo_fd >= 0:
        os.read(ctx.fifo_fd, 1)
        # kept open (CLOEXEC): `start` waits for it to close at execve, and reads our error
        # from it if we fail before that
        ctx.started = True
    else:
        ch.expect(sync.START, eof=sync.exit_now)
    if ctx.hooks and ctx.hooks.get("startContainer"):
        from . import hooks
        hooks.run_hooks(ctx.hooks, "startContainer", state_json)
    if not before:
        finalize.run(t, 0, through_user)
    finalize.run(t, through_user)  # the late seccomp filter, then execve: never returns


def _state_dict(state_json):
    import json  # loaded before the fork when a listener needs it (container._preload)
    return json.loads(state_json)


def _loopback_up():
    """Bring lo up in the new network namespace (what runc's loopback network does)."""
    import _socket  # not socket (enum, selectors) nor struct: a few ms of imports for one ioctl
    import fcntl
    import sys
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        ifr = b"lo".ljust(16, b"\0") + bytes(16)  # struct ifreq: name[16], short flags, padding
        flags = int.from_bytes(fcntl.ioctl(s.fileno(), 0x8913, ifr)[16:18], sys.byteorder)  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, ifr[:16] + (flags | 1).to_bytes(2, sys.byteorder) + bytes(14))  # IFF_UP
    finally:
        s.close()

