"""runtime.md: state, lifecycle, create / start / kill / delete and their errors."""

import os
import time

from ..harness import case, check, eq, Fail, MUST, SHOULD, MAY

RT = "runtime.md"


def _sleeper(t, secs=30):
    t.proc["args"] = ["sleep", str(secs)]


def _running(t):
    _sleeper(t)
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "running")
    return cid


def _stopped(t):
    t.proc["args"] = ["true"]
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    return cid


# ---- state -----------------------------------------------------------------------------------

@case("state-created-status", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    eq(t.state(cid).get("status"), "created", "status after create")


@case("state-created-pid", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    pid = t.state(cid).get("pid")
    check(isinstance(pid, int) and pid > 0, "pid missing in created state: %r" % pid)
    check(os.path.exists("/proc/%d" % pid), "state pid %d is not a live process" % pid)


@case("state-id", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    eq(t.state(cid).get("id"), cid, "id")


@case("state-ociVersion", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    v = t.state(cid).get("ociVersion")
    check(isinstance(v, str) and v, "ociVersion missing or not a string: %r" % v)


@case("state-bundle-absolute", RT + "#state")
def _(t):
    _sleeper(t)
    t.write_bundle()
    rel = os.path.relpath(t.bundle)
    cid = t.create(bundle=rel)
    b = t.state(cid).get("bundle")
    check(isinstance(b, str) and os.path.isabs(b), "bundle is not absolute: %r" % b)
    eq(os.path.realpath(b), os.path.realpath(t.bundle), "bundle")


@case("state-annotations", RT + "#state")
def _(t):
    _sleeper(t)
    t.config["annotations"] = {"org.example.key": "value-1", "org.example.empty": ""}
    cid = t.create()
    eq(t.state(cid).get("annotations"), t.config["annotations"], "annotations")


@case("state-schema", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    st = t.state(cid)
    for k, typ in (("ociVersion", str), ("id", str), ("status", str), ("bundle", str),
                   ("pid", int)):
        check(isinstance(st.get(k), typ), "state.%s missing or not %s: %r"
              % (k, typ.__name__, st.get(k)))
    if "annotations" in st:
        check(isinstance(st["annotations"], dict), "annotations is not a map")


@case("state-running", RT + "#state")
def _(t):
    cid = _running(t)
    st = t.state(cid)
    eq(st.get("status"), "running", "status")
    check(isinstance(st.get("pid"), int) and st["pid"] > 0, "pid missing in running state")


@case("state-running-pid-is-program", RT + "#state")
def _(t):
    cid = _running(t)
    pid = t.state(cid)["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    eq(argv[:2], [b"sleep", b"30"], "cmdline of the state pid")


@case("state-stopped", RT + "#state")
def _(t):
    cid = _stopped(t)
    eq(t.state(cid).get("status"), "stopped", "status")


@case("state-stopped-after-kill", RT + "#lifecycle")
def _(t):
    cid = _running(t)
    t.kill(cid, "KILL").ok("kill")
    t.wait_status(cid, "stopped")


@case("state-nonexistent-error", RT + "#query-state")
def _(t):
    t.call("state", "conf-does-not-exist").fails("state of a missing container")


@case("state-no-id-error", RT + "#query-state")
def _(t):
    t.call("state").fails("state without id")


@case("state-pid-runtime-view", RT + "#state")
def _(t):
    _sleeper(t)
    cid = t.create()
    pid = t.state(cid)["pid"]
    check(os.readlink("/proc/%d/ns/pid" % pid) != os.readlink("/proc/self/ns/pid"),
          "state pid is not a process in the container pid namespace")


# ---- create ----------------------------------------------------------------------------------

@case("create-does-not-run-program", RT + "#create")
def _(t):
    d = t.share()
    t.proc["args"] = ["sh", "-c", "echo ran > /run/marker"]
    cid = t.create()
    time.sleep(0.3)
    check(not os.path.exists(os.path.join(d, "marker")), "process.args ran during create")
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    check(os.path.exists(os.path.join(d, "marker")), "process.args did not run on start")


@case("create-duplicate-id-error", RT + "#create")
def _(t):
    _sleeper(t)
    cid = t.create()
    pid = t.state(cid)["pid"]
    t.create(cid=cid, check_ok=False).fails("second create with the same id")
    st = t.state(cid)
    eq((st.get("status"), st.get("pid")), ("created", pid), "first container after duplicate")


@case("create-invalid-id-error", RT + "#create")
def _(t):
    bad = "../conf-bad"
    t.ids.append(bad)
    t.create(cid=bad, check_ok=False).fails("create with id %r" % bad)
    check(not os.path.exists(os.path.join(t.tmp, "conf-bad")), "state written outside --root")


@case("create-missing-bundle-error", RT + "#create")
def _(t):
    cid = t.new_id()
    r = t.call("create", "--bundle", t.path("no-such-bundle"), cid)
    r.fails("create with a missing bundle")
    t.call("state", cid).fails("state of a container whose create failed")


@case("create-no-id-error", RT + "#create")
def _(t):
    t.call("create", "--bundle", t.write_bundle()).fails("create without id")


@case("create-error-leaves-nothing", RT + "#errors")
def _(t):
    t.add_mount("/mnt", "no-such-fs-type", "none")
    cid = t.new_id()
    t.create(cid=cid, check_ok=False).fails("create with an impossible mount")
    t.call("state", cid).fails("state after failed create")
    # the id must be free again
    t.config["mounts"].pop()
    _sleeper(t)
    t.create(cid=cid)


@case("create-config-change-no-effect", RT + "#create")
def _(t):
    t.proc["args"] = ["echo", "original"]
    cid = t.create()
    t.proc["args"] = ["echo", "changed"]
    t.write_bundle()
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    eq(t.ctr_output(cid).strip(), "original", "program output")


@case("create-missing-root-error", "config.md#root")
def _(t):
    t.config["root"]["path"] = t.path("no-such-rootfs")
    cid = t.new_id()
    t.create(cid=cid, check_ok=False).fails("create with a missing root.path")
    t.call("state", cid).fails("state after failed create")


# ---- start -----------------------------------------------------------------------------------

@case("start-runs-program", RT + "#start")
def _(t):
    t.proc["args"] = ["echo", "started-ok"]
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "stopped")
    eq(t.ctr_output(cid).strip(), "started-ok", "program output")


@case("start-twice-error", RT + "#start")
def _(t):
    d = t.share()
    t.proc["args"] = ["sh", "-c", "echo x >> /run/count; sleep 30"]
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "running")
    pid = t.state(cid)["pid"]
    t.start(cid).fails("start of a running container")
    st = t.state(cid)
    eq((st["status"], st["pid"]), ("running", pid), "state after second start")
    time.sleep(0.2)
    eq(open(os.path.join(d, "count")).read(), "x\n", "program runs")


@case("start-stopped-error", RT + "#start")
def _(t):
    cid = _stopped(t)
    t.start(cid).fails("start of a stopped container")
    eq(t.state(cid)["status"], "stopped", "status")


@case("start-nonexistent-error", RT + "#start")
def _(t):
    t.call("start", "conf-does-not-exist").fails("start of a missing container")


@case("start-no-id-error", RT + "#start")
def _(t):
    t.call("start").fails("start without id")


@case("start-without-process-error", RT + "#start")
def _(t):
    del t.config["process"]
    cid = t.new_id()
    r = t.create(cid=cid, check_ok=False)
    if r.rc == 0:
        t.start(cid).fails("start of a container without process")


# ---- kill ------------------------------------------------------------------------------------

@case("kill-created", RT + "#kill")
def _(t):
    _sleeper(t)
    cid = t.create()
    t.kill(cid, "KILL").ok("kill of a created container")
    t.wait_status(cid, "stopped")


@case("kill-running-sigkill", RT + "#kill")
def _(t):
    cid = _running(t)
    t.kill(cid, "KILL").ok("kill")
    t.wait_status(cid, "stopped")


@case("kill-delivers-signal", RT + "#kill")
def _(t):
    d = t.share()
    t.proc["args"] = ["sh", "-c", "trap 'echo USR1 > /run/sig; exit 0' USR1; "
                      "echo ready > /run/ready; while :; do sleep 0.05; done"]
    cid = t.create()
    t.start(cid).ok("start")
    end = time.time() + 5
    while not os.path.exists(os.path.join(d, "ready")) and time.time() < end:
        time.sleep(0.02)
    t.kill(cid, "USR1").ok("kill USR1")
    t.wait_status(cid, "stopped")
    eq(open(os.path.join(d, "sig")).read().strip(), "USR1", "signal seen by the process")


@case("kill-signal-number", RT + "#kill")
def _(t):
    cid = _running(t)
    t.kill(cid, "9").ok("kill 9")
    t.wait_status(cid, "stopped")


@case("kill-signal-sigprefix", RT + "#kill")
def _(t):
    cid = _running(t)
    t.kill(cid, "SIGKILL").ok("kill SIGKILL")
    t.wait_status(cid, "stopped")


@case("kill-stopped-error", RT + "#kill")
def _(t):
    cid = _stopped(t)
    t.kill(cid, "KILL").fails("kill of a stopped container")
    eq(t.state(cid)["status"], "stopped", "status")


@case("kill-nonexistent-error", RT + "#kill")
def _(t):
    t.call("kill", "conf-does-not-exist", "KILL").fails("kill of a missing container")


@case("kill-no-id-error", RT + "#kill")
def _(t):
    t.call("kill").fails("kill without id")


# ---- delete ----------------------------------------------------------------------------------

@case("delete-stopped", RT + "#delete")
def _(t):
    cid = _stopped(t)
    t.delete(cid).ok("delete")
    t.call("state", cid).fails("state after delete")


@case("delete-id-reusable", RT + "#delete")
def _(t):
    cid = _stopped(t)
    t.delete(cid).ok("delete")
    _sleeper(t)
    t.create(cid=cid)
    eq(t.state(cid)["status"], "created", "status of the re-created container")


@case("delete-running-error", RT + "#delete")
def _(t):
    cid = _running(t)
    pid = t.state(cid)["pid"]
    t.delete(cid).fails("delete of a running container")
    st = t.state(cid)
    eq((st["status"], st["pid"]), ("running", pid), "state after refused delete")


@case("delete-created-error", RT + "#delete")
def _(t):
    _sleeper(t)
    cid = t.create()
    t.delete(cid).fails("delete of a created container")
    eq(t.state(cid)["status"], "created", "status after refused delete")


@case("delete-nonexistent-error", RT + "#delete")
def _(t):
    t.call("delete", "conf-does-not-exist").fails("delete of a missing container")


@case("delete-no-id-error", RT + "#delete")
def _(t):
    t.call("delete").fails("delete without id")


@case("delete-force-running", RT + "#delete (runc CLI --force)", MAY)
def _(t):
    cid = _running(t)
    pid = t.state(cid)["pid"]
    t.delete(cid, force=True).ok("delete --force")
    t.call("state", cid).fails("state after delete --force")
    end = time.time() + 3
    while os.path.exists("/proc/%d/cmdline" % pid) and time.time() < end:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                break
        time.sleep(0.02)
    else:
        check(not os.path.exists("/proc/%d/cmdline" % pid), "process survives delete --force")


@case("delete-removes-cgroups", RT + "#delete")
def _(t):
    t.proc["args"] = ["sleep", "30"]
    cid = t.create()
    pid = t.state(cid)["pid"]
    dirs = []
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.strip().split(":", 2)
            c = ctrls.split(",")[0]
            if c in t.host.controllers and path not in ("/", t.host.own.get(c)):
                dirs.append(os.path.join(t.host.controllers[c], path.lstrip("/")))
    check(dirs, "container is in no cgroup of its own")
    t.kill(cid, "KILL").ok("kill")
    t.wait_status(cid, "stopped")
    t.delete(cid).ok("delete")
    left = [d for d in dirs if os.path.isdir(d)]
    check(not left, "cgroups left after delete: %s" % left)


@case("delete-keeps-foreign-resources", RT + "#delete")
def _(t):
    d = t.share()
    with open(os.path.join(d, "keep"), "w") as f:
        f.write("x")
    holder = t.helper(["unshare", "--net", "sleep", "30"])
    time.sleep(0.1)
    ns = "/proc/%d/ns/net" % holder.pid
    for n in t.linux["namespaces"]:
        if n["type"] == "network":
            n["path"] = ns
    cid = _stopped(t)
    t.delete(cid).ok("delete")
    check(os.path.exists(os.path.join(d, "keep")), "bind-mount source content removed")
    check(holder.poll() is None, "process owning the joined namespace was killed")


@case("lifecycle-process-exit-stops", RT + "#lifecycle")
def _(t):
    t.proc["args"] = ["sh", "-c", "sleep 2"]
    cid = t.create()
    t.start(cid).ok("start")
    eq(t.state(cid)["status"], "running", "status while the program runs")
    t.wait_status(cid, "stopped", timeout=8)


@case("run-exit-status", RT + "#lifecycle (runc CLI run)", SHOULD)
def _(t):
    r = t.run(["sh", "-c", "exit 7"])
    eq(r.rc, 7, "exit status of run")


@case("run-stdio", "runtime-linux.md#file-descriptors")
def _(t):
    t.write("in.txt", "from-stdin\n")
    t.proc["args"] = ["sh", "-c", "read l; echo out:$l; echo err:$l >&2"]
    cid = t.new_id()
    r = t.call("run", "--bundle", t.write_bundle(), cid, stdin=t.path("in.txt"))
    r.ok("run")
    eq(r.out.strip(), "out:from-stdin", "stdout")
    check("err:from-stdin" in r.err, "stderr not passed through: %r" % r.err)
