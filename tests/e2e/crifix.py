"""The Kubernetes path, without a kubelet: a private containerd 1.6 with its CRI plugin, and a
Python CRI v1 client (stubs generated from tests/e2e/cri/api.proto at session start).

containerd's config is the toml block of docs/engines.md (read from the doc, with only the paths
made private and the test-only settings added), so the doc is what runs. Two runtime handlers:
`runc` and `pyrunc`, both the runc v2 shim with a BinaryName. Pod networking is a CNI bridge with a
unique name and no address on the host side (no route, no forwarding, nothing reachable from the
host), from Debian's containernetworking-plugins. Images (busybox, and the pause image named as
`sandbox_image`) are built offline from the busybox rootfs and imported with `ctr -n k8s.io`.

Everything lives under one temp dir; the session ends by removing every pod through CRI, stopping
containerd by pid, killing any shim of ours left, unmounting what is left under the dir (netns,
rootfs), removing the cgroups under the session's parent and the bridge. After each test a check
fails the test if a pod, container, shim, netns mount, IP allocation, cgroup or runtime state of
that test is left.
"""
import base64
import contextlib
import importlib
import json
import os

# gRPC's fork support restarts its threads in every child forked from this pytest process after
# a CRI test; a later test whose child is then killed by a thread-directed signal (SCMP_ACT_KILL
# in tests/test_seccomp.py) never exits. Off before grpc is first imported: we never fork into grpc.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import pytest

from e2efix import (ENV, PYRUNC, REPO, ROOTFS, RUNC, SESSION, _cmdline, cgroup_roots, have,  # noqa: F401
                    mounts_under, remove_cgroup_tree, sh, umount_under, wait_for)

CRI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cri")
DOC = os.path.join(REPO, "docs", "engines.md")
DOC_MARKER = "<!-- cri-config: tests/e2e/crifix.py reads the next toml block -->"
HANDLERS = ("pyrunc", "runc")
BUSYBOX = "localhost/busybox:latest"
PAUSE = "localhost/pause:latest"
CGROUP_PARENT = f"/pyrunc-e2e-cri-{SESSION}"
K8S_NS = "k8s.io"
# the shim keeps runc's state under /run/containerd/runc/<ns> (no Root option for runc in the doc),
# and its sockets under /run/containerd/s whatever containerd's state dir: removed at the end when
# empty and not there before
SHARED_DIRS = ("/run/containerd/runc/k8s.io", "/run/containerd/runc", "/run/containerd/s", "/run/containerd",
               "/var/lib/cni/results", "/var/lib/cni")


# ------------------------------------------------------------------ config, from the doc
def doc_config():
    """The containerd config.toml block of docs/engines.md, verbatim."""
    with open(DOC) as f:
        text = f.read()
    i = text.find(DOC_MARKER)
    assert i >= 0, f"{DOC} lost its marker {DOC_MARKER!r}"
    m = re.compile(r"```toml\n(.*?)```", re.S).search(text, i)
    assert m, f"no toml block after the marker in {DOC}"
    return m.group(1)


def containerd_config(base, handlers=None):
    """The doc's config with its paths made private (each must appear exactly once, so the doc and
    this substitution cannot drift apart silently), plus the daemon's own addresses and dirs.
    HANDLERS: extra runtime handlers {name: (binary, root or None)} (the benchmarks use it)."""
    cfg = doc_config()
    subs = {
        '"/usr/local/bin/pyrunc"': json.dumps(PYRUNC),
        '"/usr/sbin/runc"': json.dumps(RUNC),
        '"/run/containerd/pyrunc"': json.dumps(os.path.join(base, "pyrunc-root")),
        '"/etc/cni/net.d"': json.dumps(os.path.join(base, "net.d")),
        '"/var/lib/containerd/opt"': json.dumps(os.path.join(base, "opt")),
        '"registry.k8s.io/pause:3.6"': json.dumps(PAUSE),
    }
    for old, new in subs.items():
        assert cfg.count(old) == 1, f"docs/engines.md's containerd config should hold {old} once"
        cfg = cfg.replace(old, new)
    header = '  [plugins."io.containerd.grpc.v1.cri"]\n'
    assert cfg.count(header) == 1, header
    # test-only: pod netns mounts under the private state dir; the streaming server on loopback,
    # a free port
    extra = ('    netns_mounts_under_state_dir = true\n'
             '    stream_server_address = "127.0.0.1"\n    stream_server_port = "0"\n')
    if not has_cap(CAP_SYS_RESOURCE):
        # as docs/engines.md says for such hosts: the pause container's oom_score_adj -998 (and
        # the kubelet's negative scores) can't be set without CAP_SYS_RESOURCE, with runc too
        extra += "    restrict_oom_score_adj = true\n"
    cfg = cfg.replace(header, header + extra)
    sock = os.path.join(base, "containerd.sock")
    top = f'root = "{base}/root"\nstate = "{base}/state"\n'
    tail = f"""
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""
    rts = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
    for name, (binary, root) in (handlers or {}).items():
        tail += (f'{rts}.{name}]\n  runtime_type = "io.containerd.runc.v2"\n{rts}.{name}.options]\n'
                 f'  BinaryName = {json.dumps(binary)}\n  SystemdCgroup = false\n'
                 + (f'  Root = {json.dumps(root)}\n' if root else ""))
    return top + cfg + tail


CAP_SYS_RESOURCE = 24


def has_cap(bit):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


# ------------------------------------------------------------------ stubs
def load_stubs(outdir):
    """Generate the CRI stubs with grpcio-tools and import them: (api_pb2, api_pb2_grpc)."""
    os.makedirs(outdir, exist_ok=True)
    p = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", CRI_DIR, f"--python_out={outdir}",
                        f"--grpc_python_out={outdir}", "api.proto",
                        "github.com/gogo/protobuf/gogoproto/gogo.proto"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    sys.path.insert(0, outdir)
    try:
        return importlib.import_module("api_pb2"), importlib.import_module("api_pb2_grpc")
    finally:
        sys.path.remove(outdir)


# ------------------------------------------------------------------ websocket (streaming server)
class WebSocket:
    """A minimal RFC 6455 client for the CRI streaming server's exec/attach URLs, speaking the
    kubelet's `v4.channel.k8s.io` subprotocol: each binary message starts with a channel byte
    (0 stdin, 1 stdout, 2 stderr, 3 error/status JSON)."""

    def __init__(self, url, timeout=30.0):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + (f"?{u.query}" if u.query else "")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\nOrigin: http://{u.netloc}\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"streaming server closed during the handshake: {self.buf!r}"
            self.buf += chunk
            assert len(self.buf) < 65536
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head.decode(errors="replace")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv(self):
        """(opcode, payload) of the next frame (the server's frames are not masked)."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        data = self._read(n)
        if mask:
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        return b0 & 0x0F, data

    def send(self, payload, opcode=2):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def stdin(self, data):
        self.send(b"\x00" + data)

    def collect(self, until=None, deadline=30.0):
        """Read channels until the server closes (or UNTIL(out) holds): {channel: bytes}."""
        out = {}
        end = time.monotonic() + deadline
        while True:
            self.sock.settimeout(max(0.1, end - time.monotonic()))
            try:
                op, data = self.recv()
            except (EOFError, ConnectionError):
                return out
            except socket.timeout:
                raise AssertionError(f"streaming: no end within {deadline}s; got {out}")
            if op == 8:  # close
                return out
            if op in (1, 2) and data:
                out[data[0]] = out.get(data[0], b"") + data[1:]
                if until and until(out):
                    return out

    def close(self):
        try:
            self.send(struct.pack(">H", 1000), opcode=8)
        except OSError:
            pass
        self.sock.close()


# ------------------------------------------------------------------ the client
class Pod:
    def __init__(self, cri, handler, pid, config):
        self.cri, self.handler, self.id, self.config = cri, handler, pid, config
        self.containers = []

    @property
    def ns_options(self):
        return self.config.linux.security_context.namespace_options

    def start(self, name, args, *, command=None, mounts=(), resources=None, sc=None, stdin=False,
              stdin_once=False, tty=False, envs=None, check=True):
        """Create and start a busybox container in this pod; its id, or (id, error) if not CHECK."""
        pb = self.cri.pb
        sc = sc if sc is not None else pb.LinuxContainerSecurityContext()
        # the kubelet mirrors the pod's namespace modes in each container's security context
        sc.namespace_options.CopyFrom(self.ns_options)
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=BUSYBOX),
            command=list(command or []), args=list(args), log_path=f"{name}.log", mounts=list(mounts),
            stdin=stdin, stdin_once=stdin_once, tty=tty,
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            linux=pb.LinuxContainerConfig(resources=resources, security_context=sc))
        cid = self.cri.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.config), timeout=60).container_id
        self.containers.append(cid)
        self.cri.ids.add(cid)
        try:
            self.cri.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        except self.cri.grpc.RpcError as e:
            if check:
                raise
            return cid, e
        return cid if check else (cid, None)

    def log_path(self, name):
        return os.path.join(self.config.log_directory, f"{name}.log")


class CRI:
    def __init__(self, base, pb, rpc, grpc_mod):
        self.base, self.pb, self.grpc = base, pb, grpc_mod
        self.sock = os.path.join(base, "containerd.sock")
        self.channel = grpc_mod.insecure_channel(f"unix://{self.sock}")
        self.rt = rpc.RuntimeServiceStub(self.channel)
        self.img = rpc.ImageServiceStub(self.channel)
        self.proc = None
        self.n = 0
        self.ids = set()  # every pod and container id made, for the leak checks

    # ---- daemon
    def ctr(self, *args, timeout=120):
        return sh(["ctr", "--address", self.sock, "--namespace", K8S_NS, *args], timeout=timeout, env=ENV)

    def start_daemon(self, handlers=None):
        cfg = os.path.join(self.base, "config.toml")
        with open(cfg, "w") as f:
            f.write(containerd_config(self.base, handlers))
        self.log = open(os.path.join(self.base, "containerd.log"), "w")
        # close_fds (the default) leaves it only stdio: /dev/null and the log
        self.proc = subprocess.Popen(["containerd", "--config", cfg], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=ENV, start_new_session=True, close_fds=True)
        with open(os.path.join(self.base, "containerd.pid"), "w") as f:
            f.write(str(self.proc.pid))

        def serving():
            if self.proc.poll() is not None:
                return True
            try:
                self.rt.Version(self.pb.VersionRequest(), timeout=2)
                return True
            except self.grpc.RpcError:
                return False
        wait_for(serving, timeout=60, what="containerd's CRI service")
        assert self.proc.poll() is None, self.log_tail()
        st = self.rt.Status(self.pb.StatusRequest(verbose=False), timeout=30).status
        ready = {c.type: c.status for c in st.conditions}
        assert ready.get("RuntimeReady"), f"CRI runtime not ready: {st}\n{self.log_tail()}"

    def log_tail(self, n=3000):
        with open(self.log.name, errors="replace") as f:
            return f.read()[-n:]

    def stop_daemon(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc:
            self.log.close()
        self.channel.close()

    def shims(self):
        """pids of the shims serving our containerd (their -address names our socket)."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                cl = _cmdline(int(p))
                if "containerd-shim" in cl and f"-address {self.sock} " in cl + " ":
                    out.append(int(p))
        return out

    # ---- pods
    def run_pod(self, handler, *, host_net=False, host_pid=False, host_ipc=False, privileged=False,
                pid_mode=None):
        pb = self.pb
        self.n += 1
        uid = uuid.uuid4().hex
        name = f"p{self.n}-{handler}-{uid[:6]}"
        node, pod, ctr = pb.NamespaceMode.NODE, pb.NamespaceMode.POD, pb.NamespaceMode.CONTAINER
        ns = pb.NamespaceOption(network=node if host_net else pod,
                                pid=node if host_pid else (pid_mode if pid_mode is not None else ctr),
                                ipc=node if host_ipc else pod)
        logdir = os.path.join(self.base, "logs", name)
        os.makedirs(logdir)
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="pyrunc-e2e", attempt=0),
            hostname="" if host_net else name, log_directory=logdir,
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"{CGROUP_PARENT}/pod{uid}",
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns, privileged=privileged)))
        pod_id = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler),
                                       timeout=120).pod_sandbox_id
        self.ids.add(pod_id)
        return Pod(self, handler, pod_id, cfg)

    def remove_pod(self, pod_id):
        self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)

    def remove_all(self):
        for s in self.rt.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=60).items:
            self.remove_pod(s.id)

    # ---- containers
    def exec_sync(self, cid, cmd, timeout=0, rpc_timeout=60):
        """(exit code, stdout, stderr) of CMD run in container CID (TIMEOUT seconds, 0: none)."""
        r = self.rt.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout),
                             timeout=rpc_timeout)
        return r.exit_code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def sh(self, cid, script, **kw):
        """stdout of `sh -c SCRIPT` in CID, which must succeed."""
        rc, out, err = self.exec_sync(cid, ["sh", "-c", script], **kw)
        assert rc == 0, f"{script!r} exited {rc}: {err}"
        return out

    def status(self, cid):
        return self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid), timeout=60).status

    def wait_exited(self, cid, timeout=60):
        exited = self.pb.ContainerState.CONTAINER_EXITED
        return wait_for(lambda: (lambda s: s if s.state == exited else None)(self.status(cid)),
                        timeout=timeout, what=f"container {cid} to exit")


def cgroup_dir(controller, rel):
    return os.path.join("/sys/fs/cgroup", controller, rel.lstrip("/"))


def read_cgroup(controller, rel, name):
    with open(os.path.join(cgroup_dir(controller, rel), name)) as f:
        return f.read().strip()


def _ipam_dir(base):
    return os.path.join(base, "cni-ipam")


def _check_clean(cri):
    """Nothing of any pod left: fails with what is."""
    left = []
    pods = cri.rt.ListPodSandbox(cri.pb.ListPodSandboxRequest(), timeout=60).items
    if pods:
        left.append(f"pods {[p.id for p in pods]}")
    ctrs = cri.rt.ListContainers(cri.pb.ListContainersRequest(), timeout=60).containers
    if ctrs:
        left.append(f"containers {[c.id for c in ctrs]}")
    try:
        wait_for(lambda: not cri.shims(), timeout=30, what="shims to exit")
    except AssertionError:
        left.append(f"shims {cri.shims()}")
    netns = [m for m in mounts_under(os.path.join(cri.base, "state")) if "netns" in m]
    if netns:
        left.append(f"netns mounts {netns}")
    rootfs = [m for m in mounts_under(os.path.join(cri.base, "state")) if m.endswith("/rootfs")]
    if rootfs:
        left.append(f"rootfs mounts {rootfs}")
    ipam = os.path.join(_ipam_dir(cri.base), cri.netname)
    if os.path.isdir(ipam):
        ips = [f for f in os.listdir(ipam) if not f.startswith("last_reserved_ip") and f != "lock"]
        if ips:
            left.append(f"IP allocations {ips}")
    for name, root in (("pyrunc", os.path.join(cri.base, "pyrunc-root", K8S_NS)),
                       ("runc", "/run/containerd/runc/k8s.io")):
        if os.path.isdir(root):
            mine = cri.ids & set(os.listdir(root))  # runc's root may be shared with other engines
            if mine:
                left.append(f"{name} state {sorted(mine)}")
    brif = f"/sys/class/net/{cri.bridge}/brif"
    if os.path.isdir(brif) and os.listdir(brif):
        left.append(f"veths on {cri.bridge}: {os.listdir(brif)}")
    for root in cgroup_roots():
        top = os.path.join(root, CGROUP_PARENT.strip("/"))
        if os.path.isdir(top):
            for pod_cg in os.listdir(top):
                d = os.path.join(top, pod_cg)
                if not os.path.isdir(d):
                    continue
                kids = [k for k in os.listdir(d) if os.path.isdir(os.path.join(d, k))]
                if kids:
                    left.append(f"cgroups {d}: {kids}")
                else:
                    try:
                        os.rmdir(d)  # the pod-level parent (the kubelet's job, there is none)
                    except OSError as e:
                        left.append(f"cgroup {d}: {e}")
    return left


def write_cni_conf(c):
    rnd = random.Random(SESSION)
    c.subnet = f"10.{rnd.randrange(200, 250)}.{rnd.randrange(0, 256)}.0/24"
    os.makedirs(os.path.join(c.base, "net.d"))
    with open(os.path.join(c.base, "net.d", "10-pyrunc-e2e.conflist"), "w") as f:
        # no isGateway/ipMasq: the bridge gets no address, so the host has no route into the
        # subnet and the plugin changes no sysctl or iptables rule; pods reach only each other
        json.dump({"cniVersion": "1.0.0", "name": c.netname, "plugins": [{
            "type": "bridge", "bridge": c.bridge, "isGateway": False, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": c.subnet}]], "dataDir": _ipam_dir(c.base)}}]},
            f)


@contextlib.contextmanager
def cri_session(handlers=None):
    """A running private containerd with the CRI plugin, the images imported; all removed after.
    HANDLERS: extra runtime handlers, as containerd_config takes them."""
    import grpc
    existed = {d: os.path.exists(d) for d in SHARED_DIRS}
    base = tempfile.mkdtemp(prefix="pyrunc-e2e-cri-")
    os.chmod(base, 0o755)
    c = None
    try:
        pb, rpc = load_stubs(os.path.join(base, "stubs"))
        c = CRI(base, pb, rpc, grpc)
        c.bridge = f"pcri{SESSION[:6]}"
        c.netname = f"pyrunc-cri-{SESSION}"
        write_cni_conf(c)
        c.start_daemon(handlers)
        import ociarchive
        for name, cmd in ((BUSYBOX, ("sh",)), (PAUSE, ("sleep", "inf"))):
            repo, tag = name.rsplit(":", 1)
            archive = ociarchive.build(ROOTFS, os.path.join(base, f"{tag}-{repo.rsplit('/', 1)[1]}.tar"),
                                       ref=tag, cmd=cmd)
            c.ctr("images", "import", "--base-name", repo, archive)
        wait_for(lambda: all(c.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=i)),
                                               timeout=30).image.id for i in (BUSYBOX, PAUSE)),
                 timeout=30, what="CRI to see the imported images")
        yield c
    finally:
        if c is not None:
            _teardown(c)
        shutil.rmtree(base, ignore_errors=True)
        for d, was in existed.items():
            if not was:
                try:
                    os.rmdir(d)  # only if empty: another engine may be using it now
                except OSError:
                    pass


def _teardown(c):
    try:
        if c.proc and c.proc.poll() is None:
            c.remove_all()
    finally:
        c.stop_daemon()
        for pid in c.shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        umount_under(c.base)
        remove_cgroup_tree(CGROUP_PARENT)
        subprocess.run(["ip", "link", "del", c.bridge], stderr=subprocess.DEVNULL, timeout=30)


@pytest.fixture(scope="session")
def cri():
    for b in ("containerd", "ctr", "containerd-shim-runc-v2", "ip"):
        if not have(b):
            pytest.skip(f"{b} not installed (make deps)")
    if not os.path.exists("/usr/lib/cni/bridge") or not os.path.exists("/usr/lib/cni/host-local"):
        pytest.skip("CNI plugins not installed at /usr/lib/cni (apt-get install containernetworking-plugins)")
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError:
        pytest.skip("grpcio and grpcio-tools not installed (pip install -e '.[test]')")
    with cri_session() as c:
        yield c


@pytest.fixture
def cri_env(cri):
    """The session's CRI; after the test, every pod is removed and nothing may be left."""
    yield cri
    cri.remove_all()
    left = _check_clean(cri)
    assert not left, f"left behind: {left}"


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param
