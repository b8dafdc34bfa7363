"""cgroup v2: pure value translations, the file writer on a fake cgroup dir, and a real child of
our own unified cgroup (freeze, kill, pids, mount). Every test removes what it made."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from runtime import cgroups
from runtime.cgroups import v2
from runtime.errors import Error

UNIFIED = next((m[0] for m in cgroups._mountinfo() if m[1] == "cgroup2"), None)
OWN2 = cgroups._own_cgroups().get(frozenset())
root_only = pytest.mark.skipif(os.geteuid() != 0 or UNIFIED is None, reason="needs root and a cgroup2 mount")


# ---------------------------------------------------------------- pure functions

def test_shares_to_weight():
    assert v2.shares_to_weight(0) == 0
    assert v2.shares_to_weight(2) == 1
    assert v2.shares_to_weight(262144) == 10000
    assert v2.shares_to_weight(1024) == 39
    assert v2.shares_to_weight(512) == 20


def test_cpu_max():
    assert v2.cpu_max(None, None) == ""
    assert v2.cpu_max(0, 0) == ""
    assert v2.cpu_max(50000, 100000) == "50000 100000"
    assert v2.cpu_max(50000, None) == "50000 100000"
    assert v2.cpu_max(-1, 200000) == "max 200000"
    assert v2.cpu_max(None, 20000) == "max 20000"


def test_blkio_weight_to_io_weight():
    assert v2.blkio_weight_to_io_weight(0) == 0
    assert v2.blkio_weight_to_io_weight(10) == 1
    assert v2.blkio_weight_to_io_weight(1000) == 10000
    assert v2.blkio_weight_to_io_weight(500) == 4950


def test_swap_conversion():
    assert v2.swap_to_v2(None, None) == 0
    assert v2.swap_to_v2(0, 100) == 0
    assert v2.swap_to_v2(-1, 100) == -1
    assert v2.swap_to_v2(None, -1) == -1
    assert v2.swap_to_v2(300, 100) == 200
    assert v2.swap_to_v2(100, 100) == 0
    with pytest.raises(Error, match="swap"):
        v2.swap_to_v2(50, 100)
    with pytest.raises(Error, match="swap"):
        v2.swap_to_v2(100, None)


def test_resources_to_files():
    files = v2.resources_to_files({
        "memory": {"limit": 1000, "swap": 3000, "reservation": 500},
        "cpu": {"shares": 1024, "quota": 20000, "period": 50000, "cpus": "0-1", "mems": "0", "idle": 1, "burst": 10},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "900", "cgroup.max.depth": "3"},
    }, have=lambda n: False)
    assert files == [
        ("memory", "memory.swap.max", "2000", "memory.swap"), ("memory", "memory.max", "1000", "memory.limit"),
        ("memory", "memory.low", "500", "memory.reservation"),
        ("cpu", "cpu.weight", "39", "cpu.shares"), ("cpu", "cpu.max", "20000 50000", "cpu.quota"),
        ("cpu", "cpu.max.burst", "10", "cpu.burst"), ("cpu", "cpu.idle", "1", "cpu.idle"),
        ("cpuset", "cpuset.cpus", "0-1", "cpu.cpus"), ("cpuset", "cpuset.mems", "0", "cpu.mems"),
        ("pids", "pids.max", "max", "pids.limit"),
        ("io", "io.weight", "default 4950", "blockIO.weight"), ("io", "io.weight", "8:0 910", "blockIO.weightDevice"),
        ("io", "io.max", "8:0 rbps=1048576", "blockIO.throttleReadBpsDevice"),
        ("io", "io.max", "8:16 wiops=100", "blockIO.throttleWriteIOPSDevice"),
        ("hugetlb", "hugetlb.2MB.max", "4194304", "hugepageLimits[2MB]"),
        ("memory", "memory.high", "900", "unified[memory.high]"), ("", "cgroup.max.depth", "3", "unified[cgroup.max.depth]"),
    ]
    bfq = v2.resources_to_files({"blockIO": {"weight": 500}}, have=lambda n: n == "io.bfq.weight")
    assert bfq == [("io", "io.bfq.weight", "500", "blockIO.weight")]
    assert v2.resources_to_files({"memory": {"limit": -1}}) == [
        ("memory", "memory.swap.max", "max", "memory.swap"), ("memory", "memory.max", "max", "memory.limit")]


def test_resources_to_files_errors():
    with pytest.raises(Error, match="network"):
        v2.resources_to_files({"network": {"classID": 1}})
    with pytest.raises(Error, match="realtime"):
        v2.resources_to_files({"cpu": {"realtimeRuntime": 1000}})
    with pytest.raises(Error, match="unified"):
        v2.resources_to_files({"unified": {"../escape": "1"}})


# ---------------------------------------------------------------- writer on a fake cgroup tree

def _fake_tree(tmp_path, controllers="cpu memory pids io hugetlb cpuset"):
    root = tmp_path / "cg"
    leaf = root / "mid" / "leaf"
    leaf.mkdir(parents=True)
    for d, ctrls in ((root, controllers), (root / "mid", controllers), (leaf, "")):
        (d / "cgroup.controllers").write_text(ctrls + "\n")
        (d / "cgroup.subtree_control").write_text("")
    for f in ("memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max",
              "io.max", "io.weight", "hugetlb.2MB.max", "memory.high"):
        (leaf / f).write_text("")
    return root, leaf


def test_set_resources_on_fake_tree(tmp_path):
    root, leaf = _fake_tree(tmp_path)
    m = cgroups.new_manager("leaf", {"cgroupsPath": "/mid/leaf"}, _layout={"mode": "v2", "root": str(root)})
    assert m.paths() == {"": str(leaf)}
    m.set({"memory": {"limit": 2 ** 20, "swap": 2 ** 21}, "cpu": {"shares": 2048, "quota": 1000},
           "pids": {"limit": 10}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
           "unified": {"memory.high": "max"}})
    assert (leaf / "memory.max").read_text() == str(2 ** 20)
    assert (leaf / "memory.swap.max").read_text() == str(2 ** 20)
    assert (leaf / "cpu.weight").read_text() == "79"
    assert (leaf / "cpu.max").read_text() == "1000 100000"
    assert (leaf / "pids.max").read_text() == "10"
    assert (leaf / "hugetlb.2MB.max").read_text() == "2097152"
    assert (leaf / "memory.high").read_text() == "max"
    # controllers were enabled top-down in the ancestors (a regular file keeps the last write)
    assert (root / "cgroup.subtree_control").read_text().startswith("+")
    assert (root / "mid" / "cgroup.subtree_control").read_text().startswith("+")


def test_set_resources_missing_controller(tmp_path):
    root, leaf = _fake_tree(tmp_path, controllers="memory")
    m = cgroups.new_manager("leaf", {"cgroupsPath": "/mid/leaf"}, _layout={"mode": "v2", "root": str(root)})
    with pytest.raises(Error, match="pids"):
        m.set({"pids": {"limit": 10}})
    with pytest.raises(Error, match="rdma|not supported"):
        m.set({"unified": {"rdma.max": "x"}})


# ---------------------------------------------------------------- real unified hierarchy

@pytest.fixture
def v2mgr():
    """A v2 manager on a fresh child of our own cgroup2 cgroup; killed and removed afterwards."""
    root = os.path.normpath(UNIFIED + "/" + (OWN2 or "/"))
    m = cgroups.new_manager("pyrunc-test-" + uuid.uuid4().hex[:12], {},
                            _layout={"mode": "v2", "root": root})
    procs = []
    m.create()
    m.procs = procs
    yield m
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for pid in m.pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 5
    while m.pids() and time.time() < deadline:
        time.sleep(0.05)
    m.destroy()
    assert not os.path.exists(m.paths()[""])


def _spawn(m, args):
    p = subprocess.Popen(args, preexec_fn=lambda: m.apply(os.getpid()))
    m.procs.append(p)
    return p


def _wait_pids(m, n):
    deadline = time.time() + 5
    while len(m.pids()) < n and time.time() < deadline:
        time.sleep(0.05)


@root_only
def test_v2_apply_pids_roundtrip(v2mgr):
    p = _spawn(v2mgr, ["sh", "-c", "sleep 60 & wait"])
    _wait_pids(v2mgr, 2)
    assert p.pid in v2mgr.pids() and len(v2mgr.pids()) == 2
    m2 = cgroups.load_manager(json.loads(json.dumps(v2mgr.to_dict())))
    assert m2.pids() == v2mgr.pids()
    assert v2mgr.oom_count() == 0


@root_only
def test_v2_freeze_thaw(v2mgr):
    p = _spawn(v2mgr, ["sh", "-c", "while :; do :; done"])
    _wait_pids(v2mgr, 1)
    v2mgr.freeze()
    assert v2mgr.frozen()
    with open(os.path.join(v2mgr.paths()[""], "cgroup.events")) as f:
        assert "frozen 1" in f.read()
    v2mgr.thaw()
    assert not v2mgr.frozen()
    assert p.poll() is None


@root_only
def test_v2_kill_all(v2mgr):
    p = _spawn(v2mgr, ["sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"])
    _wait_pids(v2mgr, 3)
    v2mgr.kill_all(signal.SIGKILL)  # cgroup.kill
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    _wait_pids(v2mgr, 0)
    deadline = time.time() + 5
    while v2mgr.pids() and time.time() < deadline:
        time.sleep(0.05)
    assert v2mgr.pids() == []
    p = _spawn(v2mgr, ["sleep", "60"])
    _wait_pids(v2mgr, 1)
    v2mgr.kill_all(signal.SIGTERM)  # freeze, signal, thaw
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGTERM
    assert not v2mgr.frozen()


@root_only
def test_v2_stats_and_unavailable_controller(v2mgr):
    s = v2mgr.stats()
    assert "cpu" in s and "usage" in s["cpu"]
    json.dumps(s)
    have = open(os.path.join(v2mgr.paths()[""], "cgroup.controllers")).read().split()
    if "pids" not in have:
        # enabling would mean writing a cgroup we did not create: it must refuse, naming pids
        parent = os.path.dirname(v2mgr.paths()[""])
        if "pids" not in open(os.path.join(parent, "cgroup.controllers")).read().split():
            with pytest.raises(Error, match="pids"):
                v2mgr.set({"pids": {"limit": 5}})


@root_only
def test_v2_hugetlb_if_enabled(v2mgr):
    d = v2mgr.paths()[""]
    sizes = [f.split(".")[1] for f in os.listdir(d) if f.startswith("hugetlb.") and f.endswith(".max")]
    if not sizes:
        pytest.skip("hugetlb is not enabled for our cgroup2 children")
    v2mgr.set({"hugepageLimits": [{"pageSize": sizes[0], "limit": 0}]})
    assert open(os.path.join(d, f"hugetlb.{sizes[0]}.max")).read().strip() == "0"


MOUNT_SNIPPET = r"""
import json, os, sys
from runtime import cgroups
m = cgroups.load_manager(json.loads(sys.argv[1]))
dest, ns = sys.argv[2], sys.argv[3] == "1"
cgroups.mount_cgroupfs(dest, m, readonly=True, cgroupns=ns)
out = {"ls": sorted(os.listdir(dest)), "procs": open(os.path.join(dest, "cgroup.procs")).read().split()}
try:
    os.mkdir(os.path.join(dest, "sub"))
    out["ro"] = False
except OSError:
    out["ro"] = True
print(json.dumps(out))
"""


@root_only
@pytest.mark.parametrize("cgroupns", [False, True])
def test_v2_mount_cgroupfs(v2mgr, tmp_path, cgroupns):
    p = _spawn(v2mgr, ["sleep", "60"])
    _wait_pids(v2mgr, 1)
    dest = tmp_path / "cg"
    dest.mkdir()
    cmd = ["unshare", "-m", "--propagation", "private"]
    if cgroupns:
        # enter a cgroup namespace rooted at the container's cgroup, as the container init would
        snippet = ("import os,sys; open(sys.argv[1]+'/cgroup.procs','w').write(str(os.getpid())); "
                   "os.execvp('unshare', ['unshare', '-C'] + sys.argv[2:])")
        cmd += [sys.executable, "-c", snippet, v2mgr.paths()[""]]
    cmd += [sys.executable, "-c", MOUNT_SNIPPET, json.dumps(v2mgr.to_dict()), str(dest), "1" if cgroupns else "0"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "cgroup.procs" in out["ls"] and "cgroup.freeze" in out["ls"]
    assert str(p.pid) in out["procs"]
    assert out["ro"]
    assert os.listdir(dest) == []


# ---------------------------------------------------------------- devices (eBPF)

def test_device_program_shape():
    from runtime.cgroups import devices_bpf as d
    deny_all = {"allow": False, "access": "rwm"}
    prog = d.build_program([deny_all])
    assert len(prog) == 8 * (6 + 2)  # prologue + "return 0"
    assert prog[-16:] == d.insn(d.MOV64_K, 0, imm=0) + d.insn(d.EXIT)
    # c 1:3 rw: type, access, major, minor checks, then return 1
    prog = d.build_program([deny_all, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
    block = [prog[i:i + 8] for i in range(6 * 8, len(prog), 8)]
    assert block[0] == d.insn(d.JNE_K, d.R_TYPE, off=5, imm=d.DEV_CHAR)
    assert block[1] == d.insn(d.JSET_K, d.R_ACC, off=4, imm=d.ACC_MKNOD)
    assert block[4] == d.insn(d.MOV64_K, 0, imm=1)
    assert block[-2] == d.insn(d.MOV64_K, 0, imm=0)
    # no wildcard: an allowlist, as runc builds it
    assert d.build_program([])[-16:-8] == d.insn(d.MOV64_K, 0, imm=0)
    assert d.build_program([{"allow": True, "type": "a", "access": "rwm"}])[-16:-8] == d.insn(d.MOV64_K, 0, imm=1)
    with pytest.raises(Error, match="devices"):
        d.build_program([{"allow": True, "type": "x", "access": "r"}])


@root_only
def test_v2_device_filter_enforced_and_replaced(v2mgr, tmp_path):
    node = tmp_path / "kmsg"
    os.mknod(node, 0o600 | 0o020000, os.makedev(1, 11))

    def opens():
        code = f"import os; os.close(os.open({str(node)!r}, os.O_RDONLY | os.O_NONBLOCK))"
        return subprocess.run([sys.executable, "-c", code], preexec_fn=lambda: v2mgr.apply(os.getpid()),
                              capture_output=True).returncode == 0
    assert opens()
    v2mgr.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert not opens()
    v2mgr.set({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    assert opens()  # the old deny-all program was detached
    v2mgr.set({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]})
    assert not opens()  # read not covered by "w"
