"""linux.seccomp in real containers (pyrunc and runc): the filter is in force in the user
program, a denied syscall fails with the configured errno, and SCMP_ACT_NOTIFY hands the notify
fd plus the container state to the agent at listenerPath, which answers the syscall."""
import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading

import pytest

import envutil as E
from envutil import base_config, ok, fails, status_field

pytestmark = [E.needs_root, E.have_rootfs]
BOTH = E.runtime_params()
NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


def profile(*rules, default="SCMP_ACT_ALLOW", **kw):
    sc = {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
          "syscalls": list(rules)}
    sc.update(kw)
    return sc


@pytest.mark.parametrize("rt", BOTH)
def test_errno_rule_and_status(rt, tmp_path):
    cfg = E.mnt_tmpfs(base_config("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                                  "mkdir /mnt/x 2>&1; [ -d /mnt/x ] || echo absent; touch /mnt/f && echo touched"))
    cfg["linux"]["seccomp"] = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                       "errnoRet": errno.ENOMEDIUM})
    out = ok(rt, cfg, tmp_path)
    assert status_field(out, "Seccomp") == "2"
    assert "No medium found" in out and "absent" in out and "touched" in out


@pytest.mark.parametrize("rt", BOTH)
def test_default_errno_with_allow_list(rt, tmp_path):
    """defaultAction ERRNO and an allow list: what is not listed fails with EPERM."""
    allowed = ["execve", "brk", "mmap", "munmap", "mprotect", "arch_prctl", "set_tid_address", "exit_group",
               "write", "writev", "read", "open", "openat", "close", "fstat", "newfstatat", "stat", "lstat",
               "getuid", "geteuid", "getgid", "getegid", "getpid", "getppid", "rt_sigaction", "rt_sigprocmask",
               "rt_sigreturn", "uname", "ioctl", "fcntl", "prlimit64", "getrlimit", "set_robust_list",
               "rseq", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd", "sysinfo",
               "statx", "getrandom", "wait4", "fork", "clone", "clone3", "vfork", "dup2", "dup3", "pipe",
               "pipe2", "chdir", "exit", "futex", "sigaltstack", "lseek", "getdents64", "pread64",
               "fstatfs", "statfs", "close_range", "capget", "capset", "prctl", "setgroups", "setresuid",
               "setresgid", "nanosleep", "epoll_pwait", "epoll_ctl", "epoll_create1", "tgkill", "getpgrp",
               "sched_yield", "madvise", "mincore", "gettid", "setsid", "exit"]
    cfg = base_config("hostname 2>&1 >/dev/null; echo ok; chmod 0 / 2>&1; true")
    cfg["linux"]["seccomp"] = profile({"names": allowed, "action": "SCMP_ACT_ALLOW"},
                                      default="SCMP_ACT_ERRNO")
    out = ok(rt, cfg, tmp_path)
    assert "ok" in out
    assert "Operation not permitted" in out  # chmod is not in the list


@pytest.mark.parametrize("rt", BOTH)
def test_arg_condition(rt, tmp_path):
    # personality(0xffffffff) only queries; deny any other value with EPERM
    cfg = base_config("uname -m; linux32 uname -m 2>&1 || echo denied")
    cfg["linux"]["seccomp"] = profile({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]})
    out = ok(rt, cfg, tmp_path).split("\n")
    assert out[0] == os.uname().machine
    assert "denied" in out[1:] or "Operation not permitted" in "".join(out[1:])


class Agent(threading.Thread):
    """A seccomp agent: accepts one connection at PATH, takes the state and the notify fd, and
    answers every notified syscall with success (value 0) without running it."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.state = None
        self.answered = []
        self.error = None
        self.stop_r, self.stop_w = os.pipe()

    def run(self):
        notify = -1
        try:
            r, _, _ = select.select([self.sock, self.stop_r], [], [], 20)
            if self.sock not in r:
                return
            conn, _ = self.sock.accept()
            with conn:
                data, anc, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
                while True:  # the state may come in more than one read
                    try:
                        self.state = json.loads(data)
                        break
                    except ValueError:
                        more = conn.recv(1 << 16)
                        if not more:
                            raise
                        data += more
                for level, typ, fdata in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        notify = struct.unpack("i", fdata[:4])[0]
            while True:
                r, _, _ = select.select([notify, self.stop_r], [], [], 20)
                if notify not in r:
                    return
                req = bytearray(80)
                try:
                    fcntl.ioctl(notify, NOTIF_RECV, req, True)
                except OSError:
                    return  # the filtered process is gone
                nid, pid, _flags, nr = struct.unpack_from("=QIIi", req)
                self.answered.append(nr)
                try:
                    fcntl.ioctl(notify, NOTIF_SEND, bytearray(struct.pack("=QqiI", nid, 0, 0, 0)))
                except OSError:
                    pass
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            if notify >= 0:
                os.close(notify)

    def close(self):
        os.write(self.stop_w, b"x")
        self.join(10)
        self.sock.close()
        os.close(self.stop_r)
        os.close(self.stop_w)


@pytest.mark.parametrize("rt", BOTH)
def test_notify_agent_answers(rt, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Agent(path)
    agent.start()
    try:
        cfg = E.mnt_tmpfs(base_config("mkdir /mnt/x && echo mkdir-ok; [ -d /mnt/x ] || echo absent"))
        cfg["linux"]["seccomp"] = profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                                          listenerPath=path, listenerMetadata="meta-1")
        out = ok(rt, cfg, tmp_path)
    finally:
        agent.close()
    assert agent.error is None, agent.error
    assert out.split() == ["mkdir-ok", "absent"]  # the agent said yes, nothing was made
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta-1"
    assert st["state"]["id"].startswith("env-") and st["pid"] == st["state"]["pid"] > 0
    assert len(agent.answered) == 1


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("bad,word", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction"),
    ({"architectures": ["SCMP_ARCH_NOPE"]}, "architectures"),
    ({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}, "action"),
])
def test_bad_seccomp(rt, bad, word, tmp_path):
    cfg = base_config("echo should-not-run")
    sc = profile()
    sc.update(bad)
    cfg["linux"]["seccomp"] = sc
    r = fails(rt, cfg, tmp_path)
    assert "should-not-run" not in r.out
    if rt == "pyrunc":
        assert "linux.seccomp" in r.err and word in r.err
