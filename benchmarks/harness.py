"""The measurement loop: every figure for every runtime, interleaved."""

from __future__ import annotations

import gc
import statistics
import sys
import time

from .figures import Ctx, Figure, Sample, SetupError
from .runtimes import Runtime

GIVE_UP_AFTER = 3  # consecutive failures (or a single timeout) end a runtime's figure


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def summarize(samples: list[Sample], planned: int, first_error: str | None) -> dict:
    ok = [s for s in samples if s.ok]
    ms = sorted(s.ms for s in ok)
    out: dict = {
        "reps_planned": planned,
        "n_ok": len(ok),
        "errors": planned - len(ok),
        "first_error": first_error,
        "samples_ms": [round(s.ms, 3) for s in samples if s.ok],
    }
    if ms:
        out.update(
            median_ms=round(statistics.median(ms), 3),
            mean_ms=round(statistics.fmean(ms), 3),
            min_ms=round(ms[0], 3),
            p90_ms=round(_pct(ms, 0.9), 3),
            stdev_ms=round(statistics.stdev(ms), 3) if len(ms) > 1 else 0.0,
        )
        rss = [s.maxrss_kb for s in ok if s.maxrss_kb]
        if rss:
            out["wait4_maxrss_kb_median"] = int(statistics.median(rss))
    wait = [s.extra["wait_rss_kb"] for s in ok if "wait_rss_kb" in s.extra]
    if wait:
        out["wait_rss_kb_median"] = int(statistics.median(wait))
        out["wait_rss_kb_max"] = max(wait)
    for key in ("fg_rss_kb", "fg_pss_kb"):
        vals = [s.extra[key] for s in ok if key in s.extra]
        if vals:
            out[key + "_median"] = int(statistics.median(vals))
    phases: dict = {}
    for s in ok:
        for k, v in s.extra.get("phases", {}).items():
            phases.setdefault(k, []).append(v)
    if phases:
        out["phases"] = {k: {"median_ms": round(statistics.median(v), 3), "n_ok": len(v),
                             "samples_ms": [round(x, 3) for x in v], "reps_planned": planned,
                             "errors": planned - len(v)} for k, v in phases.items()}
    if any("errors" in s.extra for s in samples):
        out["container_errors"] = sum(s.extra.get("errors", 0) for s in samples)
        out["container_errors_per_rep"] = [s.extra.get("errors", 0) for s in samples]
    return out


def measure(fig: Figure, ctx: Ctx, runtimes: list[Runtime], reps: int, warmup: int,
            log=lambda msg: None, rss_probe=None, rss_reps: int = 0) -> dict:
    states: dict[str, object] = {}
    setup_err: dict[str, str] = {}
    samples: dict[str, list[Sample]] = {rt.name: [] for rt in runtimes}
    first_err: dict[str, str | None] = {rt.name: None for rt in runtimes}
    consecutive = {rt.name: 0 for rt in runtimes}
    given_up: dict[str, str] = {}
    rss_samples: dict[str, list[int]] = {rt.name: [] for rt in runtimes}
    t_start = time.monotonic()
    try:
        if fig.setup:
            for rt in runtimes:
                try:
                    states[rt.name] = fig.setup(ctx, rt)
                except SetupError as e:
                    setup_err[rt.name] = f"(setup) {e}"
                    given_up[rt.name] = "setup failed"
                except Exception as e:  # noqa: BLE001 - a runtime must never crash the harness
                    setup_err[rt.name] = f"(setup) harness: {e!r}"
                    given_up[rt.name] = "setup failed"
        for i in range(warmup + reps):
            k = i % len(runtimes)
            order = runtimes[k:] + runtimes[:k]  # A B C, B C A, ... : interleaved, no fixed position
            for rt in order:
                if rt.name in given_up:
                    continue
                gc.disable()
                try:
                    s = fig.rep(ctx, rt, states.get(rt.name))
                except Exception as e:  # noqa: BLE001
                    s = Sample(False, error=f"harness: {e!r}")
                finally:
                    gc.enable()
                if i >= warmup:
                    samples[rt.name].append(s)
                if s.ok:
                    consecutive[rt.name] = 0
                else:
                    consecutive[rt.name] += 1
                    if first_err[rt.name] is None:
                        first_err[rt.name] = s.error
                    if s.timed_out or consecutive[rt.name] >= GIVE_UP_AFTER:
                        given_up[rt.name] = "timed out" if s.timed_out else f"{GIVE_UP_AFTER} consecutive failures"
                        log(f"  {fig.name}: giving up on {rt.name} ({given_up[rt.name]}): {s.error}")
            gc.collect()
        # Peak-RSS pass: a few more repetitions with every runtime call made
        # under the RSS probe (exact ru_maxrss, see proc.RssProbe).  Not timed.
        if rss_probe is not None and fig.kind == "latency":
            for rt in runtimes:
                if rt.name in given_up:
                    continue
                rt.rss_probe = rss_probe
                try:
                    for _ in range(rss_reps):
                        try:
                            s = fig.rep(ctx, rt, states.get(rt.name))
                        except Exception:  # noqa: BLE001
                            continue
                        if s.ok and s.maxrss_kb:
                            rss_samples[rt.name].append(s.maxrss_kb)
                finally:
                    rt.rss_probe = None
    finally:
        if fig.teardown:
            for rt in runtimes:
                if rt.name in states:
                    try:
                        fig.teardown(ctx, rt, states[rt.name])
                    except Exception as e:  # noqa: BLE001
                        log(f"  {fig.name}: teardown for {rt.name} failed: {e!r}")
    result = {}
    for rt in runtimes:
        fe = setup_err.get(rt.name) or first_err[rt.name]
        summ = summarize(samples[rt.name], reps, fe)
        if rt.name in given_up:
            summ["gave_up"] = given_up[rt.name]
        if rss_samples[rt.name]:
            summ["peak_rss_kb_median"] = int(statistics.median(rss_samples[rt.name]))
            summ["peak_rss_kb_samples"] = rss_samples[rt.name]
        result[rt.name] = summ
    result_meta = {"title": fig.title, "kind": fig.kind, "verb": fig.verb,
                   "elapsed_s": round(time.monotonic() - t_start, 2)}
    if fig.kind == "parallel":
        result_meta["containers"] = fig.parallel_n
    return {"meta": result_meta, "runtimes": result}


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
