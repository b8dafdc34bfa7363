"""Fixtures and helpers for the engine end-to-end tests (imported by the test modules: a conftest.py
here would shadow tests/conftest.py, which other test files import as `conftest`).

A private podman store and a private containerd.

Both engines drive each scenario once with pyrunc and once with runc (the `runtime` fixture), so a
failure that also happens with runc shows up as the machine's, not pyrunc's. Everything they make
lives under one temp dir and is removed at the end of the session: containers, images, storage
mounts, the containerd daemon (stopped by pid), and the cgroups made under the session's parent.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:  # the benchmarks import this module outside pytest
    sys.path.insert(0, TESTS)
import conftest  # noqa: E402  tests/conftest.py: the helpers every test file shares

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNTIMES = {"pyrunc": PYRUNC, "runc": RUNC}
SESSION = uuid.uuid4().hex[:8]
# minimal environment, as a service manager would give the engines
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


def remove_empty_dirs(top):
    """Remove TOP and the directories below it that are empty, and nothing else."""
    for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
        try:
            os.rmdir(d)
        except OSError:
            pass


def sh(cmd, timeout=60, check=True, env=None, input=None):
    """Run CMD with output captured through files (a detached container may inherit the fds)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(cmd, stdout=out, stderr=err, text=True, timeout=timeout, env=env,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}:\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def wait_for(pred, timeout=20.0, what="condition"):
    """conftest.wait_for, polling every 50 ms (the engines' state changes take that long)."""
    return conftest.wait_for(pred, timeout, what, interval=0.05)


def mounts_under(path):
    """Mount points at or below PATH, deepest first."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(set(found), key=len, reverse=True)


def umount_under(path):
    for mp in mounts_under(path):
        subprocess.run(["umount", "-l", mp], timeout=20, stderr=subprocess.DEVNULL)


def cgroup_roots():
    """Mount points of every cgroup hierarchy (v1 controllers and the unified one)."""
    roots = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            fstype = parts[parts.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                roots.add(parts[4])
    return sorted(roots)


def remove_cgroup_tree(rel):
    """rmdir REL (relative to each hierarchy root) and everything below it, leaves first; only used
    for parents the tests created (named after the session)."""
    deadline = time.monotonic() + 10
    for root in cgroup_roots():
        conftest.rmdir_tree(os.path.join(root, rel.strip("/")), deadline)


def have(binary):
    return shutil.which(binary) is not None


@pytest.fixture(params=sorted(RUNTIMES), ids=sorted(RUNTIMES))
def runtime(request):
    """(name, binary path) of the OCI runtime under test."""
    return request.param, RUNTIMES[request.param]


# ------------------------------------------------------------------ podman
class Podman:
    def __init__(self, base, runtimes=None):
        self.base = base
        self.cgroup_parent = f"/pyrunc-e2e-podman-{SESSION}"
        extra = "".join(f"{n} = [{json.dumps(p)}]\n" for n, p in (runtimes or {}).items())
        conf = os.path.join(base, "containers.conf")
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        import resource
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 20000)
        # podman's root defaults (nofile 1048576, nproc 4194304) need CAP_SYS_RESOURCE, which root
        # lacks on some VMs: ask for what the current hard limits allow (podman caps its own nproc
        # at pid_max, so more fails with runc too)
        with open(conf, "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
netns = "none"
cgroupns = "private"
log_driver = "k8s-file"
[network]
network_backend = "cni"
network_config_dir = "{base}/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{base}/tmp"
volume_path = "{base}/volumes"
runtime_supports_json = ["crun", "runc", "pyrunc"]
[engine.runtimes]
pyrunc = ["{PYRUNC}"]
runc = ["{RUNC}"]
{extra}""")
        storage = os.path.join(base, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n')
        self.globals = ["--root", f"{base}/root", "--runroot", f"{base}/runroot"]
        self.env = dict(ENV, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage,
                        XDG_RUNTIME_DIR=os.path.join(base, "xdg"))
        os.makedirs(os.path.join(base, "xdg"), mode=0o700)

    def delete_runtime_state(self):
        """podman passes no --root as root, so its runtimes keep their state in their default
        roots (/run/pyrunc, /run/runc): a container podman lost track of (a create cut short)
        would stay there for good. Not even --runtime-flag root=... helps: podman's cleanup
        process (conmon's exit command) does not get it. So: delete --force every container of
        those roots whose bundle is in this session's store, by its own runtime; others' are
        left alone. Returns the ids found."""
        found = []
        for rt, root in ((PYRUNC, "/run/pyrunc"), (RUNC, "/run/runc")):
            try:
                ids = [n for n in os.listdir(root) if not n.startswith(".")]
            except OSError:
                continue
            for cid in ids:
                p = subprocess.run([rt, "--root", root, "state", cid], capture_output=True, text=True,
                                   timeout=60, env=ENV)
                try:
                    bundle = json.loads(p.stdout).get("bundle") or ""
                except ValueError:
                    continue
                if bundle.startswith(self.base + os.sep):
                    found.append(cid)
                    subprocess.run([rt, "--root", root, "delete", "--force", cid], capture_output=True,
                                   timeout=60, env=ENV)
        return found

    def __call__(self, *args, runtime=None, timeout=60, check=True, input=None, fd3=None):
        """Run podman; FD3: a file podman gets open as its fd 3 (for --preserve-fds)."""
        cmd = ["podman", *self.globals]
        if runtime:
            cmd += ["--runtime", runtime]
        if fd3:
            cmd = ["sh", "-c", 'f=$1; shift; exec "$@" 3<"$f"', "sh", fd3, *cmd]
        return sh(cmd + list(args), timeout=timeout, check=check, env=self.env, input=input)


@contextlib.contextmanager
def podman_session(runtimes=None):
    """A private podman store with the busybox image imported; everything removed afterwards.
    RUNTIMES: extra {name: path} for containers.conf's [engine.runtimes] (the benchmarks use it)."""
    base = tempfile.mkdtemp(prefix="pyrunc-e2e-podman-")
    pm = Podman(base, runtimes)
    # `podman import` keeps a blob-info cache in /var/lib/containers/cache whatever the storage
    # root (podman 4.3): remove it afterwards unless it was there before
    var_lib_existed = os.path.exists("/var/lib/containers")
    # pyrunc keeps compiled seccomp filters in its root (runtime/bpfcache.py): podman's default
    # profile puts one in /run/pyrunc, removed afterwards unless it was there before
    cache = "/run/pyrunc/.seccomp:cache"
    cache_existed = os.path.exists(cache)
    try:
        tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE)
        p = subprocess.run(["podman", *pm.globals, "import", "-", "localhost/busybox"],
                           stdin=tar.stdout, env=pm.env, timeout=120,
                           capture_output=True, text=True)
        tar.stdout.close()
        tar.wait(timeout=60)
        assert p.returncode == 0, p.stderr
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False, timeout=120)
        pm("rmi", "--all", "--force", check=False, timeout=120)
        pm.delete_runtime_state()
        if not cache_existed:
            shutil.rmtree(cache, ignore_errors=True)
        umount_under(base)
        remove_cgroup_tree(pm.cgroup_parent)
        shutil.rmtree(base, ignore_errors=True)
        if not var_lib_existed:
            try:
                os.unlink("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
            except OSError:
                pass
            remove_empty_dirs("/var/lib/containers")


@pytest.fixture(scope="session")
def podman():
    if not have("podman") or not have("conmon"):
        pytest.skip("podman/conmon not installed (make deps)")
    with podman_session() as pm:
        yield pm


# ------------------------------------------------------------------ containerd
class Containerd:
    def __init__(self, base):
        self.base = base
        self.sock = os.path.join(base, "containerd.sock")
        self.ns = f"pyrunc-e2e-{SESSION}"  # also the cgroup parent ctr gives its containers
        self.proc = None

    def start(self):
        cfg = os.path.join(self.base, "config.toml")
        with open(cfg, "w") as f:
            f.write(f"""version = 2
root = "{self.base}/root"
state = "{self.base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
""")
        self.log = open(os.path.join(self.base, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", cfg], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=ENV, start_new_session=True)
        wait_for(lambda: self("version", check=False).returncode == 0 or self.proc.poll() is not None,
                 what="containerd to serve")
        assert self.proc.poll() is None, open(self.log.name).read()[-2000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()

    def __call__(self, *args, timeout=60, check=True, input=None):
        return sh(["ctr", "--address", self.sock, "--namespace", self.ns, *args], timeout=timeout,
                  check=check, env=ENV, input=input)


@pytest.fixture(scope="session")
def containerd():
    if not have("containerd") or not have("ctr") or not have("containerd-shim-runc-v2"):
        pytest.skip("containerd not installed (make deps)")
    base = tempfile.mkdtemp(prefix="pyrunc-e2e-ctd-")
    ctd = Containerd(base)
    shims_before = _shim_pids()
    # the shim keeps its sockets in containerd's default state dir whatever the config says
    run_ctd_existed = os.path.exists("/run/containerd")
    try:
        ctd.start()
        import ociarchive
        archive = ociarchive.build(ROOTFS, os.path.join(base, "busybox.tar"))
        ctd("images", "import", "--base-name", "localhost/busybox", archive, timeout=120)
        yield ctd
    finally:
        try:
            if ctd.proc and ctd.proc.poll() is None:
                for cid in ctd("containers", "ls", "-q", check=False).stdout.split():
                    ctd("tasks", "kill", "-s", "SIGKILL", cid, check=False)
                    ctd("tasks", "delete", "--force", cid, check=False)
                    ctd("containers", "delete", cid, check=False)
                ctd("images", "rm", "localhost/busybox:latest", check=False)
        finally:
            ctd.stop()
            for pid in _shim_pids() - shims_before:  # shims of our containerd left behind
                if base in _cmdline(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            umount_under(base)
            remove_cgroup_tree(ctd.ns)
            shutil.rmtree(base, ignore_errors=True)
            if not run_ctd_existed:
                # only what is empty: another containerd or dockerd (a concurrent test run) may
                # keep live shim sockets and runc state there
                remove_empty_dirs("/run/containerd")


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _shim_pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and "containerd-shim" in _cmdline(int(p))}
