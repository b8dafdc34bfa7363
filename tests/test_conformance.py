"""The runtime-spec conformance suite (python -m conformance) run against pyrunc and runc.

pyrunc must pass every case that runc passes on this host; cases runc fails (or that are
skipped on this host) are reported in the table but do not fail the test.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")


def test_pyrunc_passes_what_runc_passes():
    if not os.access(PYRUNC, os.X_OK):
        pytest.skip("%s does not exist" % PYRUNC)
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    if os.geteuid() != 0:
        pytest.skip("the conformance suite needs root")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "results.json")
        p = subprocess.run([sys.executable, "-m", "conformance", "--runtime", PYRUNC,
                            "--runtime", "runc", "--json", out],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=900)
        text = p.stdout.decode(errors="replace")
        print("\n".join(l for l in text.splitlines() if l.startswith("#")))
        assert os.path.exists(out), "suite did not finish:\n" + text[-3000:]
        with open(out) as f:
            res = json.load(f)
    labels = list(res["cases"][0]["results"])
    py, rc = labels[0], labels[1]
    regressions = []
    for c in res["cases"]:
        r = c["results"]
        if r[rc]["status"] == "ok" and r[py]["status"] != "ok":
            regressions.append("%s (%s %s): %s" % (c["name"], c["level"], c["spec"],
                                                   r[py]["reason"][:300]))
    assert not regressions, "pyrunc fails cases runc passes:\n" + "\n".join(regressions)
