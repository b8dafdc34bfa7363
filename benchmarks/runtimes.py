"""A runtime under test: its binary, its private --root and the containers
the harness created with it (so they can all be force-deleted at the end)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading

from . import proc

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def id_prefix() -> str:
    """Prefix of every container id of this harness process (also used to
    find anything a broken runtime left behind)."""
    return f"pyrb{os.getpid()}x"


def new_id(tag: str = "") -> str:
    with _counter_lock:
        n = next(_counter)
    return f"{id_prefix()}{n}{tag}"


def resolve(path: str, repo: str) -> str | None:
    """Absolute path of a runtime binary: PATH lookup for bare names,
    repo-relative for relative paths (so .venv/bin/pyrunc works anywhere)."""
    if os.sep not in path:
        return shutil.which(path)
    if not os.path.isabs(path):
        cand = os.path.join(repo, path)
        path = cand if os.path.exists(cand) else os.path.abspath(path)
    return path


class Runtime:
    # called with the id after a successful delete (outside the timed call)
    on_deleted = None

    def __init__(self, name: str, path: str, root: str, timeout: float):
        self.name = name
        self.given_path = path
        self.path = path
        self.root = root
        self.timeout = timeout
        self.live: set[str] = set()  # ids that may still exist
        self._lock = threading.Lock()
        self.version = ""
        self.rss_probe: proc.RssProbe | None = None  # set during the peak-RSS pass

    # -- plumbing ---------------------------------------------------------
    def _argv(self, *args) -> list:
        return [self.path, "--root", self.root, *args]

    def call(self, *args, timeout: float | None = None) -> proc.Result:
        return proc.run(self._argv(*args), timeout=timeout or self.timeout, rss_probe=self.rss_probe)

    def probe_version(self) -> None:
        r = proc.run([self.path, "--version"], timeout=10)
        text = (r.out or r.err).strip().splitlines()
        if r.ok and text:
            self.version = " / ".join(text[:2])
        else:
            self.version = "unavailable (" + r.describe() + ")"

    def _track(self, cid: str) -> None:
        with self._lock:
            self.live.add(cid)

    # -- verbs --------------------------------------------------------------
    def run(self, cid: str, bundle: str) -> proc.Result:
        self._track(cid)
        return self.call("run", "--bundle", bundle, cid)

    def create(self, cid: str, bundle: str) -> proc.Result:
        self._track(cid)
        return self.call("create", "--bundle", bundle, cid)

    def start(self, cid: str) -> proc.Result:
        return self.call("start", cid)

    def state(self, cid: str) -> proc.Result:
        r = self.call("state", cid)
        if r.ok:
            try:
                r.extra["state"] = json.loads(r.out)
            except ValueError as e:
                r.rc, r.err = -1000, f"state output is not JSON: {e}"
        return r

    def kill(self, cid: str, sig: str = "KILL") -> proc.Result:
        return self.call("kill", cid, sig)

    def delete(self, cid: str, force: bool = False) -> proc.Result:
        args = ("delete", "--force", cid) if force else ("delete", cid)
        r = self.call(*args)
        if r.ok:
            with self._lock:
                self.live.discard(cid)
            if Runtime.on_deleted is not None:
                Runtime.on_deleted(cid)
        return r

    def exec(self, cid: str, *argv: str) -> proc.Result:
        return self.call("exec", cid, *argv)

    def list(self) -> proc.Result:
        return self.call("list")

    # -- clean-up -----------------------------------------------------------
    def force_delete(self, cid: str) -> bool:
        """Best effort, never raises."""
        try:
            return self.delete(cid, force=True).ok
        except Exception:  # noqa: BLE001 - clean-up must not crash the harness
            return False

    def cleanup_all(self) -> list[str]:
        """Force-delete everything still tracked; return ids that failed."""
        failed = []
        for cid in sorted(self.live):
            if not self.force_delete(cid):
                failed.append(cid)
        return failed
