"""The last steps before execve (runtime/chain/finalize.py), shared by the init and exec, run in-process
against a recording syscall seam: no root, no container. The order is what the comments in
finalize.py argue for, and the same for both callers."""
import pytest

from runtime import process
from runtime.chain import finalize


class Rec:
    def __init__(self):
        self.calls = []

    def __call__(self, name):
        def f(*a, **k):
            self.calls.append(name)
        return f


class FakeL:
    def __init__(self, rec):
        self.close_range = rec("close_range")


class Plan:
    nnp = False
    apparmor = None
    uid = 1000


@pytest.fixture
def rec(monkeypatch):
    r = Rec()
    monkeypatch.setattr(finalize, "L", FakeL(r))
    monkeypatch.setattr(finalize.os, "set_inheritable", r("set_inheritable"))
    monkeypatch.setattr(finalize.sig, "signal", r("signal"))
    monkeypatch.setattr(process, "apply_user", r("apply_user"))
    monkeypatch.setattr(finalize.program, "execute", r("execve"))
    monkeypatch.setattr(finalize.procfs, "write", r("apparmor"))
    import runtime.seccomp as sc
    monkeypatch.setattr(sc, "load", lambda prepared: r.calls.append("seccomp") or None)
    import runtime.mempolicy as mp
    monkeypatch.setattr(mp, "apply", r("mempolicy"))
    import runtime.procattr as pa
    monkeypatch.setattr(pa, "apply_personality", r("personality"))
    return r


def _tail(nnp, seccomp=True, apparmor=None):
    p = Plan()
    p.nnp, p.apparmor = nnp, apparmor
    return finalize.Tail(p, [3], 4, attrs=object(), mempolicy=object(),
                         seccomp={} if seccomp else None, prepared=object() if seccomp else None)


def test_order_table_is_the_documented_one():
    o = finalize.ORDER
    assert o[0] == "close_fds" and o[-1] == "execve"
    assert o.index("mempolicy") < o.index("seccomp_before_user") < o.index("user") < o.index("seccomp_after_user")
    assert o.index("personality") < o.index("seccomp_before_user")
    assert o.index("apparmor") < o.index("user")
    assert finalize.USER_SWITCH == o.index("user")


def test_without_nnp_the_filter_goes_in_before_the_user_switch(rec):
    finalize.run(_tail(nnp=False, apparmor="p"))
    c = rec.calls
    assert c == ["close_range", "set_inheritable", "signal", "signal", "personality", "mempolicy",
                 "seccomp", "apparmor", "apply_user", "execve"], c


def test_with_nnp_the_filter_goes_in_last(rec):
    finalize.run(_tail(nnp=True))
    c = rec.calls
    assert c.index("apply_user") < c.index("seccomp") < c.index("execve"), c
    assert c.count("seccomp") == 1


def test_split_run_is_the_same_sequence(rec):
    t = _tail(nnp=True)
    finalize.run(t, 0, finalize.USER_SWITCH + 1)
    first = list(rec.calls)
    finalize.run(t, finalize.USER_SWITCH + 1)
    assert first[-1] == "apply_user" and rec.calls[len(first):] == ["seccomp", "execve"]


def test_no_seccomp_no_filter(rec):
    finalize.run(_tail(nnp=False, seccomp=False))
    assert "seccomp" not in rec.calls


def test_init_and_exec_use_the_shared_tail():
    """Neither caller keeps a copy of a step (they drifted before: AppArmor's path, the fds)."""
    import inspect
    from runtime.chain import execproc, init
    for mod in (init, execproc):
        src = inspect.getsource(mod)
        assert "finalize.run(" in src
        for private in ("close_range(", "apply_user(", "attr/apparmor", "apply_personality("):
            assert private not in src, (mod.__name__, private)
