"""--no-pivot's hiding of the mounts outside the rootfs (rootfs.hide_outside_mounts), against a
recorded mount table and recorded mount calls: which mounts go, in which order, each made a slave
before its lazy umount, a locked one covered instead, the rootfs, its ancestors and what is below
it kept."""
import errno

import pytest

from runtime import linux as L
from runtime import rootfs

ROOT = "/b/bundle/rootfs"
TABLE = [  # (id, parent, mount point), as /proc/self/mountinfo lists them
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


@pytest.mark.parametrize("field, path", [("/a\\040b", "/a b"), ("/plain", "/plain"),
                                         ("/t\\011ab\\134x", "/t\tab\\x")])
def test_mountinfo_escapes(field, path):
    assert rootfs._unescape(field) == path
