"""--no-pivot's hiding of the mounts outside the rootfs (rootfs.hide_outside_mounts), against a
recorded mount table and recorded mount calls: which mounts go, in which order, each made a slave
before its lazy umount, a locked one covered instead, one out of the caller's reach left unless it
shows a full procfs or sysfs, the rootfs, its ancestors and what is below it kept."""
import errno

import pytest

from runtime import linux as L
from runtime import rootfs
from runtime.errors import Error

ROOT = "/b/bundle/rootfs"
TABLE = [  # (id, parent, mount point[, root, fstype]), as /proc/self/mountinfo lists them
    (1, 0, "/"),
    (2, 1, "/proc"),
    (3, 2, "/proc/sys/fs/binfmt_misc"),
    (4, 1, "/sys"),
    (5, 4, "/sys/fs/cgroup"),
    (6, 1, "/b"),                  # an ancestor of the rootfs: kept
    (7, 6, ROOT),                  # the rootfs and the bind of it on itself
    (8, 7, ROOT),
    (9, 8, ROOT + "/proc"),        # the container's own
    (10, 1, "/mnt"),               # two mounts stacked on /mnt
    (11, 10, "/mnt"),
    (12, 1, "/b/bundle/rootfs2"),  # a sibling whose name starts like the rootfs
    (13, 1, "/with space"),
]


def record(monkeypatch, table, fail=None):
    calls = []
    table = [t if len(t) == 5 else t + ("/", "tmpfs") for t in table]
    monkeypatch.setattr(rootfs, "_mountinfo", lambda: list(table))

    def mount(source, target, fstype, flags=0, data=None):
        calls.append(("mount", source, target, fstype, flags))

    def umount2(target, flags=0):
        if fail is not None:
            err = fail(target, calls)
            if err:
                raise OSError(err, "x")
        calls.append(("umount", target, flags))
    monkeypatch.setattr(L, "mount", mount)
    monkeypatch.setattr(L, "umount2", umount2)
    return calls


def test_only_the_tops_outside_go_each_a_slave_first(monkeypatch):
    stacked = iter([None, None, errno.EINVAL])  # /mnt: two mounts, then not a mount point

    def fail(target, calls):
        return next(stacked) if target == "/mnt" else None
    calls = record(monkeypatch, TABLE, fail)
    rootfs.hide_outside_mounts(ROOT)
    umounts = [c[1] for c in calls if c[0] == "umount"]
    assert sorted(umounts) == sorted(["/mnt", "/mnt", "/sys", "/proc", "/with space", "/b/bundle/rootfs2"])
    for i, c in enumerate(calls):
        if c[0] == "umount":
            prev = calls[i - 1]
            assert prev[0] == "mount" and prev[2] == c[1] and prev[4] == L.MS_SLAVE | L.MS_REC
            assert c[2] == L.MNT_DETACH
    touched = {c[2] if c[0] == "mount" else c[1] for c in calls}
    assert not touched & {"/", "/b", ROOT, ROOT + "/proc", "/proc/sys/fs/binfmt_misc", "/sys/fs/cgroup"}


def test_a_locked_mount_is_covered(monkeypatch):
    calls = record(monkeypatch, [(1, 0, "/"), (2, 1, "/proc"), (3, 1, "/r")],
                   fail=lambda target, calls: errno.EINVAL if target == "/proc" else None)
    rootfs.hide_outside_mounts("/r")
    assert ("mount", "tmpfs", "/proc", "tmpfs",
            L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC) in calls


def test_another_error_is_raised(monkeypatch):
    record(monkeypatch, [(1, 0, "/"), (2, 1, "/proc"), (3, 1, "/r")],
           fail=lambda target, calls: errno.EIO)
    with pytest.raises(OSError):
        rootfs.hide_outside_mounts("/r")


def test_an_unreachable_mount_is_left(monkeypatch):
    """Rootless: below a host directory only root may search (EACCES): out of the container's
    reach too; nothing else is tried there, the rest still goes."""
    calls = record(monkeypatch, [(1, 0, "/"), (2, 1, "/tmp/private/data"), (3, 2, "/tmp/private/data/x"),
                                 (4, 1, "/sys", "/", "sysfs"), (5, 1, "/r")],
                   fail=lambda target, calls: errno.EACCES if target.startswith("/tmp/private") else None)
    rootfs.hide_outside_mounts("/r")
    assert [c[1] for c in calls if c[0] == "umount"] == ["/sys"]
    assert not [c for c in calls if c[1] == "tmpfs"]


@pytest.mark.parametrize("fsroot, fstype, fails", [("/", "proc", True), ("/", "sysfs", True),
                                                   ("/sys", "proc", False), ("/", "tmpfs", False)])
def test_an_unreachable_full_procfs_fails(monkeypatch, fsroot, fstype, fails):
    """A full procfs or sysfs left in the namespace would let a nested user namespace mount a
    fresh one (mount_too_revealing): one that cannot be hidden is an error naming it."""
    record(monkeypatch, [(1, 0, "/"), (2, 1, "/tmp/private/data"), (3, 2, "/tmp/private/data/p", fsroot, fstype),
                         (4, 1, "/r")],
           fail=lambda target, calls: errno.EACCES if target.startswith("/tmp/private") else None)
    if fails:
        with pytest.raises(Error, match=f"the {fstype} mounted on /tmp/private/data/p cannot be hidden"):
            rootfs.hide_outside_mounts("/r")
    else:
        rootfs.hide_outside_mounts("/r")


def test_mountinfo_fields():
    """Our own table: every entry with a mount point, its root and a filesystem type."""
    table = rootfs._mountinfo()
    assert table and all(len(t) == 5 and t[2].startswith("/") and t[4] for t in table)
    assert any(t[4] == "proc" and t[2] == "/proc" for t in table)


@pytest.mark.parametrize("field, path", [("/a\\040b", "/a b"), ("/plain", "/plain"),
                                         ("/t\\011ab\\134x", "/t\tab\\x")])
def test_mountinfo_escapes(field, path):
    assert rootfs._unescape(field) == path
