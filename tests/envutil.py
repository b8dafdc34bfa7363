"""Helpers for the container-environment tests (tests/test_env_*.py): build a bundle from the
busybox demo config in a temp dir, run it with pyrunc or runc, and read what the container saw.

The shared busybox rootfs is used read-only (root.readonly) through an absolute root.path, so no
test writes into it; destinations that do not exist go below a tmpfs mounted at /mnt.
"""
import copy
import json
import os
import shutil
import subprocess
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUNDLE = os.path.join(REPO, "bundles", "busybox")
ROOTFS = os.path.join(BUNDLE, "rootfs")
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
RUNC = shutil.which("runc")
TIMEOUT = 30

with open(os.path.join(BUNDLE, "config.json")) as _f:
    _BASE = json.load(_f)

RUNTIMES = {"pyrunc": PYRUNC, "runc": RUNC}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")
have_rootfs = pytest.mark.skipif(not os.path.exists(os.path.join(ROOTFS, "bin", "busybox")),
                                 reason="busybox rootfs not built (make bundle)")


def runtime_params(runc_skip=None):
    """pytest params [pyrunc, runc]; runc is skipped with RUNC_SKIP as reason when given (a field
    runc 1.1.5 lacks) or when it is not installed."""
    marks = []
    if runc_skip:
        marks = [pytest.mark.skip(reason=f"runc 1.1.5: {runc_skip}")]
    elif not RUNC:
        marks = [pytest.mark.skip(reason="runc not installed")]
    return [pytest.param("pyrunc", id="pyrunc"), pytest.param("runc", id="runc", marks=marks)]


def base_config(script=None, args=None):
    """The busybox demo config, rootfs absolute and read-only, running `sh -c SCRIPT`."""
    cfg = copy.deepcopy(_BASE)
    cfg["root"] = {"path": ROOTFS, "readonly": True}
    if args is None:
        args = ["sh", "-c", script or "true"]
    cfg["process"]["args"] = args
    return cfg


def mnt_tmpfs(cfg):
    """Add a tmpfs at /mnt: destinations created below it never touch the shared rootfs."""
    cfg["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                          "options": ["mode=755"]})
    return cfg


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


def cid(prefix="env"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_bundle(tmp_path, cfg, name="bundle"):
    b = tmp_path / name
    b.mkdir(exist_ok=True)
    with open(b / "config.json", "w") as f:
        json.dump(cfg, f)
    return str(b)


def run(runtime, cfg, tmp_path, extra=(), pass_fds=(), env=None, timeout=TIMEOUT, stdin=None, setup=None):
    """`RUNTIME --root R run -b BUNDLE ID`: returns Result(rc, stdout, stderr); always deletes.
    SETUP, a shell snippet, makes the runtime run in a private mount namespace of its own
    (`unshare -m`) after SETUP ran there: host-side mounts a test needs vanish with it."""
    bundle = write_bundle(tmp_path, cfg)
    root = str(tmp_path / f"root-{runtime}")
    name = cid()
    exe = RUNTIMES[runtime]
    cmd = [exe, "--root", root, "run", "-b", bundle, *extra, name]
    if setup is not None:
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-ec", setup + '\nexec "$@"', "sh", *cmd]
    try:
        p = subprocess.run(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           pass_fds=pass_fds, env=env, cwd=bundle)
        return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    finally:
        subprocess.run([exe, "--root", root, "delete", "--force", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout)


def ok(runtime, cfg, tmp_path, **kw):
    """run() that must exit 0; returns stdout."""
    r = run(runtime, cfg, tmp_path, **kw)
    assert r.rc == 0, r
    return r.out


def fails(runtime, cfg, tmp_path, *words):
    """run() that must fail with exit 1 before the program starts, one error naming WORDS, leaving
    no container state behind."""
    r = run(runtime, cfg, tmp_path)
    assert r.rc == 1, r
    assert "Traceback" not in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)
    root = tmp_path / f"root-{runtime}"
    if root.exists():
        left = [p.name for p in root.iterdir() if p.is_dir()]
        assert not left, f"state left behind: {left}"
    return r


def status_field(out, name):
    """The value of NAME: in /proc/self/status text."""
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def mountinfo(out):
    """Parse mountinfo lines: {mountpoint: (per-mount options, optional fields, fstype, super options)}."""
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 10 or "-" not in parts:
            continue
        sep = parts.index("-")
        res[parts[4]] = (set(parts[5].split(",")), parts[6:sep], parts[sep + 1], set(parts[sep + 3].split(",")))
    return res
