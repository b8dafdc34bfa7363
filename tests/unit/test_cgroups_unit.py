"""The cgroup managers in-process, without root or a kernel cgroup: a tmp dir stands in for
/sys/fs/cgroup (a manager only acts on the directories it is given) and a recorder replaces the
file writer where the order of writes matters.

Covers: config resources -> v1/v2 file writes (cpu shares -> weight, memory + swap, blkio/io,
pids, hugetlb, network, unified, devices), the errors naming their field, the stats in runc's
shape, placement (self-join, CLONE_INTO_CGROUP, cgroup.procs), freezer, kill, pids, and the
rootless variants. Never skips: nothing here depends on the host.
"""
import errno
import os
import signal

import pytest

from runtime import cgroups, cgroupverbs
from runtime.cgroups import CgroupError, HybridManager, Placement, V1Manager, V2Manager, stats, v1, v2
from runtime.cgroups import rootless as cg_rootless
from runtime.errors import Error

# v1 hierarchies as on a Debian hybrid host (cpu and cpuacct comounted)
V1_CTRLS = {"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "cpuset": "cpuset", "memory": "memory",
            "pids": "pids", "blkio": "blkio", "hugetlb": "hugetlb", "freezer": "freezer", "devices": "devices",
            "net_cls": "net_cls,net_prio", "net_prio": "net_cls,net_prio"}

V1_INTERFACE = [
    "cpu,cpuacct/ctr/cpu.shares", "cpu,cpuacct/ctr/cpu.cfs_period_us", "cpu,cpuacct/ctr/cpu.cfs_quota_us",
    "cpu,cpuacct/ctr/cpu.rt_period_us", "cpu,cpuacct/ctr/cpu.rt_runtime_us", "cpu,cpuacct/ctr/cpu.idle",
    "cpuset/ctr/cpuset.cpus", "cpuset/ctr/cpuset.mems",
    "memory/ctr/memory.limit_in_bytes", "memory/ctr/memory.memsw.limit_in_bytes",
    "memory/ctr/memory.soft_limit_in_bytes", "memory/ctr/memory.swappiness", "memory/ctr/memory.oom_control",
    "memory/ctr/memory.use_hierarchy", "memory/ctr/memory.kmem.tcp.limit_in_bytes",
    "pids/ctr/pids.max", "blkio/ctr/blkio.weight", "blkio/ctr/blkio.weight_device",
    "blkio/ctr/blkio.throttle.read_bps_device", "blkio/ctr/blkio.throttle.write_iops_device",
    "hugetlb/ctr/hugetlb.2MB.limit_in_bytes", "net_cls,net_prio/ctr/net_cls.classid",
    "net_cls,net_prio/ctr/net_prio.ifpriomap", "devices/ctr/devices.allow", "devices/ctr/devices.deny",
    "freezer/ctr/freezer.state",
]

V1_STATS_FILES = {
    "cpu,cpuacct/ctr/cpuacct.usage": "12345\n",
    "cpu,cpuacct/ctr/cpuacct.usage_percpu": "100 200\n",
    "cpu,cpuacct/ctr/cpuacct.usage_percpu_sys": "10 20\n",
    "cpu,cpuacct/ctr/cpuacct.usage_percpu_user": "90 180\n",
    "cpu,cpuacct/ctr/cpuacct.stat": "user 3\nsystem 1\n",
    "cpu,cpuacct/ctr/cpu.stat": "nr_periods 4\nnr_throttled 2\nthrottled_time 99\n",
    "cpuset/ctr/cpuset.cpus": "0-1,3\n",
    "cpuset/ctr/cpuset.mems": "0\n",
    "cpuset/ctr/cpuset.cpu_exclusive": "0\n",
    "cpuset/ctr/cpuset.mem_hardwall": "1\n",
    "cpuset/ctr/cpuset.sched_load_balance": "1\n",
    "cpuset/ctr/cpuset.sched_relax_domain_level": "-1\n",
    "memory/ctr/memory.stat": "cache 4096\nrss 8192\ntotal_cache 5000\n",
    "memory/ctr/memory.limit_in_bytes": "9223372036854771712\n",
    "memory/ctr/memory.usage_in_bytes": "12288\n",
    "memory/ctr/memory.max_usage_in_bytes": "20480\n",
    "memory/ctr/memory.failcnt": "0\n",
    "memory/ctr/memory.memsw.limit_in_bytes": "9223372036854771712\n",
    "memory/ctr/memory.memsw.usage_in_bytes": "12288\n",
    "memory/ctr/memory.kmem.usage_in_bytes": "0\n",
    "memory/ctr/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    "pids/ctr/pids.current": "2\n",
    "pids/ctr/pids.max": "max\n",
    "blkio/ctr/blkio.throttle.io_service_bytes_recursive": "8:0 Read 512\n8:0 Write 0\nTotal 512\n",
    "blkio/ctr/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 0\nTotal 1\n",
    "blkio/ctr/blkio.bfq.io_service_bytes_recursive": "",
    "hugetlb/ctr/hugetlb.2MB.limit_in_bytes": "9223372036854771712\n",
    "hugetlb/ctr/hugetlb.2MB.usage_in_bytes": "0\n",
    "hugetlb/ctr/hugetlb.2MB.max_usage_in_bytes": "2097152\n",
    "hugetlb/ctr/hugetlb.2MB.failcnt": "1\n",
    "freezer/ctr/freezer.state": "THAWED\n",
}

V2_STATS_FILES = {
    "cpu.stat": "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
    "memory.current": "4096\n", "memory.max": "max\n", "memory.peak": "8192\n",
    "memory.stat": "file 100\nanon 200\n",
    "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", "memory.swap.current": "0\n",
    "memory.swap.max": "max\n", "pids.current": "3\n", "pids.max": "10\n",
    "io.stat": "8:0 rbytes=512 wbytes=0 rios=1 wios=0\n",
    "hugetlb.2MB.current": "0\n", "hugetlb.2MB.max": "max\n", "hugetlb.2MB.events": "max 4\n",
}

NO_CPUSET = {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
             "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 0,
             "sched_relax_domain_level": 0}
NO_MEMORY = {k: {"limit": 0, "failcnt": 0} for k in ("usage", "swap", "kernel", "kernelTCP")}
U64 = 2 ** 64 - 1


def _files(base, files):
    for rel, text in files.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


def _v1(tmp_path, files=(), mode="v1", unified=False, devices=()):
    """A V1Manager (or HybridManager) over a fake tree with the interface files FILES."""
    base = str(tmp_path / "cgroup")
    _files(base, files if isinstance(files, dict) else {f: "" for f in files})
    paths = {c: f"{base}/{d}/ctr" for c, d in V1_CTRLS.items()}
    if unified:
        paths[""] = f"{base}/unified/ctr"
    for c, p in paths.items():
        _files(p, {"cgroup.procs": "", **({"tasks": ""} if c else {})})
    return cgroups.load_manager({"mode": mode, "paths": paths, "created": [], "devices": list(devices)})


def _v2_tree(tmp_path, controllers="cpu cpuset memory pids io hugetlb rdma"):
    root = tmp_path / "cg2"
    leaf = root / "ctr"
    leaf.mkdir(parents=True)
    for d, ctrls in ((root, controllers), (leaf, "")):
        (d / "cgroup.controllers").write_text(ctrls + "\n")
        (d / "cgroup.subtree_control").write_text("")
    (leaf / "cgroup.procs").write_text("")
    return root, leaf


def _v2(tmp_path, files=(), **kw):
    root, leaf = _v2_tree(tmp_path, **kw)
    for f in files:
        (leaf / f).write_text("")
    m = cgroups.new_manager("ctr", {"cgroupsPath": "/ctr"}, _layout={"mode": "v2", "root": str(root)})
    return m, leaf


@pytest.fixture
def writes(monkeypatch, tmp_path):
    """Record the cgroup file writes as (path relative to tmp_path, value), in order, still writing them."""
    log = []
    real = cgroups._write

    def rec(path, value, field=None):
        log.append((os.path.relpath(path, tmp_path), str(value)))
        real(path, value, field)
    for mod in (cgroups, v1, v2):
        monkeypatch.setattr(mod, "_write", rec)
    return log


def _names(log):
    return [(os.path.basename(p), v) for p, v in log]


# ---------------------------------------------------------------- classes and saved state
def test_load_manager_picks_the_class_by_mode(tmp_path):
    for mode, cls in (("v1", V1Manager), ("hybrid", HybridManager), ("v2", V2Manager)):
        saved = {"mode": mode, "paths": {"": str(tmp_path)} if mode == "v2" else {"memory": str(tmp_path)},
                 "created": [str(tmp_path)], "devices": [{"type": "c", "major": 1, "minor": 1}],
                 "roots": {"": "/sys/fs/cgroup"}}
        m = cgroups.load_manager(saved)
        assert type(m) is cls and m.mode == mode
        assert m.to_dict() == saved
    assert issubclass(HybridManager, V1Manager)
    assert cgroups.load_manager({"mode": "v1", "paths": {"memory": "/x"}}).to_dict() == {
        "mode": "v1", "paths": {"memory": "/x"}, "created": [], "devices": [], "roots": {}}


def test_new_manager_rejects_bad_cgroups_path():
    with pytest.raises(CgroupError, match="systemd cgroup driver") as e:
        cgroups.new_manager("x", {"cgroupsPath": "system.slice:pyrunc:x"})
    assert e.value.field == "cgroupsPath"
    with pytest.raises(CgroupError, match="invalid cgroupsPath") as e:
        cgroups.new_manager("x", {"cgroupsPath": "/a/../b"})
    assert e.value.field == "cgroupsPath"


def test_new_manager_layout_records_what_it_will_create(tmp_path):
    root, _ = _v2_tree(tmp_path)
    m = cgroups.new_manager("x", {"cgroupsPath": "/a/b"}, _layout={"mode": "v2", "root": str(root)})
    assert m.paths() == {"": str(root / "a" / "b")}
    assert sorted(m.created) == [str(root / "a"), str(root / "a" / "b")]
    m.create()
    assert (root / "a" / "b").is_dir()


# ---------------------------------------------------------------- v1 translation
def test_v1_memory_grows_memsw_first(tmp_path, writes):
    m = _v1(tmp_path, {**{f: "" for f in V1_INTERFACE}, "memory/ctr/memory.memsw.limit_in_bytes": "1000"})
    m.set({"memory": {"limit": 2 ** 20, "swap": 2 ** 21, "reservation": 2 ** 19, "swappiness": 10}})
    assert _names(writes) == [("memory.memsw.limit_in_bytes", str(2 ** 21)),
                              ("memory.limit_in_bytes", str(2 ** 20)),
                              ("memory.soft_limit_in_bytes", str(2 ** 19)), ("memory.swappiness", "10")]


def test_v1_memory_shrinks_limit_first_and_unlimited(tmp_path, writes):
    m = _v1(tmp_path, {**{f: "" for f in V1_INTERFACE}, "memory/ctr/memory.memsw.limit_in_bytes": str(2 ** 30)})
    m.set({"memory": {"limit": 2 ** 20, "swap": 2 ** 20}})
    assert _names(writes) == [("memory.limit_in_bytes", str(2 ** 20)), ("memory.memsw.limit_in_bytes", str(2 ** 20))]
    del writes[:]
    m.set({"memory": {"limit": -1}})  # unlimited memory, swap unset: both unlimited (as runc)
    assert sorted(_names(writes)) == [("memory.limit_in_bytes", "-1"), ("memory.memsw.limit_in_bytes", "-1")]


def test_v1_memory_errors_name_the_field(tmp_path):
    m = _v1(tmp_path, V1_INTERFACE)
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swap: memory\+swap limit") as e:
        m.set({"memory": {"limit": 200, "swap": 100}})
    assert e.value.field == "memory.swap"
    with pytest.raises(CgroupError, match="^linux.resources.memory.swappiness: invalid value 101") as e:
        m.set({"memory": {"swappiness": 101}})
    assert e.value.field == "memory.swappiness"
    os.unlink(m.paths()["memory"] + "/memory.memsw.limit_in_bytes")
    with pytest.raises(CgroupError, match="swap accounting is not enabled") as e:
        m.set({"memory": {"limit": 100, "swap": 300}})
    assert e.value.field == "memory.swap"


def test_v1_cpu_pids_blkio_hugetlb_network(tmp_path, writes):
    m = _v1(tmp_path, {**{f: "" for f in V1_INTERFACE}, "cpu,cpuacct/ctr/cpu.shares": "512"})
    m.set({"cpu": {"shares": 512, "quota": -1, "period": 50000, "realtimePeriod": 1000, "realtimeRuntime": 500,
                   "cpus": "0", "mems": "0"},
           "pids": {"limit": 0},
           "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
           "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}})
    assert _names(writes) == [
        ("cpu.shares", "512"), ("cpu.cfs_period_us", "50000"), ("cpu.cfs_quota_us", "-1"),
        ("cpu.rt_period_us", "1000"), ("cpu.rt_runtime_us", "500"),
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("pids.max", "max"),
        ("blkio.weight", "300"), ("blkio.weight_device", "8:0 100"),
        ("blkio.throttle.read_bps_device", "8:0 1048576"), ("blkio.throttle.write_iops_device", "8:16 100"),
        ("hugetlb.2MB.limit_in_bytes", "4194304"),
        ("net_cls.classid", "1048577"), ("net_prio.ifpriomap", "eth0 5"),
    ]


def test_v1_blkio_weight_falls_back_to_bfq(tmp_path, writes):
    files = [f for f in V1_INTERFACE if "blkio.weight" not in f] + ["blkio/ctr/blkio.bfq.weight"]
    _v1(tmp_path, files).set({"blockIO": {"weight": 300}})
    assert _names(writes) == [("blkio.bfq.weight", "300")]


def test_v1_errors_name_the_field(tmp_path):
    m = _v1(tmp_path, [f for f in V1_INTERFACE if not f.endswith("cpu.idle")])
    with pytest.raises(CgroupError, match="^linux.resources.cpu.idle: cpu.idle is not supported by this kernel") as e:
        m.set({"cpu": {"idle": 1}})
    assert e.value.field == "cpu.idle" and e.value.path.endswith("/cpu.idle")
    with pytest.raises(CgroupError, match="invalid configuration: linux.resources.unified: cannot use unified on cgroup v1") as e:
        m.set({"unified": {"memory.high": "1"}})
    assert e.value.field == "unified"
    with pytest.raises(CgroupError, match="rdma cgroup controller is not mounted on this host") as e:
        m.set({"rdma": {"mlx5_0": {"hcaHandles": 1}}})
    assert e.value.field == "rdma"
    del m._paths["pids"]
    with pytest.raises(CgroupError, match="^linux.resources.pids: pids cgroup controller is not mounted") as e:
        m.set({"pids": {"limit": 5}})
    assert e.value.field == "pids"


def test_v1_devices_allowlist_order(tmp_path, writes):
    m = _v1(tmp_path, V1_INTERFACE, devices=[{"type": "c", "major": 10, "minor": 229, "path": "/dev/fuse"}])
    m.set({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                              "access": "r"}]})
    names = _names(writes)
    assert names[:3] == [("devices.deny", "a"), ("devices.deny", "a"), ("devices.allow", "c 1:3 r")]
    assert ("devices.allow", "c 1:5 rwm") in names  # runc's defaults follow the user's rules
    assert names[-1] == ("devices.allow", "c 10:200 rwm")  # and nothing for linux.devices (as runc)
    assert ("devices.allow", "c 10:229 rwm") not in names
    with pytest.raises(CgroupError, match="invalid access") as e:
        m.set({"devices": [{"allow": True, "access": "rwx"}]})
    assert e.value.field == "devices"


def test_write_error_carries_field_path_errno(tmp_path):
    m = _v1(tmp_path, [f for f in V1_INTERFACE if f != "pids/ctr/pids.max"])
    missing = os.path.join(m.paths()["pids"], "pids.max")
    with pytest.raises(CgroupError) as e:
        cgroups._write(missing, 5, "pids.limit")
    assert str(e.value).startswith(f"linux.resources.pids.limit: cannot write 5 to {missing}: ")
    assert (e.value.field, e.value.path, e.value.errno) == ("pids.limit", missing, errno.ENOENT)
    assert isinstance(e.value, Error)


# ---------------------------------------------------------------- v2 translation
def test_v2_writes_and_enables_controllers(tmp_path, writes):
    m, leaf = _v2(tmp_path, ["memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max",
                             "io.weight", "io.max", "hugetlb.2MB.max", "memory.high", "cgroup.max.depth"])
    m.set({"memory": {"limit": 2 ** 20, "swap": 3 * 2 ** 20, "reservation": 2 ** 19},
           "cpu": {"shares": 1024, "quota": 50000},
           "pids": {"limit": 10},
           "blockIO": {"weight": 1000, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": -1}],
           "unified": {"memory.high": "max", "cgroup.max.depth": "2"}})
    leafw = [(os.path.basename(p), v) for p, v in writes if p.startswith("cg2/ctr/")]
    assert leafw == [("memory.swap.max", str(2 * 2 ** 20)), ("memory.max", str(2 ** 20)), ("memory.low", str(2 ** 19)),
                     ("cpu.weight", "39"), ("cpu.max", "50000 100000"), ("pids.max", "10"),
                     ("io.weight", "default 10000"), ("io.max", "8:0 rbps=max"), ("hugetlb.2MB.max", "max"),
                     ("memory.high", "max"), ("cgroup.max.depth", "2")]
    enabled = [v for p, v in writes if p == "cg2/cgroup.subtree_control"]
    # in the parent, before the first file of each (a regular file here never lists what was enabled)
    assert list(dict.fromkeys(enabled)) == ["+memory", "+cpu", "+pids", "+io", "+hugetlb"]


def test_v2_value_translations():
    assert [v2.shares_to_weight(s) for s in (0, 2, 1024, 262144)] == [0, 1, 39, 10000]
    assert [v2.blkio_weight_to_io_weight(w) for w in (0, 10, 500, 1000)] == [0, 1, 4950, 10000]
    assert v2.swap_to_v2(300, 100) == 200 and v2.swap_to_v2(None, -1) == -1 and v2.swap_to_v2(-1, 100) == -1
    assert v2.cpu_max(None, None) == "" and v2.cpu_max(-1, 20000) == "max 20000"
    assert v2.mem_value(-1) == "max" and v2.mem_value(5) == "5"


def test_v2_errors_name_the_field(tmp_path):
    m, leaf = _v2(tmp_path, ["memory.max"], controllers="memory")
    with pytest.raises(CgroupError, match="^linux.resources.pids.limit: pids cgroup controller is not available") as e:
        m.set({"pids": {"limit": 10}})
    assert e.value.field == "pids.limit"
    with pytest.raises(CgroupError, match="^linux.resources.memory.reservation: memory.low is not supported") as e:
        m.set({"memory": {"reservation": 5}})
    assert e.value.field == "memory.reservation"
    for bad, field in (({"memory": {"swap": 10}}, "memory.swap"), ({"memory": {"limit": 10, "swap": 5}}, "memory.swap"),
                       ({"network": {"classID": 1}}, "network"), ({"cpu": {"realtimePeriod": 5}}, "cpu.realtimePeriod"),
                       ({"unified": {"../x": "1"}}, "unified")):
        with pytest.raises(CgroupError) as e:
            v2.resources_to_files(bad)
        assert e.value.field == field, bad


def test_rdma_v2_line():
    assert v2.resources_to_files({"rdma": {"mlx5_0": {"hcaHandles": 2, "hcaObjects": 3}}}) == [
        ("rdma", "rdma.max", "mlx5_0 hca_handle=2 hca_object=3", "rdma[mlx5_0]")]


# ---------------------------------------------------------------- stats in runc's shape
def test_v1_stats_shape(tmp_path):
    m = _v1(tmp_path, V1_STATS_FILES, mode="hybrid")
    hz = os.sysconf("SC_CLK_TCK")
    s = m.stats()
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s == {
        "cpu": {"usage": {"total": 12345, "percpu": [100, 200], "percpu_kernel": [10, 20], "percpu_user": [90, 180],
                          "kernel": 10 ** 9 // hz, "user": 3 * 10 ** 9 // hz},
                "throttling": {"periods": 4, "throttledPeriods": 2, "throttledTime": 99}},
        "cpuset": {"cpus": [0, 1, 3], "cpu_exclusive": 0, "mems": [0], "mem_hardwall": 1, "mem_exclusive": 0,
                   "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                   "sched_load_balance": 1, "sched_relax_domain_level": -1},
        "memory": {"cache": 4096,
                   "usage": {"limit": 9223372036854771712, "usage": 12288, "max": 20480, "failcnt": 0},
                   "swap": {"limit": 9223372036854771712, "usage": 12288, "failcnt": 0},
                   "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0},
                   "raw": {"cache": 4096, "rss": 8192, "total_cache": 5000}},
        "pids": {"current": 2},
        # runc's v1 order: the bfq group is skipped (its first file is empty), the throttle one used
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 512}, {"major": 8, "op": "Write"}],
                  "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write"}]},
        "hugetlb": {"2MB": {"max": 2097152, "failcnt": 1}},
        "intel_rdt": {}, "network_interfaces": None}
    assert m.oom_count() == 3 and m.oom_control() == m.paths()["memory"]


def test_v2_stats_shape(tmp_path):
    m, leaf = _v2(tmp_path)
    _files(str(leaf), V2_STATS_FILES)
    s = m.stats()
    assert s == {
        "cpu": {"usage": {"total": 10000, "kernel": 4000, "user": 6000},
                "throttling": {"periods": 3, "throttledPeriods": 1, "throttledTime": 7000}},
        "cpuset": NO_CPUSET,
        "memory": {"cache": 100, "usage": {"limit": U64, "usage": 4096, "max": 8192, "failcnt": 2},
                   "swap": {"limit": U64, "failcnt": 0}, "kernel": {"limit": 0, "failcnt": 0},
                   "kernelTCP": {"limit": 0, "failcnt": 0}, "raw": {"anon": 200, "file": 100}},
        "pids": {"current": 3, "limit": 10},
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 512}, {"major": 8, "op": "Write"}],
                  "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write"}]},
        "hugetlb": {"2MB": {"max": U64, "failcnt": 4}},
        "intel_rdt": {}, "network_interfaces": None}
    assert m.oom_count() == 1 and m.oom_control() is None


def test_empty_cgroups_stats_shape(tmp_path):
    empty = {"cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}}, "cpuset": NO_CPUSET, "memory": NO_MEMORY,
             "pids": {}, "blkio": {}, "hugetlb": {}, "intel_rdt": {}, "network_interfaces": None}
    assert _v1(tmp_path / "a").stats() == empty
    m, _ = _v2(tmp_path / "b")
    assert m.stats() == empty


def test_stats_helpers():
    assert stats.cpulist("0-2,5\n") == [0, 1, 2, 5] and stats.cpulist("") == []
    assert stats.omit({"a": 0, "b": "", "c": None, "d": [], "e": {}, "f": 1}) == {"f": 1}


# ---------------------------------------------------------------- placement
def test_place_pid_writes_cgroup_procs_everywhere(tmp_path, writes):
    m = _v1(tmp_path, V1_INTERFACE, mode="hybrid", unified=True)
    pl = m.place(1234)
    assert isinstance(pl, Placement)
    procs = sorted(p for p, v in writes if p.endswith("cgroup.procs") and v == "1234")
    assert len(procs) == len(set(m.paths().values()))


def test_place_self_join_hybrid(tmp_path, writes, monkeypatch):
    from runtime import linux as L
    m = _v1(tmp_path, V1_INTERFACE, mode="hybrid", unified=True)
    pl = m.place(self_join=True)
    v1dirs = sorted({d for c, d in m.paths().items() if c})
    assert pl.tasks == [os.path.join(d, "tasks") for d in v1dirs]
    born = []
    monkeypatch.setattr(L, "clone_into_cgroup", lambda flags, fd: born.append((flags, fd)) or 4321)
    monkeypatch.setattr(cgroups, "_killed_at_birth", lambda pid: False)  # 4321 is no child of ours
    assert pl.spawn(0x20000) == 4321 and born[0][0] == 0x20000
    pl.join()  # in the child: "0" into every tasks file
    for t in pl.tasks:
        assert open(t).read() == "0"
    pl.finish(4321)
    assert [p for p, v in writes if p.endswith("cgroup.procs")] == []  # born in cgroup2, joined v1 itself


def test_place_self_join_falls_back(tmp_path, writes, monkeypatch):
    from runtime import linux as L
    m, leaf = _v2(tmp_path)

    def refuse(flags, fd):
        raise OSError(errno.ENOSYS, "no clone3")
    monkeypatch.setattr(L, "clone_into_cgroup", refuse)
    pl = m.place(self_join=True)
    assert pl.tasks == []  # cgroup2 has no self-join across domains
    assert pl.spawn(fork=lambda: 777) == 777
    pl.finish(777)
    assert writes == [("cg2/ctr/cgroup.procs", "777")]


def test_place_v1_has_no_clone_dir(tmp_path, monkeypatch):
    from runtime import linux as L
    m = _v1(tmp_path, V1_INTERFACE)
    monkeypatch.setattr(L, "clone_into_cgroup", lambda flags, fd: pytest.fail("no cgroup2 on a v1 host"))
    pl = m.place(self_join=True)
    assert pl.spawn(fork=lambda: 55) == 55
    assert m.place().tasks == []  # no self_join: everything by cgroup.procs


def test_cpuset_filled_from_parent_before_entering(tmp_path):
    m = _v1(tmp_path, V1_INTERFACE)
    parent = os.path.dirname(m.paths()["cpuset"])
    _files(parent, {"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"})
    m.place(self_join=True)
    assert open(m.paths()["cpuset"] + "/cpuset.cpus").read() == "0-1"
    assert open(m.paths()["cpuset"] + "/cpuset.mems").read() == "0"


# ---------------------------------------------------------------- freezer, kill, pids
def test_v1_freeze_thaw(tmp_path):
    m = _v1(tmp_path, V1_STATS_FILES)
    assert not m.frozen()
    m.freeze()
    assert m.frozen()
    m.thaw()
    assert not m.frozen()


def test_v2_freeze_and_kill(tmp_path, writes):
    m, leaf = _v2(tmp_path)
    _files(str(leaf), {"cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 1\n", "cgroup.kill": ""})
    m.freeze()
    assert m.frozen()
    m.kill_all(signal.SIGKILL)
    assert writes[-1] == ("cg2/ctr/cgroup.kill", "1")  # SIGKILL: cgroup.kill, no freeze-and-signal


def test_no_freezer(tmp_path):
    m = _v1(tmp_path, V1_INTERFACE)
    del m._paths["freezer"]
    assert not m.frozen()
    with pytest.raises(CgroupError, match="freezer cgroup controller is not available"):
        m.freeze()


def test_pids_recursive(tmp_path):
    m = _v1(tmp_path, V1_INTERFACE)
    d = m.paths()["pids"]
    _files(d, {"cgroup.procs": "5\n3\n", "sub/cgroup.procs": "9\n3\n"})
    assert m.pids() == [3, 5, 9]
    assert m.exists()


# ---------------------------------------------------------------- rootless variants
def test_delegated_manager_drops_device_rules(tmp_path, writes):
    m, leaf = _v2(tmp_path, ["pids.max"])
    d = cg_rootless.DelegatedV2Manager(m.paths(), m.created, roots=m.roots)
    assert isinstance(d, V2Manager) and d.mode == "v2" and d.to_dict()["mode"] == "v2"
    d.set({"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 3}})  # no BPF program
    assert [v for p, v in writes if p.endswith("pids.max")] == ["3"]
    d.set({"devices": []})
    assert d.place(self_join=True).tasks == [] and d.place(self_join=True)._clone_dir is None


def test_caller_cgroups_touch_nothing(tmp_path):
    m, leaf = _v2(tmp_path)
    c = cg_rootless.CallerCgroups(m)
    assert c.to_dict() is None and c.mode == "v2" and c.pids() == []
    c.create()
    c.set({"pids": {"limit": 1}})
    c.place(1234)
    c.destroy()
    with pytest.raises(Error):
        c.kill_all(signal.SIGKILL)
    with pytest.raises(Error):
        c.freeze()
    assert sorted(os.listdir(leaf)) == ["cgroup.controllers", "cgroup.procs", "cgroup.subtree_control"]
    assert (leaf / "cgroup.procs").read_text() == ""


def test_rootless_requested_resources():
    assert cg_rootless._requested({"devices": [{"allow": False}], "memory": {}, "pids": {"limit": 1}}) == ["pids"]


# ---------------------------------------------------------------- update's runc wording
def test_update_runc_messages(tmp_path):
    e = CgroupError("x", field="cpu.shares", kernel=2)
    assert cgroupverbs._runc_message(e, {"cpu": {"shares": 1}}) == "the minimum allowed cpu-shares is 2"
    e = CgroupError("x", field="cpu.shares", kernel=262144)
    assert cgroupverbs._runc_message(e, {"cpu": {"shares": 999999}}) == "the maximum allowed cpu-shares is 262144"
    d = tmp_path / "memory"
    _files(str(d), {"memory.usage_in_bytes": "4096\n", "memory.max_usage_in_bytes": "8192\n"})
    e = CgroupError("busy", field="memory.limit", path=str(d / "memory.limit_in_bytes"), errno=errno.EBUSY)
    assert cgroupverbs._runc_message(e, {"memory": {"limit": 10240}}) == \
        "unable to set memory limit to 10240 (current usage: 4096, peak usage: 8192)"
    e = CgroupError("linux.resources.pids.limit: no", field="pids.limit")
    assert cgroupverbs._runc_message(e, {}) == "linux.resources.pids.limit: no"


def _zombie(killed):
    """A child of ours, dead and not reaped: exited 0, or SIGKILLed."""
    import time
    pid = os.fork()
    if pid == 0:
        if killed:
            time.sleep(60)
        os._exit(0)
    if killed:
        os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # awaited: dead but still there for waitid
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            return pid
        time.sleep(0.005)
    raise AssertionError("the child did not die")


@pytest.mark.parametrize("killed", [False, True], ids=["exited", "sigkilled"])
def test_killed_at_birth_tells_a_quick_exit_from_the_kernels_kill(killed):
    """An intermediate process may send the init's pid and exit before the runtime looks at it:
    a dead child counts as killed at birth only when SIGKILL ended it (else the runtime would
    make a second one, and two inits would report)."""
    pid = _zombie(killed)
    try:
        assert cgroups._killed_at_birth(pid) is killed
    finally:
        os.waitpid(pid, 0)
