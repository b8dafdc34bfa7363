"""config.md "Mounts" and config-linux.md filesystem fields, read from inside real containers:
propagation, recursive attributes, binds of files and dirs, tmpfs options, idmapped mounts,
rootfsPropagation, the cgroup mount, destinations that try to leave the rootfs."""
import os
import subprocess

import pytest

import envutil as E
from envutil import base_config, mnt_tmpfs, ok, fails, run, mountinfo

pytestmark = [E.needs_root, E.have_rootfs]
BOTH = E.runtime_params()
MI = "cat /proc/self/mountinfo"


def bind(dest, src, *opts, typ="bind"):
    return {"destination": dest, "type": typ, "source": str(src), "options": list(opts)}


@pytest.fixture
def srcdir(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "hello").write_text("hi\n")
    return d


# ------------------------------------------------------------------ propagation
@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("word,want", [
    ("shared", "shared"), ("rshared", "shared"), ("slave", "master"), ("rslave", "master"),
    ("private", None), ("rprivate", None), ("unbindable", "unbindable"), ("runbindable", "unbindable")])
def test_mount_propagation(rt, word, want, srcdir, tmp_path):
    cfg = mnt_tmpfs(base_config(MI))
    cfg["mounts"].append(bind("/mnt/p", srcdir, "rbind", word))
    # the runtime runs where every mount is shared, so a slave has a master to show
    out = ok(rt, cfg, tmp_path, setup="mount --make-rshared /")
    opt = mountinfo(out)["/mnt/p"][1]
    kinds = {o.split(":")[0] for o in opt}
    if want is None:
        assert kinds == set(), opt
    else:
        assert want in kinds, opt
    if want == "master":
        assert "shared" not in kinds


@pytest.mark.parametrize("word,want,rt", [
    ("shared", "shared", "pyrunc"),
    pytest.param("shared", "shared", "runc", marks=pytest.mark.skip(
        reason="runc 1.1.5 leaves / private with rootfsPropagation shared (applied after pivot_root in 1.2)")),
    ("slave", "master", "pyrunc"), ("slave", "master", "runc"),
    ("private", None, "pyrunc"), ("private", None, "runc"),
    ("unbindable", "unbindable", "pyrunc"),
    pytest.param("unbindable", "unbindable", "runc", marks=pytest.mark.skip(
        reason="runc 1.1.5 applies it to the host-side / only, not the container's root")),
])
def test_rootfs_propagation(rt, word, want, tmp_path):
    cfg = base_config(MI)
    cfg["linux"]["rootfsPropagation"] = word
    out = ok(rt, cfg, tmp_path, setup="mount --make-rshared /")
    kinds = {o.split(":")[0] for o in mountinfo(out)["/"][1]}
    if want is None:
        assert not kinds & {"shared", "master"}, kinds
    else:
        assert want in kinds, kinds


# ------------------------------------------------------------------ recursive attributes
SUBMOUNT = "mount -t tmpfs -o size=1m sub {d}/sub"


@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("word,flag", [("rro", "ro"), ("rnosuid", "nosuid"), ("rnodev", "nodev"),
                                       ("rnoexec", "noexec"), ("rnoatime", "noatime")])
def test_recursive_attributes(rt, word, flag, srcdir, tmp_path):
    (srcdir / "sub").mkdir()
    cfg = mnt_tmpfs(base_config(MI))
    cfg["mounts"].append(bind("/mnt/r", srcdir, "rbind", word))
    out = ok(rt, cfg, tmp_path, setup=SUBMOUNT.format(d=srcdir))
    mi = mountinfo(out)
    assert flag in mi["/mnt/r"][0], mi["/mnt/r"]
    assert flag in mi["/mnt/r/sub"][0], mi["/mnt/r/sub"]


@pytest.mark.parametrize("rt", BOTH)
def test_plain_ro_is_not_recursive_but_rro_is(rt, srcdir, tmp_path):
    (srcdir / "sub").mkdir()
    cfg = mnt_tmpfs(base_config("touch /mnt/ro/sub/a && echo sub-rw; touch /mnt/ro/a || echo top-ro; "
                                "touch /mnt/rro/sub/a || echo rsub-ro"))
    cfg["mounts"] += [bind("/mnt/ro", srcdir, "rbind", "ro"), bind("/mnt/rro", srcdir, "rbind", "rro")]
    out = ok(rt, cfg, tmp_path, setup=SUBMOUNT.format(d=srcdir))
    assert [w for w in out.split() if w in ("sub-rw", "top-ro", "rsub-ro")] == ["sub-rw", "top-ro", "rsub-ro"]


# ------------------------------------------------------------------ binds and tmpfs
@pytest.mark.parametrize("rt", BOTH)
def test_bind_file_and_dir(rt, srcdir, tmp_path):
    f = tmp_path / "file"
    f.write_text("file content\n")
    cfg = mnt_tmpfs(base_config("cat /mnt/deep/f; cat /mnt/d/hello; echo new > /mnt/d/made; "
                                "echo x >> /mnt/fro || echo fro-refused; stat -c %F /mnt/deep/f"))
    cfg["mounts"] += [bind("/mnt/deep/f", f, "bind"), bind("/mnt/d", srcdir, "rbind", "rw"),
                      bind("/mnt/fro", f, "bind", "ro")]
    out = ok(rt, cfg, tmp_path)
    assert out.splitlines()[:2] == ["file content", "hi"]
    assert "fro-refused" in out and "regular file" in out
    assert (srcdir / "made").read_text() == "new\n"
    assert f.read_text() == "file content\n"


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip='type "bind" without a bind option is not a bind'))
def test_bind_type_without_bind_option(rt, srcdir, tmp_path):
    cfg = mnt_tmpfs(base_config("cat /mnt/d/hello"))
    cfg["mounts"].append({"destination": "/mnt/d", "type": "bind", "source": str(srcdir)})
    assert ok(rt, cfg, tmp_path) == "hi\n"


@pytest.mark.parametrize("rt", BOTH)
def test_bind_with_flags(rt, srcdir, tmp_path):
    cfg = mnt_tmpfs(base_config(MI))
    cfg["mounts"].append(bind("/mnt/b", srcdir, "rbind", "ro", "nosuid", "nodev", "noexec", "noatime"))
    per = mountinfo(ok(rt, cfg, tmp_path))["/mnt/b"][0]
    assert {"ro", "nosuid", "nodev", "noexec", "noatime"} <= per, per


@pytest.mark.parametrize("rt", BOTH)
def test_tmpfs_size_mode_and_flags(rt, tmp_path):
    cfg = mnt_tmpfs(base_config(MI + "; stat -c %a /mnt/t"))
    cfg["mounts"].append({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m", "mode=1770", "nosuid", "nodev", "noexec", "ro"]})
    out = ok(rt, cfg, tmp_path)
    per, _, fstype, sup = mountinfo(out)["/mnt/t"]
    assert fstype == "tmpfs" and "size=1024k" in sup and "mode=1770" in sup
    assert {"ro", "nosuid", "nodev", "noexec"} <= per
    assert out.splitlines()[-1] == "1770"


@pytest.mark.parametrize("rt", BOTH)
def test_cgroup_mount_is_read_only(rt, tmp_path):
    cfg = base_config(MI + "; mkdir /sys/fs/cgroup/pids/x 2>/dev/null || echo refused")
    out = ok(rt, cfg, tmp_path)
    mi = mountinfo(out)
    cg = {mp: v for mp, v in mi.items() if v[2] in ("cgroup", "cgroup2")}
    assert cg and all("ro" in v[0] for v in cg.values()), cg
    assert "/sys/fs/cgroup/pids" in cg
    assert out.splitlines()[-1] == "refused"


# ------------------------------------------------------------------ idmapped mounts
IDMAP = [{"containerID": 0, "hostID": 1000, "size": 10}]


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no idmap mounts (runc 1.2)"))
@pytest.mark.parametrize("word", ["idmap", "ridmap"])
def test_idmap_mount(rt, word, srcdir, tmp_path):
    """A mapping {containerID c, hostID h} shows the source's id c as h (the mapping of a user
    namespace, as runc and crun use it); ids outside it show as the overflow id."""
    os.chown(srcdir / "hello", 5, 6)
    (srcdir / "rootowned").write_text("")
    (srcdir / "far").write_text("")
    os.chown(srcdir / "far", 5000, 5000)
    cfg = mnt_tmpfs(base_config("stat -c %u:%g /mnt/i/hello /mnt/i/rootowned /mnt/i/far"))
    m = bind("/mnt/i", srcdir, "rbind", word)
    m["uidMappings"] = IDMAP
    m["gidMappings"] = IDMAP
    cfg["mounts"].append(m)
    out = ok(rt, cfg, tmp_path).split("\n")
    assert out[:3] == ["1005:1006", "1000:1000", "65534:65534"]
    assert (srcdir / "hello").stat().st_uid == 5  # the host's view is unchanged


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no idmap mounts (runc 1.2)"))
def test_idmap_mount_writes_map_back(rt, srcdir, tmp_path):
    os.chmod(srcdir, 0o777)
    cfg = mnt_tmpfs(base_config("echo w > /mnt/i/new; touch /mnt/plain/x 2>/dev/null || echo plain-refused"))
    cfg["process"]["user"] = {"uid": 1003, "gid": 1004}
    m = bind("/mnt/i", srcdir, "bind", "idmap")
    m["uidMappings"] = IDMAP
    m["gidMappings"] = IDMAP
    cfg["mounts"].append(m)
    ok(rt, cfg, tmp_path)
    st = (srcdir / "new").stat()
    assert (st.st_uid, st.st_gid) == (3, 4)


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no idmap mounts (runc 1.2)"))
def test_idmap_mount_with_container_userns_mapping(rt, tmp_path):
    """No mount mappings: the container's user namespace mapping is used (config.md MAY)."""
    import shutil
    import tempfile
    top = tempfile.mkdtemp(prefix="pyrunc-envtest-", dir="/tmp")  # the container's root can reach it
    try:
        os.chmod(top, 0o755)
        srcdir = os.path.join(top, "src")
        os.mkdir(srcdir)
        with open(os.path.join(srcdir, "hello"), "w") as f:
            f.write("hi\n")
        _idmap_userns(rt, srcdir, tmp_path)
    finally:
        shutil.rmtree(top)


def _idmap_userns(rt, srcdir, tmp_path):
    m = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg = mnt_tmpfs(base_config("stat -c %u:%g /mnt/i/hello /mnt/plain/hello"))
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = m
    cfg["linux"]["gidMappings"] = m
    cfg["mounts"] = [x for x in cfg["mounts"] if x["destination"] not in ("/sys", "/sys/fs/cgroup")]
    cfg["linux"]["maskedPaths"] = [p for p in cfg["linux"]["maskedPaths"] if not p.startswith("/sys")]
    cfg["mounts"] += [bind("/mnt/i", srcdir, "rbind", "idmap"), bind("/mnt/plain", srcdir, "rbind")]
    # root-owned on the host: seen as root through the idmapped mount, as nobody without it
    assert ok(rt, cfg, tmp_path).split() == ["0:0", "65534:65534"]


# ------------------------------------------------------------------ destinations stay inside
@pytest.fixture
def rootcopy(tmp_path):
    """A private copy of the busybox rootfs that a test may change."""
    dst = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", E.ROOTFS, str(dst)], check=True, timeout=30)
    return dst


@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_destination_symlink_cannot_leave_rootfs(rt, kind, rootcopy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = str(outside) if kind == "absolute" else "../" * 20 + str(outside).lstrip("/")
    os.symlink(target, rootcopy / "escape")
    cfg = base_config(MI)
    cfg["root"]["path"] = str(rootcopy)
    cfg["mounts"].append({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"})
    out = ok(rt, cfg, tmp_path)
    assert not (outside / "sub").exists()  # nothing made outside the rootfs
    inside = rootcopy / str(outside).lstrip("/") / "sub"
    assert inside.is_dir()                 # the link was followed as if the rootfs were /
    assert str(outside) + "/sub" in mountinfo(out)


@pytest.mark.parametrize("rt", BOTH)
def test_bind_source_symlink_is_host_side(rt, srcdir, rootcopy, tmp_path):
    """Missing destination parents are created inside the rootfs, a file destination as a file."""
    f = tmp_path / "file"
    f.write_text("x\n")
    cfg = base_config("cat /a/b/c/f; stat -c %F /a/b/c/f")
    cfg["root"]["path"] = str(rootcopy)
    cfg["mounts"].append(bind("/a/b/c/f", f, "bind"))
    assert ok(rt, cfg, tmp_path).split("\n")[:2] == ["x", "regular file"]
    assert (rootcopy / "a/b/c/f").is_file()


@pytest.mark.parametrize("rt", BOTH)
def test_tmpcopyup(rt, rootcopy, tmp_path):
    """tmpcopyup: the destination's contents are copied into the new tmpfs with owner, mode,
    times, symlinks (not followed), subdirectories and special files; the rootfs is untouched."""
    d = rootcopy / "data"
    (d / "sub").mkdir(parents=True)
    (d / "f").write_text("content\n")
    (d / "sub" / "g").write_text("deep\n")
    os.chown(d / "f", 1234, 5678)
    os.chmod(d / "f", 0o604)
    os.chmod(d / "sub", 0o751)
    os.chmod(d, 0o710)
    os.utime(d / "f", (1000000000, 1000000000))
    os.symlink("/etc/passwd", d / "abs")
    os.symlink("../../../../" + str(tmp_path).lstrip("/"), d / "up")
    cfg = base_config("cd /data && stat -c '%n %a %u:%g %F' . f sub && stat -c %Y f && "
                      "readlink abs && readlink up && cat f sub/g && echo new > sub/g && cat sub/g && "
                      "grep -c ' /data ' /proc/self/mountinfo")
    cfg["root"]["path"] = str(rootcopy)
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["tmpcopyup", "nosuid"]})
    out = ok(rt, cfg, tmp_path).splitlines()
    assert out[:3] == [". 710 0:0 directory", "f 604 1234:5678 regular file",
                       "sub 751 0:0 directory"], out
    if rt == "pyrunc":
        assert out[3] == "1000000000"  # runc 1.1.5 does not keep times
    assert out[4:6] == ["/etc/passwd", "../../../../" + str(tmp_path).lstrip("/")]
    assert out[6:] == ["content", "deep", "new", "1"]
    assert (d / "sub/g").read_text() == "deep\n"  # the copy was written, not the rootfs


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="tmpcopyup fails on a fifo (lchown)"))
def test_tmpcopyup_special_files(rt, rootcopy, tmp_path):
    d = rootcopy / "data"
    d.mkdir()
    os.mkfifo(d / "fifo")
    os.chmod(d / "fifo", 0o620)
    os.mknod(d / "null", 0o020000, os.makedev(1, 3))
    os.chmod(d / "null", 0o666)
    os.chown(d / "null", 5, 6)
    cfg = base_config("cd /data && stat -c '%n %a %u:%g %F %t:%T' fifo null && echo x > null")
    cfg["root"]["path"] = str(rootcopy)
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["tmpcopyup", "dev"]})
    assert ok(rt, cfg, tmp_path).splitlines() == ["fifo 620 0:0 fifo 0:0",
                                                  "null 666 5:6 character special file 1:3"]


@pytest.mark.parametrize("rt", BOTH)
def test_tmpcopyup_read_only(rt, tmp_path):
    cfg = base_config("cat /etc/passwd | head -1; touch /etc/x || echo refused")
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                          "options": ["tmpcopyup", "ro"]})
    assert ok(rt, cfg, tmp_path).splitlines() == ["root:x:0:0:root:/root:/bin/sh", "refused"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("rt", BOTH)
def test_bind_source_missing(rt, tmp_path):
    cfg = mnt_tmpfs(base_config())
    cfg["mounts"].append(bind("/mnt/x", tmp_path / "nope", "bind"))
    fails(rt, cfg, tmp_path, "nope")


@pytest.mark.parametrize("rt", BOTH)
def test_bad_mount_type(rt, tmp_path):
    cfg = mnt_tmpfs(base_config())
    cfg["mounts"].append({"destination": "/mnt/x", "type": "nosuchfs", "source": "x"})
    r = fails(rt, cfg, tmp_path)
    if rt == "pyrunc":
        assert "mounts[" in r.err and "/mnt/x" in r.err


@pytest.mark.parametrize("rt", BOTH)
def test_bad_rootfs_propagation(rt, tmp_path):
    cfg = base_config()
    cfg["linux"]["rootfsPropagation"] = "sideways"
    r = fails(rt, cfg, tmp_path)
    if rt == "pyrunc":
        assert "rootfsPropagation" in r.err


@pytest.mark.parametrize("bad,word", [
    ({"options": ["idmap"]}, "needs uidMappings"),
    ({"options": ["rbind"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
      "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}, "without the idmap"),
    ({"options": ["idmap"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}, "mounts[4]"),
])
def test_bad_idmap(bad, word, srcdir, tmp_path):
    cfg = base_config()
    m = {"destination": "/mnt", "type": "bind", "source": str(srcdir)}
    m.update(bad)
    cfg["mounts"].insert(4, m)
    fails("pyrunc", cfg, tmp_path, word)


def test_idmap_on_tmpfs_refused(tmp_path):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    fails("pyrunc", cfg, tmp_path, "bind mounts only")
