"""The runtime side of the process chain: it makes the init (create, run) or one more process
(exec), and drives it over the sync channel (runtime/sync.py) until it waits to be started.

create/run: clone the init with every new namespace at once, or, when namespaces are joined by
path, an intermediate process (chain/intermediate.py) that forks it; write the id maps, place it in
its cgroups, move the network devices, send GO with the state, serve the hooks and idmapped mounts
it asks for, until READY.

exec: the runtime opens a pidfd on the container's init, moves its own pid-namespace-for-children
(and time namespace) there with setns(pidfd), and forks: the child (chain/execproc.py) is born inside
the container's pid namespace and stays our child, so we can wait for it without a second fork. It
joins the other namespaces and the init's root, and says READY; we write it into the container's
cgroups, then say GO; it execs (our end reads EOF) or reports ERR.
"""
import os

from .. import linux as L
from .. import log, state, sync
from ..errors import Error, why
from ..hotpath import seqpacket_pair
from ..lifecycle import kill_reap, oci_state

_FOR_CHILDREN = L.CLONE_NEWPID | L.CLONE_NEWTIME  # setns applies these to children only


def _pair():
    """Our end and the child's of a SOCK_SEQPACKET socketpair (one send is one message; our end
    reads EOF once the child's closes at execve)."""
    a, b = seqpacket_pair()
    return sync.Channel(a), sync.Channel(b)


GONE = "exited before it was ready"  # the end of _recv's message when the child's end closed


class Reported(Error):
    """The child's own ERR report: its words are the error (even once it has exited)."""


def _recv(ch, what):
    """The child's next message; its ERR, or its early exit, as an Error. (When one of our own
    steps fails, ch.pending_error() prefers the child's report: the init mounts while we set up
    its cgroups, and our failure may only be the consequence, e.g. a cgroup.procs write for a pid
    now gone.)"""
    try:
        kind, payload = ch.recv()
    except OSError:
        kind = payload = b""
    if kind == sync.ERR:
        raise Reported(payload.decode(errors="replace"))
    if not kind:
        raise Error(f"{what} {GONE}")
    return kind, payload


# ------------------------------------------------------------------ create / run
def start_init(plan, launch, c, resources):
    """Clone the init and drive it to READY; returns (init pid, our channel end)."""
    from . import init
    from ..testpoint import point  # create only: not on exec's path
    ch, child_ch = _pair()
    slow = bool(plan.ns_joins)
    flags = 0 if slow else plan.new_flags & ~(L.CLONE_NEWCGROUP | L.CLONE_NEWTIME)
    # limits go on the still empty cgroup, before the init exists: a bad value then fails with no
    # process to kill, and the time between clone and GO (the init waits) is shorter.
    # Always: with no "devices" rules the device cgroup still gets runc's default allow-list
    launch.cgroup_manager.set(dict({"devices": []}, **resources))
    child = launch.placement.spawn(flags)
    if child == 0:
        # the child must not hold the state lock, the runtime's socket end, or anything else
        c.unlock()
        ch.close()
        if slow:
            from . import intermediate
            intermediate.main(plan, launch, child_ch)
        init.main(plan, launch, child_ch)
    child_ch.close()
    log.debug(f"create {c.id}: {'intermediate process' if slow else 'init'} started: pid {child}")
    point("create:cloned")
    pid = child
    moved = None
    try:
        if slow:
            pid = _intermediate(plan, ch, child)
        elif plan.userns:
            write_id_maps(pid, plan)
        if plan.userns and plan.proc.oom is not None:
            preset_oom(pid, plan.proc.oom)
        c.data["pid"] = pid
        c.data["pid_start"] = state.proc_start_time(pid)
        c.write()
        launch.placement.finish(pid)
        log.debug(f"create {c.id}: state written (init pid {pid}), init placed in its cgroups")
        if plan.net_devices:  # its network namespace exists; the init waits for GO
            from .. import netdev
            moved = netdev.Moved()
            netdev.move(plan.net_devices, pid, moved)
        st = oci_state(c, "creating", pid)
        ch.send(sync.GO, st)  # framed when large: megabytes of annotations are a valid state
        log.debug(f"create {c.id}: sync: GO sent")
        _serve(plan, ch, pid, st)
    except BaseException as e:
        why = ch.pending_error()
        if moved is not None:
            moved.restore(pid)  # the create's undo: the devices go back to the host
        reaped = False
        if isinstance(e, Reported):
            pass  # the init said what failed; how it then exited adds nothing
        elif why is None and isinstance(e, (Error, OSError)) and pid == child:
            # a broken pipe, a closed channel, a pid gone from cgroup.procs: the consequence of
            # an init that died; say what killed it
            status = _dead_status(pid, wait=isinstance(e, OSError) or str(e).endswith(GONE))
            if status is not None:
                reaped = True
                why = death_message("container init", status, launch.cgroup_manager, resources)
        elif why is None and isinstance(e, Error) and str(e).endswith(GONE):
            oom = _oom_line(launch.cgroup_manager, resources)  # an init that is not our child
            if oom:
                why = f"container init was OOM-killed before it was ready: {oom}"
        if not reaped:
            kill_reap(pid)
        if slow and pid != child:
            kill_reap(child)
        if why is not None:
            raise Error(why) from None
        raise
    return pid, ch


def _dead_status(pid, wait):
    """The wait status of our child PID if it is dead (awaited up to 2 s when WAIT, for a child
    whose socket end is closed already): reaped here. None while it lives."""
    import select
    try:
        fd = L.pidfd_open(pid)
    except OSError:
        return None
    try:
        if not select.select([fd], [], [], 2.0 if wait else 0)[0]:
            return None
    finally:
        os.close(fd)
    try:
        got, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return status if got == pid else None


def death_message(what, status, mgr, resources=None):
    """Why WHAT (the container init, an exec'd process) died before it was ready, from its wait
    status and the cgroup's OOM kill count: one line for the user."""
    import signal
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGKILL and mgr is not None:
            oom = _oom_line(mgr, resources)
            if oom:
                return f"{what} was OOM-killed before it was ready: {oom}"
        return f"{what} was killed by signal {sig} ({name}) before it was ready"
    return f"{what} exited with status {os.WEXITSTATUS(status)} before it was ready"


def _oom_line(mgr, resources):
    """The memory limit and usage when the OOM killer has struck in the cgroup, else ""."""
    try:
        if not mgr.oom_count():
            return ""
    except (OSError, Error):
        return ""
    limit = ((resources or {}).get("memory") or {}).get("limit")
    usage = ""
    d = mgr.paths().get("memory") or mgr.paths().get("")
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            with open(os.path.join(d, name)) as f:
                usage = f.read(64).strip()
            break
        except (OSError, TypeError):
            continue
    text = f"linux.resources.memory.limit {limit} is too low" if limit is not None else \
        "the memory limit is too low"
    return text + (f" (memory usage reached {usage})" if usage else "")


def _intermediate(plan, ch, child):
    """The intermediate process's requests, until it reports the init's pid and exits."""
    while True:
        kind, payload = _recv(ch, "container init")
        if kind == sync.USERNS:
            write_id_maps(child, plan)
            ch.send(sync.MAPPED)
        elif kind == sync.PID:
            os.waitpid(child, 0)
            return int(payload)
        else:
            raise sync.unexpected(kind)


def _serve(plan, ch, pid, st):
    """The init's requests after GO, until READY."""
    from ..testpoint import point
    while True:
        kind, payload = _recv(ch, "container init")
        if kind == sync.HOOKS:
            from .. import hooks
            hooks.run_hooks(plan.hooks, "prestart", st)
            hooks.run_hooks(plan.hooks, "createRuntime", st)
            log.debug("create: sync: HOOKS: prestart and createRuntime hooks run")
            ch.send(sync.OK)
        elif kind == sync.SOURCES:
            from .. import idmap  # bind sources the user namespace cannot reach: runtime/idmap.py
            idmap.serve_sources(plan, ch, pid, payload)
        elif kind == sync.IDMAP:
            from .. import idmap  # an idmapped mount in a user namespace: runtime/idmap.py
            idmap.serve(plan, pid, payload)
            ch.send(sync.OK)
        elif kind == sync.READY:
            log.debug("create: sync: READY: the init waits for start")
            point("create:ready")
            return
        else:
            raise sync.unexpected(kind)


def preset_oom(pid, value):
    """process.oomScoreAdj of a process that will be in a user namespace, written by us before it
    goes on (runc writes it before the namespace too): its own write fails there, its /proc/self
    files being the host root's once it is non-dumpable, an owner its namespace does not map
    (Docker's --userns-remap sends oomScoreAdj 0). A failure here (a lower score needs
    CAP_SYS_RESOURCE) is left to the process's own write to report."""
    from .. import procfs
    try:
        procfs.write(f"{pid}/oom_score_adj", str(value))
    except OSError:
        pass


def _swap_own_oom(value):
    """Set our own oom_score_adj to VALUE (None: nothing); returns the old one, or None when it
    was not changed (the child's own write then reports why). Put back with the returned value:
    a non-privileged write is checked against oom_score_adj_min, which such writes never move."""
    if value is None:
        return None
    from .. import procfs
    try:
        old = int(procfs.read("self/oom_score_adj", 64))
        if old != value:
            procfs.write("self/oom_score_adj", str(value))
        return old
    except (OSError, ValueError):
        return None


def write_id_maps(pid, plan):
    if plan.rootless:
        from .. import rootless
        return rootless.write_id_maps(pid, plan)
    from .. import idmaps
    idmaps.write_maps(pid, plan.uid_mappings, plan.gid_mappings, "linux")


# ------------------------------------------------------------------ exec
def start_exec(c, tail, flags, console, console_size, placement, detach, paused=False):
    """Fork the new process inside the running container C and let it exec; returns (its pid,
    None) once it has (or raises its error). TAIL is its finalize plan (chain/finalize.py), FLAGS
    the CLONE_NEW* of the container's namespaces.

    PAUSED (exec --ignore-paused into a frozen container): the process is moved into the
    container's cgroups by us once it is ready, and stops there, before its execve, until the
    container is resumed: we do not wait for the execve then (we would wait, holding the
    container's lock, for as long as the container stays paused). Detached, it is left to run
    once resumed (exec -d returns at once; runc's waits for the resume); in the foreground the
    second value is a function that awaits the execve, or raises the error that kept it from
    happening (as the unpaused exec reports it), to be called once the lock is released."""
    from . import execproc
    d = c.data
    pid = d["pid"]
    try:
        pidfd = L.pidfd_open(pid)
    except OSError:
        raise Error("cannot exec in a stopped container") from None
    ch = child_ch = None
    rootfd = -1
    try:
        if not state.proc_alive(pid, d.get("pid_start")):
            raise Error("cannot exec in a stopped container")
        rootfd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        ch, child_ch = _pair()
        # non-dumpable before the fork: the child never is, inside the container, before its
        # execve (no ptrace, no /proc/PID/exe from the container)
        L.prctl(L.PR_SET_DUMPABLE, 0)
        # Its forks are reaped by us, like runc; and so is the process itself, our grandchild.
        L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
        # in a user namespace the child could not write its own oomScoreAdj: it inherits ours
        old_oom = _swap_own_oom(tail.plan.oom) if flags & L.CLONE_NEWUSER and tail.plan.oom is not None else None
        # The process is visible in the container's pid namespace from its birth, and a process
        # of the container granted CAP_SYS_PTRACE (ptrace beats non-dumpable) may follow its
        # /proc/PID/fd/N links then: an fd it inherited on a directory of the host's (our lock on
        # the state dir, the cgroup2 directory it is cloned into, our procfs root) leads to the
        # host's root through `..` (the CVE-2024-21626 class), however soon it is closed. So an
        # intermediate, born in the cgroups but in our pid namespace (the container cannot see
        # it), closes those and forks the process, which inherits none of them.
        from .. import procfs
        procfs.close()
        try:
            mid = placement.spawn(fork=os.fork) if placement is not None else os.fork()
        except OSError as e:
            _swap_own_oom(old_oom)
            raise Error(f"fork: {why(e)}") from None
        if mid == 0:
            ch.close()
            _exec_intermediate(child_ch, c, d, pidfd, rootfd, flags, tail, console, console_size,
                               placement)
        _swap_own_oom(old_oom)
        child_ch.close()
        child_ch = None
        ready = False  # the process may say READY before the intermediate's PID arrives
        try:
            child = None
            while child is None:
                kind, payload = _recv(ch, "exec: the process")
                if kind == sync.PID:
                    child = int(payload)
                elif kind == sync.READY and not ready:
                    ready = True
                else:
                    raise sync.unexpected(kind)
        except BaseException:
            kill_reap(mid)
            raise
        finally:
            _reap_quietly(mid)
        log.debug(f"exec {c.id}: process started: pid {child}")
        os.close(rootfd)
        rootfd = -1
        if console is not None:
            console.close_child()
        try:
            if not ready:
                kind, _ = _recv(ch, "exec: the process")
                if kind != sync.READY:
                    raise sync.unexpected(kind)
            if placement is not None:
                placement.finish(child)  # what the child did not join itself
            if not detach and console is None:
                # before GO: a signal sent once the program runs must find the forwarder
                from ..signals import forward_to
                forward_to(child)
            ch.send(sync.GO)
            log.debug(f"exec {c.id}: sync: READY, placed in the cgroups, GO sent")
            if not paused:
                kind, payload = ch.recv()  # EOF: execve done
                if kind == sync.ERR:
                    raise Error(payload.decode(errors="replace"))
            elif not detach:
                execve, ch = _execve_awaiter(ch, child), None
                return child, execve
        except BaseException as e:
            if isinstance(e, OSError) or (isinstance(e, Error) and str(e).endswith(GONE)):
                status = _dead_status(child, wait=True)
                if status is not None:
                    mgr = getattr(placement, "_mgr", None)
                    raise Error(death_message("exec: the process", status, mgr)) from None
            kill_reap(child)
            raise
        return child, None
    finally:
        os.close(pidfd)
        if rootfd >= 0:
            os.close(rootfd)
        for end in (ch, child_ch):
            if end is not None:
                end.close()


def _execve_awaiter(ch, child):
    """The foreground's wait for the execve of CHILD, frozen before it (start_exec): EOF on CH
    once it has happened (or the process died: its wait status tells), or its ERR raised as
    the Error it is, the process reaped."""
    def execve():
        try:
            try:
                kind, payload = ch.recv()
            except OSError:
                return  # gone: its wait status says how
        finally:
            ch.close()
        if kind == sync.ERR:
            kill_reap(child)  # it only has its _exit left
            raise Error(payload.decode(errors="replace"))
    return execve


def _exec_intermediate(ch, c, d, pidfd, rootfd, flags, tail, console, console_size, placement):
    """exec's intermediate (see start_exec): never returns. It drops every descriptor of ours
    on a directory of the host's, joins the v1 cgroups (the process inherits them), enters the
    container's pid (and time) namespace for its children and forks the process."""
    try:
        c.unlock()  # the state dir: our copy of the lock fd (closing a copy keeps the runtime's)
        from .. import procfs
        procfs.close()  # none is open (start_exec): never let one reach the process
        if placement is not None:
            placement.join()  # v1 `tasks` files; the process is born in all our cgroups
        _enter_for_children(pidfd, flags)
        try:
            child = os.fork()
        except OSError as e:
            if flags & L.CLONE_NEWPID and not state.proc_alive(d["pid"], d.get("pid_start")):
                raise Error("cannot exec in a stopped container") from None  # its pid ns is gone
            raise Error(f"fork: {why(e)}") from None
        if child == 0:
            from . import execproc
            execproc.main(ch, c, pidfd, rootfd, flags & ~_FOR_CHILDREN, tail, console,
                          console_size, None)
        ch.send(sync.PID, str(child))
        os._exit(0)
    except Error as e:
        ch.error(str(e))
    except BaseException as e:  # noqa: BLE001 - never unwind into the runtime's code
        from ..errors import unexpected
        ch.error(f"exec: {unexpected(e)}")
    os._exit(255)


def _reap_quietly(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _enter_for_children(pidfd, flags):
    """Our pid (and time) namespace for children becomes the container's: the child is born there."""
    if not flags & _FOR_CHILDREN:
        return
    jf = flags & _FOR_CHILDREN
    if flags & L.CLONE_NEWUSER and os.geteuid() != 0:
        jf |= L.CLONE_NEWUSER  # rootless: only the container's user namespace gives the right
    try:
        L.setns(pidfd, jf)
    except OSError as e:
        raise Error(f"joining the pid namespace of the container: {why(e)}") from None
