"""Engine options the other e2e files do not drive, each run with pyrunc and with runc.

Swept by hand first (podman, Docker, ctr and CRI options and verbs, both runtimes, outputs
compared); the scenarios here are the differences found, fixed in pyrunc, and a few options that
behave the same and are cheap to keep that way:

- Docker `--kernel-memory`: pyrunc's cgroup warning was printed on the runtime's stderr, which
  under containerd's shim is the container's own stderr: it landed in `docker logs`. Warnings go
  to the log (--log), as runc's.
- rootless podman (podman run by an ordinary user, on this cgroup v1 host): podman runs the
  runtime as root of its own user namespace, with no user namespace in config.json and no
  --root. pyrunc used /run/pyrunc (runc: $XDG_RUNTIME_DIR/runc), then real cgroups (runc: its
  rootless cgroup manager), then mknod for /dev/null (runc: a bind of the host's node).
- where runc 1.1.5 does less than config.json asks (podman's --personality, an idmapped
  volume), pyrunc's behaviour is asserted and runc's param is a strict xfail.

Fixtures: the podman and Docker sessions of e2efix/dockerfix, the CRI session of crifix, and a
module-scoped throwaway user for rootless podman (useradd, its own subuid/subgid range, removed
afterwards with every process it left).
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from e2efix import PYRUNC, ROOTFS, RUNC, podman, runtime, sh, wait_for  # noqa: F401 (fixtures)
from conftest import edit_lines, end_user_procs, untraversable as _blocked  # tests/conftest.py
from dockerfix import docker  # noqa: F401 (fixture)
from crifix import CGROUP_PARENT, Pod, cri, cri_env  # noqa: F401 (fixtures)

IMG = "localhost/busybox"
DIMG = "localhost/busybox:latest"


def _name(runtime, tag=""):
    return f"c2-{runtime[0]}-{tag}{uuid.uuid4().hex[:8]}"


def _runc_lacks(request, runtime, reason):
    if runtime[0] == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def _prun(pm, runtime, *args, **kw):
    return pm("run", "--rm", "--cgroup-parent", pm.cgroup_parent, "--network", "none", *args,
              runtime=runtime[1], **kw)


def _drun(dk, runtime, *args, **kw):
    return dk("run", "--runtime", runtime[0], "--network", "none", *args, **kw)


# ------------------------------------------------------------------ Docker
def test_docker_kernel_memory_warning_not_in_container_output(docker, runtime):
    # the runtime's stderr at create is the container's stderr fifo (containerd's shim): a
    # warning about the ignored kernel memory limit must go to the shim's --log, not there
    dk, name = docker, _name(runtime)
    try:
        _drun(dk, runtime, "-d", "--name", name, "--memory", "64m", "--kernel-memory", "16m", DIMG,
              "sh", "-c", "echo out; cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert dk("wait", name, timeout=60).stdout.strip() == "0"
        p = dk("logs", name)
        assert (p.stdout, p.stderr) == (f"out\n{64 << 20}\n", ""), (p.stdout, p.stderr)
    finally:
        dk("rm", "-f", name, check=False, timeout=120)


def test_docker_cpu_options_and_update(docker, runtime):
    dk, name = docker, _name(runtime)
    read = ("cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us cpu/cpu.shares cpuset/cpuset.cpus "
            "memory/memory.soft_limit_in_bytes memory/memory.oom_control | head -5")
    try:
        _drun(dk, runtime, "-d", "--name", name, "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
              "--memory", "64m", "--memory-reservation", "32m", "--oom-kill-disable", DIMG, "sleep", "1000")
        out = dk("exec", name, "sh", "-c", read).stdout.split("\n")
        assert out[:5] == ["50000", "512", "0", str(32 << 20), "oom_kill_disable 1"], out
        dk("update", "--cpus", "0.25", "--cpu-shares", "300", "--memory-reservation", "16m", name)
        out = dk("exec", name, "sh", "-c", read).stdout.split("\n")
        assert out[:4] == ["25000", "300", "0", str(16 << 20)], out
    finally:
        dk("rm", "-f", name, check=False, timeout=120)


# ------------------------------------------------------------------ podman (root)
def test_podman_read_only_defaults(podman, runtime):
    # --read-only: the rootfs read-only, podman's tmpfs mounts on /tmp, /var/tmp, /run writable
    p = _prun(podman, runtime, "--read-only", IMG, "sh", "-c",
              "touch /x 2>&1; for d in /tmp /var/tmp /run; do touch $d/f && echo $d-ok; done")
    assert p.stdout.split("\n") == ["touch: /x: Read-only file system", "/tmp-ok", "/var/tmp-ok", "/run-ok", ""], p.stdout
    p = _prun(podman, runtime, "--read-only", "--read-only-tmpfs=false", IMG, "sh", "-c", "touch /tmp/x 2>&1; true")
    assert "Read-only file system" in p.stdout, p.stdout


def test_podman_tmpfs_options(podman, runtime):
    p = _prun(podman, runtime, "--tmpfs", "/x:mode=1777,size=1m",
              "--mount", "type=tmpfs,destination=/y,tmpfs-mode=0700,tmpfs-size=2m", IMG, "sh", "-c",
              "stat -c '%a' /x /y; grep -E ' /(x|y) ' /proc/mounts")
    out = p.stdout.splitlines()
    assert out[:2] == ["1777", "700"], p.stdout
    mounts = sorted(out[2:])  # podman's mount order varies from run to run
    assert mounts[0].startswith("tmpfs /x ") and "size=1024k" in mounts[0], p.stdout
    assert mounts[1].startswith("tmpfs /y ") and "size=2048k" in mounts[1], p.stdout


@pytest.fixture
def open_dir():
    """A host directory others may traverse (a user-namespaced container's root is not the host's
    root: pytest's tmp_path is under a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="pyrunc-e2e-compat2-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_podman_uidmap(podman, runtime, open_dir):
    with open(os.path.join(open_dir, "f"), "w") as f:
        f.write("host file\n")
    p = _prun(podman, runtime, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
              "--tmpfs", "/t:mode=1777", "-v", f"{open_dir}:/v", "--pids-limit", "30", IMG, "sh", "-c",
              "cat /proc/self/uid_map; id -u; stat -c '%a %u' /t; stat -c %u /v/f; "
              "cat /sys/fs/cgroup/pids/pids.max; ls -l /dev/null | cut -c1-10")
    out = [" ".join(line.split()) for line in p.stdout.splitlines()]
    assert out == ["0 100000 65536", "0", "1777 0", "65534", "30", "crw-rw-rw-"], p.stdout


def test_podman_security_opts(podman, runtime):
    p = _prun(podman, runtime, "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
              "--security-opt", "mask=/etc/hostname", IMG, "sh", "-c",
              "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; wc -c < /etc/hostname")
    assert p.stdout.split() == ["CapEff:", "0" * 16, "CapBnd:", "0" * 16, "NoNewPrivs:", "1", "0"], p.stdout
    p = _prun(podman, runtime, "--security-opt", "unmask=ALL", "--security-opt", "seccomp=unconfined", IMG,
              "sh", "-c", "grep -c ' /proc/' /proc/mounts; grep ^Seccomp: /proc/self/status")
    assert p.stdout.split() == ["0", "Seccomp:", "0"], p.stdout


def test_podman_limits_sysctls_hostname(podman, runtime):
    # (any --ulimit replaces containers.conf's defaults with podman's own nproc, which root
    # lacks the CAP_SYS_RESOURCE for here: nproc given too)
    p = _prun(podman, runtime, "--ulimit", "nofile=1000:2000", "--ulimit", "core=0:0", "--ulimit", "nproc=500:600",
              "--hostname", "boxy",
              "--sysctl", "kernel.msgmax=65536", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
              "--shm-size", "8m", "--cpus", "0.5", "--memory-swappiness", "10", "--oom-score-adj", "500",
              IMG, "sh", "-c",
              "ulimit -n; ulimit -Hn; ulimit -c; hostname; cat /proc/sys/kernel/msgmax "
              "/proc/sys/net/ipv4/ip_unprivileged_port_start /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
              "/sys/fs/cgroup/memory/memory.swappiness /proc/self/oom_score_adj; grep -o 'size=[0-9a-z]*' /proc/mounts "
              "| grep -c size=8192k")
    assert p.stdout.split() == ["1000", "2000", "0", "boxy", "65536", "80", "50000", "10", "500", "1"], p.stdout


def test_podman_exec_options_kill_restart(podman, runtime):
    pm, name = podman, _name(runtime)
    pm("run", "-d", "--name", name, "--cgroup-parent", pm.cgroup_parent, "--network", "none", IMG, "sh", "-c",
       "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done", runtime=runtime[1])
    try:
        p = pm("exec", "-t", "-u", "1000:1000", "-w", "/tmp", "-e", "A=b", name, "sh", "-c", 'tty; id -u; pwd; echo $A')
        out = p.stdout.replace("\r", "").split("\n")
        assert out[0].startswith("/dev/pts/") and out[1:4] == ["1000", "/tmp", "b"], p.stdout
        p = pm("exec", "--privileged", name, "grep", "^CapEff", "/proc/self/status")
        assert p.stdout.split()[1] != "00000000a80425fb", p.stdout  # more than podman's default set
        wait_for(lambda: "ready" in pm("logs", name).stdout, what="the trap set")
        pm("kill", "-s", "USR1", name)
        wait_for(lambda: "got-usr1" in pm("logs", name).stdout, what="USR1 delivered")
        pid = pm("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        pm("restart", "-t", "0", name, timeout=60)
        assert pm("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "running"
        assert pm("inspect", "-f", "{{.State.Pid}}", name).stdout.strip() != pid
        assert pm("exec", name, "echo", "back").stdout == "back\n"
    finally:
        pm("rm", "--force", "--time", "0", name, check=False)


def _listing(top):
    return sorted(os.path.relpath(os.path.join(d, n), top) for d, ds, fs in os.walk(top) for n in ds + fs)


def test_podman_rootfs_dir(podman, runtime):
    # --rootfs: a directory of the host as the rootfs; with :O podman puts an overlay on top, so
    # neither the container nor podman (/etc/hosts, /run/.containerenv) writes into the directory
    before = _listing(ROOTFS)
    p = podman("run", "--rm", "--cgroup-parent", podman.cgroup_parent, "--network", "none", "--rootfs",
               ROOTFS + ":O", "sh", "-c", "echo from-rootfs; touch /written-in-overlay && echo wrote",
               runtime=runtime[1])
    assert p.stdout == "from-rootfs\nwrote\n", p.stdout + p.stderr
    assert _listing(ROOTFS) == before


def test_podman_personality(podman, runtime, request):
    _runc_lacks(request, runtime, "runc 1.1.5 ignores linux.personality (added in runc 1.2)")
    p = _prun(podman, runtime, "--personality", "LINUX32", IMG, "uname", "-m")
    assert p.stdout.strip() in ("i686", "i386", "armv7l", "armv8l"), p.stdout


def test_podman_idmapped_volume(podman, runtime, open_dir, request):
    # :idmap: the volume's files keep their host owners as seen from the container's user
    # namespace (root's file is root's in there), and what the container writes is root's
    _runc_lacks(request, runtime, "runc 1.1.5 ignores the idmap mount option (idmapped mounts: runc 1.2)")
    with open(os.path.join(open_dir, "f"), "w") as f:
        f.write("x\n")
    p = _prun(podman, runtime, "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
              "-v", f"{open_dir}:/v:idmap", IMG, "sh", "-c", "stat -c %u /v/f; touch /v/new && echo wrote", check=False)
    assert p.stdout.split() == ["0", "wrote"], p.stdout + p.stderr
    assert os.stat(os.path.join(open_dir, "new")).st_uid == 0


def test_podman_cgroupfs_tmpfs_read_only(podman, runtime, request):
    # podman (as Docker and containerd) sends /sys/fs/cgroup as a "cgroup" mount with "ro": on a
    # v1 host that is a tmpfs holding one directory per hierarchy. pyrunc makes the tmpfs itself
    # read-only too, as the option says (as runc did before 1.0); runc 1.1.5 leaves it writable
    with open("/proc/self/mountinfo") as f:
        host = [ln.split(" - ")[1].split()[0] for ln in f if ln.split()[4] == "/sys/fs/cgroup"]
    if host[-1:] != ["tmpfs"]:
        pytest.skip("not a cgroup v1 (or hybrid) host: /sys/fs/cgroup is no tmpfs here")
    _runc_lacks(request, runtime, "runc 1.1.5 mounts the v1 /sys/fs/cgroup tmpfs read-write despite \"ro\"")
    p = _prun(podman, runtime, IMG, "sh", "-c", "grep -E '^[^ ]+ /sys/fs/cgroup ' /proc/mounts; "
              "mkdir /sys/fs/cgroup/x 2>&1; cat /sys/fs/cgroup/memory/memory.limit_in_bytes >/dev/null && echo readable")
    first, made, readable = p.stdout.splitlines()
    assert first.split()[2] == "tmpfs" and first.split()[3].startswith("ro,"), p.stdout
    assert "Read-only file system" in made and readable == "readable", p.stdout


def test_podman_tmpfs_inside_proc_refused(podman, runtime, request):
    # a mount inside /proc (other than the files lxcfs emulates) could swallow the writes the
    # runtime makes there (runtime/rootfs.py): refused with one line naming the field, where
    # runc 1.1.5 checks only bind mounts
    _runc_lacks(request, runtime, "runc 1.1.5 mounts a tmpfs inside /proc")
    p = _prun(podman, runtime, "--mount", "type=tmpfs,destination=/proc/acpi", IMG, "true", check=False)
    assert p.returncode == 126 and "/proc/acpi: mounts inside /proc are refused" in p.stderr, p.stderr


# ------------------------------------------------------------------ CRI
def test_cri_sandbox_sysctls_and_resources(cri_env, runtime):
    """Sysctls of the pod (set in the sandbox's namespaces, seen by its containers), a user by name,
    oom_score_adj and cpuset of the container: the same with both handlers."""
    c, pb = cri_env, cri_env.pb
    handler = runtime[0]  # the handlers are named after the runtimes
    uid = uuid.uuid4().hex
    name = f"c2-{handler}-{uid[:6]}"
    logdir = os.path.join(c.base, "logs", name)
    os.makedirs(logdir)
    ns = pb.NamespaceOption(network=pb.NamespaceMode.POD, pid=pb.NamespaceMode.CONTAINER, ipc=pb.NamespaceMode.POD)
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="pyrunc-e2e", attempt=0),
        hostname=name, log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=f"{CGROUP_PARENT}/pod{uid}",
            sysctls={"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1",
                     "net.ipv4.ping_group_range": "0 2147483647"},
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
    pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler), timeout=120).pod_sandbox_id
    c.ids.add(pod_id)
    pod = Pod(c, handler, pod_id, cfg)
    cid = pod.start("main", ["sleep", "inf"], sc=pb.LinuxContainerSecurityContext(run_as_username="nobody"),
                    resources=pb.LinuxContainerResources(oom_score_adj=500, cpuset_cpus="0", cpuset_mems="0"))
    out = c.sh(cid, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced "
                    "/proc/sys/net/ipv4/ping_group_range /proc/self/oom_score_adj "
                    "/sys/fs/cgroup/cpuset/cpuset.cpus; id -u; hostname")
    assert out.split() == ["80", "1", "0", "2147483647", "500", "0", "65534", name], out


# ------------------------------------------------------------------ rootless podman
SUB_START, SUB_COUNT = 1_700_000, 65536  # the throwaway user's subuid/subgid range
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RootlessPodman:
    def __init__(self, name, uid, gid, home):
        self.name, self.uid, self.gid, self.home = name, uid, gid, home
        self.xdg = os.path.join(home, "xdg")
        conf, storage = os.path.join(home, "containers.conf"), os.path.join(home, "storage.conf")
        with open(conf, "w") as f:
            f.write(f"""[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["crun", "runc", "pyrunc"]
[engine.runtimes]
pyrunc = ["{PYRUNC}"]
runc = ["{RUNC}"]
""")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{home}/storage"\nrunroot = "{self.xdg}/storage"\n')
        self.env = [f"PATH={ENV_PATH}", f"USER={name}", f"HOME={home}", f"XDG_RUNTIME_DIR={self.xdg}",
                    f"CONTAINERS_CONF={conf}", f"CONTAINERS_STORAGE_CONF={storage}"]
        os.makedirs(self.xdg, mode=0o700)
        for d in (home, self.xdg, conf, storage):
            os.chown(d, uid, gid)

    def __call__(self, *args, check=True, timeout=120, input=None):
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "env", "-i", *self.env,
               "podman", *args]
        return sh(cmd, timeout=timeout, check=check, input=input)


class ThrowawayUser:
    def __init__(self, name, uid, gid):
        self.name, self.uid, self.gid = name, uid, gid


@pytest.fixture(scope="module")
def throwaway_user():
    """An ordinary user with its own subuid/subgid range; afterwards every process it left is
    killed (podman's pause process, conmons) and the user and its ranges removed."""
    for b in ("useradd", "userdel", "setpriv", "newuidmap", "newgidmap"):
        if not shutil.which(b):
            pytest.skip(f"{b} not installed")
    name = "pyc2" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-U", name], check=True,
                   timeout=30)
    pw = pwd.getpwnam(name)
    try:
        for f in ("/etc/subuid", "/etc/subgid"):
            edit_lines(f, drop=name, add=f"{name}:{SUB_START}:{SUB_COUNT}")
        yield ThrowawayUser(name, pw.pw_uid, pw.pw_gid)
    finally:
        end_user_procs(pw.pw_uid)
        for f in ("/etc/subuid", "/etc/subgid"):
            edit_lines(f, drop=name)
        subprocess.run(["userdel", "-f", name], timeout=30, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def rootless_podman(throwaway_user):
    for b in ("podman", "conmon"):
        if not shutil.which(b):
            pytest.skip(f"{b} not installed")
    for what, path in (("pyrunc", PYRUNC), ("its interpreter", os.path.realpath(os.path.join(os.path.dirname(PYRUNC),
                                                                                             "python")))):
        if _blocked(path):
            pytest.skip(f"{what} is under {_blocked(path)}, which an ordinary user cannot traverse")
    u = throwaway_user
    home = tempfile.mkdtemp(prefix="pyrunc-e2e-rootless-podman-")
    os.chmod(home, 0o755)
    pm = None
    try:
        pm = RootlessPodman(u.name, u.uid, u.gid, home)
        tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        p = subprocess.run(["setpriv", f"--reuid={pm.uid}", f"--regid={pm.gid}", "--init-groups", "env", "-i",
                            *pm.env, "podman", "import", "-", IMG], stdin=tar.stdout, capture_output=True,
                           text=True, timeout=120)
        tar.stdout.close()
        tar.wait(timeout=60)
        if p.returncode != 0:
            pytest.skip(f"rootless podman cannot import an image here: {p.stderr.strip()[-300:]}")
        p = pm("run", "--rm", "--runtime", "runc", IMG, "true", check=False)
        if p.returncode != 0:
            pytest.skip(f"rootless podman does not run even with runc here: {p.stderr.strip()[-300:]}")
        yield pm
    finally:
        if pm is not None:
            pm("rm", "--all", "--force", "--time", "0", check=False)
            # podman's pause process keeps its user and mount namespaces: end it with the rest
            end_user_procs(u.uid)
        shutil.rmtree(home, ignore_errors=True)


def test_rootless_podman(rootless_podman, runtime):
    """podman as an ordinary user: the runtime runs as root of podman's user namespace, with no
    --root (its state goes to $XDG_RUNTIME_DIR/<runtime>) and no cgroups it may write (v1)."""
    pm, rt = rootless_podman, runtime[0]
    p = pm("run", "--rm", "--runtime", rt, "--read-only", IMG, "sh", "-c",
           "id -u; wc -l < /proc/self/uid_map; ls -l /dev/null | cut -c1-10; touch /x 2>&1; touch /tmp/y && echo tmp-ok")
    assert p.stdout.split("\n") == ["0", "2", "crw-rw-rw-", "touch: /x: Read-only file system", "tmp-ok", ""], \
        p.stdout + p.stderr
    name = _name(runtime)
    pm("run", "-d", "--name", name, "--runtime", rt, IMG, "sleep", "1000")
    try:
        # the state is in the user's XDG_RUNTIME_DIR, not in the host's /run
        assert os.path.isdir(os.path.join(pm.xdg, rt))
        cid = pm("inspect", "-f", "{{.Id}}", name).stdout.strip()
        assert not os.path.exists(os.path.join("/run", rt, cid))
        p = pm("exec", "-t", "-u", "1000", name, "sh", "-c", "tty; id -u")
        out = p.stdout.replace("\r", "").split("\n")
        assert out[0].startswith("/dev/pts/") and out[1] == "1000", p.stdout
        pm("stop", "-t", "1", name, timeout=60)
        assert pm("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.strip() == "exited 137"
    finally:
        pm("rm", "--force", "--time", "0", name, check=False)
    assert not [e for e in os.listdir(os.path.join(pm.xdg, rt)) if not e.startswith(".")]


# ------------------------------------------------------------------ user namespaces: oomScoreAdj
@pytest.fixture(scope="module")
def docker_remapped(throwaway_user):
    """A private dockerd with --userns-remap to the throwaway user (its subuid/subgid range)."""
    from dockerfix import DOCKER, DockerUnavailable, docker_session
    from e2efix import have
    if not have("dockerd") or not DOCKER or not have("containerd") or not have("containerd-shim-runc-v2"):
        pytest.skip("docker.io or containerd not installed")
    u = throwaway_user
    try:
        with docker_session() as dk:
            # the remapped root must traverse the daemon's dirs to its own data root
            os.chmod(dk.base, 0o711)
            os.chmod(os.path.join(dk.base, "data"), 0o711)
            dk.restart(["--userns-remap", f"{u.name}:{u.name}"])
            tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            p = subprocess.run([DOCKER, "-H", f"unix://{dk.sock}", "import", "-", DIMG], stdin=tar.stdout,
                               env=dk.env, timeout=120, capture_output=True, text=True)
            tar.stdout.close()
            tar.wait(timeout=60)
            assert p.returncode == 0, p.stderr
            yield dk
    except DockerUnavailable as e:
        pytest.skip(str(e))


def test_docker_userns_remap(docker_remapped, runtime):
    # Docker sends process.oomScoreAdj (0 by default) for the init and for exec: in the user
    # namespace the process cannot write its own (its /proc/self files are the host root's once it
    # is non-dumpable): the runtime sets it before, as runc does
    dk, name = docker_remapped, _name(runtime)
    p = _drun(dk, runtime, "--rm", DIMG, "sh", "-c", "head -1 /proc/self/uid_map; id -u; cat /proc/self/oom_score_adj")
    assert [" ".join(ln.split()) for ln in p.stdout.splitlines()] == [f"0 {SUB_START} {SUB_COUNT}", "0", "0"], p.stdout
    try:
        _drun(dk, runtime, "-d", "--name", name, "--oom-score-adj", "300", "--pids-limit", "20", DIMG, "sleep", "1000")
        p = dk("exec", "-t", "-u", "1000", name, "sh", "-c", "tty; id -u; cat /proc/1/oom_score_adj /proc/self/oom_score_adj")
        out = p.stdout.replace("\r", "").split("\n")
        assert out[0].startswith("/dev/pts/") and out[1:4] == ["1000", "300", "300"], p.stdout
    finally:
        dk("rm", "-f", name, check=False, timeout=120)


def _userns_bundle(tmp, args, oom):
    import json
    from e2efix import REPO
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = ROOTFS
    cfg["process"].update(terminal=False, args=args, oomScoreAdj=oom)
    linux = cfg["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "user"] + [{"type": "user"}]
    linux["uidMappings"] = linux["gidMappings"] = [{"containerID": 0, "hostID": SUB_START, "size": SUB_COUNT}]
    linux.pop("cgroupsPath", None)
    linux.pop("resources", None)
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    return cfg


def test_oom_score_adj_in_user_namespace(runtime, open_dir):
    """The same without an engine: process.oomScoreAdj of the init and of exec in a container
    with its own user namespace."""
    if _blocked(os.path.join(ROOTFS, "bin")):
        pytest.skip(f"the rootfs is under {_blocked(ROOTFS)}, which the container's root cannot traverse")
    binary, root = runtime[1], os.path.join(open_dir, "state")
    bundle = os.path.join(open_dir, "bundle")
    cfg = _userns_bundle(bundle, ["sh", "-c", "cat /proc/self/oom_score_adj; id -u"], 300)
    p = sh([binary, "--root", root, "run", "--bundle", bundle, f"c2o-{uuid.uuid4().hex[:8]}"], timeout=60)
    assert p.stdout.split() == ["300", "0"], p.stdout + p.stderr
    cid = f"c2o-{uuid.uuid4().hex[:8]}"
    _userns_bundle(bundle, ["sleep", "1000"], 300)
    # (the container's value again: runc 1.1.5's exec applies the container's, not process.json's)
    proc = dict(cfg["process"], args=["cat", "/proc/self/oom_score_adj"], oomScoreAdj=300)
    pj = os.path.join(open_dir, "process.json")
    import json
    with open(pj, "w") as f:
        json.dump(proc, f)
    # no pipes: the detached init keeps the runtime's stdio
    subprocess.run([binary, "--root", root, "run", "-d", "--bundle", bundle, cid], check=True, timeout=60,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p = sh([binary, "--root", root, "exec", "--process", pj, cid], timeout=60)
        assert p.stdout.split() == ["300"], p.stdout + p.stderr
    finally:
        subprocess.run([binary, "--root", root, "delete", "--force", cid], capture_output=True, timeout=60)
    assert not [e for e in os.listdir(root) if not e.startswith(".")]
