"""The container lifecycle of runtime.md: create, start, run, state, kill, delete, list.

The runtime process (this module) claims the id, builds a plan from config.json, clones the init
(runtime/init.py) into its namespaces, writes the id maps, places it in its cgroups, runs the
runtime-namespace hooks, and records state. Everything it made is undone when a step fails.
"""
import _signal
import os
import time

from . import fastjson, state
from .lifecycle import kill_reap, oci_state, write_pid_file
from .testpoint import point
from .errors import Error, NotExist

# Imported by create/run only (_create_imports): ctypes, json and the planners cost more than the
# whole of state, kill or delete, which need none of them.
configmod = L = process = rootfs = None
NS_FLAGS = {
    "pid": 0x20000000, "network": 0x40000000, "mount": 0x00020000, "ipc": 0x08000000,
    "uts": 0x04000000, "user": 0x10000000, "cgroup": 0x02000000, "time": 0x00000080,
}  # the CLONE_NEW* flags (runtime/linux)
SIGKILL = _signal.SIGKILL


def _create_imports():
    global configmod, L, process, rootfs
    from . import config as configmod, linux as L, process, rootfs  # noqa: F811
# setns order for joined namespaces: user first (it owns the others), mount last but before pid
_JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "pid", "mount")


def warn(msg):
    from . import log
    log.warning(msg)


def _now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def prepare(cfg, bundle, no_pivot=False, preserve_fds=0):
    """Check everything that can be checked without a process and build the init's plan (runtime/plan.py)."""
    _create_imports()
    from .plan import InitPlan
    ctx = InitPlan()
    linux = cfg.get("linux") or {}
    root = cfg["root"]
    rpath = root["path"]
    ctx.rootfs = os.path.realpath(rpath if os.path.isabs(rpath) else os.path.join(bundle, rpath))
    if not os.path.isdir(ctx.rootfs):
        raise Error(f"config.json: root.path: rootfs {ctx.rootfs} does not exist or is not a directory")
    ctx.root_readonly = bool(root.get("readonly"))
    ctx.no_pivot = no_pivot
    ctx.preserve_fds = preserve_fds
    nss = configmod.namespaces(cfg)
    ctx.ns_paths = {t: p for t, p in nss.items() if p}
    ctx.ns_joins = []
    for t in _JOIN_ORDER:
        p = ctx.ns_paths.get(t)
        if p:
            _check_ns_path(t, p)
            ctx.ns_joins.append((t, p, NS_FLAGS[t]))
    ctx.new_flags = 0
    for t, p in nss.items():
        if not p:
            ctx.new_flags |= NS_FLAGS[t]
    ctx.userns = "user" in nss
    ctx.rootless = os.geteuid() != 0  # no root: user namespace and id maps as runtime/rootless.py says
    ctx.uid_mappings = linux.get("uidMappings") or []
    ctx.gid_mappings = linux.get("gidMappings") or []
    ctx.cgroupns = "cgroup" in nss
    ctx.time_offsets = linux.get("timeOffsets") or {}
    ctx.hostname = cfg.get("hostname")
    ctx.domainname = cfg.get("domainname")
    ctx.root_propagation = 0
    rp = linux.get("rootfsPropagation")
    if rp:
        if rp not in rootfs.ROOT_PROPAGATION:
            raise Error(f"config.json: linux.rootfsPropagation: unknown propagation {rp!r}")
        ctx.root_propagation = rootfs.ROOT_PROPAGATION[rp]
    ctx.mounts = rootfs.plan_mounts(cfg, bundle)
    ctx.devices = []
    for i, d in enumerate(linux.get("devices") or []):
        if d.get("type") not in ("c", "b", "u", "p"):
            raise Error(f"config.json: linux.devices[{i}].type: unknown device type {d.get('type')!r}")
        if d.get("type") != "p" and ("major" not in d or "minor" not in d):
            raise Error(f"config.json: linux.devices[{i}]: major and minor are required for type {d['type']!r}")
        ctx.devices.append(d)
    ctx.masked_paths = linux.get("maskedPaths") or []
    ctx.readonly_paths = linux.get("readonlyPaths") or []
    ctx.sysctl = []
    if linux.get("sysctl"):
        from . import sysctl
        ctx.sysctl = sysctl.check(linux["sysctl"], nss)
    if linux.get("mountLabel"):
        raise Error("config.json: linux.mountLabel: SELinux is not enabled on this host")
    ctx.net_devices = None
    if linux.get("netDevices"):
        from . import netdev  # moved by the runtime after the clone (spawn)
        ctx.net_devices = netdev.check(linux["netDevices"], nss, ctx.ns_paths)
    proc = cfg.get("process")
    if proc is None:
        raise Error("config.json: process: is required to create a container")
    ctx.proc = process.plan_process(proc)
    ctx.attrs = None
    if proc.get("ioPriority") or proc.get("scheduler") or linux.get("personality"):
        from . import procattr
        ctx.attrs = procattr.plan(proc, linux)
    ctx.mempolicy = None
    if linux.get("memoryPolicy") is not None:
        from . import mempolicy
        ctx.mempolicy = mempolicy.plan(linux["memoryPolicy"])
    _listen_fds(ctx)
    if ctx.rootless:
        from . import rootless
        rootless.check(ctx, cfg)
    # the fds of the range that the caller really passed (checked now, before the runtime opens
    # any of its own that could take a free number in the range)
    ctx.preserved = []
    for fd in range(3, 3 + ctx.preserve_fds):
        try:
            os.fstat(fd)
            ctx.preserved.append(fd)
        except OSError:
            pass
    ctx.terminal = bool(proc.get("terminal"))
    ctx.seccomp = linux.get("seccomp")
    if ctx.seccomp is not None:
        from . import seccomp
        seccomp.check(ctx.seccomp)
    ctx.hooks = cfg.get("hooks") or {}
    ctx.runtime_hooks = bool(ctx.hooks.get("prestart") or ctx.hooks.get("createRuntime"))
    ctx.fifo_fd = -1
    ctx.cgroup_manager = None
    if any(m.idmap for m in ctx.mounts) and not ctx.userns:
        from . import idmap
        idmap.prepare(ctx)  # detached idmapped trees, built on the host, attached by the init
    _preload(ctx)
    return ctx


def _preload(ctx):
    """Import now what the init will use after pivot_root, where the host's sys.path is gone:
    the child is a fork, so whatever is loaded here is loaded there."""
    if ctx.hooks.get("createContainer") or ctx.hooks.get("startContainer"):
        from . import hooks  # noqa: F401
    if ctx.terminal:
        from . import tty  # noqa: F401
    if any(m.idmap for m in ctx.mounts):
        from . import idmap  # noqa: F401
    if ctx.rootless:
        from . import rootless  # noqa: F401
    if ctx.sysctl:
        from . import sysctl  # noqa: F401
    if ctx.attrs is not None:
        from . import procattr  # noqa: F401
    if ctx.mempolicy is not None:
        from . import mempolicy  # noqa: F401
    if ctx.seccomp is not None:
        if ctx.seccomp.get("listenerPath"):  # send_notify_fd's (json alone costs ~5 ms: re, enum)
            import array  # noqa: F401
            import json  # noqa: F401
        from . import seccomp  # noqa: F401


def _listen_fds(ctx):
    """Socket activation as runc: when LISTEN_FDS is meant for us (LISTEN_PID is our pid), fds
    3..3+N-1 go to the container with LISTEN_FDS=N and LISTEN_PID=1 (its init), ahead of the
    --preserve-fds ones."""
    n = os.environ.get("LISTEN_FDS")
    if not n or os.environ.get("LISTEN_PID") != str(os.getpid()):
        return
    try:
        n = int(n)
    except ValueError:
        return
    if n <= 0:
        return
    ctx.preserve_fds += n
    ctx.proc.env = list(ctx.proc.env) + [f"LISTEN_FDS={n}", "LISTEN_PID=1"]


def _check_ns_path(t, path):
    """A joined namespace must exist and be of the type it is listed as."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise Error(f"config.json: linux.namespaces: {t} namespace path {path}: {e.strerror}") from None
    try:
        import fcntl
        NS_GET_NSTYPE = 0xB703
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        raise Error(f"config.json: linux.namespaces: {path} is not a namespace file") from None
    finally:
        os.close(fd)
    if nstype != NS_FLAGS[t]:
        raise Error(f"config.json: linux.namespaces: {path} is not a {t} namespace")


# ------------------------------------------------------------------ create / run
def create(root, cid, bundle, pid_file=None, no_pivot=False, preserve_fds=0, start_now=False,
           foreground=False, keep=False, console_socket=None, rootless="auto"):
    """create (and for run, start): returns the exit status for a foreground run, else 0."""
    _create_imports()
    bundle = os.path.abspath(bundle or ".")
    if not os.path.isdir(bundle):
        raise Error(f"bundle {bundle}: no such directory")
    cfg = configmod.load(bundle)
    ctx = prepare(cfg, bundle, no_pivot, preserve_fds)
    rootless_cg = rootless != "auto" or ctx.rootless
    if rootless_cg:
        from . import rootless as rl
        rootless_cg = rl.resolve(rootless)
    ctx.console = console = None
    if ctx.terminal or console_socket:
        from . import tty  # connected now: a bad socket fails before anything exists
        tty.check_flags(ctx.terminal, console_socket, not foreground)
        console = tty.Console(console_socket)
        ctx.console, ctx.console_size = console.child, cfg["process"].get("consoleSize")
    c = state.Container(root, cid)
    c.make()
    point("create:claimed")
    try:
        data = {
            "ociVersion": cfg["ociVersion"], "id": cid, "pid": 0, "status": "creating",
            "bundle": bundle, "rootfs": ctx.rootfs, "created": _now_rfc3339(), "owner": "",
            "annotations": cfg.get("annotations") or {}, "creator": os.getpid(),
            "creator_start": state.proc_start_time(os.getpid()),
            "hooks": {k: v for k, v in ctx.hooks.items() if k in ("poststart", "poststop")},
            "config": {"linux": {"namespaces": (cfg.get("linux") or {}).get("namespaces") or [],
                                 # the base `update` merges into (runtime/cgroupverbs.py)
                                 "resources": (cfg.get("linux") or {}).get("resources") or {}},
                       "process": cfg.get("process") or {}},  # the base of exec's process
        }
        if ctx.seccomp is not None:
            data["config"]["linux"]["seccomp"] = ctx.seccomp  # exec applies it too
        if ctx.mempolicy is not None:
            data["config"]["linux"]["memoryPolicy"] = cfg["linux"]["memoryPolicy"]  # and this
        from . import cgroups
        if rootless_cg:  # cgroups only where delegated (runtime/rootless.py)
            mgr = rl.cgroup_manager(cid, cfg.get("linux") or {})
        else:
            mgr = cgroups.new_manager(cid, cfg.get("linux") or {})
        data["cgroup"] = mgr.to_dict()
        c.write(data)
        mgr.create()
        point("create:cgroup")
        ctx.cgroup_manager = mgr
        # the init is born in its cgroup2 dir and joins its v1 cgroups itself (cgroups.Placement)
        # when it can reach them: not in a user namespace, not rootless, not from namespaces joined by path
        ctx.placement = mgr.place(self_join=not (rootless_cg or ctx.userns or ctx.ns_joins))
        # written with the pid (spawn), the one more write of create: until we unlock, nobody
        # reads it, and "creating" only matters while we live, which we do under the lock
        data["status"] = "running" if start_now else "created"
        if not start_now:
            c.make_fifo()
            ctx.fifo_fd = c.open_fifo(os.O_RDWR)  # O_RDWR: never blocks
        if foreground:
            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)  # the init is ours to wait for, even via the slow path
        if ctx.seccomp is not None and ctx.seccomp.get("listenerPath"):
            from . import seccomp
            seccomp.connect_listener(ctx.seccomp)  # a host path: unreachable after pivot_root
        try:
            pid, ch = spawn(ctx, c, cfg, mgr)
        finally:
            if any(m.tree_fd is not None for m in ctx.mounts):
                from . import idmap
                idmap.close(ctx)  # the init has its own copies
            if ctx.seccomp is not None and ctx.seccomp.get("listenerPath"):
                seccomp.close_listener()  # only the init may hold it, or the agent never sees EOF
            if console is not None:
                console.close_child()  # the init's copy is the one that sends the master
        if console is not None and foreground:
            console.receive()  # sent before "ready": already here
    except BaseException:
        if console is not None:
            console.close()
        _destroy_partial(c)
        raise
    if ctx.fifo_fd >= 0:
        os.close(ctx.fifo_fd)
    if pid_file:
        write_pid_file(pid_file, pid)
    if not start_now:
        c.unlock()
        return 0
    # run: start now
    c.unlock()
    if foreground:
        from .signals import forward_to
        fwd = forward_to(pid)
    try:
        from . import sync
        ch.send(sync.START)
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
        status = 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
    else:
        status = _wait_exit(pid, ch, fwd)
    if not keep:
        delete(root, cid, force=True)
    return status


def spawn(ctx, c, cfg, mgr):
    """Clone the init and drive it to "ready"; returns (init pid, sync socket)."""
    import _socket  # not socket: its enum and selectors imports cost ~3 ms; send/recv is all we use
    from . import sync
    psock, csock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    ch = sync.Channel(psock)
    slow = bool(ctx.ns_joins)
    flags = 0 if slow else ctx.new_flags & ~(L.CLONE_NEWCGROUP | L.CLONE_NEWTIME)
    from . import init
    # limits go on the still empty cgroup, before the init exists: a bad value then fails with no
    # process to kill, and the time between clone and "go" (the init waits) is shorter.
    # Always: with no "devices" rules the device cgroup still gets runc's default allow-list
    mgr.set(dict({"devices": []}, **((cfg.get("linux") or {}).get("resources") or {})))
    child = ctx.placement.spawn(flags)
    if child == 0:
        # the child must not hold the state lock, the runtime's socket end, or anything else
        c.unlock()
        psock.close()
        if slow:
            init.slow_path_main(ctx, sync.Channel(csock))
        init.child_main(ctx, sync.Channel(csock))
    csock.close()
    point("create:cloned")
    pid = child
    moved = None
    try:
        if slow:
            while True:
                kind, payload = _recv(ch)
                if kind == sync.USERNS:
                    write_id_maps(child, ctx)
                    ch.send(sync.MAPPED)
                elif kind == sync.PID:
                    pid = int(payload)
                    os.waitpid(child, 0)
                    break
                else:
                    raise Error(f"sync: unexpected message {kind[:40]!r}")
        elif ctx.userns:
            write_id_maps(pid, ctx)
        c.data["pid"] = pid
        c.data["pid_start"] = state.proc_start_time(pid)
        c.write()
        ctx.placement.finish(pid)
        if ctx.net_devices:  # its network namespace exists; the init waits for "go"
            from . import netdev
            moved = netdev.Moved()
            netdev.move(ctx.net_devices, pid, moved)
        st = oci_state(c, "creating", pid)
        ch.send(sync.GO, st)  # framed when large: megabytes of annotations are a valid state
        while True:
            kind, payload = _recv(ch)
            if kind == sync.HOOKS:
                from . import hooks
                hooks.run_hooks(ctx.hooks, "prestart", st)
                hooks.run_hooks(ctx.hooks, "createRuntime", st)
                ch.send(sync.OK)
            elif kind == sync.IDMAP:
                from . import idmap  # an idmapped mount in a user namespace: runtime/idmap.py
                idmap.serve(ctx, pid, payload)
                ch.send(sync.OK)
            elif kind == sync.READY:
                point("create:ready")
                break
            else:
                raise Error(f"sync: unexpected message {kind[:40]!r}")
    except BaseException:
        why = ch.pending_error()
        if moved is not None:
            moved.restore(pid)  # the create's undo: the devices go back to the host
        kill_reap(pid)
        if slow and pid != child:
            kill_reap(child)
        if why is not None:
            raise Error(why) from None
        raise
    return pid, ch


def _recv(ch):
    """The init's next message; its ERR, or its early exit, as an Error. (When one of our own
    steps fails, ch.pending_error() prefers the init's report: it mounts while we set up its
    cgroups, and our failure may only be the consequence, e.g. a cgroup.procs write for a pid
    now gone.)"""
    try:
        kind, payload = ch.recv()
    except OSError:
        kind = payload = b""
    if kind == b"err":
        raise Error(payload.decode(errors="replace"))
    if not kind:
        raise Error("container init exited before it was ready")
    return kind, payload


def write_id_maps(pid, ctx):
    if ctx.rootless:
        from . import rootless
        return rootless.write_id_maps(pid, ctx)
    from . import idmaps
    idmaps.write_maps(pid, ctx.uid_mappings, ctx.gid_mappings, "linux")


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
        rfd = c.open_fifo(os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        raise Error("cannot start container: its init is no longer waiting") from None
    try:
        # opened after rfd: this writer moves the FIFO's writer count past what rfd saw at open,
        # which lets rfd report the hangup
        wfd = c.open_fifo(os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(wfd, b"0")
        finally:
            os.close(wfd)
        p = select.poll()
        p.register(rfd, 0)
        while not p.poll():
            pass
        try:
            left = os.read(rfd, 65536)
        except BlockingIOError:
            left = b""
    finally:
        os.close(rfd)
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
            _, status = os.waitpid(pid, 0)
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
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


# ------------------------------------------------------------------ state / kill / delete / list
def state_json(root, cid):
    c = state.Container(root, cid).open(shared=True)
    out = oci_state(c)
    c.unlock()
    return out


def kill(root, cid, sig, all_procs=False):
    c = state.Container(root, cid).open(shared=True)
    try:
        st = c.status()
        if st == "stopped" and not all_procs:
            raise Error("container not running")
        d = c.data
        if all_procs and d.get("cgroup"):
            from . import cgroups
            mgr = cgroups.load_manager(d["cgroup"])
            mgr.kill_all(sig)
            if st == "paused":
                mgr.thaw()  # as runc; frozen (v1) tasks act on no signal, not even SIGKILL
            return 0
        if st == "stopped":
            raise Error("container not running")
        signal_pid(d["pid"], d.get("pid_start"), sig)
        if st == "paused" and sig == SIGKILL and d.get("cgroup"):
            from . import cgroups
            cgroups.load_manager(d["cgroup"]).thaw()  # as runc: let the frozen init die
    finally:
        c.unlock()
    return 0


def signal_pid(pid, start, sig):
    """Signal through a pidfd checked against the start time: never a recycled pid."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        raise Error("container not running") from None
    try:
        if not state.proc_alive(pid, start):
            raise Error("container not running")
        _signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        raise Error("container not running") from None
    finally:
        os.close(fd)


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
            warn(f"cgroup of {cid}: {e}")
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
            pidfd = os.pidfd_open(pid)
            _signal.pidfd_send_signal(pidfd, SIGKILL)
        except OSError:
            pass
    if d.get("cgroup"):
        from . import cgroups
        try:
            mgr = cgroups.load_manager(d["cgroup"])
            mgr.kill_all(SIGKILL)
            if mgr.frozen():
                mgr.thaw()  # a paused container: frozen (v1) tasks only die once thawed
        except (OSError, Error):
            mgr = None
    if pidfd >= 0:
        import select
        select.select([pidfd], [], [], 5)  # readable once the init is dead
        os.close(pidfd)
    # the init may be our own child (run, or a create from this same process): reap it
    try:
        os.waitpid(pid, os.WNOHANG)
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
        st = fastjson.loads(oci_state(c))
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
