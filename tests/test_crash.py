"""Crash consistency: pyrunc SIGKILLed at each phase of create/start/delete
(PYRUNC_TEST_CRASH_AT, runtime/testpoint.py). Afterwards `state` tells the truth, `delete --force`
removes every process, cgroup, mount and state file, and the id can be used again. Also: racing
creators of one id (exactly one wins, the losers leave nothing) and create racing delete."""
import concurrent.futures
import os
import subprocess
import sys
import time

import pytest

from conftest import PYRUNC, base_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "security"))
from secutil import cgroup_dirs, host_mountpoints, procs_mentioning  # noqa: E402


def _crash(rt, phase, *args):
    env = dict(os.environ, PYRUNC_TEST_CRASH_AT=phase)
    p = rt(*args, env=env, timeout=30)
    assert p.returncode == -9, (phase, p.returncode, p.stderr)


def _wait(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _assert_gone(rt, cid):
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert cgroup_dirs(cid) == []
    assert _wait(lambda: procs_mentioning(cid) == []), procs_mentioning(cid)
    assert host_mountpoints([rt.tmp]) == set()


def _reuse(rt, cid, bundle):
    rt("create", "-b", bundle, cid, check=True)
    rt("start", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    rt("delete", "--force", cid, check=True)
    _assert_gone(rt, cid)


def _status(rt, cid):
    p = rt("state", cid)
    assert "Traceback" not in p.stderr, p.stderr
    if p.returncode != 0:
        return None
    import json
    return json.loads(p.stdout)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("phase", ["create:claimed", "create:cgroup", "create:cloned", "create:ready"])
def test_crash_in_create(pyrunc, phase):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id("crash")
    _crash(pyrunc, phase, "create", "-b", b, cid)
    st = _status(pyrunc, cid)
    assert st is not None and st["id"] == cid
    # the truth: "created" exactly when an init is alive and waiting, else "stopped"
    pid = st.get("pid") or 0
    if phase == "create:ready":
        assert st["status"] == "created" and _alive(pid), st
    else:
        assert st["status"] == "stopped", st
    pyrunc("delete", "--force", cid, check=True)
    _assert_gone(pyrunc, cid)
    _reuse(pyrunc, cid, b)


def test_crash_in_start(pyrunc):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id("crash")
    pyrunc("create", "-b", b, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    _crash(pyrunc, "start:fifo", "start", cid)
    # the init was released: it runs the program, and state says so
    # (argv, not comm: run by descriptor, the program is named after the file, busybox here)
    assert _wait(lambda: open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] == b"sleep")
    assert pyrunc.state(cid)["status"] == "running"
    p = pyrunc("start", cid)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    pyrunc("delete", "--force", cid, check=True)
    _assert_gone(pyrunc, cid)
    _reuse(pyrunc, cid, b)


@pytest.mark.parametrize("phase", ["delete:killed", "delete:cgroup"])
def test_crash_in_delete(pyrunc, phase):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id("crash")
    pyrunc("run", "-d", "-b", b, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    _crash(pyrunc, phase, "delete", "--force", cid)
    assert _wait(lambda: not _alive(pid))
    assert pyrunc.state(cid)["status"] == "stopped"
    pyrunc("delete", cid, check=True)  # stopped: no --force needed
    _assert_gone(pyrunc, cid)
    _reuse(pyrunc, cid, b)


def test_racing_creates_one_wins(pyrunc):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id("race")
    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        res = list(ex.map(lambda _: pyrunc("create", "-b", b, cid, timeout=30), range(5)))
    ok = [r for r in res if r.returncode == 0]
    assert len(ok) == 1, [(r.returncode, r.stderr) for r in res]
    for r in res:
        if r.returncode:
            assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    st = pyrunc.state(cid)
    assert st["status"] == "created"
    # only the winner's init mentions the id; exactly one cgroup set
    assert procs_mentioning(cid) == [st["pid"]]
    pyrunc("delete", "--force", cid, check=True)
    _assert_gone(pyrunc, cid)


def test_create_racing_delete(pyrunc):
    """create and delete --force of one id at once, many times: serialized by the lock, so the
    end is either a working container or none, never a half of one."""
    b = pyrunc.bundle(args=["sleep", "100"])
    for i in range(int(os.environ.get("PYRUNC_STRESS_RACES", "8"))):
        cid = pyrunc.new_id("cd")
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            fc = ex.submit(pyrunc, "create", "-b", b, cid, timeout=30)
            time.sleep(0.002 * i)
            fd = ex.submit(pyrunc, "delete", "--force", cid, timeout=30)
            c, d = fc.result(), fd.result()
        for r in (c, d):
            assert "Traceback" not in r.stderr, r.stderr
        assert d.returncode == 0, d.stderr
        st = _status(pyrunc, cid)
        if st is not None:
            assert c.returncode == 0
            assert st["status"] in ("created", "stopped"), st
        pyrunc("delete", "--force", cid, check=True)
        _assert_gone(pyrunc, cid)
