"""The process chain run in-process against a recording seam: the init's steps (chain/init.py)
in their order for the configurations that change it, the exec process's (chain/execproc.py),
and the sync channel's framing (runtime/sync.py). No root, no clone, no container: every
syscall and every step module the chain calls is replaced by a recorder."""
import os
import socket

import pytest

from runtime import plan as planmod
from runtime import process, program, sync
from runtime.chain import execproc, finalize, init
from runtime.errors import Error


class Rec(list):
    def step(self, name, ret=None):
        def f(*a, **k):
            self.append(name)
            return ret
        return f


class FakeL:
    """The syscall layer's seam: records what the init asks of the kernel."""
    PR_SET_DUMPABLE = 4
    CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNET = 0x10000000, 0x02000000, 0x80, 0x40000000
    CLONE_NEWPID, CLONE_NEWNS = 0x20000000, 0x20000

    def __init__(self, rec):
        self.rec = rec

    def prctl(self, opt, arg=0, *a):
        self.rec.append(f"prctl({opt},{arg})")

    def unshare(self, flags):
        self.rec.append(f"unshare({flags:#x})")

    def setns(self, fd, flags=0):
        self.rec.append(f"setns({flags:#x})")

    def sethostname(self, name):
        self.rec.append("sethostname")

    def setdomainname(self, name):
        self.rec.append("setdomainname")


class FakeChannel:
    def __init__(self, rec):
        self.rec = rec

    def send(self, kind, payload=b""):
        self.rec.append("send:" + kind.decode())

    def expect(self, kind, eof=None):
        self.rec.append("expect:" + kind.decode())
        return b'{"id":"x"}'

    def error(self, text):
        self.rec.append("error:" + text)


class Placement:
    def __init__(self, rec):
        self.join = rec.step("cgroups.join")


@pytest.fixture
def rec(monkeypatch):
    r = Rec()
    L = FakeL(r)
    monkeypatch.setattr(init, "L", L)
    monkeypatch.setattr(execproc, "L", L)
    for mod in (init, execproc):
        monkeypatch.setattr(mod.os, "setsid", r.step("setsid"))
        monkeypatch.setattr(mod.os, "setresuid", r.step("setresuid"))
        monkeypatch.setattr(mod.os, "setresgid", r.step("setresgid"))
    monkeypatch.setattr(init.procfs, "root", r.step("procfs.root"))
    monkeypatch.setattr(init.procfs, "write", lambda rel, data: r.append(f"procfs.write({rel})"))
    monkeypatch.setattr(init.procfs, "open", lambda rel, flags: r.append(f"procfs.open({rel})") or -1)
    monkeypatch.setattr(init.rootfs, "setup_rootfs", r.step("mounts"))
    monkeypatch.setattr(init.rootfs, "pivot", r.step("pivot_root"))
    monkeypatch.setattr(init.rootfs, "finish_rootfs", r.step("masks+readonly"))
    monkeypatch.setattr(program, "chdir_in_root", r.step("chdir"))
    monkeypatch.setattr(program, "resolve", r.step("open program", ret=object()))
    monkeypatch.setattr(program, "home_dir", lambda uid: "/root")
    monkeypatch.setattr(process, "apply_early", r.step("rlimits+oom"))
    monkeypatch.setattr(init.process, "seal_imports", r.step("seal imports"))
    monkeypatch.setattr(init, "_loopback_up", r.step("lo up"))
    monkeypatch.setattr(init.os, "read", lambda fd, n: r.append("read exec fifo") or b"0")
    monkeypatch.setattr(finalize, "run", lambda t, first=0, stop=len(finalize.ORDER):
                        r.append(f"finalize[{finalize.ORDER[first]}..{finalize.ORDER[stop - 1]}]"))
    import runtime.hooks as hooks
    monkeypatch.setattr(hooks, "run_hooks", lambda h, phase, st, **kw: r.append(f"hooks:{phase}"))
    monkeypatch.setattr(hooks, "resolve_start", lambda h: r.append("hooks:resolve") or [])
    return r


def _plan(**changes):
    fields = dict(
        rootfs="/r", root_readonly=False, no_pivot=False, root_propagation=0, mounts=(), devices=[],
        masked_paths=[], readonly_paths=[], new_flags=FakeL.CLONE_NEWPID | FakeL.CLONE_NEWNS,
        ns_paths={}, ns_joins=(), userns=False, cgroupns=False, uid_mappings=[], gid_mappings=[],
        time_offsets={}, hostname=None, domainname=None, net_devices=None, rootless=False,
        proc=process.plan_process({"args": ["sh"]}), terminal=False, preserve_fds=0, preserved=(),
        attrs=None, mempolicy=None, sysctl=[], seccomp=None, hooks={}, runtime_hooks=False)
    fields.update(changes)
    # the runtime compiled the filter (seccomp.prepare, in prepare.init_plan): the init only loads it
    fields.setdefault("seccomp_filter", object() if fields["seccomp"] is not None else None)
    return planmod.InitPlan(**fields)


def _launch(rec, fifo=True):
    la = planmod.Launch()
    la.placement = Placement(rec)
    la.fifo_fd = 99 if fifo else -1
    return la


USER = finalize.ORDER[finalize.USER_SWITCH]
TO_USER = f"finalize[{finalize.ORDER[0]}..{USER}]"
AFTER_USER = f"finalize[{finalize.ORDER[finalize.USER_SWITCH + 1]}..execve]"


def test_plain_create_mounts_while_the_runtime_places_it(rec):
    init._init(_plan(hostname="h"), _launch(rec), FakeChannel(rec))
    assert rec == [
        "setsid", "cgroups.join", "procfs.root", "procfs.write(self/comm)", "prctl(4,0)",
        "mounts",  # before GO: no user, cgroup or time namespace waits for the runtime
        "expect:go", "sethostname",
        "seal imports", "pivot_root", "masks+readonly",
        "chdir", "open program", "rlimits+oom",
        TO_USER,  # privileges go before the wait: start only waits for execve
        "send:ready", "read exec fifo", AFTER_USER]


def test_user_namespace_waits_for_its_maps_before_mounting(rec):
    p = _plan(userns=True, new_flags=FakeL.CLONE_NEWUSER | FakeL.CLONE_NEWNS | FakeL.CLONE_NEWNET)
    init._init(p, _launch(rec), FakeChannel(rec))
    go = rec.index("expect:go")
    assert rec.index("setresuid") > go and rec.index("mounts") > rec.index("setresuid")
    assert rec.index("lo up") > go


def test_cgroup_namespace_is_made_after_the_runtime_moved_us(rec):
    p = _plan(cgroupns=True, new_flags=FakeL.CLONE_NEWCGROUP | FakeL.CLONE_NEWNS)
    init._init(p, _launch(rec), FakeChannel(rec))
    assert rec.index("expect:go") < rec.index(f"unshare({FakeL.CLONE_NEWCGROUP:#x})") < rec.index("mounts")


def test_rootless_stays_dumpable_until_mapped(rec):
    p = _plan(rootless=True, userns=True, new_flags=FakeL.CLONE_NEWUSER | FakeL.CLONE_NEWNS)
    init._init(p, _launch(rec), FakeChannel(rec))
    assert rec.index("prctl(4,0)") > rec.index("expect:go")


def test_hooks_in_their_places(rec):
    hooks = {"createContainer": [{}], "startContainer": [{}]}
    init._init(_plan(hooks=hooks, runtime_hooks=True), _launch(rec), FakeChannel(rec))
    i = rec.index
    assert i("mounts") < i("send:hooks") < i("expect:ok") < i("hooks:createContainer") < i("pivot_root")
    # startContainer runs after start as runc's: after everything but execve (the user switch,
    # the late seccomp filter): a hook of the image gets no more than the process it precedes
    seccomp_late = f"finalize[{finalize.ORDER[finalize.USER_SWITCH + 1]}..seccomp_after_user]"
    assert i(TO_USER) < i("read exec fifo") < i(seccomp_late) < i("hooks:startContainer")
    # their programs are opened before the filter can deny openat2
    assert i("read exec fifo") < i("hooks:resolve") < i(seccomp_late)
    assert i("hooks:startContainer") < i("finalize[execve..execve]")


def test_start_hooks_resolved_before_an_early_filter(rec):
    # no noNewPrivileges: the filter goes in before the user switch; the hooks' programs before it
    init._init(_plan(seccomp={"defaultAction": "SCMP_ACT_ALLOW"}, hooks={"startContainer": [{}]}),
               _launch(rec), FakeChannel(rec))
    i = rec.index
    assert i("read exec fifo") < i("hooks:resolve") < i(TO_USER) < i("hooks:startContainer")


def test_seccomp_without_nnp_keeps_the_filter_out_of_the_wait(rec):
    init._init(_plan(seccomp={"defaultAction": "SCMP_ACT_ALLOW"}), _launch(rec), FakeChannel(rec))
    assert rec.index("send:ready") < rec.index(TO_USER)
    assert not any("seccomp" in step and "finalize" not in step for step in rec), rec  # no compiling here


def test_run_waits_on_the_channel_not_the_fifo(rec):
    init._init(_plan(), _launch(rec, fifo=False), FakeChannel(rec))
    assert "read exec fifo" not in rec and rec.index("send:ready") < rec.index("expect:start")


def test_a_failure_goes_to_the_runtime_and_after_start_to_the_fifo(rec, monkeypatch):
    la = _launch(rec)
    la.started = True
    writes = []
    monkeypatch.setattr(init.os, "write", lambda fd, data: writes.append((fd, data)))
    init.report(la, FakeChannel(rec), "boom")
    assert rec[-1] == "error:boom" and writes == [(99, b"err:boom")]


# ---------------------------------------------------------------- exec's process
def test_init_sets_home_from_passwd_as_exec_does(rec, monkeypatch):
    """One open_process for both (runc's init and exec set HOME alike; pyrunc's init once did not)."""
    tails = []
    monkeypatch.setattr(finalize, "run", lambda t, first=0, stop=None: tails.append(t))
    init._init(_plan(), _launch(rec), FakeChannel(rec))
    assert tails[0].env == {"HOME": "/root"}


def test_exec_process_joins_takes_the_root_then_waits_for_go(rec, monkeypatch):
    monkeypatch.setattr(execproc.procfs, "close", rec.step("procfs.close"))
    monkeypatch.setattr(execproc.process, "seal_imports", rec.step("seal imports"))
    monkeypatch.setattr(execproc.os, "close", lambda fd: None)
    monkeypatch.setattr(execproc.os, "fchdir", rec.step("fchdir root"))
    monkeypatch.setattr(execproc.os, "chroot", rec.step("chroot"))
    t = finalize.Tail(process.plan_process({"args": ["sh"]}), (), 3)
    execproc._setup(FakeChannel(rec), 1, 5, 6, FakeL.CLONE_NEWNS, t, None, None)
    assert rec == ["setsid", "procfs.close", "seal imports", f"setns({FakeL.CLONE_NEWNS:#x})",
                   "fchdir root", "chroot", "chdir", "open program", "rlimits+oom",
                   "send:ready", "expect:go", "finalize[close_fds..execve]"]
    assert t.env == {"HOME": "/root"}


# ---------------------------------------------------------------- the channel
def _pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return sync.Channel(a), sync.Channel(b)


def test_channel_small_and_framed_messages():
    a, b = _pair()
    a.send(sync.GO, b"x")
    assert b.recv() == (sync.GO, b"x")
    big = os.urandom(3 * sync.FRAME + 17)
    a.send(sync.GO, big)
    assert b.expect(sync.GO) == big
    a.send(sync.READY)
    assert b.recv() == (sync.READY, b"")


def test_channel_error_relay_and_eof():
    a, b = _pair()
    a.error("mounts[2]: no such device")
    with pytest.raises(Error, match=r"^mounts\[2\]: no such device$"):
        b.expect(sync.READY)
    a.send(sync.PID, b"1")
    with pytest.raises(Error, match="expected ready"):
        b.expect(sync.READY)
    a.close()
    with pytest.raises(Error, match="exited"):
        b.expect(sync.READY)
