"""Files a pyrunc process reads from the container's filesystem are hostile: the init and `exec`
without HOME read the container's /etc/passwd, which may be a FIFO (an open that never returns), /dev/zero (a
read without end) or a link through /proc. It must be opened in the root without magic links,
without blocking, be a regular file and be read up to a bound; HOME is then "/" as runc's default.
runc 1.1.5 reads /etc/passwd already at create: a FIFO there hangs it, /dev/zero fails it.
"""
import os
import subprocess

import pytest

from secutil import base_config, copy_rootfs
from weaken import weakened


def _image(tmp_path, kind):
    root = copy_rootfs(tmp_path)
    pw = os.path.join(root, "etc", "passwd")
    os.unlink(pw)
    if kind == "fifo":
        os.mkfifo(pw)
    elif kind == "zero":
        os.symlink("/dev/zero", pw)
    elif kind == "magic":
        os.symlink("/proc/self/root/etc/group", pw)
    elif kind == "big":
        with open(pw, "w") as f:  # 8 MiB of lines, root's entry past the read bound
            f.write("x:x:1:1::/nowhere:/bin/sh\n" * 330000 + "root:x:0:0:root:/root:/bin/sh\n")
    return root


def _exec_home(rt, root, timeout=20):
    cfg = base_config(["sleep", "300"])
    cfg["root"]["path"] = root
    cfg["process"]["env"] = ["PATH=/bin:/usr/bin"]  # no HOME: exec looks it up
    b = rt.bundle(cfg)
    cid = rt.new_id()
    try:
        rt("run", "-d", "--bundle", b, cid, check=True, timeout=timeout)
        return rt("exec", cid, "sh", "-c", "echo HOME=$HOME", timeout=timeout)
    finally:
        rt("delete", "--force", cid, timeout=30)


@pytest.mark.parametrize("kind", ["fifo", "zero", "magic", "big"])
def test_exec_reads_passwd_safely(anyrt, tmp_path, request, kind):
    if anyrt.name == "runc" and kind in ("fifo", "zero"):
        request.node.add_marker(pytest.mark.xfail(
            reason=f"runc 1.1.5 reads /etc/passwd at create: a {kind} there "
                   + ("hangs it" if kind == "fifo" else "fails it"),
            raises=(subprocess.TimeoutExpired, AssertionError), strict=True))
    p = _exec_home(anyrt, _image(tmp_path, kind), timeout=10 if anyrt.name == "runc" else 20)
    assert p.returncode == 0, p.stderr
    if anyrt.name == "pyrunc":
        want = "HOME=/" if kind != "big" else "HOME="
        assert want in p.stdout, p.stdout


@pytest.mark.parametrize("kind", ["fifo", "zero", "magic", "big"])
def test_init_reads_passwd_safely(anyrt, tmp_path, request, kind):
    """The init looks HOME up the same way (chain/finalize.open_process)."""
    if anyrt.name == "runc" and kind in ("fifo", "zero"):
        request.node.add_marker(pytest.mark.xfail(
            reason=f"runc 1.1.5 reads /etc/passwd at create: a {kind} there "
                   + ("hangs it" if kind == "fifo" else "fails it"),
            raises=(subprocess.TimeoutExpired, AssertionError), strict=True))
    cfg = base_config(["sh", "-c", "echo HOME=$HOME"])
    cfg["root"]["path"] = _image(tmp_path, kind)
    cfg["process"]["env"] = ["PATH=/bin:/usr/bin"]
    p = anyrt.run(cfg, timeout=10 if anyrt.name == "runc" else 20)
    assert p.returncode == 0, p.stderr
    if anyrt.name == "pyrunc":
        assert ("HOME=/" if kind != "big" else "HOME=") in p.stdout, p.stdout


WEAK_PASSWD = {"program.py": [
    ('fd = open_in_root("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)',
     'fd = os.open("/etc/passwd", os.O_RDONLY | os.O_CLOEXEC)'),
]}


def test_detector_fires_on_weakened_runtime(tmp_path):
    """A blocking open of the container's FIFO: exec hangs (the detector is the time limit), and
    once killed, delete --force still removes everything."""
    rt = weakened(tmp_path, WEAK_PASSWD, "blocking-passwd")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            _exec_home(rt, _image(tmp_path, "fifo"), timeout=5)
    finally:
        assert not rt.cleanup()
