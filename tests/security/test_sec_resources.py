"""Resource exhaustion from inside: a fork bomb under pids.limit and a memory hog under
memory.limit. The host stays responsive, the container is reported correctly, and everything
goes with delete."""
import json
import os
import subprocess
import time

from secutil import base_config, cgroup_dirs


def _wait_state(rt, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = rt.state(cid)["status"]
        if st == want:
            return
        time.sleep(0.02)
    raise AssertionError(f"{cid}: {st}, never {want}")


def _pids_current(cid):
    for d in cgroup_dirs(cid):
        if os.path.exists(os.path.join(d, "pids.current")):
            return int(open(os.path.join(d, "pids.current")).read())
    return None


def _pids_denied(cid):
    for d in cgroup_dirs(cid):
        ev = os.path.join(d, "pids.events")
        if os.path.exists(ev):
            return int(open(ev).read().split()[1])
    return 0


def test_fork_bomb_contained(anyrt):
    cfg = base_config(["sh", "-c", "f() { f | f & }; f; sleep 100"])
    cfg["linux"]["resources"]["pids"] = {"limit": 40}
    cid = anyrt.new_id("bomb")
    anyrt("run", "-d", "-b", anyrt.bundle(cfg), cid, check=True, timeout=30)
    try:
        # the bomb hits the limit (forks refused, counted in pids.events) and never passes it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pids_denied(cid) == 0:
            assert (_pids_current(cid) or 0) <= 40
            time.sleep(0.02)
        assert _pids_denied(cid) > 0
        assert (_pids_current(cid) or 0) <= 40
        t = time.monotonic()
        subprocess.run(["true"], check=True, timeout=5)  # the host can still fork and exec
        assert time.monotonic() - t < 2
        _wait_state(anyrt, cid, "running")
        anyrt("kill", "--all", cid, "KILL", check=True)
        _wait_state(anyrt, cid, "stopped")
    finally:
        anyrt("delete", "--force", cid, timeout=30)
    assert cgroup_dirs(cid) == []


def test_memory_hog_killed(anyrt):
    # `tail /dev/zero` keeps one endless "line" in memory: it grows until the OOM killer comes
    cfg = base_config(["sh", "-c", "exec tail /dev/zero"])
    cfg["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    cid = anyrt.new_id("hog")
    b = anyrt.bundle(cfg)
    p = anyrt("run", "--keep", "-b", b, cid, timeout=60)
    try:
        assert "survived" not in p.stdout
        assert p.returncode == 137, (p.returncode, p.stderr)  # SIGKILLed by the OOM killer
        assert anyrt.state(cid)["status"] == "stopped"
        ev = anyrt("events", "--stats", cid)
        if ev.returncode == 0 and ev.stdout.strip():
            data = json.loads(ev.stdout)["data"]
            mem = data.get("memory") or {}
            usage = mem.get("usage") or {}
            assert usage.get("limit") == 32 << 20 or usage.get("failcnt", 1) > 0, mem
    finally:
        anyrt("delete", "--force", cid, timeout=30)
    assert cgroup_dirs(cid) == []
