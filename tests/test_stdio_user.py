"""A non-root container user can reopen its stdio (/dev/stdin, /dev/stdout), as under runc: the
engines' pipes are root's with mode 0600, and runc gives fds 0-2 to the container's user before
dropping privileges (its fixStdioPermissions). Both for the container's process and for exec."""
import subprocess

import pytest

from conftest import base_config

SCRIPT = "cat /dev/stdin; echo x > /dev/stdout; echo y > /dev/stderr"


def _pipes_run(rt, args, data=b"hello\n", timeout=30):
    p = subprocess.run([rt.binary, "--root", rt.root, *args], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p


@pytest.mark.parametrize("user", [{"uid": 1000, "gid": 1000}, {"uid": 0, "gid": 0}])
def test_init_reopens_stdio_as_user(anyrt, user):
    cfg = base_config(["sh", "-c", SCRIPT])
    cfg["process"]["user"] = user
    b = anyrt.bundle(cfg)
    cid = anyrt.new_id()
    p = _pipes_run(anyrt, ["run", "--bundle", b, cid])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello\nx\n", p
    assert b"y" in p.stderr


def test_exec_reopens_stdio_as_user(anyrt):
    b = anyrt.bundle(base_config(["sleep", "300"]))
    cid = anyrt.new_id()
    anyrt("run", "-d", "--bundle", b, cid, check=True, stdin=subprocess.DEVNULL)
    p = _pipes_run(anyrt, ["exec", "-u", "1000:1000", cid, "sh", "-c", SCRIPT])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello\nx\n", p


def test_dev_null_stdio_is_left_alone(anyrt):
    """/dev/null as stdin is never chowned (it is the host's)."""
    import os
    before = os.stat("/dev/null").st_uid
    cfg = base_config(["sh", "-c", "cat /dev/stdin; echo ok"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = anyrt.bundle(cfg)
    p = subprocess.run([anyrt.binary, "--root", anyrt.root, "run", "--bundle", b, anyrt.new_id()],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    assert os.stat("/dev/null").st_uid == before
