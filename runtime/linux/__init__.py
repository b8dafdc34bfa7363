"""Thin ctypes layer over the Linux syscalls that the os module lacks (x86_64 and aarch64).

Every wrapper raises OSError the way the os module does: OSError(errno, os.strerror(errno),
filename[, filename2]). strerror is only the kernel's message; the path goes in filename (source
and target, old and new, in filename and filename2 for the two-path calls), or the syscall's name
where there is no path (an fd-only call). The caller adds the config field or the object it was
for, once: runtime.errors.why(e) is the message alone, runtime.errors.describe(e) with the paths.
"""
import ctypes
import os


_libc = ctypes.CDLL(None, use_errno=True)
# PyDLL keeps the GIL held across the call: required for clone(), whose child must come back
# into the interpreter owning the GIL, exactly as os.fork() leaves it.
_pylibc = ctypes.PyDLL(None, use_errno=True)

_MACHINE = os.uname().machine  # not the platform module: 1.5 ms of import on every command
if _MACHINE == "x86_64":
    SYS = dict(clone=56, pivot_root=155, setns=308, pidfd_open=434, pidfd_send_signal=424,
               mount_setattr=442, open_tree=428, move_mount=429, openat2=437, clone3=435,
               close_range=436, seccomp=317, set_mempolicy=238, execveat=322,
               pidfd_getfd=438, ioprio_set=251, sched_setattr=314, bpf=321)
elif _MACHINE in ("aarch64", "arm64"):
    SYS = dict(clone=220, pivot_root=41, setns=268, pidfd_open=434, pidfd_send_signal=424,
               mount_setattr=442, open_tree=428, move_mount=429, openat2=437, clone3=435,
               close_range=436, seccomp=277, set_mempolicy=237, execveat=281,
               pidfd_getfd=438, ioprio_set=30, sched_setattr=274, bpf=280)
else:  # pragma: no cover - other architectures are not built for yet
    raise ImportError(f"unsupported architecture {_MACHINE}")

# namespace clone flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NS_FLAGS = {  # by linux.namespaces[].type
    "pid": CLONE_NEWPID, "network": CLONE_NEWNET, "mount": CLONE_NEWNS, "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS, "user": CLONE_NEWUSER, "cgroup": CLONE_NEWCGROUP, "time": CLONE_NEWTIME,
}

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# mount_setattr attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
AT_FDCWD = -100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _error(err, filename, filename2=None):
    """The OSError (the errno's own subclass, as the os module raises) for ERR at FILENAME."""
    if filename2 is None:
        return OSError(err, os.strerror(err), filename)
    return OSError(err, os.strerror(err), filename, None, filename2)


def _check(ret, filename, filename2=None):
    """RET, or the OSError of the errno the call left when it is negative."""
    if ret < 0:
        raise _error(ctypes.get_errno(), filename, filename2)
    return ret


def syscall(name, *args):
    """The raw system call NAME (a key of SYS) with ctypes ARGS: its result, or OSError with the
    errno, its message and NAME as filename (the caller adds the field it was for)."""
    return _check(_syscall(ctypes.c_long(SYS[name]), *args), name)


def capset(header, data):
    """capset(2) with a struct __user_cap_header_struct and its data array (process.py builds them)."""
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def personality(persona):
    _libc.personality.restype = ctypes.c_int
    _check(_libc.personality(ctypes.c_ulong(persona)), "personality")


PR_GET_CHILD_SUBREAPER = 37


def get_child_subreaper():
    """Whether we are a child subreaper (prctl PR_GET_CHILD_SUBREAPER writes through a pointer)."""
    cur = ctypes.c_int(0)
    _check(_libc.prctl(ctypes.c_int(PR_GET_CHILD_SUBREAPER), ctypes.byref(cur), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")
    return bool(cur.value)


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def _forked(name, call):
    """Run a fork-like syscall between the interpreter's own fork hooks (what os.fork does), so
    the child is a sound Python process; 0 in the child, the pid in the parent."""
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = call()
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise _error(err, name)
    return pid


def clone(flags):
    """fork() with namespace flags: returns 0 in the child, its pid in the parent."""
    sysc = _pylibc.syscall
    sysc.restype = ctypes.c_long
    # x86_64 and aarch64 share the argument order: flags, stack, parent_tid, child_tid, tls
    return _forked("clone", lambda: sysc(
        ctypes.c_long(SYS["clone"]), ctypes.c_ulong(flags | 17),  # 17 = SIGCHLD
        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0)))


CLONE_INTO_CGROUP = 0x200000000


def clone_into_cgroup(flags, cgroup_fd):
    """clone() whose child is born in the cgroup2 directory CGROUP_FD (clone3 CLONE_INTO_CGROUP):
    no cgroup.procs write, so no wait for the RCU grace period that write's lock can cost.
    OSError (and no child) when the kernel refuses: the caller then clones and moves the pid."""
    # struct clone_args (v2, 88 bytes): flags, pidfd, child_tid, parent_tid, exit_signal, stack,
    # stack_size, tls, set_tid, set_tid_size, cgroup; no stack: fork semantics
    args = (ctypes.c_uint64 * 11)(flags | CLONE_INTO_CGROUP, 0, 0, 0, 17, 0, 0, 0, 0, 0, cgroup_fd)
    sysc = _pylibc.syscall
    sysc.restype = ctypes.c_long
    return _forked("clone3", lambda: sysc(ctypes.c_long(SYS["clone3"]), ctypes.byref(args),
                                          ctypes.c_size_t(ctypes.sizeof(args))))


def rename_noreplace(old, new):
    """rename(2) that fails with FileExistsError instead of replacing NEW (an empty dir would be)."""
    _check(_libc.renameat2(ctypes.c_int(-100), _b(old), ctypes.c_int(-100), _b(new),  # AT_FDCWD
                           ctypes.c_uint(1)), old, new)  # RENAME_NOREPLACE


def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd, nstype=0):
    _check(_syscall(SYS["setns"], ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source, target, fstype, flags=0, data=None):
    """mount(2). OSError's filename and filename2 are SOURCE and TARGET; just TARGET when there
    is no source (a remount, a propagation change)."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    if not source:
        _check(ret, target)
    else:
        _check(ret, source, target)


def umount2(target, flags=0):
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), target)


def pivot_root(new_root, put_old):
    _check(_syscall(SYS["pivot_root"], _b(new_root), _b(put_old)), new_root, put_old)


def pidfd_open(pid, flags=0):
    return _check(_syscall(SYS["pidfd_open"], ctypes.c_int(pid), ctypes.c_uint(flags)),
                  "pidfd_open")


def pidfd_getfd(pidfd, targetfd):
    """A copy of file descriptor TARGETFD of the process PIDFD refers to."""
    return _check(_syscall(SYS["pidfd_getfd"], ctypes.c_int(pidfd), ctypes.c_int(targetfd),
                           ctypes.c_uint(0)), "pidfd_getfd")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_syscall(SYS["mount_setattr"], ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags),
                    ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
           path or "mount_setattr")


def open_tree(dirfd, path, flags):
    return _check(_syscall(SYS["open_tree"], ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags)),
                  path or "open_tree")


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _check(_syscall(SYS["move_mount"], ctypes.c_int(from_dirfd), _b(from_path),
                    ctypes.c_int(to_dirfd), _b(to_path), ctypes.c_uint(flags)),
           *([x for x in (from_path, to_path) if x] or ["move_mount"]))


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0, resolve=0):
    how = _OpenHow(flags, mode, resolve)
    args = (SYS["openat2"], ctypes.c_int(dirfd), _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    # Kernel quirk: with RESOLVE_IN_ROOT or RESOLVE_BENEATH, a ".." met on the way (a relative
    # symlink such as usr/bin/top -> ../../bin/busybox) fails with EAGAIN whenever any rename or
    # mount happened anywhere on the system meanwhile (it cannot prove the walk stayed inside);
    # openat2(2) says to retry. On a busy host (other containers starting) that is a few in ten
    # thousand calls: retried a bounded number of times, never turned into "not found".
    for _ in range(1000 if resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) else 1):
        ret = _syscall(*args)
        if ret >= 0 or ctypes.get_errno() != 11:  # EAGAIN
            break
    return _check(ret, path or "openat2")


def close_range(first, last=0xFFFFFFFF, flags=0):
    _check(_syscall(SYS["close_range"], ctypes.c_uint(first), ctypes.c_uint(last),
                    ctypes.c_uint(flags)), "close_range")


def sethostname(name):
    b = _b(name)
    _check(_libc.sethostname(b, ctypes.c_size_t(len(b))), "sethostname")


def setdomainname(name):
    b = _b(name)
    _check(_libc.setdomainname(b, ctypes.c_size_t(len(b))), "setdomainname")


PROC_SUPER_MAGIC = 0x9FA0


def fstatfs_type(fd):
    """f_type of the filesystem holding FD (statfs(2)'s magic number; os.fstatvfs lacks it)."""
    buf = ctypes.create_string_buffer(128)  # struct statfs is 120 bytes on 64-bit; f_type first
    _check(_libc.fstatfs(ctypes.c_int(fd), buf), "fstatfs")
    return ctypes.c_long.from_buffer(buf).value


def execveat(fd, argv, envp, path=b"", flags=AT_EMPTY_PATH):
    """execveat(2): run the file FD refers to (AT_EMPTY_PATH), not whatever a path names at the
    time of the call. Returns only by raising OSError (ValueError for an embedded NUL byte)."""
    def vec(items):
        arr = (ctypes.c_char_p * (len(items) + 1))()
        for i, x in enumerate(items):
            b = _b(x)
            if b"\0" in b:
                raise ValueError("embedded null byte")
            arr[i] = b
        arr[len(items)] = None
        return arr
    a, v = vec(argv), vec(envp)
    _syscall(SYS["execveat"], ctypes.c_int(fd), _b(path), a, v, ctypes.c_int(flags))
    raise _error(ctypes.get_errno(), path or "execveat")
