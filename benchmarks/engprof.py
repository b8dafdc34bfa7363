"""Summaries of the profiles `python -m benchmarks --engines ... --engine-profile DIR` took of
pyrunc's calls from each engine (benchmarks/wrapper.py's profiling modes):

    .venv/bin/python -m benchmarks.engprof DIR [--top N]

Per engine figure and verb: cProfile (the runtime process only: the init's Python is not
profiled after its clone; blocking waits show as the calls that wait), the imports by
cumulative time from -X importtime, and strace -c -f (the runtime process and the init up to
its execve).
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import statistics
import sys


def _verb(fname: str) -> str:
    parts = fname.split(".")
    return parts[1] if len(parts) > 2 else "?"


def cprofile(d: str, top: int) -> str:
    by: dict[str, list[str]] = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".prof"):
            by.setdefault(_verb(f), []).append(os.path.join(d, f))
    out = []
    for verb, files in by.items():
        st = pstats.Stats(files[0], stream=io.StringIO())
        for f in files[1:]:
            st.add(f)
        totals = []
        for f in files:
            totals.append(pstats.Stats(f, stream=io.StringIO()).total_tt * 1000)
        buf = io.StringIO()
        st.stream = buf
        st.sort_stats("cumulative").print_stats(top)
        text = buf.getvalue()
        i = text.find("   ncalls")
        out.append(f"--- {verb}: {len(files)} calls, profiled time median {statistics.median(totals):.1f} ms "
                   f"(totals are summed over the calls below)")
        out.append(text[i:].rstrip() if i >= 0 else text.rstrip())
        buf = io.StringIO()
        st.stream = buf
        st.sort_stats("tottime").print_stats(top)
        text = buf.getvalue()
        i = text.find("   ncalls")
        out.append(f"--- {verb}: by own time")
        out.append(text[i:].rstrip() if i >= 0 else text.rstrip())
    return "\n".join(out)


_IMPORT = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(d: str, top: int) -> str:
    out = []
    by: dict[str, list[str]] = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".imports"):
            by.setdefault(_verb(f), []).append(os.path.join(d, f))
    for verb, files in by.items():
        cum: dict[str, list[int]] = {}
        totals = []
        for f in files:
            tot = 0
            with open(f, errors="replace") as fh:
                for line in fh:
                    m = _IMPORT.match(line)
                    if not m:
                        continue
                    self_us, cum_us, indent, mod = int(m[1]), int(m[2]), len(m[3]), m[4]
                    tot += self_us
                    if indent <= 1:  # top-level imports
                        cum.setdefault(mod, []).append(cum_us)
            totals.append(tot)
        out.append(f"--- {verb}: {len(files)} calls, all imports (self times summed) median "
                   f"{statistics.median(totals) / 1000:.2f} ms; top-level imports by cumulative us (median):")
        rows = sorted(((statistics.median(v), k, len(v)) for k, v in cum.items()), reverse=True)[:top]
        for us, mod, n in rows:
            out.append(f"   {us:8.0f}  {mod}  (in {n} calls)")
    return "\n".join(out)


def strace(d: str, top: int) -> str:
    out = []
    by: dict[str, list[str]] = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".strace"):
            by.setdefault(_verb(f), []).append(os.path.join(d, f))
    for verb, files in by.items():
        calls: dict[str, list[int]] = {}
        secs: dict[str, list[float]] = {}
        totals = []
        for f in files:
            tot = 0
            with open(f, errors="replace") as fh:
                for line in fh:
                    w = line.split()
                    if len(w) >= 5 and w[0][0].isdigit() and w[-1] != "total":
                        try:
                            n = int(w[3])
                            s = float(w[1])
                        except ValueError:
                            continue
                        calls.setdefault(w[-1], []).append(n)
                        secs.setdefault(w[-1], []).append(s)
                        tot += n
            totals.append(tot)
        out.append(f"--- {verb}: {len(files)} calls, syscalls per call median {statistics.median(totals):.0f}; "
                   f"top by count (median per call, kernel seconds summed):")
        rows = sorted(((statistics.median(v), k) for k, v in calls.items()), reverse=True)[:top]
        for n, name in rows:
            out.append(f"   {n:6.0f}  {name:20s} {sum(secs[name]):.4f} s")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engprof")
    p.add_argument("dir")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--mode", action="append", choices=("cprofile", "importtime", "strace"))
    a = p.parse_args(argv)
    modes = a.mode or ["cprofile", "importtime", "strace"]
    for eng in sorted(os.listdir(a.dir)):
        for fig in sorted(os.listdir(os.path.join(a.dir, eng))):
            for mode in modes:
                d = os.path.join(a.dir, eng, fig, mode)
                if os.path.isdir(d):
                    print(f"===== {eng} {fig} {mode}")
                    print({"cprofile": cprofile, "importtime": importtime, "strace": strace}[mode](d, a.top))
                    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
