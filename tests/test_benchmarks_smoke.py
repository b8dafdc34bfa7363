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
