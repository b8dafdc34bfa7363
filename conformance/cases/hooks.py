"""config.md#posix-platform-hooks and runtime.md#lifecycle: hook order, state on stdin,
namespaces the hooks run in, failures and timeouts."""

import json
import os
import time

from ..harness import case, check, eq, Fail, MUST, SHOULD

CFG = "config.md#posix-platform-hooks"
KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"]
IN_CONTAINER = ("startContainer",)


def hook(t, kind, name=None, extra="", fail=False, args=(), env=None, timeout=None):
    """Add a hook that records its name in order, its stdin, its namespaces."""
    name = name or kind
    host_dir = t.share()
    d = "/run" if kind in IN_CONTAINER else host_dir
    script = ("cat > {d}/state-{n}.json; readlink /proc/self/ns/mnt > {d}/mnt-{n}; "
              "readlink /proc/self/ns/net > {d}/net-{n}; echo \"$@\" > {d}/args-{n}; "
              "echo \"$HOOKVAR\" > {d}/env-{n}; {extra} echo {n} >> {d}/order"
              .format(d=d, n=name, extra=extra))
    if fail:
        script += "; exit 3"
    h = {"path": "/bin/sh", "args": ["sh", "-c", script, "hook"] + list(args)}
    if env is not None:
        h["env"] = env
    if timeout is not None:
        h["timeout"] = timeout
    t.config.setdefault("hooks", {}).setdefault(kind, []).append(h)
    return host_dir


def order(t):
    return t.read("share/order", "").split()


def all_hooks(t):
    for k in KINDS:
        hook(t, k)
    t.proc["args"] = ["sh", "-c", "echo program >> /run/order; sleep 30"]


def full_cycle(t):
    """create / start / kill / delete, recording the order after each step."""
    all_hooks(t)
    steps = {}
    cid = t.create()
    steps["create"] = order(t)
    t.start(cid).ok("start")
    steps["start"] = order(t)
    t.kill(cid, "KILL").ok("kill")
    t.wait_status(cid, "stopped")
    t.delete(cid).ok("delete")
    steps["delete"] = order(t)
    return cid, steps


@case("hooks-create-phase-order", "runtime.md#lifecycle")
def _(t):
    _, s = full_cycle(t)
    eq(s["create"], ["prestart", "createRuntime", "createContainer"], "hooks run by create")


@case("hooks-start-phase-order", "runtime.md#lifecycle")
def _(t):
    all_hooks(t)
    cid = t.create()
    t.start(cid).ok("start")
    at_return = order(t)[3:]
    check("poststart" in at_return, "poststart not run before start returned: %s" % at_return)
    end = time.time() + 5
    while "program" not in order(t) and time.time() < end:
        time.sleep(0.02)
    got = order(t)[3:]
    check("startContainer" in got, "startContainer hook not run: %s" % got)
    check("program" in got, "program did not run: %s" % got)
    check(got.index("startContainer") < got.index("program"),
          "startContainer ran after the program: %s" % got)


@case("hooks-poststop-on-delete", "runtime.md#lifecycle")
def _(t):
    _, s = full_cycle(t)
    check("poststop" not in s["start"], "poststop ran before delete")
    check(s["delete"][-1:] == ["poststop"], "poststop not run by delete: %s" % s["delete"])


@case("hooks-none-early", "runtime.md#lifecycle")
def _(t):
    all_hooks(t)
    t.create()
    o = order(t)
    for k in ("startContainer", "poststart", "poststop", "program"):
        check(k not in o, "%s ran during create: %s" % (k, o))


@case("hooks-prestart-before-createRuntime", "config.md#prestart")
def _(t):
    hook(t, "createRuntime")
    hook(t, "prestart")
    t.proc["args"] = ["sleep", "30"]
    t.create()
    eq(order(t), ["prestart", "createRuntime"], "order")


@case("hooks-same-kind-in-listed-order", CFG)
def _(t):
    for n in ("first", "second", "third"):
        hook(t, "createRuntime", name=n)
    t.proc["args"] = ["sleep", "30"]
    t.create()
    eq(order(t), ["first", "second", "third"], "order")


for _k in KINDS:
    def _mk(kind):
        def fn(t):
            all_hooks(t)
            cid = t.create()
            pid = t.state(cid)["pid"]
            t.start(cid).ok("start")
            t.kill(cid, "KILL").ok("kill")
            t.wait_status(cid, "stopped")
            t.delete(cid).ok("delete")
            try:
                st = json.loads(t.read("share/state-%s.json" % kind))
            except (OSError, ValueError) as e:
                raise Fail("hook got no state JSON on stdin: %s" % e)
            eq(st.get("id"), cid, "state.id on stdin")
            check(isinstance(st.get("ociVersion"), str), "state.ociVersion missing")
            eq(os.path.realpath(st.get("bundle", "")), os.path.realpath(t.bundle), "state.bundle")
            check("status" in st, "state.status missing")
            if kind not in ("poststop", "startContainer") and kind != "createContainer":
                eq(st.get("pid"), pid, "state.pid (runtime namespace view)")
        return fn
    case("hooks-%s-state-stdin" % _k, CFG)(_mk(_k))


def _ns_case(kind, nsname, want_container):
    def fn(t):
        all_hooks(t)
        cid = t.create()
        pid = t.state(cid)["pid"]
        cns = os.readlink("/proc/%d/ns/%s" % (pid, nsname))
        t.start(cid).ok("start")
        t.kill(cid, "KILL").ok("kill")
        t.wait_status(cid, "stopped")
        t.delete(cid).ok("delete")
        got = t.read("share/%s-%s" % (nsname, kind), "").strip()
        check(got, "%s hook did not run" % kind)
        if want_container:
            eq(got, cns, "%s namespace of the %s hook (container's)" % (nsname, kind))
        else:
            eq(got, os.readlink("/proc/self/ns/%s" % nsname),
               "%s namespace of the %s hook (runtime's)" % (nsname, kind))
    return fn


for _k in KINDS:
    _in = _k in ("createContainer", "startContainer")
    case("hooks-%s-%s-namespace" % (_k, "container" if _in else "runtime"), CFG)(
        _ns_case(_k, "mnt" if _in else "net", _in))


@case("hooks-args-and-env", CFG)
def _(t):
    hook(t, "createRuntime", args=["a1", "a b"], env=["HOOKVAR=hook-env-value"])
    t.proc["args"] = ["sleep", "30"]
    t.create()
    eq(t.read("share/args-createRuntime").strip(), "a1 a b", "hook args")
    eq(t.read("share/env-createRuntime").strip(), "hook-env-value", "hook env")


def _fail_create(kind):
    def fn(t):
        hook(t, kind, fail=True)
        t.proc["args"] = ["sh", "-c", "echo program >> /run/order"]
        cid = t.new_id()
        r = t.create(cid=cid, check_ok=False)
        if r.rc == 0:
            r2 = t.start(cid)
            check(kind == "startContainer", "create succeeded although the %s hook failed" % kind)
            r2.fails("start with a failing startContainer hook")
        time.sleep(0.2)
        check("program" not in order(t), "program ran although a %s hook failed" % kind)
        st = t.state(cid, must=False)
        check(st is None or st.get("status") == "stopped",
              "container not stopped after the failed hook: %r" % st)
    return fn


for _k in ("prestart", "createRuntime", "createContainer", "startContainer"):
    case("hooks-%s-failure-error" % _k, "runtime.md#lifecycle")(_fail_create(_k))


@case("hooks-poststart-failure-error", "runtime.md#lifecycle")
def _(t):
    hook(t, "poststart", fail=True)
    t.proc["args"] = ["sleep", "30"]
    cid = t.new_id()
    r = t.create(cid=cid, check_ok=False)
    if r.rc == 0:  # (a poststart failure reported by create is judged by the order cases)
        t.start(cid).fails("start with a failing poststart hook")
    st = t.state(cid, must=False)
    if st is not None and st.get("status") != "stopped":
        t.wait_status(cid, "stopped", timeout=3)


@case("hooks-poststop-failure-warning-only", "runtime.md#lifecycle")
def _(t):
    hook(t, "poststop", fail=True)
    hook(t, "poststop", name="after")
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    t.delete(cid).ok("delete with a failing poststop hook")
    t.call("state", cid).fails("state after delete")
    check("after" in order(t), "remaining poststop hooks not run")


@case("hooks-timeout", CFG)
def _(t):
    t.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "8"],
                                            "timeout": 1}]}
    t.proc["args"] = ["sleep", "30"]
    t0 = time.time()
    cid = t.new_id()
    r = t.create(cid=cid, check_ok=False)
    el = time.time() - t0
    r.fails("create with a hook exceeding its timeout")
    check(el < 6, "hook not aborted after its timeout (create took %.1fs)" % el)


@case("hooks-startContainer-path-in-container", "config.md#startcontainer-hooks")
def _(t):
    root = t.small_rootfs()
    name = "/conformance-hook-%s.sh" % os.path.basename(t.tmp)
    with open(root + name, "w") as f:
        f.write("#!/bin/sh\necho in-container-hook >> /run/order\n")
    os.chmod(root + name, 0o755)
    t.share()
    t.config.setdefault("hooks", {})["startContainer"] = [{"path": name}]
    t.proc["args"] = ["true"]
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    check("in-container-hook" in order(t), "hook with a container-only path did not run")


@case("hooks-relative-path-error", CFG)
def _(t):
    t.config["hooks"] = {"createRuntime": [{"path": "bin/true"}]}
    t.proc["args"] = ["sleep", "30"]
    cid = t.new_id()
    t.create(cid=cid, check_ok=False).fails("create with a relative hook path")
