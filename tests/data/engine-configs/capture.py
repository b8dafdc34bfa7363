#!/usr/bin/python3
"""Re-capture the engine config corpus (run as root from the repository root):

    .venv/bin/python tests/data/engine-configs/capture.py [podman] [docker] [ctr]

Each engine runs with a private root (podman --root/--runroot, a private dockerd with its own
--data-root/--exec-root/socket/pidfile, a private containerd), with capture_runtime.py registered
as its OCI runtime: it copies every config.json handed to `create`, then execs runc. Each scenario
is one engine command line; the captured config is written to <engine>/<scenario>.json after
normalising host-specific strings:
  - the private engine root (a temp dir) becomes "@ENGINE_ROOT@" (bind mount sources under it:
    their kind, file or dir, is recorded in <engine>/_captures.json);
  - namespace paths /proc/<pid>/ns/<type> become /proc/@PID@/ns/<type> (a live process's pid);
  - the busybox rootfs path becomes "@ROOTFS@".
Nothing else is changed. _captures.json records the engine version and each scenario's command.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
TAG = uuid.uuid4().hex[:6]

# a custom seccomp profile with what profiles in the wild carry: defaultErrnoRet, a syscall
# name this kernel/libseccomp does not know, args (no "flags": runc 1.1.5 refuses every one:
# "seccomp flags are not yet supported by runc")
SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["mkdirat", "no_such_syscall_pyrunc"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ],
}


def sh(cmd, timeout=120, check=False, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or ENV,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode:
        raise RuntimeError(f"{cmd}: {p.returncode}: {p.stderr}")
    return p


def wait_for(pred, timeout=60, what="condition"):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Capture:
    """The capture runtime in BASE, and turning what it caught into corpus files."""

    def __init__(self, engine, base):
        self.engine, self.base = engine, base
        self.out = os.path.join(base, "caught")
        os.makedirs(self.out)
        with open(os.path.join(HERE, "capture_runtime.py")) as f:
            src = f.read().replace("@CAPTURE_OUT@", self.out)
        self.runtime = os.path.join(base, "capture")
        with open(self.runtime, "w") as f:
            f.write(src)
        os.chmod(self.runtime, 0o755)
        self.dest = os.path.join(HERE, engine)
        os.makedirs(self.dest, exist_ok=True)
        self.index = {"engine": None, "scenarios": {}}
        # ctr --rootfs runs on this dir itself: runc makes mount points in it, so a copy
        self.rootfs = os.path.join(base, "rootfs")
        subprocess.run(["cp", "-a", ROOTFS, self.rootfs], check=True)
        self.vol = os.path.join(base, "vol")
        os.makedirs(self.vol)
        self.volfile = os.path.join(base, "volfile")
        open(self.volfile, "w").close()
        self.seccomp = os.path.join(base, "seccomp.json")
        with open(self.seccomp, "w") as f:
            json.dump(SECCOMP, f)

    def _norm(self, s):
        s = s.replace(self.rootfs, "@ROOTFS@").replace(ROOTFS, "@ROOTFS@").replace(self.base, "@ENGINE_ROOT@")
        return re.sub(r"^/proc/[0-9]+/ns/", "/proc/@PID@/ns/", s)

    def _walk(self, x):
        if isinstance(x, str):
            return self._norm(x)
        if isinstance(x, list):
            return [self._walk(i) for i in x]
        if isinstance(x, dict):
            return {self._norm(k): self._walk(v) for k, v in x.items()}
        return x

    def take(self, scenario, cmd, before, rc, note=None):
        new = sorted(set(os.listdir(self.out)) - before - {"errors.log"})
        if not new:
            print(f"  {self.engine}/{scenario}: NOT captured (exit {rc.returncode}: {rc.stderr.strip()[-300:]})")
            return
        with open(os.path.join(self.out, new[-1])) as f:
            caught = json.load(f)
        cfg = self._walk(caught["config"])
        with open(os.path.join(self.dest, scenario + ".json"), "w") as f:
            json.dump(cfg, f, indent=1, sort_keys=True)
            f.write("\n")
        entry = {"command": [self._norm(c) for c in cmd],
                 "sources": {self._norm(k): v for k, v in caught["kinds"].items()
                             if self.base in k or ROOTFS in k}}
        if rc.returncode:
            entry["engine_exit"] = rc.returncode
            entry["engine_error"] = self._norm(rc.stderr.strip().splitlines()[-1] if rc.stderr.strip() else "")
        if note:
            entry["note"] = note
        self.index["scenarios"][scenario] = entry
        print(f"  {self.engine}/{scenario}: captured (engine exit {rc.returncode})")

    def caught(self):
        return set(os.listdir(self.out))

    def save_index(self):
        path = os.path.join(self.dest, "_captures.json")
        with open(path, "w") as f:
            json.dump(self.index, f, indent=1, sort_keys=True)
            f.write("\n")


def common_scenarios(c, vol_flag):
    """(name, flags) shared by podman and docker (same CLI families)."""
    v = c.vol
    s = [
        ("default", []),
        ("device-fuse", ["--device", "/dev/fuse"]),
        ("device-rename", ["--device", "/dev/null:/dev/mynull"]),
        ("device-readonly", ["--device", "/dev/zero:/dev/myzero:r"]),
        ("device-tun", ["--device", "/dev/net/tun"]),
        ("device-cgroup-rule", ["--device-cgroup-rule", "c 10:200 rwm", "--device-cgroup-rule", "b *:* m"]),
        ("privileged", ["--privileged"]),
        ("tmpfs", ["--tmpfs", "/scratch:rw,size=64m,mode=1777,noexec"]),
        ("mount-tmpfs", ["--mount", "type=tmpfs,destination=/t2,tmpfs-size=1048576"]),
        ("mount-bind-file", ["--mount", f"type=bind,source={c.volfile},destination=/etc/myfile,readonly"]),
        ("user", ["--user", "1000:1000"]),
        ("user-groups", ["--user", "1000", "--group-add", "10", "--group-add", "20"]),
        ("workdir-env-hostname", ["-w", "/tmp", "-e", "A=1", "--hostname", "h1"]),
        ("cap-add", ["--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE"]),
        ("cap-drop-all", ["--cap-drop", "ALL", "--cap-add", "CHOWN"]),
        ("seccomp-unconfined", ["--security-opt", "seccomp=unconfined"]),
        ("seccomp-custom", ["--security-opt", f"seccomp={c.seccomp}"]),
        ("no-new-privileges", ["--security-opt", "no-new-privileges"]),
        ("sysctl", ["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shm_rmid_forced=1",
                    "--sysctl", "net.core.somaxconn=1024"]),
        ("memory", ["--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m"]),
        ("memory-swap-unlimited", ["--memory", "64m", "--memory-swap", "-1"]),
        ("memory-swappiness", ["--memory", "64m", "--memory-swappiness", "0"]),
        ("oom-kill-disable", ["--memory", "64m", "--oom-kill-disable"]),
        ("cpu", ["--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0"]),
        ("cpu-quota", ["--cpu-quota", "50000", "--cpu-period", "100000"]),
        ("cpu-rt", ["--cpu-rt-runtime", "0"]),
        ("pids", ["--pids-limit", "100"]),
        ("pids-unlimited", ["--pids-limit", "-1"]),
        ("blkio", ["--blkio-weight", "300", "--device-read-bps", "/dev/vda:1mb",
                   "--device-write-iops", "/dev/vda:100"]),
        ("oom-score-adj-max", ["--oom-score-adj", "1000"]),
        ("oom-score-adj-min", ["--oom-score-adj", "-1000"]),
        ("ulimit", ["--ulimit", "nofile=1024:2048", "--ulimit", "core=0:0"]),
        ("shm-size", ["--shm-size", "128m"]),
        ("network-none", ["--network", "none"]),
        ("network-host", ["--network", "host"]),
        ("pid-host", ["--pid", "host"]),
        ("ipc-host", ["--ipc", "host"]),
        ("uts-host", ["--uts", "host"]),
        ("cgroupns-host", ["--cgroupns", "host"]),
        ("cgroupns-private", ["--cgroupns", "private"]),
        ("read-only", ["--read-only"]),
        ("init", ["--init"]),
        ("annotation", ["--annotation", "org.example.key=value"] if vol_flag == "podman" else
         ["--label", "org.example.key=value"]),
    ]
    for prop in ("private", "rprivate", "slave", "rslave", "shared", "rshared"):
        s.append((f"volume-{prop}", ["-v", f"{v}:/data:{prop}"]))
    s.append(("volume-ro", ["-v", f"{v}:/data:ro"]))
    s.append(("volume-anonymous", ["-v", "/anon"]))
    for prop in ("rprivate", "rslave", "rshared"):
        s.append((f"mount-bind-propagation-{prop}",
                  ["--mount", f"type=bind,source={v},destination=/data,bind-propagation={prop}"]))
    return s


# ------------------------------------------------------------------ podman
def capture_podman():
    base = tempfile.mkdtemp(prefix=f"pyrunc-capture-podman-{TAG}-")
    c = Capture("podman", base)
    conf = os.path.join(base, "containers.conf")
    # podman's root defaults (nproc 4194304) need CAP_SYS_RESOURCE, which root lacks here: ask for
    # what the current hard limits allow (as tests/e2e/e2efix.py does)
    import resource
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    with open(conf, "w") as f:
        f.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc={nproc}:{nproc}"]
netns = "none"
cgroupns = "private"
log_driver = "k8s-file"
init_path = "/usr/bin/docker-init"
[network]
network_backend = "cni"
network_config_dir = "{base}/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{base}/tmp"
volume_path = "{base}/volumes"
runtime_supports_json = ["capture"]
""")
    storage = os.path.join(base, "storage.conf")
    with open(storage, "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')
    env = dict(ENV, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage, XDG_RUNTIME_DIR=os.path.join(base, "xdg"))
    os.makedirs(os.path.join(base, "xdg"), mode=0o700)
    pm = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot"]
    cgp = ["--cgroup-parent", f"/capture-podman-{TAG}"]
    try:
        c.index["engine"] = sh(["podman", "--version"]).stdout.strip() + ", conmon " + \
            sh(["conmon", "--version"]).stdout.splitlines()[0].split()[-1]
        tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE)
        p = subprocess.run(pm + ["import", "-", "localhost/busybox"], stdin=tar.stdout, env=env,
                           capture_output=True, text=True, timeout=120)
        tar.wait()
        assert p.returncode == 0, p.stderr
        img = "localhost/busybox"
        other = f"capture-other-{TAG}"
        sh(pm + ["run", "-d", "--name", other, "--runtime", c.runtime] + cgp + [img, "sleep", "1000"], env=env, check=True)
        holder = subprocess.Popen(["unshare", "--net", "sleep", "1000"], stdin=subprocess.DEVNULL)
        scen = common_scenarios(c, "podman") + [
            ("network-container", ["--network", f"container:{other}"]),
            ("network-ns-path", ["--network", f"ns:/proc/{holder.pid}/ns/net"]),
            ("pid-container", ["--pid", f"container:{other}"]),
            ("ipc-container", ["--ipc", f"container:{other}"]),
            ("uts-container", ["--uts", f"container:{other}"]),
            ("volume-named", ["-v", f"capvol{TAG}:/data"]),
            ("userns-uidmap", ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]),
            ("read-only-no-tmpfs", ["--read-only", "--read-only-tmpfs=false"]),
            ("unmask-all", ["--security-opt", "unmask=ALL"]),
            ("mask-extra", ["--security-opt", "mask=/proc/cpuinfo:/sys/kernel"]),
            ("systempaths-unconfined", ["--security-opt", "systempaths=unconfined"]),
            ("personality", ["--personality", "LINUX32"]),
            ("tty", ["-t"]),
            ("ipc-shareable", ["--ipc", "shareable"]),
            ("pids-and-memory-and-cpu", ["--memory", "1g", "--pids-limit", "4096", "--cpus", "1.5"]),
        ]
        for name, flags in scen:
            before = c.caught()
            cmd = ["podman", "run", "--rm", "--runtime", c.runtime] + cgp + flags + [img, "true"]
            rc = sh(pm + cmd[1:], env=env)
            c.take(name, cmd, before, rc)
        holder.kill()
        holder.wait()
        c.save_index()
    finally:
        sh(pm + ["rm", "--all", "--force", "--time", "0"], env=env, timeout=180)
        sh(pm + ["volume", "rm", "--all", "--force"], env=env)
        sh(pm + ["rmi", "--all", "--force"], env=env)
        umount_under(base)
        remove_cgroups(f"capture-podman-{TAG}")
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ docker
def capture_docker():
    base = tempfile.mkdtemp(prefix=f"pyrunc-capture-docker-{TAG}-")
    c = Capture("docker", base)
    # docker refuses slave/shared volumes whose source is not on a shared mount (the host's / is
    # private here): make the volume dir a shared mount of its own (unmounted at the end)
    sh(["mount", "--bind", c.vol, c.vol], check=True)
    sh(["mount", "--make-shared", c.vol], check=True)
    sock = os.path.join(base, "docker.sock")
    daemon_json = os.path.join(base, "daemon.json")
    with open(daemon_json, "w") as f:
        f.write("{}\n")
    log = open(os.path.join(base, "dockerd.log"), "w")
    d = subprocess.Popen(["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec",
                          "--pidfile", f"{base}/dockerd.pid", "-H", f"unix://{sock}", "--bridge", "none",
                          "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
                          "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", f"/capture-docker-{TAG}",
                          "--add-runtime", f"capture={c.runtime}", "--default-runtime", "capture",
                          "--storage-driver", "overlay2", "--config-file", daemon_json],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=ENV, start_new_session=True)
    dk = ["docker", "-H", f"unix://{sock}"]
    try:
        wait_for(lambda: sh(dk + ["version"]).returncode == 0 or d.poll() is not None, what="dockerd")
        assert d.poll() is None, open(log.name).read()[-3000:]
        c.index["engine"] = "docker " + sh(dk + ["version", "--format", "{{.Server.Version}}"]).stdout.strip()
        tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE)
        p = subprocess.run(dk + ["import", "-", "localhost/busybox"], stdin=tar.stdout, env=ENV,
                           capture_output=True, text=True, timeout=120)
        tar.wait()
        assert p.returncode == 0, p.stderr
        img = "localhost/busybox"
        other = f"capture-other-{TAG}"
        sh(dk + ["run", "-d", "--network", "none", "--ipc", "shareable", "--name", other, img, "sleep", "1000"], check=True)
        scen = common_scenarios(c, "docker")
        scen = [(n, f if any(x in ("--network",) for x in f) else ["--network", "none"] + f) for n, f in scen]
        scen += [
            ("network-container", ["--network", f"container:{other}"]),
            ("pid-container", ["--network", "none", "--pid", f"container:{other}"]),
            ("ipc-container", ["--network", "none", "--ipc", f"container:{other}"]),
            ("ipc-shareable", ["--network", "none", "--ipc", "shareable"]),
            ("ipc-none", ["--network", "none", "--ipc", "none"]),
            ("tty", ["--network", "none", "-t"]),
            ("security-opt-systempaths", ["--network", "none", "--security-opt", "systempaths=unconfined"]),
            ("kernel-memory-tcp", ["--network", "none", "--kernel-memory", "64m"]),
            ("storage-volume-named", ["--network", "none", "-v", f"capvol{TAG}:/data"]),
            ("stop-signal-healthcheck", ["--network", "none", "--stop-signal", "SIGUSR1",
                                         "--health-cmd", "true", "--health-interval", "5s"]),
            ("default-network-hook", []),  # docker's default network (none here: --bridge none)
        ]
        for name, flags in scen:
            before = c.caught()
            cmd = ["docker", "run", "--rm", "--runtime", "capture"] + flags + [img, "true"]
            rc = sh(dk + cmd[1:])
            c.take(name, cmd, before, rc)
        c.save_index()
    finally:
        sh(dk + ["rm", "-f", other] if 'other' in dir() else ["true"], timeout=120)
        ids = sh(dk + ["ps", "-aq"]).stdout.split()
        if ids:
            sh(dk + ["rm", "-f"] + ids, timeout=180)
        sh(dk + ["volume", "prune", "-f"])
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(timeout=60)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        log.close()
        umount_under(base)
        remove_cgroups(f"capture-docker-{TAG}")
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ containerd (ctr)
def capture_ctr():
    base = tempfile.mkdtemp(prefix=f"pyrunc-capture-ctr-{TAG}-")
    c = Capture("ctr", base)
    sock = os.path.join(base, "containerd.sock")
    cfgp = os.path.join(base, "config.toml")
    with open(cfgp, "w") as f:
        f.write(f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
""")
    log = open(os.path.join(base, "containerd.log"), "w")
    d = subprocess.Popen(["containerd", "--config", cfgp], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         env=ENV, start_new_session=True)
    ns = f"capture-{TAG}"
    ctr = ["ctr", "--address", sock, "--namespace", ns]
    try:
        wait_for(lambda: sh(ctr + ["version"]).returncode == 0 or d.poll() is not None, what="containerd")
        assert d.poll() is None
        c.index["engine"] = sh(["ctr", "--version"]).stdout.strip()
        holder = subprocess.Popen(["unshare", "--net", "--ipc", "--uts", "sleep", "1000"], stdin=subprocess.DEVNULL)
        v = c.vol
        scen = [
            ("default", []),
            ("privileged", ["--privileged"]),
            ("device", ["--device", "/dev/fuse"]),
            ("net-host", ["--net-host"]),
            ("read-only", ["--read-only"]),
            ("cwd-env", ["--cwd", "/nonexistent", "--env", "A=1"]),
            ("memory", ["--memory-limit", str(64 << 20)]),
            ("cpus", ["--cpus", "0.5", "--cpu-shares", "512"]),
            ("cpu-quota", ["--cpu-quota", "50000", "--cpu-period", "100000"]),
            ("cap-add-drop", ["--cap-add", "CAP_NET_ADMIN", "--cap-drop", "CAP_CHOWN"]),
            ("seccomp-default", ["--seccomp"]),
            ("seccomp-custom", ["--seccomp", "--seccomp-profile", c.seccomp]),
            ("allow-new-privs", ["--allow-new-privs"]),
            ("with-ns", ["--with-ns", f"network:/proc/{holder.pid}/ns/net",
                         "--with-ns", f"ipc:/proc/{holder.pid}/ns/ipc", "--with-ns", f"uts:/proc/{holder.pid}/ns/uts"]),
            ("userns", ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]),
            ("annotation-label", ["--annotation", "org.example.a=b", "--label", "org.example.l=v"]),
            ("cgroup-path", ["--cgroup", f"/capture-ctr-{TAG}/custom"]),
            ("no-pivot", ["--no-pivot"]),
        ]
        for prop in ("private", "rprivate", "slave", "rslave", "shared", "rshared"):
            scen.append((f"mount-{prop}", ["--mount", f"type=bind,src={v},dst=/data,options=rbind:{prop}"]))
            scen.append((f"rootfs-propagation-{prop}", ["--rootfs-propagation", prop]))
        scen.append(("mount-bind-no-type-options", ["--mount", f"src={v},dst=/data,options=rbind:ro"]))
        scen.append(("mount-tmpfs", ["--mount", "type=tmpfs,src=tmpfs,dst=/scratch,options=nosuid:size=1m"]))
        for i, (name, flags) in enumerate(scen):
            before = c.caught()
            cid = f"cap-{TAG}-{i}"
            cmd = ["ctr", "run", "--rm", "--runc-binary", c.runtime, "--rootfs"] + flags + [c.rootfs, cid, "/bin/true"]
            rc = sh(ctr + cmd[1:])
            c.take(name, cmd, before, rc)
            sh(ctr + ["tasks", "delete", "--force", cid])
            sh(ctr + ["containers", "delete", cid])
        holder.kill()
        holder.wait()
        c.save_index()
    finally:
        for cid in sh(ctr + ["containers", "ls", "-q"]).stdout.split():
            sh(ctr + ["tasks", "kill", "-s", "SIGKILL", cid])
            sh(ctr + ["tasks", "delete", "--force", cid])
            sh(ctr + ["containers", "delete", cid])
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(timeout=30)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        log.close()
        umount_under(base)
        remove_cgroups(ns)
        remove_cgroups(f"capture-ctr-{TAG}")
        shutil.rmtree(base, ignore_errors=True)


def umount_under(path):
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted({m for m in mps if m == path or m.startswith(path + "/")}, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def remove_cgroups(rel):
    for top in glob.glob(f"/sys/fs/cgroup/*/{rel}") + glob.glob(f"/sys/fs/cgroup/unified/{rel}"):
        for dpath, _, _ in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
            try:
                os.rmdir(dpath)
            except OSError:
                pass


if __name__ == "__main__":
    want = sys.argv[1:] or ["podman", "docker", "ctr"]
    # podman import keeps a blob-info cache in /var/lib/containers/cache and containerd's shims
    # their sockets in /run/containerd whatever the private roots say: removed afterwards unless
    # they were there before (as tests/e2e/e2efix.py does)
    existed = {d: os.path.exists(d) for d in ("/var/lib/containers", "/run/containerd")}
    try:
        for e in want:
            print(e)
            {"podman": capture_podman, "docker": capture_docker, "ctr": capture_ctr}[e]()
    finally:
        for d, was in existed.items():
            if not was:
                shutil.rmtree(d, ignore_errors=True)
