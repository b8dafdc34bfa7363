"""`pyrunc features`: the runtime-spec features.json document (features.md, features-linux.md).

Every list is derived from the tables the code itself parses config.json with, so the document
stays true of this build: mount options from rootfs.py, capabilities from process.py, namespaces
from config.py, seccomp names from seccomp.py, hook phases from hooks.py.
"""
from . import __version__, SPEC_VERSION, hotpath


def _libseccomp_version():
    """libseccomp's version string, or None when the library is absent (seccomp then fails at create)."""
    import ctypes
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None

    class _V(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    lib.seccomp_version.restype = ctypes.POINTER(_V)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def features():
    from . import config, hooks, mempolicy, process, rootfs, seccomp
    mount_opts = set(rootfs._FLAGS) | set(rootfs._PROPAGATION) | set(rootfs._RATTR)
    mount_opts |= {"idmap", "ridmap", "tmpcopyup"}  # parsed by rootfs.plan_mounts beside the tables
    libseccomp = _libseccomp_version()
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": [*hooks.FATAL, "poststart", "poststop"],
        "mountOptions": sorted(mount_opts),
        "linux": {
            "namespaces": sorted(config.NAMESPACES),
            "capabilities": list(process.CAPS),
            # v1 and v2 managers exist (runtime/cgroups); there is no systemd driver, and rdma is
            # only handled by the v2 manager.
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": libseccomp is not None,
                "actions": sorted(seccomp._ACTIONS),
                "operators": sorted(seccomp._OPS),
                "archs": sorted(seccomp._ARCHES),
                "knownFlags": sorted(seccomp._FLAGS),
            },
            # as runc's: what the runtime supports. An apparmorProfile is applied at execve
            # (chain/finalize.py) where the host has AppArmor; selinuxLabel is not applied, and
            # refused where the host has no SELinux
            "apparmor": {"enabled": True},
            "selinux": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": hotpath.module_available("runtime.idmap")}},
            "memoryPolicy": {"modes": list(mempolicy.MODES), "flags": list(mempolicy.FLAGS)},
            "netDevices": {"enabled": hotpath.module_available("pyroute2")},  # runtime/netdev.py
        },
        "annotations": {"org.opencontainers.pyrunc.version": __version__,
                        "org.opencontainers.pyrunc.checkpoint.enabled": "false"},
    }
    if libseccomp:
        doc["annotations"]["io.github.seccomp.libseccomp.version"] = libseccomp
    return doc


def features_json():
    return hotpath.json_dumps_indent(features(), "    ")  # as json.dumps(indent=4)
