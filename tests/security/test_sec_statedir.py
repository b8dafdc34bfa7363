"""Issue 13 #3: the state directory is not a way out. Whoever can write the --root directory (a
shared or rootless root) plants a symlink at ROOT/ID, or replaces state.json / exec.fifo inside a
real state dir by a symlink, a FIFO, a device or a huge file. No verb may follow ROOT/ID, remove or
write anything outside it, read a planted file through a link, or hang; --root itself may be a
symlink (runc follows it: it is the caller's choice).

Each detector also runs against a weakened pyrunc (tests/security/weaken.py) that follows links
again, and must flag it.
"""
import os
import subprocess

import pytest

from secutil import base_config
from weaken import weakened

MARK = "/MARKER-outside-the-state-dir"
HANG = 8  # seconds: a verb on a state dir answers in well under a second on an idle machine


def _call(rt, *args, timeout=HANG):
    """(returncode, stdout, stderr), or None when it hung (killed after TIMEOUT)."""
    try:
        p = rt(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return p.returncode, p.stdout, p.stderr


def _snapshot(d):
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        out[name] = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None
    return out


def _victim(rt, tmp_path):
    """A host directory that looks like a stopped container's state dir: a stale copy of a real
    state.json (its bundle rewritten to MARK) and a file that must survive."""
    victim = os.path.join(str(tmp_path), f"victim-{rt.name}")
    os.makedirs(victim)
    cid = rt.new_id("real")
    rt("create", "-b", rt.bundle(base_config(["sleep", "100"])), cid, check=True)
    with open(os.path.join(rt.root, cid, "state.json")) as f:
        text = f.read()
    rt("delete", "--force", cid, check=True)
    bundle = rt.bundle()  # a path that appears in the state: swapped for the marker
    text = text.replace(os.path.dirname(bundle), MARK)
    with open(os.path.join(victim, "state.json"), "w") as f:
        f.write(text)
    with open(os.path.join(victim, "keep"), "w") as f:
        f.write("host data\n")
    return victim


VERBS = [["state"], ["start"], ["kill"], ["kill", "--all"], ["exec"], ["pause"], ["resume"], ["ps"],
         ["events", "--stats"], ["update", "--pids-limit", "10"], ["delete"], ["delete", "--force"]]


def symlinked_dir_violations(rt, tmp_path, strict):
    """Run every verb on ROOT/ID -> a host directory. Violations: a hang, a traceback, anything
    changed in the host directory; with STRICT also a verb that succeeded or read the planted
    state.json (followed the link), and a `list` that shows the link."""
    victim = _victim(rt, tmp_path)
    before = _snapshot(victim)
    link = rt.new_id("link")
    rt.ids.discard(link)  # cleanup's delete --force is refused on it: removed below
    os.makedirs(rt.root, exist_ok=True)
    lpath = os.path.join(rt.root, link)
    bad = []
    try:
        for verb in VERBS:
            if not os.path.islink(lpath):
                os.symlink(victim, lpath)  # runc's delete removes the link itself: put it back
            args = verb + [link] + (["true"] if verb == ["exec"] else [])
            r = _call(rt, *args)
            if r is None:
                bad.append(f"{' '.join(verb)}: hung")
                continue
            code, out, err = r
            if "Traceback" in err:
                bad.append(f"{' '.join(verb)}: traceback")
            if _snapshot(victim) != before:
                bad.append(f"{' '.join(verb)}: changed the host directory {victim}")
                before = _snapshot(victim)
            if strict and MARK in out + err:
                bad.append(f"{' '.join(verb)}: read the planted state.json through the link")
            if strict and code == 0:
                bad.append(f"{' '.join(verb)}: followed the link (exit 0)")
            elif strict and len(err.strip().splitlines()) != 1:
                bad.append(f"{' '.join(verb)}: not a one-line error: {err!r}")
        if not os.path.islink(lpath):
            os.symlink(victim, lpath)
        for fmt in ("table", "json"):
            r = _call(rt, "list", "--format", fmt)
            if r is None or r[0] != 0 or "Traceback" in r[2]:
                bad.append(f"list --format {fmt}: failed: {r}")
            elif strict and link in r[1]:
                bad.append(f"list --format {fmt}: shows the link")
    finally:
        if os.path.islink(lpath):
            os.unlink(lpath)
    if not os.path.isdir(victim) or "keep" not in os.listdir(victim):
        bad.append("the host directory lost its files")
    return bad


def test_symlinked_state_dir_changes_nothing_outside(anyrt, tmp_path):
    assert symlinked_dir_violations(anyrt, tmp_path, strict=False) == []


def test_symlinked_state_dir_refused(anyrt, tmp_path, request):
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 follows a symlinked "
                                              "ROOT/ID: state, kill, ps... act on the link's target"))
    assert symlinked_dir_violations(anyrt, tmp_path, strict=True) == []


def test_weakened_symlinked_state_dir_flagged(tmp_path):
    """pyrunc with O_NOFOLLOW dropped from the state dir open and list following links again:
    the detector must flag it (delete empties the host directory, state reads through it)."""
    weak = weakened(tmp_path, {"state.py": [
        ("_DIR = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC",
         "_DIR = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC"),
        ("e.is_dir(follow_symlinks=False)", "e.is_dir(follow_symlinks=True)")]})
    try:
        bad = symlinked_dir_violations(weak, tmp_path, strict=True)
    finally:
        weak.cleanup()
    assert any("changed the host directory" in b for b in bad), bad
    assert any("followed the link" in b for b in bad), bad


# ---- files inside a real state dir replaced
def _plant(rt, tmp_path, what):
    """A created container whose state.json or exec.fifo is replaced; returns (cid, restore)."""
    cid = rt.new_id("tamper")
    rt("create", "-b", rt.bundle(base_config(["sleep", "100"])), cid, check=True)
    d = os.path.join(rt.root, cid)
    state = os.path.join(d, "state.json")
    saved = open(state, "rb").read()
    target = os.path.join(str(tmp_path), f"target-{rt.name}")
    if what == "state-symlink":
        with open(target, "w") as f:
            f.write(saved.decode().replace(os.path.dirname(rt.bundle()), MARK))
        os.unlink(state)
        os.symlink(target, state)
    elif what == "state-fifo":
        os.unlink(state)
        os.mkfifo(state, 0o600)
    elif what == "state-devzero":
        os.unlink(state)
        os.mknod(state, 0o600 | 0o020000, os.makedev(1, 5))
    elif what == "state-huge":
        with open(state, "r+b") as f:  # valid JSON head, then 1 GiB of holes
            f.truncate(1 << 30)
    elif what == "fifo-symlink":
        with open(target, "w") as f:
            f.write("")
        fifo = os.path.join(d, "exec.fifo")
        os.unlink(fifo)
        os.symlink(target, fifo)

    def restore():
        for name in ("state.json", "exec.fifo"):
            p = os.path.join(d, name)
            if name == "state.json" and (os.path.islink(p) or not os.path.isfile(p)
                                         or os.path.getsize(p) != len(saved)):
                os.unlink(p)
                with open(p, "wb") as f:
                    f.write(saved)
    return cid, target, restore


TAMPER = ["state-symlink", "state-fifo", "state-devzero", "state-huge", "fifo-symlink"]


def tampered_violations(rt, tmp_path, what):
    cid, target, restore = _plant(rt, tmp_path, what)
    before = open(target, "rb").read() if os.path.exists(target) else None
    bad = []
    try:
        for verb in (["state"], ["list", "--format", "json"], ["start"], ["kill", "--all"], ["state"]):
            r = _call(rt, *verb, *([cid] if verb[0] != "list" else []),
                      *(["KILL"] if verb == ["kill", "--all"] else []))
            if r is None:
                bad.append(f"{verb[0]}: hung")
                break  # once is enough (and each costs HANG seconds)
            if "Traceback" in r[2]:
                bad.append(f"{verb[0]}: traceback")
            if MARK in r[1] + r[2]:
                bad.append(f"{verb[0]}: read the planted file through the link")
            now = open(target, "rb").read() if os.path.exists(target) else None
            if now != before:
                bad.append(f"{verb[0]}: wrote to the link's target")
                before = now
    finally:
        restore()
        rt("delete", "--force", cid, timeout=30)
    return bad


@pytest.mark.parametrize("what", TAMPER)
def test_tampered_state_files(anyrt, tmp_path, what, request):
    if anyrt.name == "runc" and what == "state-fifo":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 blocks forever "
                                              "opening a FIFO planted as state.json"))
    assert tampered_violations(anyrt, tmp_path, what) == []
    assert not os.path.exists(os.path.join(anyrt.root, anyrt.ids.pop()))


@pytest.mark.parametrize("what", ["state-symlink", "state-fifo"])
def test_weakened_tampered_state_flagged(tmp_path, what):
    """state.json read with a plain blocking open that follows links: flagged (reads the planted
    file; hangs on the FIFO)."""
    weak = weakened(tmp_path, {"state.py": [
        ("posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK | posix.O_CLOEXEC",
         "posix.O_RDONLY | posix.O_CLOEXEC")]})
    try:
        bad = tampered_violations(weak, tmp_path, what)
    finally:
        weak.cleanup()
    assert bad, what


def test_root_symlink_followed(anyrt, tmp_path):
    """--root may itself be a symlink (runc follows it): the state is reached through it."""
    cid = anyrt.new_id("rl")
    anyrt("create", "-b", anyrt.bundle(base_config(["sleep", "100"])), cid, check=True)
    link = os.path.join(str(tmp_path), "root-link")
    os.symlink(anyrt.root, link)
    p = subprocess.run([anyrt.binary, "--root", link, "state", cid], capture_output=True, text=True,
                       timeout=HANG)
    assert p.returncode == 0 and '"created"' in p.stdout, p.stderr
    p = subprocess.run([anyrt.binary, "--root", link, "delete", "--force", cid], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert os.listdir(anyrt.root) == []
