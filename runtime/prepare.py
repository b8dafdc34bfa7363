"""The init's plan, built in one place: everything create checks without a process (config.md's
fields, the namespaces to join, the mounts, the devices, the process) becomes one frozen
plan.InitPlan before anything exists on the host. A bad value stops create here, with nothing
made."""
import os

from . import config, process, rootfs
from .errors import Error, why
from .linux import NS_FLAGS
from .lifecycle import passed_fds
from .plan import InitPlan

# setns order for joined namespaces: user first (it owns the others), mount last but before pid
_JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "pid", "mount")


def init_plan(cfg, bundle, no_pivot=False, preserve_fds=0, state_root=None):
    """The checked InitPlan of config CFG in BUNDLE; raises Error naming the field."""
    # The fds the caller really passed (LISTEN_FDS first), seen before any check below opens
    # an fd of ours that could take a free number in the range (the procfs root process.py's
    # capability check opens): it would be passed on to the container's program as if the
    # caller had (the host's /proc, from which /proc/1/root is the host's root).
    listen = _listen_fds()
    preserved = passed_fds(preserve_fds + listen)
    linux = cfg.get("linux") or {}
    root = cfg["root"]
    rpath = root["path"]
    rootdir = os.path.realpath(rpath if os.path.isabs(rpath) else os.path.join(bundle, rpath))
    if not os.path.isdir(rootdir):
        raise Error(f"config.json: root.path: rootfs {rootdir} does not exist or is not a directory")
    nss = config.namespaces(cfg)
    ns_paths = {t: p for t, p in nss.items() if p}
    ns_joins = []
    for t in _JOIN_ORDER:
        p = ns_paths.get(t)
        if p:
            _check_ns_path(t, p)
            ns_joins.append((t, p, NS_FLAGS[t]))
    new_flags = 0
    for t, p in nss.items():
        if not p:
            new_flags |= NS_FLAGS[t]
    root_propagation = 0
    rp = linux.get("rootfsPropagation")
    if rp:
        if rp not in rootfs.ROOT_PROPAGATION:
            raise Error(f"config.json: linux.rootfsPropagation: unknown propagation {rp!r}")
        root_propagation = rootfs.ROOT_PROPAGATION[rp]
    mounts = rootfs.plan_mounts(cfg, bundle)
    devices = _devices(linux)
    sysctl = []
    if linux.get("sysctl"):
        from . import sysctl as sc
        sysctl = sc.check(linux["sysctl"], nss)
    if linux.get("mountLabel"):
        raise Error("config.json: linux.mountLabel: SELinux is not enabled on this host")
    net_devices = None
    if linux.get("netDevices"):
        from . import netdev  # moved by the runtime after the clone (chain/parent.py)
        net_devices = netdev.check(linux["netDevices"], nss, ns_paths)
    proc = cfg.get("process")
    if proc is None:
        raise Error("config.json: process: is required to create a container")
    pplan = process.plan_process(proc)
    attrs = mpol = None
    if proc.get("ioPriority") or proc.get("scheduler") or linux.get("personality"):
        from . import procattr
        attrs = procattr.plan(proc, linux)
    if linux.get("memoryPolicy") is not None:
        from . import mempolicy
        mpol = mempolicy.plan(linux["memoryPolicy"])
    n = listen
    if n:
        preserve_fds += n
        pplan = pplan.replace(env=pplan.env + (f"LISTEN_FDS={n}", "LISTEN_PID=1"))
    seccomp, seccomp_filter = linux.get("seccomp"), None
    if seccomp is not None:
        from . import seccomp as sc
        seccomp_filter = sc.prepare(seccomp, state_root)  # compiled here, loaded by the init
    hooks = cfg.get("hooks") or {}
    plan = InitPlan(
        rootfs=rootdir, root_readonly=bool(root.get("readonly")), no_pivot=no_pivot,
        root_propagation=root_propagation, mounts=mounts, devices=devices,
        masked_paths=linux.get("maskedPaths") or [], readonly_paths=linux.get("readonlyPaths") or [],
        new_flags=new_flags, ns_paths=ns_paths, ns_joins=tuple(ns_joins), userns="user" in nss,
        cgroupns="cgroup" in nss, uid_mappings=linux.get("uidMappings") or [],
        gid_mappings=linux.get("gidMappings") or [], time_offsets=linux.get("timeOffsets") or {},
        hostname=cfg.get("hostname"), domainname=cfg.get("domainname"), net_devices=net_devices,
        # no root: user namespace and id maps as runtime/rootless.py says
        rootless=os.geteuid() != 0,
        proc=pplan, terminal=bool(proc.get("terminal")), preserve_fds=preserve_fds,
        preserved=preserved, attrs=attrs, mempolicy=mpol, sysctl=sysctl,
        seccomp=seccomp, seccomp_filter=seccomp_filter, hooks=hooks,
        runtime_hooks=bool(hooks.get("prestart") or hooks.get("createRuntime")),
    )
    if plan.rootless:
        from . import rootless
        rootless.check(plan, cfg)
    return plan


def runtime_in_userns():
    """Whether this runtime runs in a user namespace other than the initial one, as root of it
    (rootless podman runs the runtime so, with no user namespace in config.json): runc then uses
    its rootless cgroup manager (runtime/cgroups/rootless.py: cgroups where delegated, else none).
    One bounded read of /proc/self/uid_map; false when it cannot be read."""
    try:
        fd = os.open("/proc/self/uid_map", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return False
    finally:
        os.close(fd)
    return data.split() != [b"0", b"0", b"4294967295"]


def _devices(linux):
    out = []
    for i, d in enumerate(linux.get("devices") or []):
        if d.get("type") not in ("c", "b", "u", "p"):
            raise Error(f"config.json: linux.devices[{i}].type: unknown device type {d.get('type')!r}")
        if d.get("type") != "p" and ("major" not in d or "minor" not in d):
            raise Error(f"config.json: linux.devices[{i}]: major and minor are required for type {d['type']!r}")
        out.append(d)
    return out


def _listen_fds():
    """Socket activation as runc: when LISTEN_FDS is meant for us (LISTEN_PID is our pid), fds
    3..3+N-1 go to the container with LISTEN_FDS=N and LISTEN_PID=1 (its init), ahead of the
    --preserve-fds ones. Returns N, or 0."""
    n = os.environ.get("LISTEN_FDS")
    if not n or os.environ.get("LISTEN_PID") != str(os.getpid()):
        return 0
    try:
        n = int(n)
    except ValueError:
        return 0
    return max(n, 0)


def _check_ns_path(t, path):
    """A joined namespace must exist and be of the type it is listed as."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise Error(f"config.json: linux.namespaces: {t} namespace path {path}: {why(e)}") from None
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
