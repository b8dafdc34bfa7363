"""runtime.seccomp against the real kernel: each filter is loaded in a forked child (needs root)."""

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from runtime import seccomp as S
from runtime.errors import Error

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading filters without NNP needs root")

TIMEOUT = 10.0
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def nr(name):
    return S._libseccomp().seccomp_syscall_resolve_name(name.encode())


def raw_syscall(name, *args):
    """Call a syscall by name with unsigned-long args; return the result or -errno."""
    r = LIBC.syscall(ctypes.c_long(nr(name)), *(ctypes.c_ulong(a) for a in args))
    return -ctypes.get_errno() if r == -1 else r


def in_child(cfg, fn, after_load=None, parent_after_fork=None):
    """Fork; the child loads cfg and reports fn()'s JSON-able result. Returns (wait status, result)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(r)
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS must not drop core files
            fd = S.load(S.prepare(cfg))
            if after_load:
                after_load(fd)
            out = {"ok": fn()}
            code = 0
        except BaseException as e:  # noqa: BLE001 - report everything to the parent
            out = {"err": repr(e)}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    if parent_after_fork:
        parent_after_fork()
    data = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise AssertionError("child timed out")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        while True:
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                break
            if time.monotonic() > deadline:
                raise AssertionError("child did not exit")
            time.sleep(0.01)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(r)
    return status, (json.loads(data) if data else None)


def ok(cfg, fn, **kw):
    status, out = in_child(cfg, fn, **kw)
    assert out is not None and "ok" in out, (status, out)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return out["ok"]


def try_mkdir(path):
    try:
        os.mkdir(path)
        return 0
    except OSError as e:
        return -e.errno


# What a Python child needs to keep running and report back under a deny-by-default profile.
PYTHON_BASICS = [
    "read", "write", "close", "exit", "exit_group", "mmap", "munmap", "mremap", "brk", "madvise",
    "rt_sigaction", "rt_sigprocmask", "futex", "fstat", "newfstatat", "lseek", "getpid",
    "syscall", "getrandom", "ioctl", "select", "poll", "pselect6",
]


def test_errno_rules_default_and_explicit(tmp_path):
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # == default: skipped, no EACCES
        ],
    }

    def fn():
        return [try_mkdir(str(tmp_path / "d")), raw_syscall("rmdir", 0), os.getpid() > 0]

    assert ok(cfg, fn) == [-errno.EPERM, -errno.EXDEV, True]
    assert not (tmp_path / "d").exists()


def test_default_errno_ret(tmp_path):
    cfg = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENOTSUP,
        "syscalls": [{"names": PYTHON_BASICS, "action": "SCMP_ACT_ALLOW"}],
    }
    res = ok(cfg, lambda: [try_mkdir(str(tmp_path / "d")), os.getpid() == raw_syscall("getpid")])
    assert res == [-errno.ENOTSUP, True]


def test_unknown_syscall_names_are_skipped(tmp_path):
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["no_such_syscall_xyz", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": errno.EROFS},
            {"names": ["another_fake_one"], "action": "SCMP_ACT_KILL"},
        ],
    }
    S.check(cfg)
    assert ok(cfg, lambda: try_mkdir(str(tmp_path / "d"))) == -errno.EROFS


def test_arg_ne_filter():
    # personality(0xffffffff) only queries; anything else is refused.
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
            "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}],
        }],
    }
    q, s = ok(cfg, lambda: [raw_syscall("personality", 0xFFFFFFFF), raw_syscall("personality", 0)])
    assert q >= 0 and s == -errno.EXDEV


def test_masked_eq_and_comparisons():
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            # value = mask, valueTwo = datum (libseccomp's datum_a/datum_b order)
            {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
             "args": [{"index": 0, "value": 0o700, "valueTwo": 0o700, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EDOM,
             "args": [{"index": 0, "value": 1000, "op": "SCMP_CMP_GT"}]},
        ],
    }

    def fn():
        return [raw_syscall("umask", 0o777), raw_syscall("umask", 0o022),
                raw_syscall("getpgid", 5000), raw_syscall("getpgid", 0) >= 0]

    assert ok(cfg, fn) == [-errno.EXDEV, 0o022, -errno.EDOM, True]


def _exdev_when_equal(name, *args):
    """A filter failing NAME with EXDEV on its rule's ARGS: (index, value) pairs, SCMP_CMP_EQ."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
            "args": [{"index": i, "value": v, "op": "SCMP_CMP_EQ"} for i, v in args],
        }],
    }


def test_different_indexes_are_anded():
    cfg = _exdev_when_equal("getpriority", (0, 0), (1, 4242424))
    res = ok(cfg, lambda: [raw_syscall("getpriority", 0, 4242424), raw_syscall("getpriority", 0, 0),
                           raw_syscall("getpriority", 1, 4242424)])
    assert res[0] == -errno.EXDEV and res[1] >= 0 and res[2] == -errno.ESRCH


def test_same_index_is_ored():
    cfg = _exdev_when_equal("getpgid", (0, 4242001), (0, 4242002))
    res = ok(cfg, lambda: [raw_syscall("getpgid", 4242001), raw_syscall("getpgid", 4242002),
                           raw_syscall("getpgid", 4242003)])
    assert res == [-errno.EXDEV, -errno.EXDEV, -errno.ESRCH]


@pytest.mark.parametrize(
    "action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"]
)
def test_killing_actions_deliver_sigsys(tmp_path, action):
    cfg = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}
    status, out = in_child(cfg, lambda: try_mkdir(str(tmp_path / "d")))
    assert out is None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    assert not (tmp_path / "d").exists()


def test_log_allows_and_trace_without_tracer_is_enosys(tmp_path):
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"},
            {"names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        ],
    }
    res = ok(cfg, lambda: [try_mkdir(str(tmp_path / "d")), raw_syscall("rmdir", 0)])
    assert res == [0, -errno.ENOSYS]
    assert (tmp_path / "d").is_dir()


# --- SCMP_ACT_NOTIFY -------------------------------------------------------------------------

NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)       (80 bytes)
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)  (24 bytes)
USER_NOTIF_FLAG_CONTINUE = 1


class Agent(threading.Thread):
    """A seccomp agent: receives the state + fd, answers each notification from `answers`."""

    def __init__(self, path, answers):
        super().__init__(daemon=True)
        self.answers = list(answers)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(TIMEOUT)
        self.state = self.error = None
        self.fds = []
        self.seen = []

    def run(self):
        try:
            conn, _ = self.srv.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                data, anc, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        self.fds += struct.unpack(f"{len(payload) // 4}i", payload)
                while chunk := conn.recv(1 << 16):  # sender must close: one state per connection
                    data += chunk
            self.state = json.loads(data)
            for err, flags in self.answers:
                if not select.select([self.fds[0]], [], [], TIMEOUT)[0]:
                    raise TimeoutError("no notification")
                req = bytearray(80)
                fcntl.ioctl(self.fds[0], NOTIF_RECV, req, True)
                nid, pid, _, sysnr = struct.unpack_from("=QIIi", req)
                self.seen.append(sysnr)
                fcntl.ioctl(self.fds[0], NOTIF_SEND, bytearray(struct.pack("=QqiI", nid, 0, err, flags)))
        except BaseException as e:  # noqa: BLE001 - surfaced by the test
            self.error = e
        finally:
            self.srv.close()
            for fd in self.fds:
                os.close(fd)


@pytest.mark.parametrize(
    "flags", [[], ["SECCOMP_FILTER_FLAG_TSYNC"], ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]]
)
def test_notify_listener_gets_state_and_fd(tmp_path, flags):
    path = str(tmp_path / "agent.sock")
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": flags,
        "listenerPath": path,
        "listenerMetadata": "MKNOD=/dev/null",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    S.check(cfg)
    agent = Agent(path, [(-errno.EXDEV, 0), (0, USER_NOTIF_FLAG_CONTINUE)])
    agent.start()
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 0, "bundle": "/b",
             "annotations": {"k": "v"}}

    def hand_over(fd):
        assert isinstance(fd, int) and fd >= 0
        state["pid"] = os.getpid()
        S.send_notify_fd(path, fd, state, cfg["listenerMetadata"])
        os.close(fd)

    try:
        res = ok(cfg, lambda: [try_mkdir(str(tmp_path / "a")), try_mkdir(str(tmp_path / "b"))],
                 after_load=hand_over)
    finally:
        agent.join(TIMEOUT)
    assert not agent.is_alive() and agent.error is None, agent.error
    assert res == [-errno.EXDEV, 0]
    assert not (tmp_path / "a").exists() and (tmp_path / "b").is_dir()  # CONTINUE really ran it
    assert set(agent.seen) <= {nr("mkdir"), nr("mkdirat")} and len(agent.seen) == 2
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "MKNOD=/dev/null"
    assert st["ociVersion"] == "1.3.0" and st["pid"] > 0 and st["state"]["pid"] == st["pid"]
    assert st["state"]["id"] == "c1" and st["state"]["annotations"] == {"k": "v"}
    assert len(agent.fds) == 1


def _handover_under_filter(tmp_path, allow, notify, cid, metadata, work):
    """Load a filter allowing only PYTHON_BASICS + `allow`, notifying `notify` and mkdir(at),
    erroring ENOTSUP otherwise; hand the listener fd to an agent that answers the first mkdir
    with EXDEV. Returns (agent, result of work())."""
    path = str(tmp_path / "agent.sock")
    cfg = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENOTSUP,
        "listenerPath": path,
        "syscalls": [
            {"names": PYTHON_BASICS + allow, "action": "SCMP_ACT_ALLOW"},
            {"names": notify + ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        ],
    }
    agent = Agent(path, [(-errno.EXDEV, 0)])
    agent.start()

    def hand_over(fd):
        S.send_notify_fd(path, fd, {"ociVersion": "1.3.0", "id": cid, "status": "creating",
                                    "pid": 1, "bundle": "/"}, metadata)
        os.close(fd)

    try:
        res = ok(cfg, work, after_load=hand_over)
    finally:
        agent.join(TIMEOUT)
    assert agent.error is None, agent.error
    return agent, res


def test_notify_handover_needs_only_sendmsg_under_the_filter(tmp_path):
    # No socket/connect/poll/fcntl/open allowed after load: load() connected beforehand.
    agent, res = _handover_under_filter(
        tmp_path, ["sendmsg"], [], "c", None,
        lambda: [try_mkdir(str(tmp_path / "a")), raw_syscall("getppid")])
    assert res == [-errno.EXDEV, -errno.ENOTSUP]
    assert "metadata" not in agent.state and agent.state["state"]["id"] == "c"


def test_notified_sendmsg_hands_over_with_sendmmsg_only(tmp_path):
    # runc allows SCMP_ACT_NOTIFY on sendmsg: the fd then goes over in one sendmmsg(2)
    agent, res = _handover_under_filter(
        tmp_path, ["sendmmsg"], ["sendmsg"], "m", "meta",
        lambda: [try_mkdir(str(tmp_path / "a"))])
    assert res == [-errno.EXDEV]
    assert agent.state["metadata"] == "meta" and agent.state["state"]["id"] == "m"


def test_no_notify_returns_none():
    def after(fd):
        if fd is not None:
            raise AssertionError(f"unexpected notify fd {fd}")

    assert ok({"defaultAction": "SCMP_ACT_ALLOW"}, lambda: 1, after_load=after) == 1


def test_send_notify_fd_errors_name_listener_path(tmp_path):
    r, w = os.pipe()
    try:
        with pytest.raises(Error, match=r"linux\.seccomp\.listenerPath"):
            S.send_notify_fd(str(tmp_path / "nobody.sock"), r, {"pid": 1}, None)
    finally:
        os.close(r)
        os.close(w)


def test_send_notify_fd_long_path(tmp_path):
    d = tmp_path / ("x" * 60) / ("y" * 60)
    d.mkdir(parents=True)
    path = str(d / "agent.sock")
    assert len(path) > 108
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dfd = os.open(str(d), os.O_PATH)
    try:
        srv.bind(f"/proc/self/fd/{dfd}/agent.sock")
        srv.listen(1)
        srv.settimeout(TIMEOUT)
        r, w = os.pipe()
        try:
            S.send_notify_fd(path, r, {"pid": 7}, None)
        finally:
            os.close(r)
            os.close(w)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            data, anc, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4))
            for _, _, payload in anc:
                os.close(struct.unpack("i", payload[:4])[0])
            while chunk := conn.recv(1 << 16):
                data += chunk
        msg = json.loads(data)
        assert msg["pid"] == 7 and "metadata" not in msg and msg["state"] == {"pid": 7}
    finally:
        srv.close()
        os.close(dfd)


# --- check() ---------------------------------------------------------------------------------

def _cfg(**kw):
    base = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    base.update(kw)
    return base


def _sc(**kw):
    base = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
    base.update(kw)
    return _cfg(syscalls=[{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}, base])


@pytest.mark.parametrize("cfg, field", [
    ({}, r"linux\.seccomp\.defaultAction: required"),
    (_cfg(defaultAction="SCMP_ACT_FOO"), r"linux\.seccomp\.defaultAction: unknown action SCMP_ACT_FOO"),
    (_cfg(defaultAction="SCMP_ACT_NOTIFY", listenerPath="/x"), r"linux\.seccomp\.defaultAction"),
    (_cfg(defaultAction="SCMP_ACT_ALLOW", defaultErrnoRet=1), r"linux\.seccomp\.defaultErrnoRet"),
    (_cfg(defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=-1), r"linux\.seccomp\.defaultErrnoRet"),
    (_cfg(defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=True), r"linux\.seccomp\.defaultErrnoRet"),
    (_cfg(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
     r"linux\.seccomp\.architectures\[1\]: unknown architecture SCMP_ARCH_VAX"),
    (_cfg(flags=["SECCOMP_FILTER_FLAG_BOGUS"]), r"linux\.seccomp\.flags\[0\]: unknown flag"),
    (_sc(action="SCMP_ACT_NOTIFY"), r"linux\.seccomp\.listenerPath: required"),
    (_sc(action="SCMP_ACT_FOO"), r"linux\.seccomp\.syscalls\[1\]\.action: unknown action SCMP_ACT_FOO"),
    (_sc(action=None), r"linux\.seccomp\.syscalls\[1\]\.action: required"),
    (_sc(names=[]), r"linux\.seccomp\.syscalls\[1\]\.names"),
    (_sc(names=["ok", 3]), r"linux\.seccomp\.syscalls\[1\]\.names\[1\]"),
    (_sc(action="SCMP_ACT_KILL", errnoRet=1), r"linux\.seccomp\.syscalls\[1\]\.errnoRet: not supported"),
    (_sc(errnoRet=70000), r"linux\.seccomp\.syscalls\[1\]\.errnoRet"),
    (_sc(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]),
     r"linux\.seccomp\.syscalls\[1\]\.args\[0\]\.op: unknown operator SCMP_CMP_FOO"),
    (_sc(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     r"linux\.seccomp\.syscalls\[1\]\.args\[0\]\.index"),
    (_sc(args=[{"index": 0, "op": "SCMP_CMP_EQ"}]), r"linux\.seccomp\.syscalls\[1\]\.args\[0\]\.value"),
    (_sc(args=[{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]),
     r"linux\.seccomp\.syscalls\[1\]\.args\[0\]\.value"),
    (_sc(args=[{"index": 0, "value": 1, "valueTwo": -1, "op": "SCMP_CMP_MASKED_EQ"}]),
     r"linux\.seccomp\.syscalls\[1\]\.args\[0\]\.valueTwo"),
    (_sc(names=["write"], action="SCMP_ACT_NOTIFY") | {"listenerPath": "/x"},
     r"linux\.seccomp\.syscalls\[1\]\.action: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (_sc(names=["sendmmsg", "sendmsg"], action="SCMP_ACT_NOTIFY") | {"listenerPath": "/x"},
     r"linux\.seccomp\.syscalls: SCMP_ACT_NOTIFY cannot be used for both sendmsg and sendmmsg"),
])
def test_check_rejects(cfg, field):
    with pytest.raises(Error, match=field):
        S.check(cfg)


def test_check_accepts_full_profile():
    S.check({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "flags": list(S._FLAGS),
        "listenerPath": "/run/agent.sock", "listenerMetadata": "x",
        "syscalls": [
            {"names": ["read", "bogus_name"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 1},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    })


def test_arch_unsupported_by_libseccomp_is_an_error():
    lib = S._libseccomp()
    missing = [a for a in sorted(S._ARCHES)
               if not lib.seccomp_arch_resolve_name(a[len("SCMP_ARCH_"):].lower().encode())]
    if not missing:
        pytest.skip("this libseccomp knows every spec architecture")
    with pytest.raises(Error, match=rf"architectures\[0\]: architecture {missing[0]} is not supported"):
        S.check({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [missing[0]]})


def test_import_is_lazy_and_check_preloads():
    code = ("import sys, runtime.seccomp as s; assert 'ctypes' not in sys.modules; "
            "s.check({'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/x', "
            "'syscalls': [{'names': ['mount'], 'action': 'SCMP_ACT_NOTIFY'}]}); "
            "assert s._lib is not None and 'socket' in sys.modules and 'pyseccomp' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=TIMEOUT,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_works_after_chroot_with_parent_connected_listener(tmp_path):
    """The real init runs prepare/load after pivot_root: no libs, no host paths, no imports."""
    path = str(tmp_path / "agent.sock")
    empty = tmp_path / "root"
    empty.mkdir()
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "listenerPath": path,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV}],
    }
    agent = Agent(path, [(-errno.ENOSPC, 0)])
    agent.start()
    S.check(cfg)
    S.connect_listener(cfg)
    real_prepare = S.prepare

    def chrooted_prepare(c):
        os.chroot(str(empty))
        os.chdir("/")
        return real_prepare(c)

    def hand_over(fd):
        S.send_notify_fd(path, fd, {"ociVersion": "1.3.0", "id": "c", "status": "creating",
                                    "pid": 1, "bundle": "/"}, None)
        os.close(fd)

    S.prepare = chrooted_prepare
    try:
        # The parent drops its copy right after cloning, as the runtime must.
        res = ok(cfg, lambda: [try_mkdir("/d"), raw_syscall("rmdir", 0)], after_load=hand_over,
                 parent_after_fork=S.close_listener)
    finally:
        S.prepare = real_prepare
        S.close_listener()
        agent.join(TIMEOUT)
    assert agent.error is None, agent.error
    assert res == [-errno.ENOSPC, -errno.EXDEV]
    assert os.listdir(empty) == []
