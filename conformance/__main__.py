"""python -m conformance --runtime PATH [--runtime PATH ...] [-k FILTER] [-j N] [--json FILE]"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time

from . import harness
from . import cases  # noqa: F401  (registers every case)


def select(filters):
    out = []
    for c in harness.CASES:
        if not filters:
            out.append(c)
            continue
        hay = "%s %s %s" % (c.name, c.spec, c.level)
        for f in filters:
            neg = f.startswith("not ")
            pat = f[4:] if neg else f
            hit = (fnmatch.fnmatch(c.name, pat) if any(ch in pat for ch in "*?[")
                   else pat.lower() in hay.lower())
            if hit != neg:
                out.append(c)
                break
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m conformance",
                                 description="OCI runtime-spec conformance suite")
    ap.add_argument("--runtime", action="append", default=[],
                    help="runtime binary (repeatable); 'crun' is run in a private mount "
                         "namespace without cgroup2 on hybrid hosts")
    ap.add_argument("-k", action="append", default=[], metavar="FILTER",
                    help="run cases whose name/spec contains FILTER (or matches a glob); "
                         "'not FILTER' excludes; repeatable (OR)")
    ap.add_argument("-j", type=int, default=1, metavar="N", help="cases in parallel")
    ap.add_argument("-v", action="store_true", help="print reasons of skips too")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--no-table", action="store_true")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if any case fails for any runtime (default: only when a "
                         "single runtime is tested; a comparison run exits 0)")
    a = ap.parse_args(argv)

    chosen = select(a.k)
    if a.list:
        for i, c in enumerate(chosen, 1):
            print("%3d %-48s %-6s %s" % (i, c.name, c.level, c.spec))
        return 0
    if not a.runtime:
        ap.error("at least one --runtime is required")
    if os.geteuid() != 0:
        print("Bail out! the suite needs root")
        return 2

    runtimes = [harness.Runtime(r) for r in a.runtime]
    names = []
    for rt in runtimes:  # make names unique for the table
        n, i = rt.name, 2
        while n in names:
            n, i = "%s#%d" % (rt.name, i), i + 1
        rt.label = n
        names.append(n)

    tmpbase = tempfile.mkdtemp(prefix="oci-conformance-")
    os.chmod(tmpbase, 0o755)
    results = {}   # label -> list of (status, reason, secs)
    t_start = time.time()
    try:
        print("TAP version 13")
        print("1..%d" % (len(chosen) * len(runtimes)))
        n = 0
        for rt in runtimes:
            print("# runtime %s (%s)" % (rt.label, " ".join(rt.prefix + [rt.path])))
            res = [None] * len(chosen)
            t0 = time.time()
            if not rt.usable():
                res = [("fail", "runtime %s not executable" % rt.path, 0.0)] * len(chosen)
            elif a.j > 1:
                with concurrent.futures.ThreadPoolExecutor(a.j) as ex:
                    futs = {ex.submit(harness.run_case, c, rt, tmpbase): i
                            for i, c in enumerate(chosen)}
                    for f in concurrent.futures.as_completed(futs):
                        res[futs[f]] = f.result()
            else:
                for i, c in enumerate(chosen):
                    res[i] = harness.run_case(c, rt, tmpbase)
                    _tap(n + i + 1, rt.label, c, res[i], a.v)
                    sys.stdout.flush()
            if a.j > 1 or not rt.usable():
                for i, c in enumerate(chosen):
                    _tap(n + i + 1, rt.label, c, res[i], a.v)
            n += len(chosen)
            results[rt.label] = res
            print("# %s: %s in %.1fs" % (rt.label, _totals(res), time.time() - t0))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmpbase, ignore_errors=True)

    if len(runtimes) > 1 and not a.no_table:
        _table(chosen, names, results)
    print("# total time %.1fs" % (time.time() - t_start))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cases": [{"name": c.name, "spec": c.spec, "level": c.level,
                                  "results": {lab: {"status": results[lab][i][0],
                                                    "reason": results[lab][i][1]}
                                              for lab in names}}
                                 for i, c in enumerate(chosen)]}, f, indent=1)
    failed = any(r[0] == "fail" for res in results.values() for r in res)
    return 1 if failed and (a.strict or len(runtimes) == 1) else 0


def _tap(n, label, c, r, verbose):
    status, reason, secs = r
    name = "%s [%s] (%s %s)" % (c.name, label, c.level, c.spec)
    if status == "ok":
        print("ok %d - %s" % (n, name))
    elif status == "skip":
        print("ok %d - %s # SKIP %s" % (n, name, reason))
    else:
        print("not ok %d - %s" % (n, name))
        for line in (reason or "failed").splitlines()[:12]:
            print("#   %s" % line[:400])


def _totals(res):
    ok = sum(1 for r in res if r[0] == "ok")
    fail = sum(1 for r in res if r[0] == "fail")
    skip = sum(1 for r in res if r[0] == "skip")
    return "%d passed, %d failed, %d skipped of %d" % (ok, fail, skip, len(res))


def _table(chosen, names, results):
    mark = {"ok": "ok", "fail": "FAIL", "skip": "skip"}
    w = max(len(c.name) for c in chosen)
    cw = [max(6, len(n)) for n in names]
    head = "%-*s  %-6s  " % (w, "case", "level") + "  ".join(
        "%-*s" % (cw[i], n) for i, n in enumerate(names))
    print("#")
    print("# " + head)
    print("# " + "-" * len(head))
    for i, c in enumerate(chosen):
        cells = "  ".join("%-*s" % (cw[j], mark[results[n][i][0]]) for j, n in enumerate(names))
        print("# %-*s  %-6s  %s" % (w, c.name, c.level, cells))
    print("# " + "-" * len(head))
    for n in names:
        print("# %-*s %s" % (max(len(x) for x in names), n, _totals(results[n])))


if __name__ == "__main__":
    sys.exit(main())
