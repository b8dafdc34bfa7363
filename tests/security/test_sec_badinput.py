"""Issue 13 #6, bad input from a hostile bundle author: a 100 MB config.json, 200k-deep nesting,
invalid UTF-8, duplicate keys, uid 2^40, negative rlimits, 10k mounts, 10k env vars, NUL bytes in
args, a cgroupsPath with '..'. Each gets a one-line error or a working container: never a
traceback, never a hang, and nothing left (state, cgroup, process, mount) either way.
(tests/test_bad_input.py checks field names in errors; tests/test_fuzz.py mutates at random.)

The detector also runs against weakened pyruncs (tests/security/weaken.py): one whose internal
errors escape as tracebacks, one that leaves a failed create's state behind. It must flag both.
"""
import json
import os

import pytest

from secutil import base_config, cgroup_dirs, host_mountpoints, procs_mentioning, remove_cgroups
from weaken import weakened

HANG = 60  # seconds for one create/run (a 100 MB config is parsed and validated)


def _deep(n):
    return "[" * n + "]" * n


def _raw_with(key, raw_value):
    """config.json text with KEY set to RAW_VALUE (JSON text inserted as is)."""
    cfg = base_config(["true"])
    cfg[key] = "@@"
    return json.dumps(cfg).replace('"@@"', raw_value)


def case_text(name, tmp_path):
    """The config.json bytes of case NAME."""
    cfg = base_config(["true"])
    if name == "100MB":
        cfg["annotations"] = {f"k{i}": "v" * 1000 for i in range(100 * 1024)}
    elif name == "deep-200k":
        return _raw_with("x-deep", _deep(200_000)).encode()
    elif name == "invalid-utf8":
        return json.dumps(cfg).replace('"true"', '"tr\udcffue"', 1).encode("utf-8", "surrogateescape")
    elif name == "duplicate-keys":
        text = json.dumps(cfg)
        # a second "process" whose args name a program that does not exist: the last one wins
        # in Go and Python alike; either way the container must work or fail cleanly
        return (text[:-1] + ', "process": ' + json.dumps(dict(cfg["process"], args=["true"])) + "}").encode()
    elif name == "uid-2^40":
        cfg["process"]["user"]["uid"] = 2 ** 40
    elif name == "negative-rlimit":
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": -5}]
    elif name == "10k-mounts":
        cfg["mounts"] += [{"destination": f"/tmp/m{i}", "type": "tmpfs", "source": "tmpfs",
                           "options": ["size=4k"]} for i in range(10_000)]
    elif name == "10k-env":
        cfg["process"]["env"] += [f"V{i}={'x' * 20}" for i in range(10_000)]
    elif name == "nul-in-args":
        cfg["process"]["args"] = ["sh", "-c", "true\u0000; echo injected"]
    elif name == "no-such-program":  # fails in the init, after the id was claimed
        cfg["process"]["args"] = ["/no/such/program"]
    elif name == "cgroupsPath-dotdot":
        cfg["linux"]["cgroupsPath"] = "/../../../../sys/fs/cgroup/pyrunc-escape-" + os.urandom(4).hex()
    elif name == "cgroupsPath-rel-dotdot":
        cfg["linux"]["cgroupsPath"] = "../../../pyrunc-escape-" + os.urandom(4).hex()
    return json.dumps(cfg).encode()


CASES = ["100MB", "deep-200k", "invalid-utf8", "duplicate-keys", "uid-2^40", "negative-rlimit",
         "10k-mounts", "10k-env", "nul-in-args", "no-such-program", "cgroupsPath-dotdot",
         "cgroupsPath-rel-dotdot"]


def _escape_dirs():
    """cgroup directories an escaping cgroupsPath would make (named pyrunc-escape-*)."""
    out = []
    for top in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", top)
        try:
            out += [os.path.join(base, n) for n in os.listdir(base) if n.startswith("pyrunc-escape-")]
        except OSError:
            pass
    return out


_PARENTS = ("sys", "sys/fs", "sys/fs/cgroup")  # what cgroupsPath-dotdot's path makes above its leaf


def _parent_dirs():
    """The parent cgroups the /../../sys/fs/cgroup/... path makes in each hierarchy."""
    out = []
    for top in os.listdir("/sys/fs/cgroup"):
        out += [d for d in (os.path.join("/sys/fs/cgroup", top, p) for p in _PARENTS) if os.path.isdir(d)]
    return out


def _remove_new(dirs):
    """rmdir DIRS deepest first (cgroups: only empty ones can go; nothing else is touched)."""
    for d in sorted(dirs, key=lambda d: -d.count("/")):
        try:
            os.rmdir(d)
        except OSError:
            pass


def badinput_violations(rt, tmp_path, name):
    b = rt.bundle()
    with open(os.path.join(b, "config.json"), "wb") as f:
        f.write(case_text(name, tmp_path))
    cid = rt.new_id("bad")
    before = host_mountpoints([str(tmp_path)])
    esc_before = set(_escape_dirs())
    parents_before = set(_parent_dirs())
    bad = []
    try:
        p = rt("run", "-b", b, cid, timeout=HANG)
    except Exception as e:  # noqa: BLE001 - subprocess.TimeoutExpired: a hang
        return [f"{name}: {type(e).__name__}"]
    try:
        if "Traceback" in p.stderr:
            bad.append(f"{name}: traceback")
        if p.returncode != 0:
            lines = p.stderr.strip().splitlines()
            if len(lines) != 1 or len(lines[0]) > 4096:
                bad.append(f"{name}: not a one-line error ({len(lines)} lines): {p.stderr[:300]!r}")
        # a failed run must leave nothing; a successful foreground run deletes its container
        if os.path.exists(os.path.join(rt.root, cid)):
            bad.append(f"{name}: state dir left")
        if cgroup_dirs(cid):
            bad.append(f"{name}: cgroup left")
        if procs_mentioning(cid):
            bad.append(f"{name}: process left")
        if host_mountpoints([str(tmp_path)]) != before:
            bad.append(f"{name}: mount left")
        new = set(_escape_dirs()) - esc_before
        if new:
            bad.append(f"{name}: cgroup made outside the hierarchy root: {sorted(new)}")
    finally:
        rt("delete", "--force", cid, timeout=30)
        # the parents a cgroupsPath made above its own cgroup must go with it
        made = set(_parent_dirs()) - parents_before
        if made:
            bad.append(f"{name}: parent cgroups left: {sorted(made)}")
        _remove_new((set(_escape_dirs()) - esc_before) | made)
        remove_cgroups(cid)  # what a runtime left (flagged above)
    return bad


@pytest.mark.parametrize("name", CASES)
def test_bad_input(anyrt, tmp_path, name, request):
    if anyrt.name == "runc" and name == "cgroupsPath-dotdot":
        request.node.add_marker(pytest.mark.xfail(
            reason="runc 1.1.5 removes only the leaf cgroup: sys/fs/cgroup above it stays", strict=True))
    assert badinput_violations(anyrt, tmp_path, name) == []


def test_weakened_traceback_flagged(tmp_path):
    """pyrunc without its nesting guard (hotpath.json_document, config.load's reader) and whose
    catch-all for internal errors lets the traceback out: the deep nesting (a RecursionError in
    the JSON parser) is flagged."""
    weak = weakened(tmp_path, {
        "cli.py": [("    except Exception as e:  # noqa: BLE001 - a bug of ours",
                    "    except ZeroDivisionError as e:  # noqa: BLE001 - a bug of ours")],
        "hotpath.py": [("    except (ValueError, UnicodeDecodeError, RecursionError):",
                        "    except (ValueError, UnicodeDecodeError):")]})
    try:
        bad = badinput_violations(weak, tmp_path, "deep-200k")
    finally:
        weak.cleanup()
    assert any("traceback" in b for b in bad), bad


def test_weakened_leftovers_flagged(tmp_path):
    """pyrunc that does not undo a failed create: the state it claimed is flagged."""
    weak = weakened(tmp_path, {"container.py": [
        ('    """Undo a failed create: whatever exists of process, cgroup and state goes."""\n',
         '    """Undo a failed create: whatever exists of process, cgroup and state goes."""\n    return\n')]})
    try:
        bad = badinput_violations(weak, tmp_path, "no-such-program")
    finally:
        weak.cleanup()
    assert any("left" in b for b in bad), bad
