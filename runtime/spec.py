"""`pyrunc spec`: write a starter config.json into a bundle, like `runc spec` (--rootless too)."""
import os

from . import SPEC_VERSION, hotpath
from .errors import Error

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
           "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless=False):
    """The starter config: sh on a terminal, a read-only rootfs/, the usual /proc /dev /sys mounts."""
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")  # a single-id user namespace has no gid 5 to map
    sysfs = ({"destination": "/sys", "type": "none", "source": "/sys",
              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]} if rootless else
             {"destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"]})
    linux = {}
    if rootless:
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        ns = ["pid", "ipc", "uts", "mount", "user"]  # no network: an unprivileged user can't wire one
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        ns = ["pid", "network", "ipc", "uts", "mount"]
    linux["namespaces"] = [{"type": t} for t in ns]
    linux["maskedPaths"] = list(_MASKED)
    linux["readonlyPaths"] = list(_READONLY)
    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": linux,
    }


def write_spec(bundle=None, rootless=False):
    """Write BUNDLE/config.json (default: the current dir); an existing one is never overwritten."""
    d = bundle or "."
    if not os.path.isdir(d):
        raise Error(f"spec: bundle {d}: not a directory")
    path = os.path.join(d, "config.json")
    data = (hotpath.json_dumps_indent(default_spec(rootless), "\t") + "\n").encode()  # json.dumps(indent="\t")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise Error(f"File {path if bundle else 'config.json'} exists. Remove it first") from None
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return 0
