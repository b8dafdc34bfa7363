"""Kubernetes through CRI, without a kubelet: containerd 1.6's CRI plugin (configured as
docs/engines.md says) with two RuntimeClass handlers, runc and pyrunc, driven by a Python CRI v1
client. Every scenario runs with both handlers; after each one, nothing of its pods may be left
(crifix.cri_env checks)."""
import json
import os
import subprocess

import pytest

from crifix import (CGROUP_PARENT, HANDLERS, cri, cri_env, doc_config, handler, has_cap,  # noqa: F401
                    read_cgroup, umount_under, wait_for, WebSocket)

# kubelet's defaults for a non-privileged container (k8s.io/kubernetes securitycontext)
MASKED = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
CAPS = {"CHOWN": 0, "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21}


def _status_field(c, cid, field, pid="1"):
    out = c.sh(cid, f"grep '^{field}:' /proc/{pid}/status")
    return out.split(":", 1)[1].strip()


def _cap_eff(c, cid, pid="1"):
    return int(_status_field(c, cid, "CapEff", pid), 16)


def _mountinfo(c, cid):
    """{mount point: (mount options, super options)} inside the container."""
    out = {}
    for line in c.sh(cid, "cat /proc/self/mountinfo").splitlines():
        f = line.split()
        sep = f.index("-")
        out[f[4]] = (f[5].split(","), f[sep + 3].split(","))
    return out


def _ns(c, cid, *names):
    """The namespace links of an exec'd process in CID (busybox readlink takes one file)."""
    return c.sh(cid, "for n in %s; do readlink /proc/self/ns/$n; done" % " ".join(names)).split()


def _cgroup(pod, cid):
    return f"{pod.config.linux.cgroup_parent}/{cid}"


# ------------------------------------------------------------------ lifecycle
def test_config_is_the_documented_one(cri):
    # the daemon runs the doc's block: both handlers, runc kept as the default
    cfg = doc_config()
    assert 'default_runtime_name = "runc"' in cfg
    for h in HANDLERS:
        assert f'containerd.runtimes.{h}]' in cfg and f'containerd.runtimes.{h}.options]' in cfg
    assert cfg.count('SystemdCgroup = false') == 2
    with open(os.path.join(cri.base, "config.toml")) as f:
        assert f.read().count('SystemdCgroup = false') == 2
    # the doc's check that the CRI plugin loaded
    line = [ln.split() for ln in cri.ctr("plugins", "ls").stdout.splitlines() if " cri " in ln]
    assert len(line) == 1 and line[0][:2] == ["io.containerd.grpc.v1", "cri"] and line[0][-1] == "ok", line


def test_no_handler_runs_runc(cri_env):
    # a pod without runtimeClassName: default_runtime_name, runc, not pyrunc
    c = cri_env
    pod = c.run_pod("")
    cid = pod.start("main", ["sleep", "inf"])
    assert {pod.id, cid} <= set(os.listdir("/run/containerd/runc/k8s.io"))
    pyrunc_root = os.path.join(c.base, "pyrunc-root", "k8s.io")
    assert not (os.path.isdir(pyrunc_root) and os.listdir(pyrunc_root))


def test_pod_and_container_lifecycle(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id), timeout=60).status
    assert st.state == pb.PodSandboxState.SANDBOX_READY
    assert st.runtime_handler == handler
    ip = st.network.ip
    assert ip.startswith(c.subnet.rsplit(".", 1)[0] + "."), (ip, c.subnet)

    # TERM trapped: a graceful stop; TERM ignored (pid 1 without a handler): killed at the timeout
    graceful = pod.start("graceful", ["sh", "-c", "trap 'exit 3' TERM; sleep inf & wait"])
    stubborn = pod.start("stubborn", ["sleep", "inf"])
    for cid in (graceful, stubborn):
        s = c.status(cid)
        assert s.state == pb.ContainerState.CONTAINER_RUNNING, s
        assert s.started_at > 0
    # the pod's containers share its network namespace (and so its address) and its IPC
    assert f"inet {ip}/" in c.sh(graceful, "ip -o -4 addr show eth0")
    ns = [_ns(c, cid, "net", "ipc", "uts") for cid in (graceful, stubborn)]
    assert ns[0] == ns[1]
    assert os.readlink("/proc/self/ns/net") not in ns[0]
    assert c.sh(graceful, "hostname").strip() == pod.config.hostname
    listed = {x.id for x in c.rt.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=60).containers}
    assert listed == {graceful, stubborn}

    # the sh must be waiting in `wait` (its trap set) before TERM means anything
    wait_for(lambda: "sleep" in c.sh(graceful, "ps -o comm"), what="the trap to be set")
    c.rt.StopContainer(pb.StopContainerRequest(container_id=graceful, timeout=30), timeout=90)
    s = c.status(graceful)
    assert (s.state, s.exit_code) == (pb.ContainerState.CONTAINER_EXITED, 3), s
    c.rt.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=1), timeout=90)
    s = c.status(stubborn)
    assert (s.state, s.exit_code) == (pb.ContainerState.CONTAINER_EXITED, 137), s
    for cid in (graceful, stubborn):
        c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
    assert not c.rt.ListContainers(pb.ListContainersRequest(), timeout=60).containers
    wait_for(lambda: not os.path.exists(f"/sys/fs/cgroup/memory/{_cgroup(pod, graceful)}"),
             timeout=20, what="the container's cgroup to go")

    c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
    st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id), timeout=60).status
    assert st.state == pb.PodSandboxState.SANDBOX_NOTREADY
    c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
    assert not c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=60).items


def test_remove_pod_with_running_containers(cri_env, handler):
    # the kubelet may stop a pod whose containers still run: they are killed with it
    c = cri_env
    pod = c.run_pod(handler)
    cids = [pod.start(f"c{i}", ["sleep", "inf"]) for i in range(2)]
    c.remove_pod(pod.id)
    assert not c.rt.ListContainers(c.pb.ListContainersRequest(), timeout=60).containers, cids


def test_exec_sync(cri_env, handler):
    c = cri_env
    cid = c.run_pod(handler).start("main", ["sleep", "inf"], envs={"GREETING": "hi"})
    assert c.exec_sync(cid, ["sh", "-c", "echo $GREETING out; echo err >&2; exit 7"]) == (7, "hi out\n", "err\n")
    assert c.exec_sync(cid, ["true"], timeout=30) == (0, "", "")  # a timeout that doesn't fire
    with pytest.raises(c.grpc.RpcError) as e:  # a failed exec is an error, not an exit code
        c.exec_sync(cid, ["/no/such/binary"])
    assert "/no/such/binary" in e.value.details() and "no such file" in e.value.details()
    # a timeout that fires: the call fails, and the exec'd process is gone
    with pytest.raises(c.grpc.RpcError) as e:
        c.exec_sync(cid, ["sleep", "123"], timeout=1)
    assert "timeout" in e.value.details(), e.value.details()
    wait_for(lambda: "sleep 123" not in c.sh(cid, "ps -o args"), what="the timed-out exec to be killed")
    assert c.status(cid).state == c.pb.ContainerState.CONTAINER_RUNNING


def test_exec_streaming(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    cid = c.run_pod(handler).start("main", ["sleep", "inf"])
    url = c.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "read x; echo got:$x; echo err >&2; exit 3"],
                                   stdin=True, stdout=True, stderr=True), timeout=60).url
    ws = WebSocket(url)
    try:
        ws.stdin(b"hello\n")
        out = ws.collect()
    finally:
        ws.close()
    assert out.get(1) == b"got:hello\n", out
    assert out.get(2) == b"err\n", out
    status = json.loads(out[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode", status
    assert status["details"]["causes"][0] == {"reason": "ExitCode", "message": "3"}, status


def test_exec_streaming_tty(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    cid = c.run_pod(handler).start("main", ["sleep", "inf"])
    url = c.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["sh", "-c", "tty; read x; echo got:$x"], tty=True,
                                   stdin=True, stdout=True), timeout=60).url
    ws = WebSocket(url)
    try:
        out = ws.collect(until=lambda o: b"/dev/pts/" in o.get(1, b""))
        ws.stdin(b"bye\r")
        more = ws.collect()
    finally:
        ws.close()
    assert b"got:bye" in more.get(1, b""), (out, more)  # the terminal echoes the input too
    assert json.loads(more[3])["status"] == "Success", more


def test_tty_container(cri_env, handler):
    # the init on a terminal: the shim hands the runtime a console socket
    c = cri_env
    pod = c.run_pod(handler)
    cid = pod.start("tty", ["sh", "-c", "tty; sleep inf"], tty=True, stdin=True)
    wait_for(lambda: os.path.exists(pod.log_path("tty")) and "/dev/pts/" in open(pod.log_path("tty")).read(),
             what="the terminal's name in the log")
    assert c.sh(cid, "ls -l /proc/1/fd/0").split()[-1].startswith("/dev/pts/")


def test_attach_streaming(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    cid = c.run_pod(handler).start("main", ["sh", "-c", "while read x; do echo attached:$x; done"], stdin=True)
    url = c.rt.Attach(pb.AttachRequest(container_id=cid, stdin=True, stdout=True, stderr=True), timeout=60).url
    ws = WebSocket(url)
    try:
        ws.stdin(b"one\n")
        out = ws.collect(until=lambda o: b"attached:one\n" in o.get(1, b""))
        ws.stdin(b"two\n")
        out = ws.collect(until=lambda o: b"attached:two\n" in o.get(1, b""))
    finally:
        ws.close()
    assert out[1] == b"attached:two\n", out
    assert c.status(cid).state == pb.ContainerState.CONTAINER_RUNNING


def test_logs_and_exit(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    cid = pod.start("logger", ["sh", "-c", "echo out-line; echo err-line >&2; exit 4"])
    s = c.wait_exited(cid)
    assert (s.exit_code, s.reason) == (4, "Error"), s
    assert s.log_path == pod.log_path("logger")
    with open(pod.log_path("logger")) as f:
        lines = [line.split(" ", 1)[1] for line in f.read().splitlines()]  # drop the timestamp
    assert sorted(lines) == ["stderr F err-line", "stdout F out-line"], lines
    ok = pod.start("ok", ["true"])
    s = c.wait_exited(ok)
    assert (s.exit_code, s.reason) == (0, "Completed"), s


def test_log_rotation(cri_env, handler):
    # the kubelet rotates logs: rename the file, ReopenContainerLog, and the output goes on in a new one
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    cid = pod.start("ticker", ["sh", "-c", "while :; do echo tick; sleep 0.1; done"])
    path = pod.log_path("ticker")

    def ticks(p):
        return os.path.exists(p) and "stdout F tick" in open(p).read()
    wait_for(lambda: ticks(path), what="ticks in the log")
    os.rename(path, path + ".1")
    c.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=60)
    wait_for(lambda: ticks(path), what="ticks in the reopened log")


def test_stats(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    cid = pod.start("main", ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep inf"])
    wait_for(lambda: "sleep" in c.sh(cid, "ps -o comm"), what="the busy loop to end")
    st = c.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=60).stats
    assert st.attributes.id == cid
    assert st.cpu.usage_core_nano_seconds.value > 0, st
    assert st.memory.working_set_bytes.value > 0, st
    assert st.writable_layer.fs_id.mountpoint, st
    listed = c.rt.ListContainerStats(pb.ListContainerStatsRequest(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=pod.id)), timeout=60).stats
    assert [s.attributes.id for s in listed] == [cid]


def test_update_container_resources(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    cid = pod.start("main", ["sleep", "inf"], resources=pb.LinuxContainerResources(
        memory_limit_in_bytes=128 << 20, cpu_shares=256))
    cg = _cgroup(pod, cid)
    assert read_cgroup("memory", cg, "memory.limit_in_bytes") == str(128 << 20)
    c.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=64 << 20, cpu_shares=512, cpu_period=100000, cpu_quota=50000)), timeout=60)
    assert read_cgroup("memory", cg, "memory.limit_in_bytes") == str(64 << 20)
    assert read_cgroup("cpu", cg, "cpu.shares") == "512"
    assert read_cgroup("cpu", cg, "cpu.cfs_quota_us") == "50000"
    assert c.status(cid).state == pb.ContainerState.CONTAINER_RUNNING


def test_resource_limits(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    cid = pod.start("main", ["sleep", "inf"], resources=pb.LinuxContainerResources(
        memory_limit_in_bytes=48 << 20, cpu_shares=300, cpu_period=50000, cpu_quota=25000))
    cg = _cgroup(pod, cid)
    assert read_cgroup("memory", cg, "memory.limit_in_bytes") == str(48 << 20)
    assert read_cgroup("cpu", cg, "cpu.shares") == "300"
    assert read_cgroup("cpu", cg, "cpu.cfs_period_us") == "50000"
    assert read_cgroup("cpu", cg, "cpu.cfs_quota_us") == "25000"
    # the container's processes, its exec'd ones too, are in that cgroup (no cgroup namespace
    # on a v1 host: the path reads as the host's)
    own = c.sh(cid, "cat /proc/self/cgroup").splitlines()
    assert any(line.endswith(f":memory:{cg}") for line in own), own
    assert read_cgroup("memory", cg, "cgroup.procs").split()


def test_oom_killed(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    # the string doubles until the 16 MiB limit's OOM killer ends it
    cid = pod.start("hog", ["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"],
                    resources=pb.LinuxContainerResources(memory_limit_in_bytes=16 << 20))
    # containerd sets the reason from the shim's OOM event, which may come after the exit's
    last = []

    def oom_reported():
        last[:] = [c.status(cid)]
        return last[0].state == pb.ContainerState.CONTAINER_EXITED and last[0].reason == "OOMKilled"
    try:
        wait_for(oom_reported, timeout=90, what="the container to exit OOMKilled")
    except AssertionError:
        raise AssertionError(f"no OOMKilled exit: {last}") from None
    assert last[0].exit_code == 137, last[0]


# ------------------------------------------------------------------ security contexts
def test_run_as_user_group(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    sc = pb.LinuxContainerSecurityContext(run_as_user=pb.Int64Value(value=1000),
                                          run_as_group=pb.Int64Value(value=2000), supplemental_groups=[3000])
    cid = pod.start("user", ["sh", "-c", "id; sleep inf"], sc=sc)
    ids = "uid=1000 gid=2000 groups=2000,3000"
    assert c.sh(cid, "id").strip() == ids
    wait_for(lambda: os.path.exists(pod.log_path("user")) and "uid=" in open(pod.log_path("user")).read(),
             what="the init's output in the log")
    with open(pod.log_path("user")) as f:
        assert f.read().split(" stdout F ", 1)[1].strip() == ids
    # a non-root user: no effective capabilities, and it can't write root's files
    assert _cap_eff(c, cid) == 0
    assert c.exec_sync(cid, ["touch", "/etc/x"])[0] != 0


def test_readonly_rootfs(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    cid = c.run_pod(handler).start("ro", ["sleep", "inf"],
                                   sc=pb.LinuxContainerSecurityContext(readonly_rootfs=True))
    rc, _, err = c.exec_sync(cid, ["touch", "/x"])
    assert rc != 0 and "Read-only file system" in err, err
    assert "ro" in _mountinfo(c, cid)["/"][0]
    # the mounts the runtime adds stay writable where Kubernetes expects it
    assert c.exec_sync(cid, ["sh", "-c", "echo x > /dev/null"])[0] == 0
    assert c.exec_sync(cid, ["touch", "/dev/shm/x"])[0] == 0


def test_capabilities(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    added = pod.start("added", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["CHOWN"])))
    eff = _cap_eff(c, added)
    assert eff >> CAPS["NET_ADMIN"] & 1 and not eff >> CAPS["CHOWN"] & 1, hex(eff)
    assert eff >> CAPS["NET_RAW"] & 1 and not eff >> CAPS["SYS_ADMIN"] & 1, hex(eff)
    assert c.exec_sync(added, ["chown", "1:1", "/tmp"])[0] != 0
    assert c.exec_sync(added, ["ip", "link", "set", "lo", "mtu", "1500"])[0] == 0  # NET_ADMIN
    only = pod.start("only", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(
        capabilities=pb.Capability(add_capabilities=["NET_BIND_SERVICE"], drop_capabilities=["ALL"])))
    assert _cap_eff(c, only) == 1 << CAPS["NET_BIND_SERVICE"]
    assert int(_status_field(c, only, "CapBnd"), 16) == 1 << CAPS["NET_BIND_SERVICE"]
    # exec'd processes get the container's capabilities
    assert int(c.sh(only, "grep CapEff /proc/self/status").split()[1], 16) == 1 << CAPS["NET_BIND_SERVICE"]


def test_privileged(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler, privileged=True)
    cid = pod.start("priv", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(privileged=True))
    # every capability containerd itself holds (on this host that may be fewer than all)
    with open("/proc/self/status") as f:
        host_eff = int(next(ln for ln in f if ln.startswith("CapEff:")).split()[1], 16)
    assert _cap_eff(c, cid) == host_eff
    mi = _mountinfo(c, cid)
    assert "rw" in mi["/sys"][0], mi["/sys"]
    assert "/proc/kcore" not in mi  # nothing masked
    assert c.sh(cid, "ls /dev").split().count("kmsg") == 1  # the host's devices
    assert _status_field(c, cid, "Seccomp") == "0"


@pytest.mark.parametrize("profile", ["RuntimeDefault", "Unconfined"])
def test_seccomp(cri_env, handler, profile):
    c, pb = cri_env, cri_env.pb
    sp = pb.SecurityProfile(profile_type=getattr(pb.SecurityProfile.ProfileType, profile))
    cid = c.run_pod(handler).start("sc", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(seccomp=sp))
    want = "2" if profile == "RuntimeDefault" else "0"
    assert _status_field(c, cid, "Seccomp") == want
    assert c.sh(cid, "grep '^Seccomp:' /proc/self/status").split()[1] == want  # exec too
    # a user namespace needs no capability, but containerd's default profile allows unshare only
    # with CAP_SYS_ADMIN
    rc, _, err = c.exec_sync(cid, ["unshare", "-U", "true"])
    if profile == "RuntimeDefault":
        assert rc != 0 and "Operation not permitted" in err, err
    else:
        assert rc == 0, err


def test_no_new_privs(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler)
    on = pod.start("nnp", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(no_new_privs=True))
    off = pod.start("pnp", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(no_new_privs=False))
    assert _status_field(c, on, "NoNewPrivs") == "1"
    assert c.sh(on, "grep NoNewPrivs /proc/self/status").split()[1] == "1"
    assert _status_field(c, off, "NoNewPrivs") == "0"


def test_masked_and_readonly_paths(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    cid = c.run_pod(handler).start("masked", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(
        masked_paths=MASKED, readonly_paths=READONLY))
    # (the kubelet's list names paths this kernel may not have: those are skipped)
    assert c.sh(cid, "wc -c < /proc/keys").strip() == "0"  # /dev/null over a file
    assert c.sh(cid, "ls -A /proc/acpi /sys/firmware").split() == ["/proc/acpi:", "/sys/firmware:"]  # dirs
    assert "ro" in _mountinfo(c, cid)["/proc/acpi"][0]
    mi = _mountinfo(c, cid)
    assert "ro" in mi["/proc/sys"][0], mi["/proc/sys"]
    rc, _, err = c.exec_sync(cid, ["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"])
    assert rc != 0
    assert "ro" not in mi["/proc"][0]


# ------------------------------------------------------------------ volumes and namespaces
@pytest.mark.parametrize("propagation", ["PROPAGATION_PRIVATE", "PROPAGATION_HOST_TO_CONTAINER",
                                         "PROPAGATION_BIDIRECTIONAL"])
def test_volume_propagation(cri_env, handler, propagation):
    c, pb = cri_env, cri_env.pb
    vol = os.path.join(c.base, f"vol-{os.urandom(4).hex()}")
    os.makedirs(os.path.join(vol, "fromhost"))
    os.makedirs(os.path.join(vol, "fromctr"))
    with open(os.path.join(vol, "file"), "w") as f:
        f.write("on the volume\n")
    # containerd wants the source on a shared mount for HostToContainer/Bidirectional: its own
    # peer group, so that nothing of this propagates anywhere but to our containers
    for args in (["--bind", vol, vol], ["--make-private", vol], ["--make-shared", vol]):
        subprocess.run(["mount", *args], check=True, timeout=30)
    try:
        mount = pb.Mount(container_path="/vol", host_path=vol,
                         propagation=getattr(pb.MountPropagation, propagation))
        cid = c.run_pod(handler).start("vol", ["sleep", "inf"], mounts=[mount],
                                       sc=pb.LinuxContainerSecurityContext(
                                           capabilities=pb.Capability(add_capabilities=["SYS_ADMIN"])))
        assert c.sh(cid, "cat /vol/file") == "on the volume\n"
        c.sh(cid, "echo from the container > /vol/written")
        with open(os.path.join(vol, "written")) as f:
            assert f.read() == "from the container\n"
        # a mount made on the host after the start
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", os.path.join(vol, "fromhost")],
                       check=True, timeout=30)
        with open(os.path.join(vol, "fromhost", "f"), "w") as f:
            f.write("host mount\n")
        seen = c.exec_sync(cid, ["cat", "/vol/fromhost/f"])
        # a mount made in the container
        c.sh(cid, "mount -t tmpfs -o size=1m tmpfs /vol/fromctr && echo ctr mount > /vol/fromctr/f")
        back = os.path.exists(os.path.join(vol, "fromctr", "f"))
        if propagation == "PROPAGATION_PRIVATE":
            assert seen[0] != 0 and not back, (seen, back)
        elif propagation == "PROPAGATION_HOST_TO_CONTAINER":
            assert seen == (0, "host mount\n", "") and not back, (seen, back)
        else:
            assert seen == (0, "host mount\n", "") and back, (seen, back)
    finally:
        c.remove_all()
        umount_under(vol)


def test_host_namespaces(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler, host_net=True, host_pid=True, host_ipc=True)
    cid = pod.start("host", ["sleep", "inf"])
    inside = _ns(c, cid, "net", "pid", "ipc", "mnt")
    host = [os.readlink(f"/proc/self/ns/{n}") for n in ("net", "pid", "ipc", "mnt")]
    assert inside[:3] == host[:3], (inside, host)
    assert inside[3] != host[3]  # its own mount namespace all the same
    assert "eth0" in c.sh(cid, "ls /sys/class/net").split()  # the host's interfaces
    # the host's processes are visible: containerd, for one
    assert c.sh(cid, f"cat /proc/{c.proc.pid}/comm") == "containerd\n"
    st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id), timeout=60).status
    assert st.linux.namespaces.options.network == pb.NamespaceMode.NODE


def test_pod_shared_pid_namespace(cri_env, handler):
    c, pb = cri_env, cri_env.pb
    pod = c.run_pod(handler, pid_mode=pb.NamespaceMode.POD)
    a = pod.start("a", ["sleep", "inf"])
    b = pod.start("b", ["sh", "-c", "sleep inf; true"])
    pa, pb_ = (_ns(c, x, "pid") for x in (a, b))
    assert pa == pb_
    # pid 1 is the pause process, and each container sees the other's
    assert c.sh(a, "cat /proc/1/cmdline | tr '\\0' ' '").strip() == "sleep inf"
    assert "sh -c sleep inf; true" in c.sh(a, "ps -o args")
