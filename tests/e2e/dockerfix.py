"""A private dockerd (Debian's docker.io 20.10) for the Docker end-to-end tests.

dockerd runs with its own --data-root, --exec-root, socket, pidfile and trust key, all under one
temp dir, and starts its own managed containerd (socket and state inside --exec-root). pyrunc is
registered from a daemon.json built from the JSON block of docs/engines.md's "## Docker" section,
so the documented configuration is what gets tested; runc is Docker's built-in runtime (the name
`runc` is reserved). No default bridge (--bridge=none): the bridge scenario makes a user network
on a uniquely named Linux bridge and private subnet. No iptables or sysctl changes on the host.
Containers go under a cgroup parent named after the session, removed at the end with everything
else (containers, volumes, networks, overlay and netns mounts, the daemon, stray shims).
"""
import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from e2efix import ENV, PYRUNC, REPO, ROOTFS, SESSION, have, remove_cgroup_tree, sh, umount_under, wait_for

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
DOC = os.path.join(REPO, "docs", "engines.md")
DOC_PYRUNC = "/usr/local/bin/pyrunc"  # the install path the doc uses
IMG = "localhost/busybox:latest"


def documented_daemon_json():
    """The daemon.json of docs/engines.md's Docker section, as a dict."""
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"^## Docker\b.*?^```json\n(.*?)^```", text, re.S | re.M)
    assert m, f"{DOC}: no ```json block in the '## Docker' section"
    return json.loads(m.group(1))


def _free_subnet():
    """A /24 in 10.0.0.0/8 that overlaps no route on this host (other tests make bridges too)."""
    routes = []
    for line in sh(["ip", "-4", "route", "show", "table", "all"], check=False).stdout.splitlines():
        words = line.split()
        dst = words[1] if words and words[0] in ("local", "broadcast", "unicast") and len(words) > 1 else \
            (words[0] if words else "")
        try:
            routes.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            pass  # "default" and the like
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(1, 254)}.0/24")
        if not any(net.overlaps(r) for r in routes):
            return str(net)
    pytest.skip("no free private /24 for the bridge network")


class Docker:
    def __init__(self, base, runtimes=None):
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.pidfile = os.path.join(base, "docker.pid")
        self.cgroup_parent = f"/pyrunc-e2e-docker-{SESSION}"
        self.bridge = f"pyrdk{SESSION[:6]}"  # IFNAMSIZ: 15 bytes at most
        self.subnet = _free_subnet()
        self.proc = None
        self.log = None
        self.env = dict(ENV, DOCKER_CONFIG=os.path.join(base, "cli"))
        self.config = os.path.join(base, "daemon.json")
        cfg = documented_daemon_json()
        for rt in cfg.get("runtimes", {}).values():
            rt["path"] = rt["path"].replace(DOC_PYRUNC, PYRUNC)
        for name, path in (runtimes or {}).items():  # extra runtimes (the benchmarks' runc pair, wrappers)
            cfg.setdefault("runtimes", {})[name] = {"path": path}
        # not the doc's: the daemon's identity key goes to our dir, not /etc/docker/key.json
        cfg["deprecated-key-path"] = os.path.join(base, "key.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)

    def start(self, extra=()):
        b = self.base
        cmd = ["dockerd", "--config-file", self.config, "--data-root", f"{b}/data", "--exec-root", f"{b}/exec",
               "--pidfile", self.pidfile, "-H", f"unix://{self.sock}",
               "--cgroup-parent", self.cgroup_parent, "--bridge", "none", "--iptables=false",
               "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false", "--shutdown-timeout", "5",
               *extra]
        self.log = open(os.path.join(b, "dockerd.log"), "a")
        # close_fds (Popen's default) leaves dockerd only 0-2: no fd of pytest's reaches the daemon,
        # containerd, the shims or the containers
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=self.env, start_new_session=True, close_fds=True)
        wait_for(lambda: self.proc.poll() is not None or self("version", check=False, timeout=10).returncode == 0,
                 timeout=60, what="dockerd to serve")
        if self.proc.poll() is not None:
            raise RuntimeError("dockerd exited: " + self.tail())

    def tail(self, n=3000):
        try:
            with open(os.path.join(self.base, "dockerd.log")) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to our dockerd (by pid); it stops the containers and its containerd."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        if self.log:
            self.log.close()
            self.log = None
        # the managed containerd is a child of dockerd's: it goes with it, or we end it by its pidfile
        pidfile = os.path.join(self.base, "exec", "containerd", "containerd.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and self.base in _cmdline(pid):
            end = time.monotonic() + 20
            while not _gone(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if not _gone(pid):
                _kill(pid)

    def restart(self, extra=()):
        self.stop()
        self.start(extra)

    def __call__(self, *args, timeout=60, check=True, input=None):
        return sh([DOCKER, "-H", f"unix://{self.sock}", *args], timeout=timeout, check=check, env=self.env,
                  input=input)

    def inspect(self, name, fmt):
        return self("inspect", "--format", fmt, name).stdout.strip()

    def status(self, name):
        p = self("inspect", "--format", "{{.State.Status}}", name, check=False)
        return p.stdout.strip() if p.returncode == 0 else None


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _our_pids(base):
    """Processes whose command line names our temp dir (the shims pass our containerd's address)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and base in _cmdline(int(p))]


class DockerUnavailable(Exception):
    pass


@contextlib.contextmanager
def docker_session(runtimes=None):
    """A private dockerd with the busybox image imported; everything removed afterwards. RUNTIMES:
    extra {name: path} runtimes for daemon.json (the benchmarks use it). DockerUnavailable if the
    daemon does not start."""
    base = tempfile.mkdtemp(prefix="pyrunc-e2e-docker-")
    # dockerd always makes /run/docker/plugins; its shims put their sockets in /run/containerd/s
    made = [d for d in ("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd")
            if not os.path.exists(d)]
    dk = Docker(base, runtimes)
    try:
        try:
            dk.start()
        except (RuntimeError, AssertionError) as e:
            raise DockerUnavailable(f"dockerd does not start on this machine: {e}") from e
        tar = subprocess.Popen(["tar", "-C", ROOTFS, "-c", "."], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        p = subprocess.run([DOCKER, "-H", f"unix://{dk.sock}", "import", "-c", 'CMD ["sh"]', "-", IMG],
                           stdin=tar.stdout, env=dk.env, timeout=120, capture_output=True, text=True)
        tar.stdout.close()
        tar.wait(timeout=60)
        assert p.returncode == 0, p.stderr
        yield dk
    finally:
        try:
            if dk.proc and dk.proc.poll() is None:
                ids = dk("ps", "-aq", check=False).stdout.split()
                if ids:
                    dk("rm", "-f", "-v", *ids, check=False, timeout=120)
                dk("network", "prune", "-f", check=False)
                dk("volume", "prune", "-f", check=False)
        finally:
            dk.stop()
            for pid in _our_pids(base):  # shims of our containerd left behind
                _kill(pid)
            umount_under(base)
            remove_cgroup_tree(dk.cgroup_parent)
            if os.path.exists(f"/sys/class/net/{dk.bridge}"):
                subprocess.run(["ip", "link", "del", dk.bridge], timeout=20, stderr=subprocess.DEVNULL)
            shutil.rmtree(base, ignore_errors=True)
            for d in made:  # only if empty: a concurrent engine may use them now
                try:
                    os.rmdir(d)
                except OSError:
                    pass


@pytest.fixture(scope="session")
def docker():
    if not have("dockerd") or not DOCKER or not have("containerd") or not have("containerd-shim-runc-v2"):
        pytest.skip("docker.io (dockerd, docker) or containerd not installed: apt-get install docker.io")
    if not os.path.exists(os.path.join(ROOTFS, "bin", "busybox")):
        pytest.skip("busybox rootfs not built (make bundle)")
    try:
        with docker_session() as dk:
            yield dk
    except DockerUnavailable as e:
        pytest.skip(str(e))
