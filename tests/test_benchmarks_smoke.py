"""Smoke test of the benchmark harness (benchmarks/): a tiny `run` figure
for pyrunc alone must print a table and write a JSON file.  It does not judge
the numbers, nor whether pyrunc succeeded (failures are reported, not raised)."""

import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")


def test_benchmarks_quick_run_produces_table_and_json(tmp_path):
    if not os.path.exists(PYRUNC):
        pytest.skip(".venv/bin/pyrunc missing")
    if not os.path.isdir(os.path.join(REPO, "bundles", "busybox", "rootfs", "bin")):
        pytest.skip("busybox rootfs not built")
    py = os.path.join(REPO, ".venv", "bin", "python")
    if not os.path.exists(py):
        py = sys.executable
    out_json = tmp_path / "bench.json"
    t0 = time.monotonic()
    p = subprocess.run(
        [py, "-m", "benchmarks", "--quick", "-k", "run", "--runtime", "pyrunc=.venv/bin/pyrunc",
         "--reps", "2", "--warmup", "0", "--rss-reps", "0", "--timeout", "5", "--json", str(out_json)],
        cwd=REPO, capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    assert "figure (median ms)" in p.stdout and "\nrun " in p.stdout, p.stdout
    assert "pyrunc" in p.stdout
    data = json.loads(out_json.read_text())
    fig = data["figures"]["run"]["runtimes"]["pyrunc"]
    assert fig["reps_planned"] == 2
    assert fig["n_ok"] + fig["errors"] == 2
    assert data["runtime_order"] == ["pyrunc"]
    assert elapsed < 20


def test_benchmarks_engine_figure_one_rep(tmp_path):
    """The engine part (benchmarks/engines.py) on its quickest engine, podman (no daemon to start):
    one rep of `podman run --rm` per runtime, one traced rep, a table and the JSON."""
    import shutil
    for b in ("podman", "conmon", "runc"):
        if not shutil.which(b):
            pytest.skip(f"{b} not installed (make deps)")
    if not os.path.exists(PYRUNC):
        pytest.skip(".venv/bin/pyrunc missing")
    if not os.path.isdir(os.path.join(REPO, "bundles", "busybox", "rootfs", "bin")):
        pytest.skip("busybox rootfs not built")
    py = os.path.join(REPO, ".venv", "bin", "python")
    out_json = tmp_path / "bench.json"
    p = subprocess.run(
        [py, "-m", "benchmarks", "--engines", "podman", "-k", "podman_run", "--engine-reps", "1",
         "--warmup", "0", "--trace-reps", "1", "--json", str(out_json)],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "engine figure (median ms)" in p.stdout and "podman run --rm IMG true" in p.stdout, p.stdout
    eng = json.loads(out_json.read_text())["engines"]
    assert not eng["unavailable"], eng["unavailable"]
    fig = eng["figures"]["podman_run"]["runtimes"]
    assert set(fig) == {"pyrunc", "runc", "runc2"}
    for name, r in fig.items():
        assert r["n_ok"] + r["errors"] == 1, (name, r)
    b = eng["breakdown"]["podman_run"]
    assert set(b["totals"]) == {"pyrunc-trace", "runc-trace"}
    # each traced runtime went through the wrapper: podman's create and start at least
    for rt in ("pyrunc-trace", "runc-trace"):
        words = {w for form, by in b["forms"].items() if rt in by for w in form.split()}
        assert {"create", "start"} <= words, (rt, b["forms"])
