"""The syscall layer's errors (runtime/linux): OSError(errno, os.strerror(errno), filename[,
filename2]) with nothing else in strerror, so a caller that names its own context says it once.

Runs as nobody (and as root when make unit falls back to it): every call below fails whatever the
privileges (a missing path, a bad fd, an invalid flag), so nothing on the host changes.
"""
import ctypes
import errno
import os
import types

import pytest

from runtime import linux as L
from runtime import rootfs
from runtime.errors import Error, describe, why

MISSING = "/nonexistent-pyrunc-unit/x"


def _raised(call):
    with pytest.raises(OSError) as ei:
        call()
    e = ei.value
    assert e.errno and e.strerror == os.strerror(e.errno), (e.errno, e.strerror)
    return e


# (wrapper call, filename, filename2): the path, or the syscall's name for an fd-only call
CASES = {
    "mount": (lambda: L.mount("tmpfs", MISSING, "tmpfs"), "tmpfs", MISSING),
    "mount-nosource": (lambda: L.mount(None, MISSING, None, L.MS_PRIVATE), MISSING, None),
    "umount2": (lambda: L.umount2(MISSING), MISSING, None),
    "pivot_root": (lambda: L.pivot_root(MISSING, MISSING + "/old"), MISSING, MISSING + "/old"),
    "openat2": (lambda: L.openat2(-100, MISSING, os.O_RDONLY), MISSING, None),
    "openat2-in-root": (lambda: L.openat2(-100, MISSING, os.O_RDONLY, 0, L.RESOLVE_IN_ROOT),
                        MISSING, None),
    "open_tree": (lambda: L.open_tree(-100, MISSING, L.OPEN_TREE_CLOEXEC), MISSING, None),
    "move_mount-fds": (lambda: L.move_mount(-1, "", -1, "", L.MOVE_MOUNT_F_EMPTY_PATH),
                       "move_mount", None),
    "mount_setattr-fd": (lambda: L.mount_setattr(-1, "", L.AT_EMPTY_PATH, L.MOUNT_ATTR_RDONLY),
                         "mount_setattr", None),
    "setns": (lambda: L.setns(-1, 0), "setns", None),
    "unshare": (lambda: L.unshare(0x1), "unshare", None),  # a CSIGNAL bit: EINVAL
    "prctl": (lambda: L.prctl(0x7FFF0000), "prctl", None),
    "pidfd_open": (lambda: L.pidfd_open(-1), "pidfd_open", None),
    "pidfd_getfd": (lambda: L.pidfd_getfd(-1, 0), "pidfd_getfd", None),
    "close_range": (lambda: L.close_range(10, 5), "close_range", None),
    "sethostname": (lambda: L.sethostname("x" * 100), "sethostname", None),  # EPERM or EINVAL
    "fstatfs": (lambda: L.fstatfs_type(-1), "fstatfs", None),
    "syscall": (lambda: L.syscall("seccomp", ctypes.c_long(0x7FFF), ctypes.c_ulong(0),
                                  ctypes.c_void_p(0)), "seccomp", None),
    "execveat": (lambda: L.execveat(-1, ["x"], []), "execveat", None),
    # CLONE_NEWUSER with CLONE_FS is EINVAL: no child is made
    "clone": (lambda: L.clone(L.CLONE_NEWUSER | 0x200), "clone", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_wrapper_error_has_errno_kernel_message_and_filename(name):
    call, filename, filename2 = CASES[name]
    e = _raised(call)
    assert e.filename == filename
    assert e.filename2 == filename2


def test_errno_picks_the_subclass_and_the_path():
    e = _raised(lambda: L.openat2(-100, MISSING, os.O_RDONLY))
    assert isinstance(e, FileNotFoundError) and e.errno == errno.ENOENT
    assert e.strerror == "No such file or directory"


def test_rename_noreplace_names_both_paths(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    e = _raised(lambda: L.rename_noreplace(str(a), str(b)))
    assert isinstance(e, FileExistsError)
    assert (e.filename, e.filename2) == (str(a), str(b))
    assert describe(e) == f"{a} to {b}: file exists"
    assert b.read_text() == "b"


def test_capset_error_is_named(monkeypatch):
    hdr = (ctypes.c_uint32 * 2)(0, 0)  # version 0: EINVAL (the kernel writes its own back)
    data = (ctypes.c_uint32 * 6)()
    e = _raised(lambda: L.capset(hdr, data))
    assert e.errno == errno.EINVAL and e.filename == "capset"


def test_why_and_describe():
    e = OSError(errno.ENODEV, os.strerror(errno.ENODEV), "tmpfs", None, "/proc/self/fd/4")
    assert why(e) == "no such device"
    assert describe(e) == "tmpfs to /proc/self/fd/4: no such device"
    assert describe(OSError(errno.EPERM, os.strerror(errno.EPERM), "setns")) == "setns: operation not permitted"
    # a message of our own (not the errno's text) is kept as it is
    assert why(OSError(errno.EXDEV, "resolves outside the root", "/x")) == "resolves outside the root"
    assert why(ValueError("embedded null byte")) == "embedded null byte"
    assert describe(OSError(errno.EIO, os.strerror(errno.EIO))) == "input/output error"
    assert describe(OSError(errno.ENOENT, os.strerror(errno.ENOENT), b"/b")) == "/b: no such file or directory"


# ---------------------------------------------------------------- a caller: the rootfs mounts
class _FakeLibc:
    """libc whose mount(2) fails with ENODEV for the source FAIL and succeeds (doing nothing) for
    every other call: the real wrapper L.mount then raises what it raises for the kernel."""

    def __init__(self, fail):
        self.fail = os.fsencode(fail)
        self.calls = []

    def mount(self, source, target, fstype, flags, data):
        self.calls.append((source, target))
        if source == self.fail:
            ctypes.set_errno(errno.ENODEV)
            return -1
        return 0


def _plan(rootfs_dir, cfg_mounts):
    plans = rootfs.plan_mounts({"mounts": cfg_mounts, "linux": {}}, str(rootfs_dir))
    return types.SimpleNamespace(rootfs=str(rootfs_dir), root_propagation=0, mounts=plans,
                                 rootless=False, devices=[], userns=False, cgroupns=False,
                                 new_flags=L.CLONE_NEWNS, ns_paths={})


def test_a_failed_mount_names_its_destination_once(tmp_path, monkeypatch):
    root = tmp_path / "rootfs"
    root.mkdir()
    libc = _FakeLibc("weirdfs-src")
    monkeypatch.setattr(L, "_libc", libc)
    plan = _plan(root, [{"destination": "/proc", "type": "proc", "source": "proc"},
                      {"destination": "/mnt/data", "type": "weirdfs", "source": "weirdfs-src"}])
    with pytest.raises(Error) as ei:
        rootfs.setup_rootfs(plan, types.SimpleNamespace(trees={}, sync=None, cgroup_manager=None))
    msg = str(ei.value)
    assert msg == "mounts[1]: mount weirdfs-src to /mnt/data: no such device", msg
    assert msg.count("/mnt/data") == 1 and "/proc/self/fd" not in msg and "\n" not in msg
    assert (root / "mnt" / "data").is_dir()  # the destination was made, in the root, before the mount
    assert [s for s, _ in libc.calls][-1] == b"weirdfs-src"

