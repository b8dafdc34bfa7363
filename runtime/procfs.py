"""Every read and write pyrunc makes under /proc goes through here (the CVE-2025-52881 family).

A path under /proc is only procfs if nothing was mounted over it and no symlink on the way leads
elsewhere: a bind mount over /proc/sys/net/ipv4 holding a symlink `ip_forward -> /x` would turn a
sysctl write into a write to any file, a tmpfs over /proc/self/attr would swallow an LSM label.
So the procfs root is opened once per process while /proc is still the host's (before the
container's filesystem is ours), proven to be procfs's root (statfs magic, root inode), and every
file is opened beneath it with openat2 forbidding symlinks, magic links and mount crossings, then
checked to be procfs again. `self` is resolved by reading procfs's own `self` link (it names our
pid in that procfs's pid namespace, which may not be ours).

That root must never be reachable from the container: a process of it granted CAP_SYS_PTRACE
(ptrace beats non-dumpable) opens /proc/<init>/fd/N of a `created` init, or of a process `exec`
is bringing in, and through the host's procfs root writes /proc/sys/kernel/core_pattern (any
procfs root not under the container's masks and read-only /proc/sys would do). So the init
release()s it once its root is finished, before it waits to be started, and `exec`'s process
never opens it: from then on root() is the /proc of the current root (the container's, the
one the runtime mounted and masked), proven the root of a procfs the same way, and every file
beneath it still refuses symlinks and mount crossings.
"""
import errno
import os

from . import linux as L

PROC_ROOT_INO = 1
_RESOLVE = L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS | L.RESOLVE_NO_XDEV
_root = -1
_root_pid = 0  # the process that opened _root: a forked child opens its own "self"
_self = None


class NotProcfs(OSError):
    pass


def _verify(fd, what):
    if L.fstatfs_type(fd) != L.PROC_SUPER_MAGIC:
        raise NotProcfs(errno.EXDEV, "not on procfs", what)


def root():
    """The verified procfs root fd of this process (O_PATH, O_CLOEXEC)."""
    global _root, _root_pid, _self
    pid = os.getpid()
    if _root >= 0 and _root_pid == pid:
        return _root
    if _root >= 0:  # inherited across fork: still procfs, but our "self" differs
        _self, _root_pid = None, pid
        return _root
    # before release(): the host's /proc (our root is still the host's); after: the container's
    _root, _root_pid, _self = _open_root(), pid, None
    return _root


def _open_root():
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        _verify(fd, "/proc")
        if os.fstat(fd).st_ino != PROC_ROOT_INO:
            raise NotProcfs(errno.EXDEV, "not the root of a procfs", "/proc")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _path(rel):
    global _self
    first, sep, rest = rel.partition("/")
    if first == "self":
        r = root()
        if _self is None:
            _self = os.readlink("self", dir_fd=r)  # "<pid>", a plain symlink of procfs
        first = _self
    return first + sep + rest


def open(rel, flags):
    """An fd of /proc/REL (e.g. "self/attr/exec", "sys/net/ipv4/ip_forward"), proven procfs."""
    fd = L.openat2(root(), _path(rel), flags | os.O_CLOEXEC | os.O_NOCTTY, 0, _RESOLVE)
    try:
        _verify(fd, f"/proc/{rel}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def write(rel, data):
    """Write DATA (bytes or str) to /proc/REL in one write(2), as the kernel files expect."""
    fd = open(rel, os.O_WRONLY)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)


def read(rel, limit=65536):
    fd = open(rel, os.O_RDONLY)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def close():
    global _root, _self
    if _root >= 0:
        os.close(_root)
    _root, _self = -1, None


def release():
    """Our root is the container's now: trade the procfs root opened so far (the host's) for
    the /proc of this root (see the module's doc). Without a procfs there, the container has no
    /proc/PID/fd to reach ours through (mounting one takes a privileged container): ours stays."""
    global _root, _root_pid, _self
    try:
        fd = _open_root()
    except OSError:
        return
    close()
    _root, _root_pid, _self = fd, os.getpid(), None
