"""The figures: what one repetition of each measures, for one runtime.

A repetition returns a Sample; it never raises for a runtime failure (the
failure is recorded) and always force-deletes the containers it made.
Long-lived containers used by several repetitions (state, exec, list) are
made in a per-figure setup and deleted in teardown.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from . import proc
from .runtimes import Runtime, new_id


@dataclass
class Sample:
    ok: bool
    ms: float = 0.0
    maxrss_kb: int = 0
    error: str | None = None
    timed_out: bool = False
    extra: dict = field(default_factory=dict)


def from_result(r: proc.Result, what: str = "") -> Sample:
    if r.ok:
        return Sample(True, r.ms, r.maxrss_kb)
    prefix = f"{what}: " if what else ""
    return Sample(False, r.ms, r.maxrss_kb, prefix + r.describe(), timed_out=r.timed_out)


def setup_failed(r: proc.Result, what: str) -> Sample:
    return Sample(False, 0.0, 0, f"(setup) {what}: {r.describe()}", timed_out=r.timed_out)


class SetupError(Exception):
    def __init__(self, msg: str, timed_out: bool = False):
        super().__init__(msg)
        self.timed_out = timed_out


@dataclass
class Ctx:
    bundles: dict            # variant name -> bundle dir
    list_n: int = 100
    settle_timeout: float = 10.0


@dataclass
class Figure:
    name: str
    title: str
    rep: Callable[[Ctx, Runtime, Any], Sample]
    setup: Callable[[Ctx, Runtime], Any] | None = None
    teardown: Callable[[Ctx, Runtime, Any], None] | None = None
    kind: str = "latency"        # latency | parallel
    verb: str | None = None      # for the peak-RSS table
    parallel_n: int = 0


# -- helpers ------------------------------------------------------------------

def _create_started(rt: Runtime, bundle: str, cid: str) -> None:
    r = rt.create(cid, bundle)
    if not r.ok:
        raise SetupError(f"create: {r.describe()}", r.timed_out)
    r = rt.start(cid)
    if not r.ok:
        raise SetupError(f"start: {r.describe()}", r.timed_out)


def _state_of(rt: Runtime, cid: str) -> dict:
    r = rt.state(cid)
    if not r.ok:
        raise SetupError(f"state: {r.describe()}", r.timed_out)
    return r.extra["state"]


def _delete_many(rt: Runtime, ids: list[str], workers: int = 8) -> None:
    if not ids:
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(ids))) as ex:
        list(ex.map(rt.force_delete, ids))


def _guard(fn: Callable[[], Sample]) -> Sample:
    try:
        return fn()
    except SetupError as e:
        return Sample(False, error=f"(setup) {e}", timed_out=e.timed_out)


# -- run ----------------------------------------------------------------------

def rep_run(variant: str):
    def rep(ctx: Ctx, rt: Runtime, _state) -> Sample:
        cid = new_id()
        try:
            return from_result(rt.run(cid, ctx.bundles[variant]), "run")
        finally:
            rt.force_delete(cid)
    return rep


# -- single verbs -----------------------------------------------------------------

def rep_create(ctx: Ctx, rt: Runtime, _state) -> Sample:
    cid = new_id()
    try:
        r = rt.create(cid, ctx.bundles["sleep"])
        s = from_result(r, "create")
        if r.ok:
            # RSS of the process waiting for `start` (runc: runc init; crun: its
            # own waiting child), read from the pid `state` reports.
            st = rt.state(cid)
            pid = st.extra.get("state", {}).get("pid") if st.ok else None
            if isinstance(pid, int) and pid > 0:
                rss = proc.vm_rss_kb(pid)
                if rss is not None:
                    s.extra["wait_rss_kb"] = rss
        return s
    finally:
        rt.force_delete(cid)


def rep_start(ctx: Ctx, rt: Runtime, _state) -> Sample:
    cid = new_id()
    try:
        r = rt.create(cid, ctx.bundles["sleep"])
        if not r.ok:
            return setup_failed(r, "create")
        return from_result(rt.start(cid), "start")
    finally:
        rt.force_delete(cid)


def rep_start_variant(variant: str):
    def rep(ctx: Ctx, rt: Runtime, _state) -> Sample:
        cid = new_id()
        try:
            r = rt.create(cid, ctx.bundles[variant])
            if not r.ok:
                return setup_failed(r, "create")
            return from_result(rt.start(cid), "start")
        finally:
            rt.force_delete(cid)
    return rep


def rep_run_foreground(ctx: Ctx, rt: Runtime, _state) -> Sample:
    """`run` in the foreground of a long-running container: what the runtime keeps resident while
    the container runs (the `run` parent; runc's, crun's and pyrunc's stay to relay signals and
    the exit status). Timed: from spawn until `state` says running (polled, so coarse)."""
    cid = new_id("F")
    rt._track(cid)
    t0 = time.perf_counter_ns()
    p = None
    try:
        p = subprocess.Popen(rt._argv("run", "--bundle", ctx.bundles["sleep"], cid), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
        deadline = time.monotonic() + ctx.settle_timeout
        while True:
            r = rt.state(cid)  # fails until the container exists
            if r.ok and r.extra["state"].get("status") == "running":
                break
            if p.poll() is not None:
                return Sample(False, error=f"run exited {p.returncode} before the container ran")
            if time.monotonic() > deadline:
                return Sample(False, error="run: container not running in time", timed_out=True)
            time.sleep(0.005)
        ms = (time.perf_counter_ns() - t0) / 1e6
        s = Sample(True, ms)
        rss = proc.vm_rss_kb(p.pid)
        if rss is not None:
            s.extra["fg_rss_kb"] = rss
            try:
                with open(f"/proc/{p.pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            s.extra["fg_pss_kb"] = int(line.split()[1])
            except OSError:
                pass
        return s
    except SetupError as e:
        return Sample(False, error=str(e))
    finally:
        rt.kill(cid, "KILL")
        if p is not None:
            try:
                p.wait(timeout=ctx.settle_timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        rt.force_delete(cid)


def rep_kill(ctx: Ctx, rt: Runtime, _state) -> Sample:
    cid = new_id()

    def body() -> Sample:
        _create_started(rt, ctx.bundles["sleep"], cid)
        return from_result(rt.kill(cid, "KILL"), "kill")
    try:
        return _guard(body)
    finally:
        rt.force_delete(cid)


def rep_delete(ctx: Ctx, rt: Runtime, _state) -> Sample:
    """delete (no --force) of a container whose process has exited."""
    cid = new_id()

    def body() -> Sample:
        _create_started(rt, ctx.bundles["true"], cid)
        deadline = time.monotonic() + ctx.settle_timeout
        while True:
            st = _state_of(rt, cid)
            if st.get("status") == "stopped":
                break
            if time.monotonic() > deadline:
                raise SetupError(f"container still {st.get('status')!r} after {ctx.settle_timeout:.0f} s")
            pid = st.get("pid")
            if isinstance(pid, int) and pid > 0:
                proc.wait_exit(pid, 1.0)
            else:
                time.sleep(0.01)
        return from_result(rt.delete(cid), "delete")
    try:
        return _guard(body)
    finally:
        rt.force_delete(cid)


def setup_running(ctx: Ctx, rt: Runtime) -> str:
    cid = new_id("L")
    try:
        _create_started(rt, ctx.bundles["sleep"], cid)
    except SetupError:
        rt.force_delete(cid)
        raise
    return cid


def teardown_one(ctx: Ctx, rt: Runtime, cid) -> None:
    if cid:
        rt.force_delete(cid)


def rep_state(ctx: Ctx, rt: Runtime, cid: str) -> Sample:
    r = rt.state(cid)
    s = from_result(r, "state")
    if r.ok and r.extra["state"].get("status") != "running":
        s.ok, s.error = False, f"state: status {r.extra['state'].get('status')!r}, expected 'running'"
    return s


def rep_exec(ctx: Ctx, rt: Runtime, cid: str) -> Sample:
    return from_result(rt.exec(cid, "true"), "exec")


def rep_exec_detached(ctx: Ctx, rt: Runtime, cid: str) -> Sample:
    """The form every engine uses: `exec --process FILE --detach --pid-file P` (the shim's and
    conmon's), with the container's process as the file (args `true`)."""
    pidfile = os.path.join(os.path.dirname(ctx.bundles["process_true"]), f"{cid}.{rt.name}.pid")
    try:
        return from_result(rt.call("exec", "--process", ctx.bundles["process_true"], "--detach",
                                   "--pid-file", pidfile, cid), "exec --detach")
    finally:
        try:
            os.unlink(pidfile)
        except OSError:
            pass


def setup_many(ctx: Ctx, rt: Runtime) -> list[str]:
    ids = [new_id("M") for _ in range(ctx.list_n)]
    errors: list[SetupError] = []

    def one(cid: str) -> None:
        try:
            _create_started(rt, ctx.bundles["sleep"], cid)
        except SetupError as e:
            errors.append(e)
    with ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(one, ids))
    if errors:
        _delete_many(rt, ids)
        raise SetupError(f"{len(errors)}/{len(ids)} containers failed; first: {errors[0]}",
                         any(e.timed_out for e in errors))
    return ids


def teardown_many(ctx: Ctx, rt: Runtime, ids) -> None:
    _delete_many(rt, ids or [])


def rep_list(ctx: Ctx, rt: Runtime, ids: list[str]) -> Sample:
    r = rt.list()
    s = from_result(r, "list")
    if r.ok:
        shown = sum(1 for line in r.out.splitlines() if line.split()[:1] and line.split()[0] in ids)
        if shown != len(ids):
            s.ok, s.error = False, f"list: shows {shown} of {len(ids)} containers"
    return s


# -- parallel -----------------------------------------------------------------

def rep_parallel(n: int):
    def rep(ctx: Ctx, rt: Runtime, _state) -> Sample:
        ids = [new_id("P") for _ in range(n)]
        ends = [0] * n
        errs: list[str | None] = [None] * n
        timeouts = [False] * n
        go = threading.Event()

        def worker(i: int) -> None:
            go.wait()
            try:
                r = rt.create(ids[i], ctx.bundles["sleep"])
                if r.ok:
                    r = rt.start(ids[i])
                if not r.ok:
                    errs[i] = f"{r.argv[3] if len(r.argv) > 3 else '?'}: {r.describe()}"
                    timeouts[i] = r.timed_out
            except Exception as e:  # noqa: BLE001
                errs[i] = f"harness: {e!r}"
            ends[i] = time.perf_counter_ns()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        try:
            for t in threads:
                t.start()
            t0 = time.perf_counter_ns()
            go.set()
            for t in threads:
                t.join()
            total_ms = (max(ends) - t0) / 1e6
            failed = [e for e in errs if e]
            s = Sample(not failed, total_ms, 0,
                       f"{len(failed)}/{n} failed; first: {failed[0]}" if failed else None,
                       timed_out=any(timeouts))
            s.extra["errors"] = len(failed)
            return s
        finally:
            go.set()
            for t in threads:
                t.join()
            _delete_many(rt, ids)
    return rep


# -- the catalogue ------------------------------------------------------------

def all_figures(parallel_sizes=(20, 50)) -> list[Figure]:
    figs = [
        Figure("run", "run `true` (create+start+wait+delete), default busybox config",
               rep_run("true"), verb="run"),
        Figure("create", "create (sleep 1000)", rep_create, verb="create"),
        Figure("start", "start a created container", rep_start, verb="start"),
        Figure("state", "state of a running container", rep_state, setup_running, teardown_one, verb="state"),
        Figure("start_seccomp", "start, with a seccomp profile and no noNewPrivileges (as Docker and podman send)",
               rep_start_variant("seccomp_sleep"), verb="start+seccomp"),
        Figure("run_fg", "run (foreground) of `sleep`: until running; the run parent's memory while it runs",
               rep_run_foreground, verb="run (fg)"),
        Figure("kill", "kill KILL a running container", rep_kill, verb="kill"),
        Figure("delete", "delete a stopped container", rep_delete, verb="delete"),
        Figure("exec", "exec `true` into a running container", rep_exec, setup_running, teardown_one,
               verb="exec"),
        Figure("exec_detached", "exec --process FILE --detach --pid-file P (the engines' form), `true`",
               rep_exec_detached, setup_running, teardown_one, verb="exec -d"),
        Figure("list", "list with N running containers", rep_list, setup_many, teardown_many, verb="list"),
        Figure("run_seccomp", "run `true`, default config + default seccomp profile",
               rep_run("seccomp"), verb="run+seccomp"),
        Figure("run_nonet", "run `true`, default config without the network namespace",
               rep_run("nonet"), verb="run-netns"),
    ]
    for n in parallel_sizes:
        figs.append(Figure(f"par{n}", f"{n} containers created+started in parallel (total)",
                           rep_parallel(n), kind="parallel", parallel_n=n))
    return figs
