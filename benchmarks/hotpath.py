"""The numbers of runtime/hotpath.py's table, measured on this machine: `python -m benchmarks.hotpath`.

Needs no root and no container (a fake --root in a temp dir). Every figure is the median of
--reps runs, each a fresh interpreter started the way bin/pyrunc starts one (`python -I -S`):

* import: `python -I -S -X importtime -c "import posix; import M"`, M's cumulative time (what a
  verb pays when it is the first to import M: M and everything M pulls in that the interpreter
  lacks; bin/pyrunc and the short verbs use posix, never os);
* site: `python -I -c pass` against `python -I -S -c pass` (what bin/pyrunc's -S saves);
* exit: `pyrunc state` of a stopped container, ended by the interpreter's own exit (sys.exit)
  against os._exit after flushing (runtime/hotpath.py exit()), interleaved, wall time of spawn
  to reap;
* gc: gen0 collections, and the time spent in them (gc.callbacks), while importing the modules a
  `create` imports, with Python's default threshold against hotpath's;
* instructions (when valgrind is installed): userspace instructions counted by callgrind, which
  are the same whatever else the machine does, of the bare interpreter, of `import os`, and of
  bin/pyrunc's `state` of a stopped container.

Read the numbers as ±20 % on a shared 2-core machine.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (module, what stands in for it on the hot path)
IMPORTS = [
    ("os", "posix and hotpath's path helpers (join, isdir, walk_dirs, ...)"),
    ("signal", "_signal (built in, loaded at start-up)"),
    ("socket", "_socket (built in)"),
    ("json", "hotpath.json_loads/json_dumps (the _json C scanner)"),
    ("re", "str methods; fastcheck's hand-written pattern matchers"),
    ("enum", "-"),
    ("ctypes", "os functions where 3.11 has them"),
    ("jsonschema", "runtime.fastcheck"),
    ("pyroute2", "loaded only for netDevices"),
    ("importlib.util", "sys.meta_path finders (hotpath.module_available)"),
    ("importlib.resources", "a path next to the package (runtime/schemas.py)"),
    ("platform", "os.uname()"),
    ("subprocess", "loaded only by ps's table and hooks"),
    ("_json", "- (what hotpath's JSON costs)"),
    ("runtime.hotpath", "- (itself, with _json)"),
]

# what create/run import on top of the short verbs' modules (container._create_imports and spawn)
CREATE_SET = ["runtime.container", "runtime.config", "runtime.linux", "runtime.process", "runtime.rootfs",
              "runtime.plan", "runtime.cgroups", "runtime.sync", "runtime.init", "runtime.fastcheck"]


def _py():
    return sys.executable


def _spawn_ns(argv, stdout=subprocess.DEVNULL):
    t = time.perf_counter_ns()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter_ns() - t


def _site_packages():
    """This environment's site-packages (bin/pyrunc appends them to sys.path itself)."""
    return [p for p in sys.path if p.endswith("site-packages")]


def import_us(module, reps):
    """Median cumulative import time of MODULE in µs; None when it cannot be imported."""
    vals = []
    for _ in range(reps):
        p = subprocess.run([_py(), "-I", "-S", "-X", "importtime", "-c",
                            f"import posix, sys; sys.path.insert(0, {REPO!r}); sys.path += {_site_packages()!r}; "
                            f"import {module}"],
                           cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            return None
        for line in p.stderr.splitlines():
            parts = [x.strip() for x in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                vals.append(int(parts[1]))
                break
        else:
            return 0  # already loaded at start-up
    return statistics.median(vals)


def site_ms(reps):
    with_site, without = [], []
    for _ in range(reps):
        with_site.append(_spawn_ns([_py(), "-I", "-c", "pass"]))
        without.append(_spawn_ns([_py(), "-I", "-S", "-c", "pass"]))
    return statistics.median(with_site) / 1e6, statistics.median(without) / 1e6


def _fake_root(tmp):
    d = os.path.join(tmp, "c1")
    os.makedirs(d)
    with open(os.path.join(d, "state.json"), "w") as f:
        f.write('{"ociVersion":"1.3.0","id":"c1","pid":0,"status":"stopped","bundle":"/b",'
                '"rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}')
    return tmp


def exit_ms(reps, repo=REPO):
    """`state c1` ended by sys.exit (teardown) vs posix._exit, wall ms medians."""
    with tempfile.TemporaryDirectory(prefix="pyrunc-hotpath-") as tmp:
        root = _fake_root(tmp)
        head = (f"import sys, posix; sys.path.insert(0, {repo!r}); from runtime import cli; "
                f"c = cli._main(['--root', {root!r}, 'state', 'c1']); ")
        normal = [_py(), "-I", "-S", "-c", head + "sys.exit(c)"]
        fast = [_py(), "-I", "-S", "-c", head + "sys.stdout.flush(); posix._exit(c)"]
        a, b = [], []
        for i in range(reps):
            for argv, acc in ((normal, a), (fast, b)) if i % 2 else ((fast, b), (normal, a)):
                acc.append(_spawn_ns(argv))
        return statistics.median(a) / 1e6, statistics.median(b) / 1e6


_GC_PROBE = """
import gc, sys, time
sys.path.insert(0, {repo!r})
{threshold}
n = [0, 0.0, 0.0]
def cb(phase, info):
    if phase == "start":
        n[1] = time.perf_counter()
    else:
        n[0] += 1
        n[2] += time.perf_counter() - n[1]
gc.callbacks.append(cb)
for m in {mods!r}:
    __import__(m)
gc.callbacks.remove(cb)
sys.stdout.write(f"{{n[0]}} {{n[2] * 1e3:.3f}}")
"""


def gc_probe(reps, threshold_line):
    counts, ms = [], []
    for _ in range(reps):
        p = subprocess.run([_py(), "-I", "-S", "-c",
                            _GC_PROBE.format(repo=REPO, threshold=threshold_line, mods=CREATE_SET)],
                           cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            return None
        c, t = p.stdout.split()
        counts.append(int(c))
        ms.append(float(t))
    return statistics.median(counts), statistics.median(ms)


def instructions(argv):
    """Userspace instructions of ARGV (valgrind's callgrind), or None without valgrind."""
    try:
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                           cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=15, help="runs per figure (default 15)")
    a = ap.parse_args(argv)
    print(f"python {sys.version.split()[0]} ({_py()}), load {os.getloadavg()[0]:.2f}, {a.reps} reps, medians")
    print("\n| import | cumulative ms | instead |\n|---|---|---|")
    for mod, instead in IMPORTS:
        us = import_us(mod, a.reps)
        print(f"| {mod} | {'not installed' if us is None else f'{us / 1000:.2f}'} | {instead} |")
    s, ns = site_ms(a.reps)
    print(f"\ninterpreter start+exit: python -I -c pass {s:.2f} ms, python -I -S -c pass {ns:.2f} ms "
          f"(site: {s - ns:.2f} ms)")
    n, f = exit_ms(max(a.reps, 30))
    print(f"state of a stopped container: sys.exit {n:.2f} ms, os._exit {f:.2f} ms (teardown: {n - f:.2f} ms)")
    pyrunc = os.path.join(os.path.dirname(_py()), "pyrunc")
    with tempfile.TemporaryDirectory(prefix="pyrunc-hotpath-") as tmp:
        counts = [(what, instructions(argv)) for what, argv in (
            ("python -I -S -c 'import posix; posix._exit(0)'", [_py(), "-I", "-S", "-c", "import posix; posix._exit(0)"]),
            ("python -I -S -c 'import os; os._exit(0)'", [_py(), "-I", "-S", "-c", "import os; os._exit(0)"]),
            ("pyrunc state (stopped)", [_py(), "-I", "-S", pyrunc, "--root", _fake_root(tmp), "state", "c1"]))]
    if all(n for _, n in counts):
        print("instructions (callgrind, userspace): " + "; ".join(f"{w} {n / 1e6:.1f}M" for w, n in counts))
    from runtime import hotpath
    g0 = gc_probe(a.reps, "")
    g1 = gc_probe(a.reps, f"gc.set_threshold(*{hotpath.GC_THRESHOLD!r})")
    if g0 and g1:
        print(f"gc while importing create's modules: default threshold {g0[0]:.0f} collections {g0[1]:.2f} ms; "
              f"hotpath.GC_THRESHOLD {g1[0]:.0f} collections {g1[1]:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
