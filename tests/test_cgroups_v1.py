"""cgroup v1 / hybrid manager against the real kernel (root). Every test removes what it made."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from runtime import cgroups
from runtime.errors import Error

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(cgroups.mode() == "v2", reason="host has no cgroup v1 controllers"),
]


def _uid():
    return "pyrunc-test-" + uuid.uuid4().hex[:12]


@pytest.fixture
def make():
    """make(linux) -> created manager; all are killed and destroyed afterwards."""
    made, procs = [], []

    def _make(linux=None, cid=None):
        m = cgroups.new_manager(cid or _uid(), linux or {})
        made.append(m)
        m.create()
        return m
    _make.procs = procs
    yield _make
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for m in made:
        try:
            for pid in m.pids():
                os.kill(pid, signal.SIGKILL)
        except Exception:
            pass
        deadline = time.time() + 5
        while m.pids() and time.time() < deadline:
            time.sleep(0.05)
        m.destroy()
        for d in m.paths().values():
            assert not os.path.exists(d), d


def _spawn(make, m, args):
    """Start args already inside m's cgroups (joined between fork and exec)."""
    p = subprocess.Popen(args, preexec_fn=lambda: m.apply(os.getpid()),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    make.procs.append(p)
    return p


def _read(m, ctrl, name):
    with open(os.path.join(m.paths()[ctrl], name)) as f:
        return f.read().strip()


def test_mode_is_cached_and_valid():
    assert cgroups.mode() in ("v1", "hybrid")
    assert cgroups.mode() is cgroups.mode()


def test_paths_relative_absolute_empty():
    own = {}
    for line in open("/proc/self/cgroup"):
        _, ctrls, path = line.strip().split(":", 2)
        for c in ctrls.split(","):
            own[c] = path
    m = cgroups.new_manager("cid1", {})
    assert m.paths()["memory"] == os.path.normpath("/sys/fs/cgroup/memory" + own["memory"] + "/cid1")
    m = cgroups.new_manager("cid1", {"cgroupsPath": "a/b"})
    assert m.paths()["memory"] == os.path.normpath("/sys/fs/cgroup/memory" + own["memory"] + "/a/b")
    m = cgroups.new_manager("cid1", {"cgroupsPath": "/abs/x"})
    assert m.paths()["memory"] == "/sys/fs/cgroup/memory/abs/x"
    assert m.paths()["pids"] == "/sys/fs/cgroup/pids/abs/x"
    if cgroups.mode() == "hybrid":
        assert m.paths()[""].endswith("/abs/x")
    # comounted or not, every controller has a key
    assert {"cpu", "cpuacct", "memory"} <= set(m.paths())


def test_systemd_path_rejected():
    with pytest.raises(Error, match="systemd"):
        cgroups.new_manager("x", {"cgroupsPath": "system.slice:pyrunc:x"})


def test_create_apply_destroy_roundtrip(make):
    m = make()
    for d in m.paths().values():
        assert os.path.isdir(d)
    m.create()  # idempotent
    p = _spawn(make, m, ["sleep", "60"])
    time.sleep(0.1)
    assert m.pids() == [p.pid]
    with open(f"/proc/{p.pid}/cgroup") as f:
        text = f.read()
    assert os.path.basename(m.paths()["memory"]) in text
    saved = json.loads(json.dumps(m.to_dict()))
    m2 = cgroups.load_manager(saved)
    assert m2.paths() == m.paths()
    assert m2.pids() == [p.pid]


def test_absolute_nested_path_is_removed_entirely(make):
    top = _uid()
    m = make({"cgroupsPath": f"/{top}/inner"})
    assert os.path.isdir(f"/sys/fs/cgroup/pids/{top}/inner")
    m.destroy()
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{top}")
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{top}")


def test_cpuset_inherited_so_a_pid_can_join(make):
    m = make({"cgroupsPath": f"/{_uid()}/deeper/leaf"})
    assert _read(m, "cpuset", "cpuset.cpus") != ""
    assert _read(m, "cpuset", "cpuset.mems") != ""
    p = _spawn(make, m, ["sleep", "60"])
    time.sleep(0.1)
    assert p.pid in m.pids()


def test_set_resources_readback(make):
    m = make()
    m.set({
        "memory": {"limit": 100 * 2 ** 20, "swap": 200 * 2 ** 20, "reservation": 50 * 2 ** 20,
                   "swappiness": 10, "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 0},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300},
    })
    assert int(_read(m, "memory", "memory.limit_in_bytes")) == 100 * 2 ** 20
    assert int(_read(m, "memory", "memory.memsw.limit_in_bytes")) == 200 * 2 ** 20
    assert int(_read(m, "memory", "memory.soft_limit_in_bytes")) == 50 * 2 ** 20
    assert _read(m, "memory", "memory.swappiness") == "10"
    assert _read(m, "cpu", "cpu.shares") == "512"
    assert _read(m, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _read(m, "cpu", "cpu.cfs_period_us") == "100000"
    assert _read(m, "cpuset", "cpuset.cpus") == "0"
    assert _read(m, "pids", "pids.max") == "42"
    wf = "blkio.weight" if os.path.exists(os.path.join(m.paths()["blkio"], "blkio.weight")) else "blkio.bfq.weight"
    assert _read(m, "blkio", wf).split()[-1] == "300"
    # update: lower memory below the current memsw, then raise both (ordering matters in v1)
    m.set({"memory": {"limit": 30 * 2 ** 20, "swap": 40 * 2 ** 20}})
    assert int(_read(m, "memory", "memory.memsw.limit_in_bytes")) == 40 * 2 ** 20
    m.set({"memory": {"limit": 300 * 2 ** 20, "swap": 400 * 2 ** 20}})
    assert int(_read(m, "memory", "memory.limit_in_bytes")) == 300 * 2 ** 20
    m.set({"memory": {"limit": -1}})
    assert int(_read(m, "memory", "memory.limit_in_bytes")) > 2 ** 60
    m.set({"pids": {"limit": 0}, "cpu": {"quota": -1}})
    assert _read(m, "pids", "pids.max") == "max"
    assert _read(m, "cpu", "cpu.cfs_quota_us") == "-1"


def test_kernel_tcp_limit(make):
    """memory.kernelTCP still has its v1 file (kernel memory limits do not)."""
    m = make()
    if not os.path.exists(os.path.join(m.paths()["memory"], "memory.kmem.tcp.limit_in_bytes")):
        pytest.skip("no memory.kmem.tcp.limit_in_bytes on this kernel")
    m.set({"memory": {"kernelTCP": 16 * 2 ** 20}})
    assert int(_read(m, "memory", "memory.kmem.tcp.limit_in_bytes")) == 16 * 2 ** 20
    m.set({"memory": {"kernelTCP": -1}})
    assert int(_read(m, "memory", "memory.kmem.tcp.limit_in_bytes")) > 2 ** 60


def test_set_errors_name_the_field(make):
    m = make()
    with pytest.raises(Error, match="swappiness"):
        m.set({"memory": {"swappiness": 500}})
    with pytest.raises(Error, match="unified"):
        m.set({"unified": {"memory.high": "1"}})
    with pytest.raises(Error, match="swap"):
        m.set({"memory": {"limit": 200 * 2 ** 20, "swap": 100 * 2 ** 20}})
    if "hugetlb" not in m.paths():
        with pytest.raises(Error, match="hugetlb"):
            m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})
    if "net_cls" not in m.paths():
        with pytest.raises(Error, match="net_cls"):
            m.set({"network": {"classID": 1048577}})


def test_devices_rules_in_order(make):
    m = make()
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 4, "minor": 64, "access": "rw"}]})
    lines = _read(m, "devices", "devices.list").splitlines()
    assert "c 4:64 rw" in lines and "c 1:3 rwm" in lines and "c 136:* rwm" in lines
    assert "a *:* rwm" not in lines
    # a deny after an allow wins
    m.set({"devices": [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    assert "c 1:3 rwm" in _read(m, "devices", "devices.list").splitlines()  # defaults re-allow it
    m.set({"devices": [{"allow": True, "access": "rwm"}]})
    assert _read(m, "devices", "devices.list") == "a *:* rwm"
    # no rules at all: still runc's allowlist of default devices
    m.set({"devices": []})
    lines = _read(m, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in lines and "c 1:5 rwm" in lines


def test_pids_limit_stops_a_fork_loop(make):
    m = make()
    m.set({"pids": {"limit": 5}})
    p = _spawn(make, m, ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 3 & done; wait"])
    _, err = p.communicate(timeout=30)
    assert b"fork" in err.lower() or b"resource" in err.lower()
    assert "max " in _read(m, "pids", "pids.events") and _read(m, "pids", "pids.events") != "max 0"
    assert m.stats()["pids"]["limit"] == 5


def test_memory_limit_oom_kills_a_hog(make):
    m = make()
    m.set({"memory": {"limit": 32 * 2 ** 20, "swap": 32 * 2 ** 20}})
    assert m.oom_count() == 0
    p = _spawn(make, m, [sys.executable, "-c", "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"])
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert m.oom_count() >= 1
    s = m.stats()["memory"]
    assert s["usage"]["limit"] == 32 * 2 ** 20


def test_freeze_thaw(make):
    m = make()
    p = _spawn(make, m, ["sh", "-c", "while :; do :; done"])
    time.sleep(0.1)
    assert not m.frozen()
    m.freeze()
    assert m.frozen()
    assert _read(m, "freezer", "freezer.state") == "FROZEN"
    with open(f"/proc/{p.pid}/status") as f:
        state = [x for x in f if x.startswith("State:")][0]
    assert "D" in state or "S" in state  # frozen tasks never run
    t0 = [int(x) for x in open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[11:13]]
    time.sleep(0.3)
    t1 = [int(x) for x in open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[11:13]]
    assert t0 == t1
    m.thaw()
    assert not m.frozen()
    assert p.poll() is None


def test_kill_all_sigterm_and_sigkill(make):
    m = make()
    # a parent that forks children: all of them must get the signal
    p = _spawn(make, m, ["sh", "-c", "sleep 60 & sleep 60 & wait"])
    deadline = time.time() + 5
    while len(m.pids()) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert len(m.pids()) == 3
    m.kill_all(signal.SIGTERM)
    p.wait(timeout=10)
    deadline = time.time() + 5
    while m.pids() and time.time() < deadline:
        time.sleep(0.05)
    assert m.pids() == []
    assert not m.frozen()  # kill left it thawed
    p = _spawn(make, m, ["sh", "-c", "trap '' TERM; sleep 60 & wait"])
    time.sleep(0.2)
    m.kill_all(signal.SIGKILL)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL


def test_stats_shape(make):
    m = make()
    p = _spawn(make, m, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
    p.wait(timeout=30)
    s = m.stats()  # runc's types.Stats, Go's omitempty applied
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["cpu"]["usage"]["total"] > 0
    assert len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert set(s["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert set(s["memory"]["usage"]) >= {"limit", "failcnt"}
    assert s["pids"] == {}  # nothing left, no limit: both omitted
    assert s["cpuset"]["cpus"]
    json.dumps(s)


def test_destroy_tolerates_missing_and_subcgroups(make):
    m = make()
    os.mkdir(os.path.join(m.paths()["memory"], "child"))  # e.g. systemd in the container
    m.destroy()
    assert not os.path.exists(m.paths()["memory"])
    m.destroy()


MOUNT_SNIPPET = r"""
import json, os, sys
from runtime import cgroups
from runtime.linux import mount
m = cgroups.load_manager(json.loads(sys.argv[1]))
dest = sys.argv[2]
cgroups.mount_cgroupfs(dest, m, readonly=True, cgroupns=sys.argv[3] == "1")
out = {"ls": sorted(os.listdir(dest)),
       "procs": open(os.path.join(dest, "memory", "cgroup.procs")).read().split(),
       "limit": open(os.path.join(dest, "memory", "memory.limit_in_bytes")).read().strip()}
try:
    open(os.path.join(dest, "pids", "pids.max"), "w").write("5")
    out["ro"] = False
except OSError:
    out["ro"] = True
try:
    os.mkdir(os.path.join(dest, "newdir"))
    out["tmpfs_ro"] = False
except OSError:
    out["tmpfs_ro"] = True
print(json.dumps(out))
"""


ENTER_SNIPPET = r"""
import json, os, sys
from runtime import cgroups
cgroups.load_manager(json.loads(sys.argv[1])).apply(os.getpid())
os.execvp("unshare", ["unshare", "-C"] + sys.argv[2:])
"""


@pytest.mark.parametrize("cgroupns", [False, True])
def test_mount_cgroupfs_private_namespace(make, tmp_path, cgroupns):
    m = make()
    m.set({"memory": {"limit": 64 * 2 ** 20}})
    p = _spawn(make, m, ["sleep", "60"])
    dest = tmp_path / "cg"
    dest.mkdir()
    cmd = ["unshare", "-m", "--propagation", "private"]
    if cgroupns:
        # join the container's cgroups, then a new cgroup namespace rooted there (as its init would)
        cmd += [sys.executable, "-c", ENTER_SNIPPET, json.dumps(m.to_dict())]
    res = subprocess.run(cmd + [sys.executable, "-c", MOUNT_SNIPPET, json.dumps(m.to_dict()), str(dest),
                                "1" if cgroupns else "0"],
                         capture_output=True, text=True, timeout=30, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"cpu", "cpuacct", "memory", "pids", "systemd"} <= set(out["ls"])
    assert "" not in out["ls"] and "unified" not in out["ls"]
    assert str(p.pid) in out["procs"]
    assert int(out["limit"]) == 64 * 2 ** 20
    assert out["ro"] and out["tmpfs_ro"]
    assert os.listdir(dest) == []  # the mounts died with the namespace


def test_state_saved_before_create_still_destroys(make):
    # the core saves to_dict() in state.json before calling create()
    m = cgroups.new_manager(_uid(), {"cgroupsPath": f"/{_uid()}/leaf"})
    saved = json.loads(json.dumps(m.to_dict()))
    m.create()
    try:
        assert all(os.path.isdir(d) for d in m.paths().values())
    finally:
        cgroups.load_manager(saved).destroy()
    for d in m.paths().values():
        assert not os.path.exists(d)
        assert not os.path.exists(os.path.dirname(d))


def test_preexisting_parent_is_kept(make):
    parent = make()  # exists before the second manager is made
    rel = os.path.relpath(parent.paths()["pids"], os.path.dirname(parent.paths()["pids"]))
    child = cgroups.new_manager(_uid(), {"cgroupsPath": f"{rel}/child"})
    child.create()
    child.destroy()
    assert not os.path.exists(child.paths()["pids"])
    assert os.path.isdir(parent.paths()["pids"])
