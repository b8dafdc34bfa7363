"""The container's init: everything between clone() and execve() of the user program.

Runs in the child the runtime side cloned (chain/parent.py), or that the intermediate process
forked (chain/intermediate.py). It is single-threaded, uses no logging, no locks and no threads,
and talks to the runtime only through its sync channel (runtime/sync.py, which also lists the
protocol). Every descriptor it opens is O_CLOEXEC, so nothing of the runtime reaches the user
program. Any failure is sent to the runtime as ERR and the child exits.

The steps, in order: enter (session, cgroups, verified procfs, non-dumpable), the mounts when
nothing waits for the runtime, GO, the namespaces made after the runtime's part (id maps,
cgroups), the root filesystem and pivot_root, the process's settings, then the wait for `start`
and the shared finalize (chain/finalize.py).
"""
import os

from .. import linux as L
from .. import log, process, procfs, rootfs, sync
from ..errors import Error, describe, unexpected, why
from ..hotpath import csocket
from ..state import INIT_COMM  # our comm until execve: state tells created from started
from . import finalize


def main(plan, launch, ch):
    """Entry of the init; never returns."""
    try:
        _init(plan, launch, ch)
    except Error as e:
        report(launch, ch, str(e))
    except OSError as e:
        report(launch, ch, describe(e))
    except BaseException as e:  # noqa: BLE001 - the child must never unwind into the runtime
        report(launch, ch, f"container init: {unexpected(e)}")
    os._exit(1)


def report(launch, ch, msg):
    """To the runtime that created us; after start, through the exec FIFO to `start` too (the
    creating runtime is long gone then)."""
    ch.error(msg)
    if launch.started and launch.fifo_fd >= 0:
        try:
            os.write(launch.fifo_fd, (b"err:" + msg.encode(errors="replace"))[:4096])
        except OSError:
            pass


def _init(plan, launch, ch):
    launch.sync = ch  # rootfs asks the runtime for idmapped mounts in a user namespace
    timens_fd = _enter(plan, launch)
    # Mounting needs neither the id maps nor the cgroups when there is no user or cgroup
    # namespace to make (nor a time namespace, kept in its order): then the mounts are made
    # while the runtime moves us into the cgroups, whose first cgroup.procs write waits for an
    # RCU grace period (milliseconds) in the kernel.
    early = not (plan.userns or plan.cgroupns or plan.rootless or plan.new_flags & L.CLONE_NEWTIME)
    if early:
        rootfs.setup_rootfs(plan, launch)
    state_json = ch.expect(sync.GO, eof=sync.exit_now)
    log.debug("init: sync: GO received")
    _after_go(plan, timens_fd)
    if not early:
        rootfs.setup_rootfs(plan, launch)
    log.debug(f"init: {len(plan.mounts)} mounts made, devices, links")
    _root(plan, launch, ch, state_json)
    log.debug("init: root changed, read-only paths, masks")
    t = _process(plan, state_json)
    log.debug(f"init: process planned: {plan.proc.args[0] if plan.proc.args else ''!r}")

    # Privileges go before the wait, as runc's do, so that `start` only waits for execve — unless
    # the seccomp filter has to go in before the capabilities go (no noNewPrivileges): we keep
    # it out of our own waiting.
    # startContainer hooks run as runc 1.1.5 runs them (standard_init_linux.go): after the whole
    # finalize but execve, i.e. as the container's user, with its capabilities, noNewPrivileges
    # and under its seccomp filter, whichever noNewPrivileges is: a hook is code of the image
    # and must not get more than the process it precedes.
    # Their programs are opened in the root (openat2) before a filter is in: as the container's
    # user, except without noNewPrivileges, where the filter precedes the switch.
    through_user = finalize.USER_SWITCH + 1
    execve = finalize.ORDER.index("execve")
    start_hooks = plan.hooks.get("startContainer")
    before = not (t.prepared is not None and not plan.proc.nnp)
    if before:
        finalize.run(t, 0, through_user)
    _wait_start(launch, ch)
    progs = None
    if start_hooks:
        from .. import hooks
        start_state = hooks.in_container(state_json, "created")
        if not before:
            progs = hooks.resolve_start(plan.hooks)
    if not before:
        finalize.run(t, 0, through_user)
    if start_hooks:
        if progs is None:
            progs = hooks.resolve_start(plan.hooks)
        finalize.run(t, through_user, execve)
        hooks.run_hooks(plan.hooks, "startContainer", start_state, env=t.env,  # in the cwd
                        progs=progs)
        finalize.run(t, execve)
    finalize.run(t, through_user)  # the late seccomp filter, then execve: never returns


def _enter(plan, launch):
    """First steps, while /proc and the cgroups are still the host's; returns the fd of our
    timens_offsets, or -1."""
    os.setsid()  # as runc's: a session of its own, no controlling terminal unless process.terminal
    launch.placement.join()  # our v1 cgroups, joined by ourselves (cgroups.Placement)
    procfs.root()  # /proc is still the host's: every /proc access from now on goes beneath it
    procfs.write("self/comm", INIT_COMM)
    # No process in the container may read our memory or /proc/self/exe (CVE-2019-5736): stay
    # non-dumpable until execve, which resets it.
    # /proc/self files turn root-owned when we go non-dumpable, which a user namespace's root
    # cannot open: take what we need first (the offsets are applied at write time).
    timens_fd = -1
    if plan.new_flags & L.CLONE_NEWTIME and plan.time_offsets:
        timens_fd = procfs.open("self/timens_offsets", os.O_WRONLY)
    if not plan.rootless:
        L.prctl(L.PR_SET_DUMPABLE, 0)
    return timens_fd


def _after_go(plan, timens_fd):
    """The runtime wrote our id maps, placed us in our cgroups, moved the network devices."""
    if plan.rootless:
        # only now: an unprivileged runtime (and newuidmap, which checks the owner of /proc/PID)
        # can write the id maps of a dumpable process only
        L.prctl(L.PR_SET_DUMPABLE, 0)
    if plan.userns:
        # now mapped: become the namespace's root so files owned by it are ours
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if plan.new_flags & L.CLONE_NEWCGROUP:
        L.unshare(L.CLONE_NEWCGROUP)  # after the runtime moved us: our cgroup becomes the root
    if plan.new_flags & L.CLONE_NEWTIME:
        L.unshare(L.CLONE_NEWTIME)
        if timens_fd >= 0:
            for clock, off in plan.time_offsets.items():
                os.write(timens_fd, f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n".encode())
            os.close(timens_fd)
        fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
        L.setns(fd, L.CLONE_NEWTIME)
        os.close(fd)
    try:
        if plan.hostname is not None:
            L.sethostname(plan.hostname)
        if plan.domainname is not None:
            L.setdomainname(plan.domainname)
    except OSError as e:
        field = "hostname" if e.filename == "sethostname" else "domainname"
        raise Error(f"{field}: {e.filename}: {why(e)}") from None
    if plan.new_flags & L.CLONE_NEWNET:
        _loopback_up()


def _root(plan, launch, ch, state_json):
    """Mounts done: the runtime's hooks, ours, then pivot_root and what needs the new root."""
    if plan.runtime_hooks:
        ch.send(sync.HOOKS)
        ch.expect(sync.OK, eof=sync.exit_now)
    if plan.hooks.get("createContainer"):
        from .. import hooks
        # runc's: the process's env (no HOME added yet), the rootfs as the working directory
        hooks.run_hooks(plan.hooks, "createContainer", hooks.in_container(state_json, "creating"),
                        env=process.env_dict(plan.proc.env), cwd=plan.rootfs)
    process.seal_imports()
    rootfs.pivot(plan.rootfs, plan.no_pivot)
    if launch.console is not None:
        from .. import tty  # the pty comes from the container's own devpts, so after pivot_root
        tty.setup(launch.console, launch.console_size, plan.proc.uid, mount_console=True)
    if plan.sysctl:
        from .. import sysctl
        sysctl.apply(plan.sysctl)
    rootfs.finish_rootfs(plan)
    rootfs.leave_scratch_ns(plan)  # no mount namespace of our own: runtime/rootfs.py


def _process(plan, state_json):
    """The process's cwd, program (opened now, in the root: see runtime/program.py), the settings
    that need our privileges, and its finalize plan."""
    p = plan.proc
    prog, env = finalize.open_process(p, plan.attrs)
    t = finalize.Tail(p, plan.preserved, 3 + plan.preserve_fds, plan.attrs, plan.mempolicy,
                      plan.seccomp, plan.seccomp_filter, notify_state=lambda: _state_dict(state_json))
    t.program, t.env = prog, env
    return t


def _wait_start(launch, ch):
    """Ready: wait for start (the exec FIFO for create, the channel for run)."""
    ch.send(sync.READY)
    log.debug("init: READY, waiting for start")
    if launch.fifo_fd >= 0:
        os.read(launch.fifo_fd, 1)
        # kept open (CLOEXEC): `start` waits for it to close at execve, and reads our error
        # from it if we fail before that
        launch.started = True
    else:
        ch.expect(sync.START, eof=sync.exit_now)


def _state_dict(state_json):
    import json  # loaded before the fork when a listener needs it (runtime/chain/__init__.py)
    return json.loads(state_json)


def _loopback_up():
    """Bring lo up in the new network namespace (what runc's loopback network does)."""
    import fcntl
    import sys
    _socket = csocket()  # loaded by the runtime: its channel is one (chain/parent.py)
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        ifr = b"lo".ljust(16, b"\0") + bytes(16)  # struct ifreq: name[16], short flags, padding
        flags = int.from_bytes(fcntl.ioctl(s.fileno(), 0x8913, ifr)[16:18], sys.byteorder)  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, ifr[:16] + (flags | 1).to_bytes(2, sys.byteorder) + bytes(14))  # IFF_UP
    finally:
        s.close()
