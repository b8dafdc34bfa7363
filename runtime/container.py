"""The container lifecycle of runtime.md: create, start, run, state, kill, delete, list.

create plans the container (runtime/prepare.py: a frozen InitPlan, or a one-line error and
nothing made), claims the id, makes the cgroups, and hands the plan to the process chain
(chain/parent.py), which makes the init and drives it until it waits for `start`. Everything
made is undone when a step fails.
"""
import posix  # not os (hot path: see runtime/hotpath.py)
import time

from . import state
from .hotpath import SIGKILL, json_loads, sig
from .lifecycle import exit_code, kill_reap, oci_state, write_pid_file
from .testpoint import point
from .errors import Error, NotExist, describe


def warn(msg):
    from . import log
    log.warning(msg)


def _now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


# ------------------------------------------------------------------ create / run
def create(root, cid, bundle, pid_file=None, no_pivot=False, preserve_fds=0, start_now=False,
           foreground=False, keep=False, console_socket=None, rootless="auto", subreaper=True):
    """create (and for run, start): returns the exit status for a foreground run, else 0.
    SUBREAPER false (run --no-subreaper): the foreground run is not a child subreaper, unless it
    needs to be one to wait for its init (forked by the intermediate process)."""
    from . import config, log
    from .chain import preload_init
    from .plan import Launch
    from .prepare import init_plan, runtime_in_userns
    import os  # loaded already by the modules above
    bundle = os.path.abspath(bundle or ".")
    if not os.path.isdir(bundle):
        raise Error(f"bundle {bundle}: no such directory")
    cfg = config.load(bundle)
    log.debug(f"create {cid}: config loaded from {bundle}/config.json")
    from . import selfexe  # CAP_SYS_PTRACE without a user namespace: our binary read-only first
    selfexe.ensure(selfexe.needed_by_config(cfg))
    _mark_ptrace_peer(root, cfg)
    plan = init_plan(cfg, bundle, no_pivot, preserve_fds, state_root=root)
    preload_init(plan)
    launch = Launch()
    # root in a user namespace (rootless podman): runc's rootless cgroup manager, as runc decides
    rootless_cg = rootless != "auto" or plan.rootless or runtime_in_userns()
    if rootless_cg:
        from . import rootless as rl
        rootless_cg = rl.resolve(rootless)
    console = None
    if plan.terminal or console_socket:
        from . import tty  # connected now: a bad socket fails before anything exists
        tty.check_flags(plan.terminal, console_socket, not foreground)
        console = tty.Console(console_socket)
        launch.console, launch.console_size = console.child, cfg["process"].get("consoleSize")
    c = state.Container(root, cid)
    c.make()
    log.debug(f"create {cid}: state directory {c.dir} claimed")
    point("create:claimed")
    try:
        pid, ch = _create(c, cfg, plan, launch, bundle, start_now, foreground, rootless_cg, console,
                          subreaper or bool(plan.ns_joins))
    except BaseException:
        if console is not None:
            console.close()
        _destroy_partial(c)
        raise
    if launch.fifo_fd >= 0:
        posix.close(launch.fifo_fd)
    if pid_file:
        write_pid_file(pid_file, pid)
    c.unlock()
    if not start_now:
        return 0
    return _run(root, cid, c, pid, ch, foreground, keep, console)


def _mark_ptrace_peer(root, cfg):
    """A container that joins another's pid namespace by path and may hold CAP_SYS_PTRACE (a
    debugging sidecar, kubectl debug's ephemeral container) sees that one's exec processes before
    their execve: the other container, when it is under the same --root, is marked so that its
    execs protect our binary (runtime/selfexe.py, exec._protect_binary)."""
    from . import selfexe
    no_userns, pid_joined = selfexe.shares_view(cfg.get("linux"))
    if not (pid_joined and no_userns and selfexe.may_ptrace(cfg.get("process")) and selfexe.host_root()):
        return
    path = next(ns.get("path") for ns in cfg["linux"]["namespaces"] if ns.get("type") == "pid" and ns.get("path"))
    parts = path.split("/")  # /proc/PID/ns/pid, the form engines pass
    if len(parts) != 5 or parts[:2] != ["", "proc"] or not parts[2].isdigit() or parts[3:] != ["ns", "pid"]:
        return
    pid = int(parts[2])
    for cid in state.list_ids(root):
        other = state.Container(root, cid)
        try:
            other.open()
        except Error:
            continue
        try:
            d = other.data
            if d.get("pid") == pid and not d.get("broken") and state.proc_alive(pid, d.get("pid_start")):
                if not d.get("ptrace_peer"):
                    d["ptrace_peer"] = True
                    other.write(d)
                return
        finally:
            other.unlock()


def _create(c, cfg, plan, launch, bundle, start_now, foreground, rootless_cg, console, subreaper=True):
    """The state, the cgroups, the init; returns (init pid, channel) with the init waiting."""
    linux = cfg.get("linux") or {}
    data = {
        "ociVersion": cfg["ociVersion"], "id": c.id, "pid": 0, "status": "creating",
        "bundle": bundle, "rootfs": plan.rootfs, "created": _now_rfc3339(), "owner": "",
        "annotations": cfg.get("annotations") or {}, "creator": posix.getpid(),
        "creator_start": state.proc_start_time(posix.getpid()),
        "hooks": {k: v for k, v in plan.hooks.items() if k in ("poststart", "poststop")},
        "config": {"linux": {"namespaces": linux.get("namespaces") or [],
                             # the base `update` merges into (runtime/cgroupverbs.py)
                             "resources": linux.get("resources") or {}},
                   "process": cfg.get("process") or {}},  # the base of exec's process
    }
    if plan.seccomp is not None:
        data["config"]["linux"]["seccomp"] = plan.seccomp  # exec applies it too
    if plan.mempolicy is not None:
        data["config"]["linux"]["memoryPolicy"] = linux["memoryPolicy"]  # and this
    from . import cgroups
    if rootless_cg:  # cgroups only where delegated (runtime/rootless.py)
        from . import rootless as rl
        mgr = rl.cgroup_manager(c.id, linux)
    else:
        mgr = cgroups.new_manager(c.id, linux)
    _check_existing(mgr)
    data["cgroup"] = mgr.to_dict()
    c.write(data)
    mgr.create()
    from . import log
    if log.DEBUG:
        log.debug(f"create {c.id}: state written (creating); cgroups made: {' '.join(sorted(set(mgr.paths().values())))}")
    point("create:cgroup")
    launch.cgroup_manager = mgr
    # the init is born in its cgroup2 dir and joins its v1 cgroups itself (cgroups.Placement)
    # when it can reach them: not in a user namespace, not rootless, not from namespaces joined by path
    # namespaces joined by path: the intermediate joins the cgroups before it enters them
    launch.placement = mgr.place(self_join=not (rootless_cg or plan.userns))
    # written with the pid (chain/parent.py), the one more write of create: until we unlock,
    # nobody reads it, and "creating" only matters while we live, which we do under the lock
    data["status"] = "running" if start_now else "created"
    if not start_now:
        c.make_fifo()
        launch.fifo_fd = c.open_fifo(posix.O_RDWR)  # O_RDWR: never blocks
    if foreground and subreaper:
        from . import linux as L
        L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)  # the init is ours to wait for, even via the intermediate
    listener = plan.seccomp is not None and plan.seccomp.get("listenerPath")
    if listener:
        from . import seccomp
        seccomp.connect_listener(plan.seccomp)  # a host path: unreachable after pivot_root
    if plan.idmapped and not plan.userns:
        from . import idmap
        launch.trees = idmap.prepare(plan)  # detached idmapped trees, built on the host, attached by the init
    from .chain import parent
    try:
        pid, ch = parent.start_init(plan, launch, c, linux.get("resources") or {})
    finally:
        if launch.trees:
            from . import idmap
            idmap.close(launch.trees)  # the init has its own copies
        if listener:
            seccomp.close_listener()  # only the init may hold it, or the agent never sees EOF
        if console is not None:
            console.close_child()  # the init's copy is the one that sends the master
    if console is not None and foreground:
        console.receive()  # sent before READY: already here
    return pid, ch


def _check_existing(mgr):
    """A cgroup that exists already (the caller made it, a leftover): a frozen one is refused
    before anything is made, as runc does (our init would stop in it for good); one with
    processes in it gets runc's warning."""
    if mgr.frozen_now():
        raise Error("container's cgroup unexpectedly frozen")
    try:
        n = len(mgr.pids())
    except OSError:
        n = 0
    if n:
        warn(f"container's cgroup is not empty: {n} process(es) found")


def _run(root, cid, c, pid, ch, foreground, keep, console):
    """run, once created: start the init now, then wait for it in the foreground."""
    from . import sync
    if foreground:
        from .signals import forward_to
        fwd = forward_to(pid)
    try:
        ch.send(sync.START)
        from . import log
        log.debug(f"run {cid}: sync: START sent")
        # our socket end reads EOF when the init's end closes at execve; an error comes first
        kind, payload = ch.recv()
        if kind == sync.ERR:
            raise Error(payload.decode(errors="replace"))
    except OSError:
        pass
    except Error as e:
        from . import log
        log.error(str(e))
        if not foreground:
            delete(root, cid, force=True)
            return 1
    try:
        _poststart(c)
    except Error:
        if not keep:
            delete(root, cid, force=True)
        raise
    if not foreground:
        return 0
    if console is not None:
        from . import tty
        try:
            st = tty.proxy(console.master, pid)
        finally:
            console.close()
        status = exit_code(st)
    else:
        status = _wait_exit(pid, ch, fwd)
    from . import log
    log.debug(f"run {cid}: process {pid} exited: status {status}")
    if not keep:
        delete(root, cid, force=True)
    return status


def _destroy_partial(c):
    """Undo a failed create: whatever exists of process, cgroup and state goes."""
    d = c.data or {}
    pid = d.get("pid")
    if pid and state.proc_alive(pid, d.get("pid_start")):
        kill_reap(pid)
    if d.get("cgroup"):
        from . import cgroups
        try:
            cgroups.load_manager(d["cgroup"]).destroy()
        except (OSError, Error):
            pass
    try:
        c.remove()
    except OSError:
        pass


# ------------------------------------------------------------------ start
def start(root, cid):
    c = state.Container(root, cid).open()
    st = c.status()
    if st != "created":
        raise Error(f"cannot start a container that has {'already ' if st != 'creating' else ''}"
                    f"{'been started' if st in ('running', 'paused') else st}"
                    if st != "stopped" else "cannot start an already stopped container")
    try:
        _release_fifo(c)
    finally:
        point("start:fifo")
        c.unlink_fifo()
    # no state.json write: the status is the kernel's (state.Container.status); the saved one
    # only tells a live creator's "creating" apart
    _poststart(c)
    c.unlock()
    return 0


def _release_fifo(c):
    """Wake the init waiting on the exec FIFO and return once it has taken the byte and closed
    the FIFO, right before its execve (poststart hooks run after that, config.md). The init holds
    the FIFO open (O_RDWR, CLOEXEC) and blocks reading it: our byte wakes it. Our read end then
    sees POLLHUP exactly when the last writer is gone, the init's descriptor (at its close or
    its death): poll for that alone (events 0), so our own byte in the pipe does not wake us.
    No polling loop, no sleep."""
    import select
    try:
        rfd = c.open_fifo(posix.O_RDONLY | posix.O_NONBLOCK)
    except OSError:
        raise Error("cannot start container: its init is no longer waiting") from None
    try:
        # opened after rfd: this writer moves the FIFO's writer count past what rfd saw at open,
        # which lets rfd report the hangup
        wfd = c.open_fifo(posix.O_WRONLY | posix.O_NONBLOCK)
        try:
            posix.write(wfd, b"0")
        finally:
            posix.close(wfd)
        p = select.poll()
        p.register(rfd, 0)
        while not p.poll():
            pass
        try:
            left = posix.read(rfd, 65536)
        except BlockingIOError:
            left = b""
    finally:
        posix.close(rfd)
    # the init failed between start and execve (a startContainer hook, the exec itself): it
    # wrote why into the FIFO; if it died before even taking our byte, the byte is still there
    if left.startswith(b"err:"):
        raise Error(left[4:].decode(errors="replace"))
    if left:
        raise Error("container init exited before it could be started")


def _poststart(c):
    """runtime.md step 9: a failing poststart hook is an error, and the container is stopped."""
    hooks = (c.data.get("hooks") or {}).get("poststart")
    if hooks:
        from . import hooks as hk
        try:
            hk.run_hooks(c.data["hooks"], "poststart", oci_state(c, "running"))
        except Error:
            try:
                signal_pid(c.data["pid"], c.data.get("pid_start"), SIGKILL)
            except Error:
                pass
            raise


def _wait_exit(pid, ch, fwd):
    """Wait for the init; its exit code, or 128+N when killed by signal N."""
    while True:
        try:
            _, status = posix.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
    # the init may have failed between "start" and execve: say why
    why = ch.pending_error()
    if why is not None:
        from . import log
        log.error(why)
    return exit_code(status)


# ------------------------------------------------------------------ state / kill / delete / list
def state_json(root, cid):
    c = state.Container(root, cid).open(shared=True)
    out = oci_state(c)
    c.unlock()
    return out


def kill(root, cid, signum, all_procs=False):
    """Signal 0 checks without signalling, as kill(2): 0 for a container that is not stopped, and
    with --all for a stopped one too (runc's kill.bats: `kill -a ID 0` right after KILL). It never
    freezes or thaws the container (runc's `kill -a ID 0` thaws a paused one: a check that
    changes the state)."""
    c = state.Container(root, cid).open(shared=True)
    try:
        st = c.status()
        if st == "stopped" and not all_procs:
            raise Error("container not running")
        d = c.data
        if signum == 0:
            if not all_procs:
                signal_pid(d["pid"], d.get("pid_start"), 0)
            return 0
        if all_procs and d.get("cgroup"):
            from . import cgroups
            mgr = cgroups.load_manager(d["cgroup"])
            mgr.kill_all(signum)
            if st == "paused":
                mgr.thaw()  # as runc; frozen (v1) tasks act on no signal, not even SIGKILL
            return 0
        if st == "stopped":
            raise Error("container not running")
        signal_pid(d["pid"], d.get("pid_start"), signum)
        if st == "paused" and signum == SIGKILL and d.get("cgroup"):
            from . import cgroups
            cgroups.load_manager(d["cgroup"]).thaw()  # as runc: let the frozen init die
    finally:
        c.unlock()
    return 0


def signal_pid(pid, start, signum):
    """Signal through a pidfd checked against the start time: never a recycled pid."""
    try:
        fd = posix.pidfd_open(pid)
    except OSError:
        raise Error("container not running") from None
    try:
        if not state.proc_alive(pid, start):
            raise Error("container not running")
        sig.pidfd_send_signal(fd, signum)
    except ProcessLookupError:
        raise Error("container not running") from None
    finally:
        posix.close(fd)


def delete(root, cid, force=False):
    c = state.Container(root, cid)
    try:
        c.open()
    except NotExist:
        if force:
            return 0
        raise
    st = c.status()
    d = c.data
    if st != "stopped":
        if not force:
            c.unlock()
            raise Error(f"cannot delete container {cid} that is not stopped: {st}")
        _kill_all(d)
    elif d.get("cgroup"):
        _kill_all(d)  # stragglers of a stopped init (e.g. no pid namespace)
    point("delete:killed")
    if d.get("cgroup"):
        from . import cgroups
        try:
            cgroups.load_manager(d["cgroup"]).destroy()
        except OSError as e:
            warn(f"cgroup of {cid}: {describe(e)}")
    point("delete:cgroup")
    hooks = (d.get("hooks") or {}).get("poststop")
    if hooks and not d.get("broken"):
        from . import hooks as hk
        hk.run_hooks(d["hooks"], "poststop", oci_state(c, "stopped"), warn=warn)
    c.remove()
    return 0


def _kill_all(d):
    pid = d.get("pid")
    pidfd = -1
    if pid and state.proc_alive(pid, d.get("pid_start")):
        try:
            pidfd = posix.pidfd_open(pid)
            sig.pidfd_send_signal(pidfd, SIGKILL)
        except OSError:
            pass
    if d.get("cgroup"):
        from . import cgroups
        try:
            mgr = cgroups.load_manager(d["cgroup"])
            mgr.kill_all(SIGKILL)
            if mgr.frozen_by_parent():  # a parent cgroup froze it: not ours to thaw
                mgr.thaw_for_kill()
            elif mgr.frozen():
                mgr.thaw()  # a paused container: frozen (v1) tasks only die once thawed
        except (OSError, Error):
            mgr = None
    if pidfd >= 0:
        import select
        select.select([pidfd], [], [], 5)  # readable once the init is dead
        posix.close(pidfd)
    # the init may be our own child (run, or a create from this same process): reap it
    try:
        posix.waitpid(pid, posix.WNOHANG)
    except (ChildProcessError, TypeError):
        pass
    if d.get("cgroup") and mgr is not None:
        deadline = time.monotonic() + 5
        while mgr.pids() and time.monotonic() < deadline:
            time.sleep(0.005)


def list_states(root):
    out = []
    for cid in state.list_ids(root):
        c = state.Container(root, cid)
        try:
            c.open(shared=True)
        except (NotExist, Error):
            continue
        st = json_loads(oci_state(c))
        st.setdefault("pid", 0)
        st["owner"] = _owner_name(c.owner())  # runc: the owner of the state dir (the rootless user)
        out.append(st)
        c.unlock()
    return out


def _owner_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"
