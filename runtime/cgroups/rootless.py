"""cgroups of a rootless container (runtime/rootless.py): real subclasses of the managers.

Used only where delegated (every hierarchy writable by the user, e.g. cgroup v2 with a delegated
subtree); otherwise the container lives in the cgroups of its caller (CallerCgroups), with a
warning when no resources are requested and an error when they are.
"""
import os

from runtime.cgroups import (HybridManager, Manager, V1Manager, V2Manager, _hierarchy_dir,
                             _mountinfo, _own_cgroups, new_manager)
from runtime.errors import Error


class _Delegated:
    """The container's own cgroups in a subtree delegated to the user: everything as for root
    but the device rules, which need CAP_SYS_ADMIN on the host (v1) or a BPF program (v2) that an
    ordinary user cannot load; runc ignores them in rootless mode too."""

    rootless = True

    def set(self, resources):
        r = {k: v for k, v in (resources or {}).items() if k != "devices"}
        if r:
            super().set(r)

    def place(self, pid=None, self_join=False):
        # the user cannot reach (or may not write) the host's `tasks` files from its namespaces
        return super().place(pid)


class DelegatedV1Manager(_Delegated, V1Manager):
    pass


class DelegatedHybridManager(_Delegated, HybridManager):
    pass


class DelegatedV2Manager(_Delegated, V2Manager):
    pass


_DELEGATED = {"v1": DelegatedV1Manager, "hybrid": DelegatedHybridManager, "v2": DelegatedV2Manager}


class CallerCgroups(Manager):
    """The caller's own cgroups, for a rootless container that cannot have its own: shown to the
    container by a `cgroup` mount, never created, joined, written or removed. Not saved in the
    state (to_dict is None), so kill --all, pause and delete see no cgroup of the container."""

    rootless = True

    def __init__(self, mgr):
        super().__init__(_own_paths(mgr))
        self.mode = mgr.mode

    def to_dict(self):
        return None

    def create(self):
        pass

    def _enter(self, pid, skip=()):
        pass

    def set(self, resources):
        pass

    def destroy(self):
        pass

    def pids(self):
        return []  # the caller's cgroups hold more than the container

    def kill_all(self, sig):
        raise Error("a rootless container without delegated cgroups has no cgroup to signal")

    def _set_frozen(self, on):
        raise Error("a rootless container without delegated cgroups has no cgroup to freeze")


def _own_paths(mgr):
    """The directories of this process's own cgroups, in the hierarchies MGR spans."""
    own = _own_cgroups()
    spans = mgr.paths()
    out = {}
    for mnt, fstype, root, ctrls in _mountinfo():
        key = frozenset() if fstype == "cgroup2" else frozenset(ctrls)
        if key not in own:
            continue
        d = _hierarchy_dir(mnt, root, None, own[key])
        if fstype == "cgroup2":
            if "" in spans and "" not in out:
                out[""] = d
        else:
            for c in ctrls:
                if c in spans:
                    out.setdefault(c, d)
    return out


def _requested(resources):
    """The resources that need a cgroup: anything but the device rules (runc ignores those)."""
    return sorted(k for k, v in (resources or {}).items() if k != "devices" and v not in (None, {}, []))


def first_unwritable(mgr):
    """The nearest existing ancestor of one of MGR's directories the user cannot fill, or None."""
    for d in sorted(set(mgr.paths().values())):
        p = d
        while not os.path.isdir(p):
            p = os.path.dirname(p)
        if not os.access(p, os.W_OK | os.X_OK) or (p == d and not os.access(os.path.join(d, "cgroup.procs"), os.W_OK)):
            return p
    return None


def delegated(mgr):
    """True when the user can make and fill the container's cgroups in every hierarchy: the
    nearest existing ancestor of each is writable (a delegated subtree, e.g. cgroup v2)."""
    return first_unwritable(mgr) is None


def manager(cid, linux):
    """The container's cgroup manager in rootless mode: its own where delegated, else the
    caller's cgroups (a warning), or an error when resources were asked for."""
    mgr = new_manager(cid, linux)
    where = first_unwritable(mgr)
    if where is None:
        if os.geteuid() == 0:
            return mgr  # root (--rootless true) can write device rules; an ordinary user cannot
        return _DELEGATED[mgr.mode](mgr.paths(), mgr.created, mgr.devices, roots=mgr.roots)
    asked = _requested(linux.get("resources"))
    if asked:
        raise Error(f"config.json: linux.resources: {', '.join(asked)}: a rootless container can set "
                    f"resources only in cgroups delegated to its user ({where} is not writable)")
    from runtime import log
    log.warning(f"rootless container: cgroups are not delegated to uid {os.geteuid()} ({where} is not "
                "writable): it runs in the caller's cgroups, without limits")
    return CallerCgroups(mgr)
