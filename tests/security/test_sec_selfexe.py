"""CVE-2019-5736 with CAP_SYS_PTRACE (runtime/selfexe.py): a process of the container holding
CAP_SYS_PTRACE in the host's user namespace can open /proc/PID/exe of pyrunc's processes that
live in the container before their execve (the `created` init, exec's process), non-dumpable or
not. That file must then sit on a read-only mount (or be a sealed copy, as runc's), never the
host's writable interpreter.

exec's process is caught before its execve by exec --ignore-paused into a paused container: it
waits frozen there until `resume`. Every check runs once more against a pyrunc whose protection is
switched off (tests/security/weaken.py), where it must fail.
"""
import os

import pytest

from secutil import base_config
from weaken import weakened

CAPS = ["CAP_SYS_PTRACE", "CAP_KILL", "CAP_AUDIT_WRITE"]


def _cfg(args, ptrace=True):
    cfg = base_config(args)
    caps = CAPS if ptrace else CAPS[1:]
    cfg["process"]["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    return cfg


def _read_only(pid):
    exe = f"/proc/{pid}/exe"
    return os.readlink(exe).startswith("/memfd:") or bool(os.statvfs(exe).f_flag & os.ST_RDONLY)


def init_exposed(rt):
    cid = rt.new_id("ptr")
    rt("create", "-b", rt.bundle(_cfg(["sleep", "100"])), cid, check=True)
    try:
        return not _read_only(rt.state(cid)["pid"])
    finally:
        rt("delete", "--force", cid, timeout=30)


def exec_exposed(rt, tmp_path):
    cid = rt.new_id("ptx")
    rt("run", "-d", "-b", rt.bundle(_cfg(["sleep", "100"], ptrace=False)), cid, check=True)
    pidfile = tmp_path / f"{cid}.pid"
    try:
        rt("pause", cid, check=True)
        # the exec's process gets CAP_SYS_PTRACE: the container may hold it from now on
        rt("exec", "--ignore-paused", "-d", "--cap", "CAP_SYS_PTRACE", "--pid-file", str(pidfile), cid,
           "sleep", "100", check=True)
        return not _read_only(int(pidfile.read_text()))
    finally:
        rt("delete", "--force", cid, timeout=30)


def peer_exec_exposed(rt, tmp_path):
    """A container without the capability, then a second one joining its pid namespace by path
    with it (a debugging sidecar): the first one's exec process is what the second sees."""
    cid = rt.new_id("ptv")
    peer = rt.new_id("ptp")
    rt("run", "-d", "-b", rt.bundle(_cfg(["sleep", "100"], ptrace=False)), cid, check=True)
    pidfile = tmp_path / f"{cid}.pid"
    try:
        cfg = _cfg(["sleep", "100"])
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"] + [
            {"type": "pid", "path": f"/proc/{rt.state(cid)['pid']}/ns/pid"}]
        rt("run", "-d", "-b", rt.bundle(cfg), peer, check=True)
        rt("pause", cid, check=True)
        rt("exec", "--ignore-paused", "-d", "--pid-file", str(pidfile), cid, "sleep", "100", check=True)
        return not _read_only(int(pidfile.read_text()))
    finally:
        rt("delete", "--force", peer, timeout=30)
        rt("delete", "--force", cid, timeout=30)


def test_created_init_exe_read_only(pyrunc):
    assert not init_exposed(pyrunc)


def test_exec_process_exe_read_only(pyrunc, tmp_path):
    assert not exec_exposed(pyrunc, tmp_path)


def test_exec_process_seen_by_a_ptrace_peer_read_only(pyrunc, tmp_path):
    assert not peer_exec_exposed(pyrunc, tmp_path)


def test_no_ptrace_no_reexec(pyrunc):
    """Without CAP_SYS_PTRACE in the container the init stays a plain fork (no second start)."""
    cid = pyrunc.new_id("np")
    pyrunc("create", "-b", pyrunc.bundle(_cfg(["sleep", "100"], ptrace=False)), cid, check=True)
    try:
        assert not _read_only(pyrunc.state(cid)["pid"])
    finally:
        pyrunc("delete", "--force", cid, timeout=30)


def test_weakened_selfexe_flagged(tmp_path):
    weak = weakened(tmp_path, {"selfexe.py": [
        ("    if not needed or os.environ.get(_MARK) or protected():",
         "    if True:")]})
    try:
        assert init_exposed(weak)
        assert exec_exposed(weak, tmp_path)
    finally:
        weak.cleanup()


def test_weakened_peer_mark_flagged(tmp_path):
    weak = weakened(tmp_path, {"selfexe.py": [('or data.get("ptrace_peer") ', "")]}, name="nopeer")
    try:
        assert peer_exec_exposed(weak, tmp_path)
    finally:
        weak.cleanup()


def test_sealed_copy_without_the_mount_api(tmp_path):
    """Where the read-only bind cannot be made (an older kernel, no CAP_SYS_ADMIN), the binary is
    a sealed memfd copy instead, as runc's."""
    weak = weakened(tmp_path, {"selfexe.py": [
        ('    fd = L.open_tree(L.AT_FDCWD, "/proc/self/exe", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC)\n',
         '    raise OSError(38, "open_tree: no such syscall (test)")\n')]}, name="nomountapi")
    try:
        cid = weak.new_id("seal")
        weak("create", "-b", weak.bundle(_cfg(["sleep", "100"])), cid, check=True)
        try:
            exe = f"/proc/{weak.state(cid)['pid']}/exe"
            assert os.readlink(exe).startswith("/memfd:pyrunc"), os.readlink(exe)
            with pytest.raises(OSError):
                open(exe, "r+b")  # sealed (ETXTBSY while it runs, EPERM after)
        finally:
            weak("delete", "--force", cid, timeout=30)
    finally:
        weak.cleanup()
