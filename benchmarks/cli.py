"""`python -m benchmarks`: latency and memory of pyrunc next to runc and crun."""

from __future__ import annotations

import argparse
import copy
import datetime
import fnmatch
import json
import os
import platform
import shutil
import signal
import sys
import tempfile

from . import isolation, proc, report
from .figures import Ctx, all_figures
from .engines import ENGINES
from .engines import run as run_engines
from .harness import measure, progress
from .runtimes import Runtime, id_prefix, resolve
from .seccomp import load_profile

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PKG_DIR)
DEFAULT_JSON = os.path.join(PKG_DIR, "results", "latest.json")
DEFAULT_RUNTIMES = ["pyrunc=.venv/bin/pyrunc", "runc=runc", "crun=crun"]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Per-operation latency and memory of OCI runtimes (pyrunc vs runc vs crun), "
                    "measured interleaved in the same run.")
    p.add_argument("--runtime", action="append", metavar="NAME=PATH",
                   help="runtime to measure (repeatable); default: " + " ".join(DEFAULT_RUNTIMES))
    p.add_argument("--reps", type=int, help="measured repetitions per figure (default 30, --quick 3)")
    p.add_argument("--warmup", type=int, help="unmeasured repetitions first (default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke test")
    p.add_argument("-k", dest="filters", action="append", metavar="FIGURE",
                   help="only figures matching this name or glob (repeatable, comma-separated); "
                        "figures: run create start state kill delete exec list run_seccomp run_nonet par20 par50 "
                        "start_seccomp run_fg exec_detached")
    p.add_argument("--list-containers", type=int, metavar="N",
                   help="containers present for the list figure (default 100, --quick 20)")
    p.add_argument("--parallel", default="20,50", metavar="N,N",
                   help="sizes of the parallel figures (default 20,50)")
    p.add_argument("--parallel-reps", type=int, metavar="N",
                   help="repetitions of the parallel figures (default reps/6, at least 2; --quick 1)")
    p.add_argument("--rss-reps", type=int, metavar="N",
                   help="extra untimed repetitions per verb measuring exact peak RSS (default 3, --quick 1; 0 = off)")
    p.add_argument("--timeout", type=float, default=30.0, help="timeout of one runtime call, s (default 30)")
    p.add_argument("--bundle", default=os.path.join(REPO, "bundles", "busybox"),
                   help="bundle whose config.json and rootfs are used (default bundles/busybox)")
    p.add_argument("--json", default=DEFAULT_JSON, help="where to write the JSON results "
                   "(default benchmarks/results/latest.json)")
    p.add_argument("--no-unshare", action="store_true",
                   help="measure in the host mount namespace (crun 1.8.1 then refuses hybrid cgroup hosts)")
    p.add_argument("--list-figures", action="store_true", help="print the figure names and exit")
    p.add_argument("--engines", default="none", metavar="LIST",
                   help="engine figures through private daemons, on the host mount namespace: "
                        "comma-separated docker,podman,cri, or all, or none (default none; `make bench`: all). "
                        "-k filters them too (docker_run docker_exec podman_run podman_exec cri_pod)")
    p.add_argument("--engine-reps", type=int, metavar="N",
                   help="measured repetitions per engine figure (default 15, --quick 2)")
    p.add_argument("--trace-reps", type=int, metavar="N",
                   help="repetitions per engine figure through the tracing wrapper, for the per-verb "
                        "breakdown (default 5, --quick 1; 0 = off)")
    p.add_argument("--no-json-line", action="store_true", help=argparse.SUPPRESS)  # the engine run's child
    p.add_argument("--engine-profile", metavar="DIR",
                   help="also profile pyrunc's calls from each engine figure (cProfile, -X importtime, "
                        "strace -c -f) through the wrapper; the outputs go to DIR (see benchmarks/engprof.py)")
    p.add_argument("--engine-configs", metavar="DIR",
                   help="keep the configs the engines sent (captured by the wrapper) in DIR")
    return p.parse_args(argv)


def select_figures(figs, filters):
    if not filters:
        return figs
    pats = [p.strip() for f in filters for p in f.split(",") if p.strip()]
    return [f for f in figs if any(fnmatch.fnmatchcase(f.name, p) for p in pats)]


def make_bundles(base_bundle: str, tmp: str) -> dict:
    with open(os.path.join(base_bundle, "config.json")) as f:
        base = json.load(f)
    rootfs = base.get("root", {}).get("path", "rootfs")
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(os.path.abspath(base_bundle), rootfs)
    if not os.path.isdir(rootfs):
        raise SystemExit(f"rootfs {rootfs} missing: run `make bundle` (bash bundles/busybox/build-rootfs.sh)")
    base["root"]["path"] = rootfs

    def variant(args, mutate=None):
        c = copy.deepcopy(base)
        c["process"]["args"] = args
        if mutate:
            mutate(c)
        return c

    def with_seccomp(c):
        c.setdefault("linux", {})["seccomp"] = load_profile()

    def seccomp_no_nnp(c):  # what Docker and podman send: their profile, noNewPrivileges unset
        with_seccomp(c)
        c["process"].pop("noNewPrivileges", None)

    def without_netns(c):
        c["linux"]["namespaces"] = [n for n in c["linux"].get("namespaces", []) if n.get("type") != "network"]

    configs = {
        "true": variant(["true"]),
        "sleep": variant(["sleep", "1000"]),
        "seccomp": variant(["true"], with_seccomp),
        "seccomp_sleep": variant(["sleep", "1000"], seccomp_no_nnp),
        "nonet": variant(["true"], without_netns),
    }
    out = {}
    for name, cfg in configs.items():
        d = os.path.join(tmp, "bundles", name)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        out[name] = d
    proc_file = os.path.join(tmp, "bundles", "process-true.json")
    with open(proc_file, "w") as f:  # exec --process: the container's process, running `true`
        json.dump(dict(configs["sleep"]["process"], args=["true"], terminal=False), f)
    out["process_true"] = proc_file
    return out


def _loadavg() -> list:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except (OSError, ValueError):
        return []


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    figs = select_figures(all_figures(tuple(int(x) for x in args.parallel.split(",") if x.strip())),
                          args.filters)
    if args.list_figures:
        for f in all_figures():
            print(f"{f.name:12s} {f.title}")
        for f in ENGINE_FIGURES:
            print(f"{f:12s} (engine, --engines)")
        return 0
    engines = parse_engines(args.engines)
    if engines is None:
        print(f"--engines wants a list of {','.join(ENGINES)}, or all, or none; got {args.engines!r}",
              file=sys.stderr)
        return 2
    if isolation.in_namespace():
        engines = []  # the re-executed runtime part; the engines run in the parent (host namespace)
    eng_filter = engine_filter(args.filters)
    engines = [e for e in engines if any(eng_filter(f) for f in ENGINE_FIGURES if f.startswith(e))]
    if not figs and not engines:
        print(f"no figure matches {args.filters}", file=sys.stderr)
        return 2
    if engines:
        return main_with_engines(args, argv, figs, engines, eng_filter)

    specs = args.runtime or DEFAULT_RUNTIMES
    pairs = []
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            print(f"--runtime wants NAME=PATH, got {s!r}", file=sys.stderr)
            return 2
        if name in [n for n, _ in pairs]:
            print(f"runtime name {name!r} given twice", file=sys.stderr)
            return 2
        pairs.append((name, path))

    if not args.no_unshare:
        isolation.reexec_in_namespace(argv)  # returns only if not possible / already inside
    conditions = isolation.prepare_namespace() if not args.no_unshare else \
        "host mount namespace (--no-unshare)"

    quick = args.quick
    reps = args.reps if args.reps is not None else (3 if quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    par_reps = args.parallel_reps if args.parallel_reps is not None else (1 if quick else max(2, reps // 6))
    par_warmup = 0 if quick else 1
    rss_reps = args.rss_reps if args.rss_reps is not None else (1 if quick else 3)
    list_n = args.list_containers if args.list_containers is not None else (20 if quick else 100)

    Runtime.on_deleted = isolation.scrub_scratch
    signal.signal(signal.SIGTERM, _sigterm)
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-")
    runtimes: list[Runtime] = []
    results: dict = {}
    interrupted = False
    try:
        bundles = make_bundles(args.bundle, tmp)
        for name, path in pairs:
            rp = resolve(path, REPO) or path
            rt = Runtime(name, rp, os.path.join(tmp, "state", name), args.timeout)
            rt.probe_version()
            runtimes.append(rt)
        ctx = Ctx(bundles=bundles, list_n=list_n)
        probe = None
        if rss_reps > 0:
            with open(os.path.join(bundles["true"], "config.json")) as f:
                rootfs_bb = os.path.join(json.load(f)["root"]["path"], "bin", "busybox")
            probe = proc.RssProbe.find([rootfs_bb])
        if probe is not None:
            rss_method = (f"ru_maxrss from wait4 of the runtime process run under {probe.tool} "
                          f"({rss_reps} untimed reps per verb); the harness's own os.wait4 ru_maxrss "
                          f"is in the JSON (wait4_maxrss_kb_median) but includes the harness image "
                          f"inherited before execve")
        else:
            rss_method = ("os.wait4 ru_maxrss of the runtime process spawned by the harness; it includes "
                          "the harness image inherited before execve, so values <= the harness peak are "
                          "shown as upper bounds '<='")
        results = {
            "meta": {
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "reps": reps, "warmup": warmup,
                "parallel_reps": par_reps, "list_n": list_n, "quick": quick, "timeout_s": args.timeout,
                "conditions": conditions, "rss_method": rss_method, "loadavg_start": _loadavg(),
                "method": "each figure: runtimes interleaved per repetition (rotating order) after warm-up; "
                          "wall time from spawn to reap of the runtime binary (posix_spawn + pidfd + wait4); "
                          "peak RSS = wait4 ru_maxrss of the runtime process; medians reported",
            },
            "runtime_order": [rt.name for rt in runtimes],
            "runtimes": {rt.name: {"path": rt.path, "version": rt.version} for rt in runtimes},
            "figures": {},
        }
        for fig in figs:
            r, w = (par_reps, par_warmup) if fig.kind == "parallel" else (reps, warmup)
            progress(f"[{fig.name}] {fig.title}: {w} warm-up + {r} reps x {len(runtimes)} runtimes")
            res = measure(fig, ctx, runtimes, r, w, log=progress, rss_probe=probe, rss_reps=rss_reps)
            results["figures"][fig.name] = res
            summary = ", ".join(
                f"{n} " + (f"{v['median_ms']:.2f} ms" if v.get("median_ms") is not None else "FAIL")
                + (f" ({v['errors']} err)" if v.get("errors") else "")
                for n, v in res["runtimes"].items())
            progress(f"    {summary}  [{res['meta']['elapsed_s']} s]")
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: cleaning up")
    finally:
        results["leftovers"] = cleanup(runtimes, tmp)

    if not results.get("figures"):
        print(results.get("leftovers") or "nothing measured", file=sys.stderr)
        return 130 if interrupted else 1
    results["meta"]["harness_hwm_kb"] = proc.own_hwm_kb()
    results["meta"]["loadavg_end"] = _loadavg()
    report.annotate(results, results["runtime_order"])
    if interrupted:
        results["meta"]["interrupted"] = True
    report.write_json(results, args.json)
    print(report.render(results))
    if not args.no_json_line:
        print(f"\nJSON: {os.path.relpath(args.json) if args.json.startswith(os.getcwd()) else args.json}")
    return 130 if interrupted else 0


ENGINE_FIGURES = ("docker_run", "docker_exec", "podman_run", "podman_exec", "cri_pod")


def parse_engines(text: str):
    names = [e.strip() for e in (text or "").split(",") if e.strip()]
    if names in (["none"], []):
        return []
    if names == ["all"]:
        return list(ENGINES)
    return names if all(e in ENGINES for e in names) else None


def engine_filter(filters):
    if not filters:
        return lambda name: True
    pats = [p.strip() for f in filters for p in f.split(",") if p.strip()]
    # an engine figure is also selected by its engine's name (-k docker)
    return lambda name: any(fnmatch.fnmatchcase(name, p) or name.split("_")[0] == p for p in pats)


def main_with_engines(args, argv, figs, engines, eng_filter) -> int:
    """The runtime figures first (in the private namespace, as without engines: a child process),
    then the engine figures here, on the host's mount namespace; one JSON with both."""
    results = None
    rc = 0
    child_json = None
    if figs:
        fd, child_json = tempfile.mkstemp(prefix="pyrunc-bench-rt-", suffix=".json")
        os.close(fd)
        child_argv = [*argv, "--engines", "none", "--json", child_json, "--no-json-line"]
        if args.no_unshare:
            rc = main(child_argv)
        else:
            rc = isolation.run_in_namespace(child_argv)
        try:
            with open(child_json) as f:
                results = json.load(f)
        except (OSError, ValueError):
            results = None
        finally:
            os.unlink(child_json)
    quick = args.quick
    reps = args.engine_reps if args.engine_reps is not None else (2 if quick else 15)
    warmup = 1 if args.warmup is None or args.warmup > 0 else 0
    trace_reps = args.trace_reps if args.trace_reps is not None else (1 if quick else 5)
    pyrunc = runc = None
    for s in args.runtime or DEFAULT_RUNTIMES:
        name, _, path = s.partition("=")
        if name == "pyrunc":
            pyrunc = resolve(path, REPO)
        elif name == "runc":
            runc = resolve(path, REPO)
    pyrunc = pyrunc or resolve(".venv/bin/pyrunc", REPO)
    runc = runc or resolve("runc", REPO)
    if results is None:
        results = {"meta": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            "kernel": platform.release(), "cpus": os.cpu_count()}, "figures": {}}
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-eng-")
    os.chmod(tmp, 0o755)
    signal.signal(signal.SIGTERM, _sigterm)
    interrupted = False
    eng = {}
    t_load = _loadavg()
    try:
        eng = run_engines(engines, eng_filter, reps, warmup, trace_reps, tmp, pyrunc, runc,
                          configs_dir=args.engine_configs, profile_dir=args.engine_profile)
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: engines cleaned up by their sessions")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    eng["meta"] = {"reps": reps, "warmup": warmup, "trace_reps": trace_reps, "pyrunc": pyrunc, "runc": runc,
                   "loadavg_start": t_load, "loadavg_end": _loadavg()}
    report.annotate_engines(eng)
    results["engines"] = eng
    report.write_json(results, args.json)
    print()
    print(report.render_engines(eng, eng["meta"]))
    print(f"\nJSON: {os.path.relpath(args.json) if args.json.startswith(os.getcwd()) else args.json}")
    if interrupted:
        return 130
    return rc


def cleanup(runtimes: list[Runtime], tmp: str) -> str:
    """Delete every container we made, then sweep for anything a runtime left
    behind (processes and cgroups named after our ids, mounts under tmp)."""
    notes = []
    for rt in runtimes:
        failed = rt.cleanup_all()
        if failed:
            notes.append(f"{rt.name}: delete --force failed for {len(failed)} container(s)")
    prefix = id_prefix()
    killed = isolation.kill_leftover_processes(prefix)
    if killed:
        notes.append(f"killed {len(killed)} leftover container process(es)")
        for pid in killed:
            from .proc import wait_exit
            wait_exit(pid, 5)
    isolation.scrub_scratch_prefix(prefix)
    removed = isolation.remove_leftover_cgroups(prefix)
    if removed:
        notes.append(f"removed {len(removed)} leftover cgroup dir(s)")
    unmounted = isolation.unmount_under(tmp)
    if unmounted:
        notes.append(f"unmounted {len(unmounted)} leftover mount(s)")
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(tmp):
        notes.append(f"could not remove {tmp}")
    return "; ".join(notes)
