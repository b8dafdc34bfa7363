"""Ratios, targets, the stdout table and the JSON document."""

from __future__ import annotations

import json
import os

MIB = 1024.0

# Targets are shown, never asserted.
SINGLE_VERBS = ("create", "start", "state", "kill", "delete", "exec", "list")
WAIT_RSS_TARGET_MIB = 12.0


def subject_name(names: list[str]) -> str:
    return "pyrunc" if "pyrunc" in names else names[0]


def _median(fig: dict, name: str):
    return fig["runtimes"].get(name, {}).get("median_ms")


def ratios(fig: dict, subject: str) -> dict:
    out = {}
    s = _median(fig, subject)
    for ref in ("runc", "crun"):
        if ref == subject or ref not in fig["runtimes"]:
            continue
        r = _median(fig, ref)
        out[ref] = round(s / r, 3) if (s is not None and r) else None
    return out


def targets(name: str, fig: dict, subject: str) -> list[dict]:
    """Each target: text, value, met (True/False/None when not measurable)."""
    rat = fig.get("ratios", {})
    out = []

    def add(text, value, limit):
        out.append({"target": text, "value": value,
                    "met": None if value is None else value <= limit})
    if name == "run" and "runc" in rat:
        add(f"{subject}/runc <= 1.0", rat["runc"], 1.0)
    if name in SINGLE_VERBS and "runc" in rat:
        add(f"{subject}/runc <= 1.0", rat["runc"], 1.0)
    if name == "state" and "crun" in rat:
        add(f"{subject}/crun <= 2.0", rat["crun"], 2.0)
    if name == "create":
        w = fig["runtimes"].get(subject, {}).get("wait_rss_kb_median")
        add(f"waiting process RSS <= {WAIT_RSS_TARGET_MIB:g} MiB",
            None if w is None else round(w / MIB, 2), WAIT_RSS_TARGET_MIB)
    return out


def annotate(results: dict, names: list[str]) -> None:
    subject = subject_name(names)
    for fname, fig in results["figures"].items():
        fig["ratios"] = ratios(fig, subject)
        fig["targets"] = targets(fname, fig, subject)
    results["subject"] = subject


# -- text ---------------------------------------------------------------------

def _cell_ms(r: dict) -> str:
    if r.get("median_ms") is None:
        return f"FAIL({r.get('errors', 0)} err)"
    s = f"{r['median_ms']:.2f}"
    if r.get("errors"):
        s += f" ({r['errors']} err)"
    return s


def _fmt_ratio(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _fmt_target(t: dict) -> str:
    mark = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
    return f"{t['target']}: {mark}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([line, sep, *body])


def render(results: dict) -> str:
    names = results["runtime_order"]
    subject = results["subject"]
    refs = [r for r in ("runc", "crun") if r in names and r != subject]
    figs = results["figures"]
    out = []
    m = results["meta"]
    out.append(f"pyrunc benchmarks  reps={m['reps']} warmup={m['warmup']}{'  (quick)' if m['quick'] else ''}  "
               f"kernel {m['kernel']}  {m['cpus']} cpus")
    out.append(f"conditions: {m['conditions']}")
    la = [*(m.get("loadavg_start") or [])[:1], *(m.get("loadavg_end") or [])[:1]]
    if la:
        busy = max(la) > (m.get("cpus") or 1)
        out.append(f"load average (1 min) at start/end: {' / '.join(f'{x:.1f}' for x in la)}"
                   + ("  WARNING: machine busy, absolute numbers are noisy (ratios are interleaved, fairer)"
                      if busy else ""))
    for n in names:
        rt = results["runtimes"][n]
        out.append(f"  {n:8s} {rt['path']}  [{rt['version']}]")
    out.append("")

    lat = [(k, v) for k, v in figs.items() if v["meta"]["kind"] == "latency"]
    if lat:
        headers = ["figure (median ms)", *names, *[f"{subject}/{r}" for r in refs], "targets"]
        rows = []
        for k, v in lat:
            label = k if k != "list" else f"list ({m['list_n']} ctrs)"
            rows.append([label, *[_cell_ms(v["runtimes"][n]) for n in names],
                         *[_fmt_ratio(v["ratios"].get(r)) for r in refs],
                         "; ".join(_fmt_target(t) for t in v["targets"] if "RSS" not in t["target"])])
        out.append(_table(headers, rows))
        out.append("")
        notes = []
        if "run" in figs and "run_seccomp" in figs:
            notes.append("seccomp cost (run_seccomp - run): " + ", ".join(
                _delta(figs["run_seccomp"], figs["run"], n) for n in names))
        if "run" in figs and "run_nonet" in figs:
            notes.append("netns cost   (run - run_nonet):   " + ", ".join(
                _delta(figs["run"], figs["run_nonet"], n) for n in names))
        if notes:
            out.extend(notes)
            out.append("")

    rss_rows = []
    floor = m.get("harness_hwm_kb") or 0
    for k, v in lat:
        cells = []
        for n in names:
            r = v["runtimes"][n]
            kb = r.get("peak_rss_kb_median")
            if kb is not None:
                cells.append(f"{kb / MIB:.1f}")
                continue
            kb = r.get("wait4_maxrss_kb_median")
            if kb is None:
                cells.append("-")
            elif kb <= floor * 1.02:  # hidden under the harness's own image
                cells.append(f"<={kb / MIB:.1f}")
            else:
                cells.append(f"{kb / MIB:.1f}")
        if any(c != "-" for c in cells):  # run_fg has its own table
            rss_rows.append([v["meta"]["verb"] or k, *cells])
    if rss_rows:
        out.append(_table(["peak RSS of runtime process (MiB)", *names], rss_rows))
        out.append(f"  method: {m.get('rss_method', '')}")
        out.append("")
    if "create" in figs:
        v = figs["create"]
        cells = []
        for n in names:
            kb = v["runtimes"][n].get("wait_rss_kb_median")
            cells.append("-" if kb is None else f"{kb / MIB:.1f}")
        tgt = [t for t in v["targets"] if "RSS" in t["target"]]
        out.append(_table(["waiting process between create and start", *names, "target"],
                          [["VmRSS (MiB, median)", *cells, _fmt_target(tgt[0]) if tgt else ""]]))
        out.append("")

    if "run_fg" in figs:
        v = figs["run_fg"]
        cells = []
        for n in names:
            r = v["runtimes"][n]
            rss, pss = r.get("fg_rss_kb_median"), r.get("fg_pss_kb_median")
            cells.append("-" if rss is None else f"{rss / MIB:.1f} / {(pss or 0) / MIB:.1f}")
        out.append(_table(["foreground `run` parent while its container runs", *names],
                          [["VmRSS / PSS (MiB, median)", *cells]]))
        out.append("  (detached containers: no runtime process stays; see the engine table)")
        out.append("")

    par = [(k, v) for k, v in figs.items() if v["meta"]["kind"] == "parallel"]
    if par:
        rows = []
        for k, v in par:
            cells = []
            for n in names:
                r = v["runtimes"][n]
                t = "FAIL" if r.get("median_ms") is None else f"{r['median_ms']:.0f} ms"
                ce = r.get("container_errors", 0)
                cells.append(f"{t}, {ce} err" + (" (gave up)" if r.get("gave_up") else ""))
            rows.append([f"{v['meta']['containers']} in parallel", *cells,
                         *[_fmt_ratio(v["ratios"].get(r)) for r in refs]])
        out.append(_table(["create+start, total (median), failed containers", *names,
                           *[f"{subject}/{r}" for r in refs]], rows))
        out.append("")

    errs = []
    for k, v in figs.items():
        for n in names:
            r = v["runtimes"][n]
            if r.get("errors") or r.get("container_errors"):
                errs.append(f"  {k:12s} {n:8s} {r.get('errors', 0)}/{r.get('reps_planned')} reps failed"
                            + (f", gave up: {r['gave_up']}" if r.get("gave_up") else "")
                            + (f"; first: {r['first_error']}" if r.get("first_error") else ""))
    if errs:
        out.append("errors:")
        out.extend(errs)
        out.append("")
    if results.get("leftovers"):
        out.append(f"clean-up: {results['leftovers']}")
    return "\n".join(out)


def _delta(a: dict, b: dict, n: str) -> str:
    x, y = _median(a, n), _median(b, n)
    return f"{n} " + ("n/a" if x is None or y is None else f"{x - y:+.2f} ms")


def write_json(results: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# -- engines ------------------------------------------------------------------

ENGINE_NAMES = ("pyrunc", "runc", "runc2")


def _ratio(a, b):
    return None if a is None or not b else round(a / b, 3)


def annotate_engines(eng: dict) -> None:
    for fig in eng.get("figures", {}).values():
        rt = fig["runtimes"]
        m = {n: rt.get(n, {}).get("median_ms") for n in ENGINE_NAMES}
        fig["ratios"] = {"pyrunc/runc": _ratio(m["pyrunc"], m["runc"]),
                         "runc2/runc": _ratio(m["runc2"], m["runc"])}


def render_engines(eng: dict, meta: dict | None = None) -> str:
    out = []
    head = "engine figures (private daemons, host mount namespace; runc2 = runc under a second name: the noise)"
    if meta:
        head += f"  reps={meta.get('reps')} warmup={meta.get('warmup')} trace reps={meta.get('trace_reps')}"
    out.append(head)
    for e, why in eng.get("unavailable", {}).items():
        out.append(f"  {e}: not measured: {why}")
    for e, info in eng.get("engines", {}).items():
        if "startup_s" in info:
            out.append(f"  {e}: daemon up in {info['startup_s']} s, engine total {info.get('total_s')} s")
    figs = eng.get("figures", {})
    if figs:
        rows = []
        for name, v in figs.items():
            rows.append([v["meta"]["title"], *[_cell_ms(v["runtimes"].get(n, {})) for n in ENGINE_NAMES],
                         _fmt_ratio(v["ratios"].get("pyrunc/runc")), _fmt_ratio(v["ratios"].get("runc2/runc"))])
        out.append("")
        out.append(_table(["engine figure (median ms)", *ENGINE_NAMES, "pyrunc/runc", "runc2/runc (noise)"], rows))
    res = eng.get("resident", {})
    if res:
        rows = []
        for name, by in res.items():
            rows.append([name, *[("-" if n not in by else
                                  f"{by[n]['processes']} procs, {by[n]['rss_kb'] / MIB:.1f} MiB RSS, "
                                  f"{by[n]['pss_kb'] / MIB:.1f} MiB PSS") for n in ENGINE_NAMES]])
        out.append("")
        out.append(_table(["runtime processes left per running container", *ENGINE_NAMES], rows))
    for name, b in eng.get("breakdown", {}).items():
        rts = list(b["totals"]) or ["pyrunc-trace", "runc-trace"]
        a, r = (rts + ["", ""])[:2]
        rows = []
        for form, by in sorted(b["forms"].items(), key=lambda kv: -max(x["sum_ms_per_op"] for x in kv[1].values())):
            pa, pr = by.get(a, {}), by.get(r, {})
            rows.append([form[:90], f"{pa.get('per_op', 0):g} / {pr.get('per_op', 0):g}",
                         f"{pa.get('median_ms', '-')}", f"{pr.get('median_ms', '-')}",
                         _fmt_ratio(_ratio(pa.get("median_ms"), pr.get("median_ms"))),
                         f"{pa.get('sum_ms_per_op', 0):.1f} / {pr.get('sum_ms_per_op', 0):.1f}"])
        ta, tr = b["totals"].get(a, {}), b["totals"].get(r, {})
        rows.append(["TOTAL inside the runtime per op", f"{ta.get('calls_per_op', 0):g} / {tr.get('calls_per_op', 0):g}",
                     "", "", _fmt_ratio(_ratio(ta.get("ms_per_op"), tr.get("ms_per_op"))),
                     f"{ta.get('ms_per_op', 0):.1f} / {tr.get('ms_per_op', 0):.1f}"])
        out.append("")
        out.append(f"{name}: runtime calls per op (wrapper, {b['ops']} ops)"
                   + (f"  errors: {b['errors']}" if b.get("errors") else ""))
        out.append(_table(["call form", "calls/op pyrunc / runc", "median ms pyrunc", "runc", "ratio",
                           "ms/op pyrunc / runc"], rows))
    errs = []
    for name, v in figs.items():
        for n, r in v["runtimes"].items():
            if r.get("errors"):
                errs.append(f"  {name} {n}: {r.get('errors')}/{r.get('reps_planned')} failed; first: {r.get('first_error')}")
    if errs:
        out.append("")
        out.append("engine errors:")
        out.extend(errs)
    return "\n".join(out)
