"""Writes the runtime makes under /proc must reach procfs and nothing else (the CVE-2025-52881
family): a bundle may not mount inside /proc, a symlink in the image may not lead a mount there,
and even if a mount got there, the write goes beneath a procfs root opened before pivot_root,
refusing symlinks and mount crossings (runtime/procfs.py).

Two defences, so two weakened copies: without the mount check, the verified write must still hold
(the host canary stays untouched); without both, the detector (the canary changes) must fire.
"""
import os

import pytest

from secutil import base_config, copy_rootfs
from weaken import weakened

CANARY = "canary-untouched"


def _canary_dir(tmp_path):
    d = tmp_path / "fake-ipv4"
    d.mkdir()
    (d / "ip_forward").write_text(CANARY)
    return d


def _netns_cfg(args=("true",)):
    cfg = base_config(args)
    nss = cfg["linux"]["namespaces"]
    if not any(n["type"] == "network" for n in nss):
        nss.append({"type": "network"})
    return cfg


def _bind(src, dest):
    return {"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "rw"]}


# ------------------------------------------------------------------ mounts inside /proc
@pytest.mark.parametrize("dest,kind", [
    ("/proc/sys/net/ipv4", "dir"), ("/proc/sys", "dir"), ("/proc/self/attr", "dir"),
    ("/proc/1/oom_score_adj", "file"), ("/proc/sys/kernel/core_pattern", "file"),
    ("/proc", "dir"),  # only a procfs may be mounted on /proc itself
])
def test_mount_inside_proc_refused(anyrt, tmp_path, dest, kind):
    src = tmp_path / "src"
    if kind == "dir":
        src.mkdir()
    else:
        src.write_text(CANARY)
    cfg = base_config()
    cfg["mounts"].append(_bind(src, dest))
    p = anyrt.run(cfg)
    assert p.returncode != 0, f"{anyrt.name} mounted {dest}"
    if anyrt.name == "pyrunc":
        i = len(cfg["mounts"]) - 1
        assert f"mounts[{i}].destination" in p.stderr and dest in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_tmpfs_inside_proc_refused(anyrt, request):
    if anyrt.name == "runc":
        request.node.add_marker(pytest.mark.xfail(
            reason="runc 1.1.5 mounts a tmpfs over /proc/self/attr (the CVE-2025-52881 family)", strict=True))
    cfg = base_config()
    cfg["mounts"].append({"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"})
    p = anyrt.run(cfg)
    assert p.returncode != 0


@pytest.mark.parametrize("dest", ["/proc/meminfo", "/proc/uptime", "/proc/loadavg"])
def test_lxcfs_style_file_mounts_allowed(anyrt, tmp_path, dest):
    src = tmp_path / "fake"
    src.write_text("fake 42\n")
    cfg = base_config(["cat", dest])
    cfg["mounts"].append(_bind(src, dest))
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert "fake 42" in p.stdout


def test_symlink_leading_mount_into_proc_refused(pyrunc, tmp_path):
    """/x -> /proc/sys/net in the image: mounts[].destination /x/ipv4 is inside /proc once resolved."""
    root = copy_rootfs(tmp_path)
    os.symlink("/proc/sys/net", os.path.join(root, "x"))
    d = _canary_dir(tmp_path)
    cfg = _netns_cfg()
    cfg["root"]["path"] = root
    cfg["mounts"].append(_bind(d, "/x/ipv4"))
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    p = pyrunc.run(cfg)
    assert p.returncode != 0
    assert "destination" in p.stderr and "/proc" in p.stderr, p.stderr
    assert (d / "ip_forward").read_text() == CANARY


# ------------------------------------------------------------------ the verified write itself
NO_MOUNT_CHECK = {"rootfs.py": [
    ('    """Raise Error when mount plan P may not go to DEST (container view, normalized)."""\n',
     '    """Raise Error when mount plan P may not go to DEST (container view, normalized)."""\n    return\n'),
]}
PLAIN_WRITES = {"procfs.py": [
    ('    fd = open(rel, os.O_WRONLY)\n',
     '    import builtins\n    with builtins.open("/proc/" + rel, "wb") as f:\n'
     '        f.write(data.encode() if isinstance(data, str) else data)\n    return\n'),
]}


def _sysctl_attack(rt, tmp_path):
    d = _canary_dir(tmp_path)
    cfg = _netns_cfg()
    cfg["mounts"].append(_bind(d, "/proc/sys/net/ipv4"))
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    p = rt.run(cfg)
    return p, (d / "ip_forward").read_text()


def _oom_attack(rt, tmp_path):
    f = tmp_path / "fake-oom"
    f.write_text(CANARY)
    cfg = base_config()
    cfg["process"]["oomScoreAdj"] = 100
    cfg["mounts"].append(_bind(f, "/proc/self/oom_score_adj"))
    p = rt.run(cfg)
    return p, f.read_text()


ATTACKS = {"sysctl": _sysctl_attack, "oom_score_adj": _oom_attack}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_write_stays_on_procfs_without_the_mount_check(tmp_path, attack):
    rt = weakened(tmp_path, NO_MOUNT_CHECK, "no-mount-check")
    try:
        p, canary = ATTACKS[attack](rt, tmp_path)
        # the write went to the kernel's own file (beneath the host's procfs root), not the mount
        assert canary == CANARY, f"the {attack} write reached the bind-mounted host file"
    finally:
        assert not rt.cleanup()


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_detector_fires_without_both_defences(tmp_path, attack):
    patches = dict(NO_MOUNT_CHECK, **PLAIN_WRITES)
    rt = weakened(tmp_path, patches, "no-procfs-checks")
    try:
        _, canary = ATTACKS[attack](rt, tmp_path)
        assert canary != CANARY, f"the detector missed a plain {attack} write through a mount"
    finally:
        assert not rt.cleanup()


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_procfs_attack_against_runtime(anyrt, tmp_path, attack):
    """The same configs against the real runtimes: refused, the canary untouched."""
    p, canary = ATTACKS[attack](anyrt, tmp_path)
    assert canary == CANARY
    assert p.returncode != 0
