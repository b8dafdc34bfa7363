"""The `cgroup` mount type: show the container its own cgroups at a path in its rootfs.

Runs in the container's mount namespace before pivot_root, so host cgroup paths are still visible.
"""
import os

from runtime import linux
from runtime.cgroups import _mountinfo
from runtime.errors import Error, why

_FLAGS = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


def _mount(source, target, fstype, flags, data=None):
    try:
        linux.mount(source, target, fstype, flags, data)
    except OSError as e:
        what = f"bind mount {source}" if fstype is None else f"mount {fstype}"
        raise Error(f"{what} to {target}: {why(e)}") from None


def _bind(src, dst, readonly):
    _mount(src, dst, None, linux.MS_BIND | linux.MS_REC | _FLAGS)
    if readonly:  # a bind ignores MS_RDONLY until remounted
        _mount(None, dst, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _FLAGS)


def mount_cgroupfs(dest, manager, readonly, cgroupns):
    """v1/hybrid: tmpfs + one dir per hierarchy (bind of our cgroup, or a fresh mount in a cgroupns);
    v2: cgroup2 (cgroupns) or a bind of the container's cgroup2 dir."""
    os.makedirs(dest, exist_ok=True)
    paths = manager.paths()
    ro = linux.MS_RDONLY if readonly else 0
    if manager.mode == "v2":
        if cgroupns:
            _mount("cgroup2", dest, "cgroup2", _FLAGS | ro)
        else:
            _bind(paths[""], dest, readonly)
        return
    _mount("tmpfs", dest, "tmpfs", _FLAGS, "mode=755")
    for mnt, fstype, _root, ctrls in _mountinfo():
        if fstype != "cgroup":
            continue
        own = next((paths[c] for c in ctrls if c in paths), None)
        if own is None:
            continue
        name = os.path.basename(mnt)  # "cpu,cpuacct" for comounted controllers, "systemd" for name=systemd
        target = os.path.join(dest, name)
        os.makedirs(target, exist_ok=True)
        if cgroupns:
            # in a cgroup namespace the hierarchy root is the container's own cgroup
            _mount("cgroup", target, "cgroup", _FLAGS | ro, ",".join(ctrls))
        else:
            _bind(own, target, readonly)
        # comounted: also reachable as "cpu" and "cpuacct"
        if "," in name:
            for c in name.split(","):
                link = os.path.join(dest, c)
                if not os.path.lexists(link):
                    os.symlink(name, link)
    if readonly:
        _mount(None, dest, None, linux.MS_REMOUNT | linux.MS_RDONLY | _FLAGS, "mode=755")
