"""Helpers for the attack tests: copies of the busybox rootfs (the shared one is never written),
host-side leak checks, and runc's known failures on this machine (runc 1.1.5)."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from conftest import ROOTFS, base_config, remove_cgroups  # noqa: E402,F401
from conftest import cgroup_dirs_of as cgroup_leftovers  # noqa: E402,F401 - CID below our cgroup

RUNC_VERSION = "1.1.5"


def copy_rootfs(tmp_path, name="rootfs"):
    """A private copy of the busybox rootfs that a test may turn into an attacker's image."""
    dst = os.path.join(str(tmp_path), name)
    subprocess.run(["cp", "-a", ROOTFS, dst], check=True, timeout=30)
    return dst


def host_mountpoints(under=None):
    """Host mount points (only those at or below one of UNDER when given: other tests on the
    machine mount and unmount their own things meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        mps = {line.split()[4] for line in f}
    if under is None:
        return mps
    under = [str(u).rstrip("/") for u in under]
    return {m for m in mps if any(m == u or m.startswith(u + "/") for u in under)}


def cgroup_dirs(cid):
    """Every cgroup directory named CID on the host (v1 controllers and the unified tree)."""
    out = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if base.count("/") > 8:
            dirs[:] = []
            continue
        if os.path.basename(base) == cid:
            out.append(base)
            dirs[:] = []
    return out


def procs_mentioning(word):
    """Host pids whose command line mentions WORD (a container id): the runtime and its init
    (a clone of the runtime keeps its argv until execve)."""
    me = os.getpid()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if word.encode() in cmd:
            out.append(int(p))
    return out


def runc_xfail(request, rt, reason):
    """Mark the running test as an expected failure when the runtime is runc 1.1.5."""
    import pytest
    if rt.name == "runc":
        request.node.add_marker(pytest.mark.xfail(reason=f"runc {RUNC_VERSION}: {reason}", strict=True))


def which_sh():
    return shutil.which("sh") or "/bin/sh"
