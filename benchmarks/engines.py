"""Engine-level figures: what a user of Docker, podman or Kubernetes (CRI) waits for, with pyrunc
and with runc behind the engine, in one run.

The engines are the private daemons of the end-to-end tests (tests/e2e: dockerfix.docker_session,
e2efix.podman_session, crifix.cri_session), started once per engine, on the host's mount namespace
(as users run them: the hybrid cgroup host as it is; crun is therefore not measured here, it
refuses hybrid hosts outside the benchmark's private namespace). Per engine the runtimes are:

* `pyrunc` and `runc` (the engine's built-in runc for Docker, the doc's handlers for CRI);
* `runc2`: runc again under a second name (its own runtime entry, its own path for podman), so the
  runc2/runc ratio shows the noise of the figure in the same table;
* `pyrunc-trace`, `runc-trace`: the tracing wrapper (benchmarks/wrapper.py) around each, used only
  in a separate pass of a few repetitions, which gives the per-verb breakdown (verb, flags,
  duration of each call the engine made) and captures the configs the engine sent.

Repetitions are interleaved across runtimes (benchmarks/harness.measure), as for the runtime
figures. Times are wall times of the engine's client command (docker, podman) from spawn to reap,
or of the CRI calls from the Python client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import time
import uuid

from . import proc
from .figures import Sample, SetupError
from .harness import measure, progress
from .wrapper import Wrapper

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PKG_DIR)
E2E = os.path.join(REPO, "tests", "e2e")
ENGINES = ("docker", "podman", "cri")
TIMED = ("pyrunc", "runc", "runc2")
TRACED = ("pyrunc", "runc")


def _e2e():
    if E2E not in sys.path:
        sys.path.insert(0, E2E)
    import e2efix
    return e2efix


class Unavailable(Exception):
    pass


def available(engine: str) -> str | None:
    """None if ENGINE can be measured here, else why not."""
    w = shutil.which
    if engine == "docker":
        missing = [b for b in ("dockerd", "docker", "containerd", "containerd-shim-runc-v2") if not w(b)]
    elif engine == "podman":
        missing = [b for b in ("podman", "conmon") if not w(b)]
    elif engine == "cri":
        missing = [b for b in ("containerd", "ctr", "containerd-shim-runc-v2", "ip") if not w(b)]
        if not os.path.exists("/usr/lib/cni/bridge"):
            missing.append("/usr/lib/cni/bridge (containernetworking-plugins)")
        try:
            import grpc  # noqa: F401
            import grpc_tools  # noqa: F401
        except ImportError:
            missing.append("grpcio, grpcio-tools (pip install -e '.[test]')")
    else:
        return f"unknown engine {engine!r}"
    if not os.path.exists(os.path.join(REPO, "bundles", "busybox", "rootfs", "bin", "busybox")):
        missing.append("the busybox rootfs (make bundle)")
    if os.geteuid() != 0:
        missing.append("root")
    return f"not installed: {', '.join(missing)}" if missing else None


class ERt:
    """One runtime as the engine knows it: NAME in the tables, TARGET what the engine is given
    (Docker's runtime name, podman's --runtime path, CRI's handler); WRAPPER if traced."""

    rss_probe = None

    def __init__(self, name: str, target: str, wrapper: Wrapper | None = None, binary: str = ""):
        self.name, self.target, self.wrapper, self.binary = name, target, wrapper, binary


# ------------------------------------------------------------------ memory that stays
def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def runtime_processes(binary: str, cid: str) -> list[int]:
    """Processes of the runtime BINARY (runc's binary, or a python running the pyrunc script) whose
    command line names the container CID: what the runtime keeps alive for that container."""
    e2e = _e2e()
    real = os.path.realpath(binary)
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        cl = e2e._cmdline(int(p))
        if cid not in cl:
            continue
        try:
            exe = os.path.realpath(f"/proc/{p}/exe")
        except OSError:
            continue
        words = cl.split()
        if exe == real or any(os.path.realpath(w) == real for w in words[:4] if w.startswith("/")):
            out.append(int(p))
    return out


def resident(binary: str, cid: str) -> dict:
    pids = runtime_processes(binary, cid)
    return {"processes": len(pids), "rss_kb": sum(_status_kb(p, "VmRSS") for p in pids),
            "pss_kb": sum(_pss_kb(p) for p in pids)}


class _Named:
    """An engine that takes runtimes by name (Docker's daemon.json, CRI's handlers): pyrunc, runc,
    runc2 (runc again: the noise) and the tracing wrappers."""
    name = None

    def __init__(self, tmp: str, pyrunc: str, runc: str):
        self.tmp, self.pyrunc, self.runc = tmp, pyrunc, runc
        self.wrappers = {n: Wrapper(os.path.join(tmp, f"trace-{self.name}-{n}"), p)
                         for n, p in (("pyrunc", pyrunc), ("runc", runc))}
        self.rts = [ERt("pyrunc", "pyrunc", binary=pyrunc), ERt("runc", "runc", binary=runc),
                    ERt("runc2", "runc2", binary=runc)]
        self.traced = [ERt(f"{n}-trace", f"{n}-trace", w, binary=w.real) for n, w in self.wrappers.items()]


class _CliEngine:
    """An engine driven by its command line (docker, podman): run --rm, and exec into a resident
    container. Subclasses set argv, env, image, rm_args and _run_args(rt)."""
    name = rm_args = None

    def _cmd(self, *args, timeout=60.0) -> proc.Result:
        return proc.run([*self.argv, *args], timeout=timeout, env=self.env)

    def _fig_run(self, ctx, rt, _state):
        return _sample(self._cmd(*self._run_args(rt), "--rm", self.image, "true"))

    def _setup_ctr(self, ctx, rt):
        name = f"pyrb-{rt.name}-{uuid.uuid4().hex[:8]}"
        r = self._cmd(*self._run_args(rt), "-d", "--name", name, self.image, "sleep", "100000")
        if not r.ok:
            raise SetupError(r.describe())
        return {"name": name, "id": r.out.strip()}

    def _teardown_ctr(self, ctx, rt, st):
        self._cmd("rm", *self.rm_args, st["name"], timeout=120)

    def _fig_exec(self, ctx, rt, st):
        return _sample(self._cmd("exec", st["name"], "true"))

    def figures(self):
        return [
            EFig(f"{self.name}_run", f"{self.name} run --rm IMG true", self._fig_run),
            EFig(f"{self.name}_exec", f"{self.name} exec CTR true", self._fig_exec, self._setup_ctr,
                 self._teardown_ctr, resident=True),
        ]


# ------------------------------------------------------------------ Docker
class DockerBench(_Named, _CliEngine):
    name = "docker"
    rm_args = ("-f",)

    @contextlib.contextmanager
    def session(self):
        _e2e()
        import dockerfix
        extra = {"runc2": self.runc, **{f"{n}-trace": w.path for n, w in self.wrappers.items()}}
        try:
            with dockerfix.docker_session(extra) as dk:
                self.dk = dk
                self.argv, self.env = [dockerfix.DOCKER, "-H", f"unix://{dk.sock}"], dk.env
                self.image = dockerfix.IMG
                yield self
        except dockerfix.DockerUnavailable as e:
            raise Unavailable(str(e)) from e

    def _run_args(self, rt):
        return ["run", "--runtime", rt.target, "--network", "none"]


# ------------------------------------------------------------------ podman
class PodmanBench(_CliEngine):
    name = "podman"
    rm_args = ("--force", "--time", "0")

    def __init__(self, tmp: str, pyrunc: str, runc: str):
        self.tmp = tmp
        self.wrappers = {n: Wrapper(os.path.join(tmp, f"trace-podman-{n}"), p)
                         for n, p in (("pyrunc", pyrunc), ("runc", runc))}
        # podman gives `--log-format=json` to a runtime by its basename: runc2 is a link named runc
        d = os.path.join(tmp, "podman-runc2")
        os.makedirs(d)
        runc2 = os.path.join(d, "runc")
        os.symlink(runc, runc2)
        self.rts = [ERt("pyrunc", pyrunc, binary=pyrunc), ERt("runc", runc, binary=runc),
                    ERt("runc2", runc2, binary=runc)]
        self.traced = [ERt(f"{n}-trace", w.path, w, binary=w.real) for n, w in self.wrappers.items()]

    @contextlib.contextmanager
    def session(self):
        e2e = _e2e()
        with e2e.podman_session() as pm:
            self.pm = pm
            self.argv = [shutil.which("podman"), *pm.globals]
            self.env, self.image = pm.env, "localhost/busybox"
            yield self

    def _run_args(self, rt):
        return ["--runtime", rt.target, "run", "--cgroup-parent", self.pm.cgroup_parent, "--network", "none"]


# ------------------------------------------------------------------ CRI (containerd 1.6)
class CriBench(_Named):
    name = "cri"

    @contextlib.contextmanager
    def session(self):
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
        _e2e()
        import crifix
        handlers = {"runc2": (self.runc, None),
                    "pyrunc-trace": (self.wrappers["pyrunc"].path, os.path.join(self.tmp, "cri-pyrunc-trace-root")),
                    "runc-trace": (self.wrappers["runc"].path, None)}
        with crifix.cri_session(handlers) as cri:
            self.cri = cri
            yield self

    def _fig_pod(self, ctx, rt, _state):
        cri = self.cri
        t0 = time.perf_counter_ns()
        pod = None
        try:
            pod = cri.run_pod(rt.target)
            t_pod = time.perf_counter_ns()
            cid = pod.start("c", ["sleep", "100000"])
            t1 = time.perf_counter_ns()
            extra = {"phases": {"run_pod": (t_pod - t0) / 1e6, "create_start": (t1 - t_pod) / 1e6}}
            if rt.wrapper is None and rt.name not in self.pod_fig.resident_by_rt:
                r = resident(rt.binary, cid)
                pr = resident(rt.binary, pod.id)  # the pause container's
                self.pod_fig.resident_by_rt[rt.name] = {k: r[k] + pr[k] for k in r}
            t2 = time.perf_counter_ns()
            cri.remove_pod(pod.id)
            t3 = time.perf_counter_ns()
            pod = None
            extra["phases"]["stop_remove"] = (t3 - t2) / 1e6
            return Sample(True, (t1 - t0) / 1e6, extra=extra)
        except Exception as e:  # noqa: BLE001 - a failing runtime is a result
            return Sample(False, (time.perf_counter_ns() - t0) / 1e6, error=f"{type(e).__name__}: {e}"[:300])
        finally:
            if pod is not None:
                try:
                    cri.remove_pod(pod.id)
                except Exception:  # noqa: BLE001
                    pass

    def figures(self):
        self.pod_fig = EFig("cri_pod", "CRI RunPodSandbox+CreateContainer+StartContainer (busybox sleep)",
                            self._fig_pod, phases=("stop_remove", "StopPodSandbox+RemovePodSandbox"))
        return [self.pod_fig]


BENCHES = {"docker": DockerBench, "podman": PodmanBench, "cri": CriBench}


class EFig:
    """An engine figure, in the harness's Figure shape (rep, setup, teardown)."""
    kind = "latency"
    verb = None
    parallel_n = 0

    def __init__(self, name, title, rep, setup=None, teardown=None, resident=False, phases=None):
        self.name, self.title, self.rep, self.setup, self.teardown = name, title, rep, setup, teardown
        self.phases = phases
        self.resident_by_rt = {}  # runtime name -> what the runtime keeps running per container
        if resident and setup:
            inner = setup

            def setup_and_measure(ctx, rt):
                st = inner(ctx, rt)
                if rt.wrapper is None:
                    self.resident_by_rt[rt.name] = _await_resident(rt.binary, st["id"])
                return st
            self.setup = setup_and_measure


def _await_resident(binary: str, cid: str) -> dict:
    """The runtime's processes left for a detached container, after the engine's call returned (a
    runtime process exiting right then is not counted: poll briefly for a stable answer)."""
    end = time.monotonic() + 2.0
    r = resident(binary, cid)
    while r["processes"] and time.monotonic() < end:
        time.sleep(0.05)
        r = resident(binary, cid)
    return r


def _sample(r: proc.Result) -> Sample:
    if r.ok:
        return Sample(True, r.ms)
    return Sample(False, r.ms, error=r.describe(), timed_out=r.timed_out)


# ------------------------------------------------------------------ per-verb breakdown
def breakdown(calls_by_rt: dict[str, list[dict]], ops: dict[str, int]) -> dict:
    """{form: {rt: {count, per_op, median_ms, sum_ms_per_op}}} and totals per runtime."""
    forms: dict[str, dict] = {}
    totals = {}
    for rt, calls in calls_by_rt.items():
        n_ops = max(1, ops.get(rt, 1))
        totals[rt] = {"calls_per_op": round(len(calls) / n_ops, 2),
                      "ms_per_op": round(sum(c["ms"] for c in calls) / n_ops, 2),
                      "failed_calls": sum(1 for c in calls if c["rc"] not in (0, None))}
        by: dict[str, list[float]] = {}
        for c in calls:
            by.setdefault(c["shape"], []).append(c["ms"])
        for shape, ms in by.items():
            forms.setdefault(shape, {})[rt] = {
                "count": len(ms), "per_op": round(len(ms) / n_ops, 2),
                "median_ms": round(statistics.median(ms), 2), "sum_ms_per_op": round(sum(ms) / n_ops, 2)}
    return {"forms": forms, "totals": totals}


def trace_pass(bench, fig: EFig, reps: int) -> dict:
    """REPS of FIG for each traced runtime (interleaved), the calls each made, grouped by form."""
    states = {}
    calls = {rt.name: [] for rt in bench.traced}
    ops = {rt.name: 0 for rt in bench.traced}
    errors = {}
    try:
        for rt in bench.traced:
            rt.wrapper.set_mode("time")
            if fig.setup:
                try:
                    states[rt.name] = fig.setup(None, rt)
                except Exception as e:  # noqa: BLE001
                    errors[rt.name] = f"(setup) {e}"
            rt.wrapper.take()  # not the setup's calls
        for i in range(reps):
            for rt in (bench.traced if i % 2 == 0 else bench.traced[::-1]):
                if rt.name in errors:
                    continue
                s = fig.rep(None, rt, states.get(rt.name))
                if s.ok:
                    ops[rt.name] += 1
                else:
                    errors.setdefault(rt.name, s.error)
                time.sleep(0.2)  # an engine's asynchronous calls of this rep (e.g. a shim's delete)
                calls[rt.name].extend(rt.wrapper.take())
    finally:
        for rt in bench.traced:
            if rt.name in states and fig.teardown:
                try:
                    fig.teardown(None, rt, states[rt.name])
                except Exception:  # noqa: BLE001
                    pass
            rt.wrapper.take()
    out = breakdown(calls, ops)
    out["ops"] = ops
    out["errors"] = errors
    out["configs"] = {rt.name: sorted({c["cfg"] for c in calls[rt.name] if c["cfg"]}) for rt in bench.traced}
    return out


PROFILE_MODES = ("cprofile", "importtime", "strace")


def profile_pass(bench, fig: EFig, reps: int, dest: str) -> dict:
    """REPS of FIG through the pyrunc wrapper in each profiling mode (benchmarks/wrapper.py): the
    profiles of every pyrunc call the engine made, under DEST/<engine>/<figure>/<mode>/."""
    rt = next(r for r in bench.traced if r.name.startswith("pyrunc"))
    w = rt.wrapper
    done = {}
    for mode in PROFILE_MODES:
        if mode == "strace" and not shutil.which("strace"):
            continue
        prof = os.path.join(w.dir, "prof")
        shutil.rmtree(prof, ignore_errors=True)
        os.makedirs(prof)
        st = None
        try:
            w.set_mode("time")
            if fig.setup:
                st = fig.setup(None, rt)
            shutil.rmtree(prof, ignore_errors=True)
            os.makedirs(prof)
            w.set_mode(mode)
            for _ in range(reps):
                fig.rep(None, rt, st)
            time.sleep(0.2)
            w.set_mode("time")
        finally:
            w.set_mode("time")
            if st is not None and fig.teardown:
                fig.teardown(None, rt, st)
        w.take()
        out = os.path.join(dest, bench.name, fig.name, mode)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(prof, out)
        done[mode] = out
    return done


def keep_configs(bench, dest: str) -> list[str]:
    """Copy one captured config per (traced runtime, verb) to DEST: the exact configs an engine
    sends, for profiling pyrunc with them."""
    kept = []
    os.makedirs(dest, exist_ok=True)
    for rt in bench.traced:
        d = os.path.join(rt.wrapper.dir, "cfg")
        seen = {}
        for f in sorted(os.listdir(d)):
            verb = f.split(".")[1]
            seen[verb] = seen.get(verb, 0) + 1
            if seen[verb] > 2:  # CRI: the pause container's and the workload's
                continue
            target = os.path.join(dest, f"{bench.name}-{rt.name}-{verb}{seen[verb]}.json")
            shutil.copyfile(os.path.join(d, f), target)
            kept.append(target)
    return kept


# ------------------------------------------------------------------ the driver
def run(engines: list[str], figure_filter, reps: int, warmup: int, trace_reps: int, tmp: str,
        pyrunc: str, runc: str, configs_dir: str | None = None, profile_dir: str | None = None,
        profile_reps: int = 3) -> dict:
    out: dict = {"engines": {}, "figures": {}, "breakdown": {}, "resident": {}, "unavailable": {}}
    for eng in engines:
        why = available(eng)
        if why:
            out["unavailable"][eng] = why
            progress(f"[{eng}] skipped: {why}")
            continue
        os.makedirs(os.path.join(tmp, eng))
        bench = BENCHES[eng](os.path.join(tmp, eng), pyrunc, runc)
        figs = [f for f in bench.figures() if figure_filter(f.name)]
        if not figs:
            continue
        t0 = time.monotonic()
        progress(f"[{eng}] starting a private daemon ...")
        try:
            with bench.session():
                out["engines"][eng] = {"startup_s": round(time.monotonic() - t0, 1)}
                for fig in figs:
                    progress(f"[{fig.name}] {fig.title}: {warmup} warm-up + {reps} reps x {len(bench.rts)} runtimes")
                    res = measure(fig, None, bench.rts, reps, warmup, log=progress)
                    res["meta"]["engine"] = eng
                    out["figures"][fig.name] = res
                    progress("    " + ", ".join(
                        f"{n} " + (f"{v['median_ms']:.1f} ms" if v.get("median_ms") is not None else "FAIL")
                        for n, v in res["runtimes"].items()) + f"  [{res['meta']['elapsed_s']} s]")
                    if fig.phases:
                        _phase_figure(out, fig, res)
                    if trace_reps > 0:
                        progress(f"    tracing {trace_reps} reps through the wrapper")
                        out["breakdown"][fig.name] = trace_pass(bench, fig, trace_reps)
                    _collect_resident(out, fig, res)
                    if profile_dir:
                        progress(f"    profiling pyrunc's calls ({profile_reps} reps per mode)")
                        out.setdefault("profiles", {})[fig.name] = profile_pass(bench, fig, profile_reps, profile_dir)
                if configs_dir:
                    out["engines"][eng]["configs"] = keep_configs(bench, configs_dir)
        except Unavailable as e:
            out["unavailable"][eng] = str(e)
            progress(f"[{eng}] skipped: {e}")
        except Exception as e:  # noqa: BLE001 - one engine's failure must not lose the others
            out["unavailable"][eng] = f"failed: {type(e).__name__}: {str(e)[:500]}"
            progress(f"[{eng}] failed: {e!r}")
        out["engines"].setdefault(eng, {})["total_s"] = round(time.monotonic() - t0, 1)
    return out


def _phase_figure(out, fig, res):
    """A figure's second phase (CRI stop+remove) as its own row, from the samples' extra."""
    key, title = fig.phases
    rows = {}
    for name, r in res["runtimes"].items():
        ph = r.get("phases", {}).get(key)
        rows[name] = ph or {"median_ms": None, "errors": r.get("errors", 0), "reps_planned": r["reps_planned"]}
    out["figures"][f"{fig.name}_{key}"] = {"meta": {"title": title, "kind": "latency", "verb": None,
                                                      "engine": res["meta"]["engine"]}, "runtimes": rows}


def _collect_resident(out, fig, res):
    if fig.resident_by_rt:
        out["resident"][fig.name] = dict(fig.resident_by_rt)
