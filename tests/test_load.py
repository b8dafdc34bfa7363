"""Load: many containers created, started, killed and deleted concurrently, in one state root.
No error, no leak (state, cgroups, processes), no lock timeout. `make test` runs a bounded form
(30 containers, 8 workers); PYRUNC_STRESS=1 (make stress) runs 100 with 16 workers."""
import concurrent.futures
import json
import os
import sys
import time

from conftest import base_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "security"))
from secutil import cgroup_leftovers, procs_mentioning  # noqa: E402

STRESS = bool(os.environ.get("PYRUNC_STRESS"))
N, WORKERS = (100, 16) if STRESS else (30, 8)


def _lifecycle(rt, bundle, cid):
    rt("create", "-b", bundle, cid, check=True, timeout=60)
    rt("start", cid, check=True, timeout=60)
    st = json.loads(rt("state", cid, check=True, timeout=60).stdout)
    assert st["status"] == "running", st
    rt("kill", cid, "KILL", check=True, timeout=60)
    deadline = time.monotonic() + 30
    while json.loads(rt("state", cid, check=True, timeout=60).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline, cid
        time.sleep(0.02)
    rt("delete", cid, check=True, timeout=60)
    return cid


def test_many_concurrent(pyrunc):
    bundle = pyrunc.bundle(base_config(["sleep", "1000"]))
    ids = [pyrunc.new_id("load") for _ in range(N)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
        futs = [ex.submit(_lifecycle, pyrunc, bundle, cid) for cid in ids]
        # `list` and `state` of others meanwhile: readers must never see a torn state.json
        while not all(f.done() for f in futs):
            p = pyrunc("list", "--format", "json", timeout=60)
            assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
            json.loads(p.stdout)
        done = [f.result() for f in futs]
    assert sorted(done) == sorted(ids)
    assert time.monotonic() - t0 < (600 if STRESS else 180)
    assert os.listdir(pyrunc.root) == []
    for cid in ids:
        assert cgroup_leftovers(cid) == [], cid
    leaked = [p for cid in ids for p in procs_mentioning(cid)]
    assert leaked == []
