"""Issue 18 "drop-in, to the letter": the rootfs and process-path behaviours of runc 1.1.5, run
against pyrunc and runc alike (runc's bats files mounts.bats, cwd.bats, dev.bats, env.bats are
the reference):

  - procfs and sysfs go on an ordinary directory only: a /proc or /sys that is a symlink (or a
    file) is refused, whatever it points at (the CVE-2023-28642 hardening);
  - a read-only tmpfs (and a read-only /dev) is made read-only after what goes below it: its
    sub-mounts, /dev's nodes and links, the cwd; a read-only bind is read-only at once;
  - a tmpfs over an existing directory takes the directory's mode, unless mode= is given;
  - a missing process.cwd is made (root-owned, 0755) inside the root, never through a magic link;
    `exec` with a missing cwd fails;
  - HOME comes from the container's /etc/passwd (or is "/") when process.env has none or an
    empty one, for the init and for exec.
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOTFS, base_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(os.path.join(ROOTFS, "bin", "busybox")),
                                reason="needs root and the busybox rootfs (make bundle)")

ORDINARY = "must be mounted on ordinary directory"


@pytest.fixture
def rootcopy(tmp_path):
    """A private, writable copy of the busybox rootfs."""
    dst = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", ROOTFS, str(dst)], check=True, timeout=60)
    return dst


def cfg_for(root, script, readonly=False):
    cfg = base_config(["sh", "-c", script])
    cfg["root"] = {"path": str(root), "readonly": readonly}
    return cfg


def runc_xfail(request, rt, reason):
    if rt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"runc 1.1.5: {reason}"))


def mounts_of(out):
    """{mountpoint: (per-mount options, fstype, super options)} from mountinfo text (last wins)."""
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 9 and "-" in f:
            s = f.index("-")
            res[f[4]] = (set(f[5].split(",")), f[s + 1], set(f[s + 3].split(",")))
    return res


# ------------------------------------------------------------------ 1. proc and sysfs destinations
@pytest.mark.parametrize("dest,link", [
    ("/proc", "host"),      # an absolute path that exists on the host
    ("/proc", "inside"),    # a directory inside the rootfs: still refused
    ("/proc", "dangling"),
    ("/proc", "file"),      # not a symlink, not a directory
    ("/sys", "host"),
])
def test_proc_sysfs_on_symlink_refused(anyrt, rootcopy, tmp_path, dest, link):
    outside = tmp_path / "outside"
    outside.mkdir()
    where = rootcopy / dest.lstrip("/")
    where.rmdir()
    if link == "file":
        where.write_text("")
    else:
        os.symlink({"host": str(outside), "inside": "mnt", "dangling": "/nonexistent"}[link], where)
    p = anyrt.run(cfg_for(rootcopy, "echo started"))
    assert p.returncode != 0, p
    assert "started" not in p.stdout
    assert ORDINARY in p.stderr, p.stderr
    assert os.listdir(outside) == [] and os.listdir(rootcopy / "mnt") == []
    assert not (rootcopy / "nonexistent").exists()


def test_proc_under_symlinked_parent_resolves_in_root(anyrt, rootcopy):
    """Only the destination itself must be a real directory: a (relative) symlink in a parent
    resolves inside the root, for procfs as for any mount."""
    os.symlink("mnt", rootcopy / "alias")
    cfg = cfg_for(rootcopy, "grep -c ' /mnt/p .* proc ' /proc/self/mountinfo")
    cfg["mounts"].append({"destination": "/alias/p", "type": "proc", "source": "proc"})
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1"
    assert (rootcopy / "mnt" / "p").is_dir()


# ------------------------------------------------------------------ 2. read-only after sub-mounts
def test_read_only_dev_gets_its_sub_mounts(anyrt):
    """runc's mounts.bats "[ro tmpfs mount]" with /dev: devpts, shm, mqueue, the default nodes
    and links are made on the read-only /dev, which is read-only in the end."""
    cfg = base_config(["sh", "-c", "cat /proc/self/mountinfo; stat -c '%n %F %t:%T' /dev/null; readlink /dev/ptmx;"
                       " touch /dev/x 2>/dev/null && echo WROTE || echo REFUSED"])
    dev = next(m for m in cfg["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    m = mounts_of(p.stdout)
    assert "ro" in m["/dev"][0] and m["/dev"][1] == "tmpfs"
    assert m["/dev/pts"][1] == "devpts" and m["/dev/shm"][1] == "tmpfs" and m["/dev/mqueue"][1] == "mqueue"
    assert "rw" in m["/dev/shm"][0]
    assert "/dev/null character special file 1:3" in p.stdout
    assert "pts/ptmx" in p.stdout
    assert p.stdout.rstrip().endswith("REFUSED")


def test_read_only_tmpfs_gets_sub_mount_and_cwd(anyrt, rootcopy):
    """A read-only tmpfs with a mount below it, and the cwd made in it (read-only root too)."""
    cfg = cfg_for(rootcopy, "pwd; cat /proc/self/mountinfo; touch /data/x 2>/dev/null && echo WROTE || echo REFUSED",
                  readonly=True)
    cfg["mounts"] += [{"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "mode=755"]},
                      {"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"}]
    cfg["process"]["cwd"] = "/data/work"
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "/data/work"
    m = mounts_of(p.stdout)
    assert "ro" in m["/data"][0] and "rw" in m["/data/sub"][0]
    assert p.stdout.rstrip().endswith("REFUSED")
    assert not (rootcopy / "data" / "sub").exists()  # made in the tmpfs, not in the rootfs


def test_read_only_tmpfs_through_symlink_and_setgid_parents(anyrt, rootcopy):
    """mounts.bats "tmpfs mount with absolute symlink" (/conf -> /real/conf, resolved in the root,
    the read-only remount too) and "setgid / + mkdirall" (made parents inherit set-gid)."""
    os.makedirs(rootcopy / "real" / "conf")
    os.symlink("/real/conf", rootcopy / "conf")
    (rootcopy / "setgid").mkdir()
    os.chmod(rootcopy / "setgid", 0o7755)
    cfg = cfg_for(rootcopy, "cat /proc/self/mountinfo")
    cfg["mounts"] += [{"type": "tmpfs", "source": "tmpfs", "destination": d, "options": ["ro", "nodev", "nosuid"]}
                      for d in ("/conf/stack", "/setgid/a/b/c")]
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    m = mounts_of(p.stdout)
    assert "ro" in m["/real/conf/stack"][0] and "ro" in m["/setgid/a/b/c"][0]
    assert [oct(os.stat(rootcopy / d).st_mode & 0o7777) for d in ("setgid/a", "setgid/a/b", "setgid/a/b/c")] \
        == ["0o2755"] * 3


def test_read_only_bind_is_read_only_at_once(anyrt, rootcopy, tmp_path):
    """A read-only bind is not written to make what goes below it: its source stays untouched."""
    src = tmp_path / "src"
    src.mkdir()
    cfg = cfg_for(rootcopy, "true")
    cfg["mounts"] += [{"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
                      {"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"}]
    p = anyrt.run(cfg)
    assert p.returncode != 0
    assert "read-only file system" in p.stderr.lower()
    assert os.listdir(src) == []


# ------------------------------------------------------------------ 3. tmpfs mode
@pytest.mark.parametrize("opts,want", [
    ([], "2750"),               # the directory's mode (set-id bits too), not tmpfs's 1777
    (["mode=0700"], "700"),     # an explicit mode wins
    (["uid=5", "gid=6"], "2750"),
])
def test_tmpfs_over_directory_takes_its_mode(anyrt, request, rootcopy, opts, want):
    if opts == ["mode=0700"]:
        runc_xfail(request, anyrt, "the directory's mode overrides mode= (runc issue #3911, fixed in 1.1.8)")
    d = rootcopy / "data"
    d.mkdir()
    os.chown(d, 12, 34)
    os.chmod(d, 0o2750)
    cfg = cfg_for(rootcopy, "stat -c '%a %u:%g' /data /fresh")
    cfg["mounts"] += [{"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": opts},
                      {"destination": "/fresh", "type": "tmpfs", "source": "tmpfs", "options": opts}]
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    owner = "5:6" if "uid=5" in opts else "0:0"  # the owner is tmpfs's, never the directory's
    fresh = want if opts == ["mode=0700"] else "1777"
    assert p.stdout.split("\n")[:2] == [f"{want} {owner}", f"{fresh} {owner}"]


# ------------------------------------------------------------------ 4. process.cwd
@pytest.mark.parametrize("cwd,made", [
    ("/new/dir", "new/dir"),
    ("/tmp/../../esc/x", "esc/x"),  # '..' stops at the root
])
def test_missing_cwd_is_made(anyrt, rootcopy, cwd, made):
    cfg = cfg_for(rootcopy, "pwd; stat -c '%a %u:%g' . ..", readonly=True)
    cfg["process"]["cwd"] = cwd
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:3] == ["/" + made, "755 0:0", "755 0:0"]
    assert (rootcopy / made).is_dir()


@pytest.mark.parametrize("target", ["host", "inside"])
def test_missing_cwd_through_dangling_symlink(anyrt, rootcopy, tmp_path, target):
    """A dangling symlink on the way to the cwd fails (runc's MkdirAll), and never leads to the
    host directory it names."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside) if target == "host" else "/nowhere", rootcopy / "lnk")
    cfg = cfg_for(rootcopy, "pwd")
    cfg["process"]["cwd"] = "/lnk/sub"
    p = anyrt.run(cfg)
    assert os.listdir(outside) == []
    assert p.returncode != 0 and "pwd" not in p.stdout
    assert not (rootcopy / "nowhere").exists() and not (rootcopy / str(outside).lstrip("/")).exists()


def test_cwd_through_symlink_to_directory(anyrt, rootcopy):
    """A symlink to a directory of the rootfs is followed inside the root; ".." is resolved
    after it, as the kernel resolves it (not lexically)."""
    os.makedirs(rootcopy / "a" / "b")
    os.symlink("/a/b", rootcopy / "lnk")
    cfg = cfg_for(rootcopy, "pwd -P")
    cfg["process"]["cwd"] = "/lnk/../new"
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "/a/new"
    assert (rootcopy / "a" / "new").is_dir()


def test_cwd_through_magic_link_refused(anyrt, request, rootcopy):
    """The cwd is made in the root without magic links (/proc/self/root, /proc/PID/fd/N: the
    CVE-2024-21626 family)."""
    runc_xfail(request, anyrt, "makes the cwd through /proc/self/root (here the container's own root)")
    cfg = cfg_for(rootcopy, "pwd")
    cfg["process"]["cwd"] = "/proc/self/root/made-by-link"
    p = anyrt.run(cfg)
    assert not (rootcopy / "made-by-link").exists()
    assert p.returncode == 1
    assert "process.cwd" in p.stderr and "Traceback" not in p.stderr


def _running(rt, cfg):
    cid = rt.new_id()
    rt("run", "-d", "--bundle", rt.bundle(cfg), cid, check=True)
    return cid


def test_exec_missing_cwd_fails(anyrt, rootcopy):
    cid = _running(anyrt, cfg_for(rootcopy, "sleep 1000"))
    p = anyrt("exec", "--cwd", "/nope/x", cid, "pwd")
    assert p.returncode != 0
    assert "chdir to cwd" in p.stderr and "no such file or directory" in p.stderr
    assert not (rootcopy / "nope").exists()


# ------------------------------------------------------------------ 5. HOME
@pytest.mark.parametrize("uid,env,want", [
    (0, [], "/root"),
    (1000, [], "/"),                           # no passwd entry
    (0, ["HOME=/override"], "/override"),
    (0, ["HOME="], "/root"),                   # env.bats: an empty HOME is overridden
    (0, ["HOME=/override", "HOME="], "/root"),
    (7, [], ""),                               # an entry with an empty home field
    (8, [], "/h8"),                            # uid written "+8"
    (9, [], ""),                               # an entry without a home field
])
def test_home(anyrt, rootcopy, uid, env, want):
    with open(rootcopy / "etc" / "passwd", "a") as f:
        f.write("seven:x:7:7:seven::/bin/sh\n  eight:x:+8:8:eight:/h8:/bin/sh\nnine:x:9:9\n")
    cfg = cfg_for(rootcopy, "echo \"HOME=${HOME-unset}\"; env | grep -c ^HOME=")
    cfg["process"]["user"] = {"uid": uid, "gid": uid}
    cfg["process"]["env"] = ["PATH=/bin"] + env
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == [f"HOME={want}", "1"]


def test_exec_home(anyrt, rootcopy, tmp_path):
    cid = _running(anyrt, cfg_for(rootcopy, "sleep 1000"))
    got = []
    for user in ("0", "1000"):
        p = anyrt("exec", "-u", user, cid, "sh", "-c", "echo $HOME", check=True)
        got.append(p.stdout.strip())
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": ["sh", "-c", "echo $HOME"], "cwd": "/", "env": ["PATH=/bin", "HOME="],
                                "user": {"uid": 0, "gid": 0}}))
    got.append(anyrt("exec", "-p", str(proc), cid, check=True).stdout.strip())
    assert got == ["/root", "/", "/root"]


# ------------------------------------------------------------------ programs on a noexec mount
@pytest.mark.parametrize("kind", ["script", "binary"])
def test_program_on_noexec_mount_refused(anyrt, tmp_path, kind):
    """execve refuses any file on a noexec mount (path_noexec), a #! script included: pyrunc
    follows #! lines itself (runtime/program.py) and must refuse it as the kernel would, for the
    init and for exec, instead of running the interpreter on it."""
    d = tmp_path / "nx"
    d.mkdir()
    if kind == "script":
        (d / "prog").write_text("#!/bin/sh\necho RAN\n")
    else:
        shutil.copy(os.path.join(ROOTFS, "bin", "busybox"), d / "prog")
    os.chmod(d / "prog", 0o755)
    cfg = base_config(["/opt/prog", "echo", "RAN"])  # /opt: in the shared rootfs already
    cfg["mounts"].append({"destination": "/opt", "type": "bind", "source": str(d),
                          "options": ["rbind", "ro", "noexec"]})
    p = anyrt.run(cfg)
    assert p.returncode != 0 and "RAN" not in p.stdout, (p.stdout, p.stderr)
    assert "permission denied" in p.stderr.lower(), p.stderr
    cfg["process"]["args"] = ["sleep", "100"]
    cid = anyrt.new_id("nx")
    anyrt("run", "-d", "--bundle", anyrt.bundle(cfg), cid, check=True)
    p = anyrt("exec", cid, "/opt/prog", "echo", "RAN")
    assert p.returncode != 0 and "RAN" not in p.stdout, (p.stdout, p.stderr)
    assert "permission denied" in p.stderr.lower(), p.stderr
