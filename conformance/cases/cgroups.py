"""config-linux.md#control-groups: every resource the host's cgroup controllers offer, checked
from outside (the container's own cgroup files, found through /proc/PID/cgroup) and, for a few,
by their effect inside."""

import os
import platform

from ..harness import case, check, eq, Fail, Skip, MUST, SHOULD

CG = "config-linux.md#control-groups"


def cg_dir(t, pid, ctrl):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                return os.path.join(t.host.controllers[ctrl], path.lstrip("/"))
    raise Fail("container process is not in a %s cgroup" % ctrl)


def cg_read(t, resources, ctrl, fname):
    t.linux["resources"] = dict(t.linux.get("resources", {}), **resources)
    t.proc["args"] = ["sleep", "30"]
    cid = t.create()
    pid = t.state(cid)["pid"]
    d = cg_dir(t, pid, ctrl)
    try:
        with open(os.path.join(d, fname)) as f:
            return f.read().strip()
    except OSError as e:
        raise Fail("cannot read %s of the container cgroup: %s" % (fname, e))


def need(ctrl, fname=None):
    return lambda h: h.need_ctrl(ctrl, fname)


def simple(name, section, res, ctrl, fname, want, level=MUST, skipf=None):
    def fn(t):
        got = cg_read(t, res, ctrl, fname)
        if callable(want):
            want(got)
        else:
            eq(got, want, fname)
    case(name, "config-linux.md#" + section, level, skip=skipf or need(ctrl, fname))(fn)


MB = 1 << 20
simple("cgroup-memory-limit", "memory", {"memory": {"limit": 32 * MB}}, "memory",
       "memory.limit_in_bytes", str(32 * MB))
simple("cgroup-memory-limit-unlimited", "memory", {"memory": {"limit": -1}}, "memory",
       "memory.limit_in_bytes", lambda g: check(int(g) > 1 << 60, "limit %s" % g))
simple("cgroup-memory-reservation", "memory", {"memory": {"reservation": 16 * MB}}, "memory",
       "memory.soft_limit_in_bytes", str(16 * MB))
simple("cgroup-memory-swap", "memory", {"memory": {"limit": 32 * MB, "swap": 64 * MB}}, "memory",
       "memory.memsw.limit_in_bytes", str(64 * MB))
simple("cgroup-memory-kernelTCP", "memory", {"memory": {"kernelTCP": 16 * MB}}, "memory",
       "memory.kmem.tcp.limit_in_bytes", str(16 * MB), SHOULD)
simple("cgroup-memory-swappiness", "memory", {"memory": {"swappiness": 13}}, "memory",
       "memory.swappiness", "13")
simple("cgroup-memory-disableOOMKiller", "memory", {"memory": {"disableOOMKiller": True}},
       "memory", "memory.oom_control",
       lambda g: check("oom_kill_disable 1" in g, "oom_control: %r" % g))
simple("cgroup-memory-useHierarchy", "memory", {"memory": {"useHierarchy": True}}, "memory",
       "memory.use_hierarchy", "1")


@case("cgroup-memory-kernel", "config-linux.md#memory", SHOULD,
      skip=lambda h: "kernel memory limits (memory.kmem.limit_in_bytes) are not supported by "
                     "kernel %s" % platform.release()
      if int(platform.release().split(".")[0]) >= 6 else h.need_ctrl("memory",
                                                                     "memory.kmem.limit_in_bytes"))
def _(t):
    eq(cg_read(t, {"memory": {"kernel": 64 * MB}}, "memory", "memory.kmem.limit_in_bytes"),
       str(64 * MB), "memory.kmem.limit_in_bytes")


@case("cgroup-memory-limit-enforced", "config-linux.md#memory", skip=need("memory"))
def _(t):
    t.linux["resources"] = {"memory": {"limit": 16 * MB, "swap": 16 * MB}}
    r = t.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
    check(r.rc != 0, "a 64M buffer fit in a 16M memory limit: %r" % r)


simple("cgroup-cpu-shares", "cpu", {"cpu": {"shares": 512}}, "cpu", "cpu.shares", "512")
simple("cgroup-cpu-quota", "cpu", {"cpu": {"quota": 50000, "period": 100000}}, "cpu",
       "cpu.cfs_quota_us", "50000")
simple("cgroup-cpu-period", "cpu", {"cpu": {"quota": 50000, "period": 200000}}, "cpu",
       "cpu.cfs_period_us", "200000")
simple("cgroup-cpu-burst", "cpu", {"cpu": {"quota": 50000, "period": 100000, "burst": 10000}},
       "cpu", "cpu.cfs_burst_us", "10000")
simple("cgroup-cpu-realtimeRuntime", "cpu",
       {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}, "cpu",
       "cpu.rt_runtime_us", "10000")
simple("cgroup-cpu-realtimePeriod", "cpu",
       {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 500000}}, "cpu",
       "cpu.rt_period_us", "500000")
simple("cgroup-cpu-idle", "cpu", {"cpu": {"idle": 1}}, "cpu", "cpu.idle", "1")
simple("cgroup-cpu-cpus", "cpu", {"cpu": {"cpus": "0"}}, "cpuset", "cpuset.cpus", "0")
simple("cgroup-cpu-mems", "cpu", {"cpu": {"mems": "0"}}, "cpuset", "cpuset.mems", "0")


@case("cgroup-cpu-cpus-effect", "config-linux.md#cpu", skip=need("cpuset"))
def _(t):
    t.linux["resources"] = {"cpu": {"cpus": "0"}}
    out = t.run(["cat", "/proc/self/status"]).ok().out
    eq([l.split()[1] for l in out.splitlines() if l.startswith("Cpus_allowed_list")], ["0"],
       "Cpus_allowed_list")


def _dev_of_root():
    st = os.stat("/")
    return os.major(st.st_dev), os.minor(st.st_dev)


def _blk(name, key, fname):
    def fn(t):
        ma, mi = _dev_of_root()
        got = cg_read(t, {"blockIO": {key: [{"major": ma, "minor": mi, "rate": 1048576}]}},
                      "blkio", fname)
        check("%d:%d 1048576" % (ma, mi) in got.splitlines(), "%s: %r" % (fname, got))
    case(name, "config-linux.md#block-io", skip=need("blkio", fname))(fn)


_blk("cgroup-blkio-throttleReadBpsDevice", "throttleReadBpsDevice",
     "blkio.throttle.read_bps_device")
_blk("cgroup-blkio-throttleWriteBpsDevice", "throttleWriteBpsDevice",
     "blkio.throttle.write_bps_device")
_blk("cgroup-blkio-throttleReadIOPSDevice", "throttleReadIOPSDevice",
     "blkio.throttle.read_iops_device")
_blk("cgroup-blkio-throttleWriteIOPSDevice", "throttleWriteIOPSDevice",
     "blkio.throttle.write_iops_device")
simple("cgroup-blkio-weight", "block-io", {"blockIO": {"weight": 300}}, "blkio", "blkio.weight",
       "300")
simple("cgroup-blkio-leafWeight", "block-io", {"blockIO": {"leafWeight": 300}}, "blkio",
       "blkio.leaf_weight", "300")


@case("cgroup-blkio-weightDevice", "config-linux.md#block-io",
      skip=need("blkio", "blkio.weight_device"))
def _(t):
    ma, mi = _dev_of_root()
    got = cg_read(t, {"blockIO": {"weightDevice": [{"major": ma, "minor": mi, "weight": 300}]}},
                  "blkio", "blkio.weight_device")
    check("%d:%d 300" % (ma, mi) in got, "blkio.weight_device %r" % got)


simple("cgroup-pids-limit", "pids", {"pids": {"limit": 100}}, "pids", "pids.max", "100")


@case("cgroup-pids-limit-enforced", "config-linux.md#pids", skip=need("pids"))
def _(t):
    t.linux["resources"] = {"pids": {"limit": 3}}
    out = t.sh("for i in 1 2 3 4 5 6; do sleep 2 & done 2>/dev/null; "
               "echo started $(jobs -p | wc -l); kill $(jobs -p) 2>/dev/null; true", ok=False)
    check(out.rc != 0 or "started 6" not in out.out, "6 processes started under pids.limit 3: %r"
          % out)


@case("cgroup-hugepageLimits", "config-linux.md#huge-page-limits",
      skip=lambda h: h.need_ctrl("hugetlb"))
def _(t):
    eq(cg_read(t, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}]}, "hugetlb",
               "hugetlb.2MB.limit_in_bytes"), str(4 * MB), "hugetlb.2MB.limit_in_bytes")


@case("cgroup-network-classID", "config-linux.md#network",
      skip=lambda h: h.need_ctrl("net_cls"))
def _(t):
    eq(cg_read(t, {"network": {"classID": 1048577}}, "net_cls", "net_cls.classid"), "1048577",
       "net_cls.classid")


@case("cgroup-network-priorities", "config-linux.md#network",
      skip=lambda h: h.need_ctrl("net_prio"))
def _(t):
    got = cg_read(t, {"network": {"priorities": [{"name": "lo", "priority": 7}]}}, "net_prio",
                  "net_prio.ifpriomap")
    check("lo 7" in got, "ifpriomap %r" % got)


@case("cgroup-rdma", "config-linux.md#rdma", skip=lambda h: h.need_ctrl("rdma"))
def _(t):
    raise Skip("no RDMA devices")


@case("cgroup-unified-missing-controller-error", "config-linux.md#unified",
      skip=lambda h: "pids controller is enabled in the unified hierarchy"
      if "pids" in _unified_ctrls() else None)
def _(t):
    t.linux["resources"] = {"unified": {"pids.max": "10"}}
    t.run(["true"]).fails("unified key of a controller the cgroup2 hierarchy does not have")


def _unified_ctrls():
    for p in ("/sys/fs/cgroup/unified/cgroup.controllers", "/sys/fs/cgroup/cgroup.controllers"):
        try:
            with open(p) as f:
                return f.read().split()
        except OSError:
            pass
    return []


@case("cgroupsPath-absolute", "config-linux.md#cgroups-path", skip=need("memory"))
def _(t):
    t.proc["args"] = ["sleep", "30"]
    cid = t.new_id()
    t.linux["cgroupsPath"] = "/" + cid
    t.create(cid=cid)
    pid = t.state(cid)["pid"]
    for ctrl in ("memory", "pids", "cpu"):
        if ctrl in t.host.controllers:
            eq(cg_dir(t, pid, ctrl), os.path.join(t.host.controllers[ctrl], cid),
               "%s cgroup" % ctrl)


@case("cgroup-limits-apply-to-children", CG, skip=need("pids"))
def _(t):
    t.linux["resources"] = {"pids": {"limit": 50}}
    out = t.sh("cat /proc/self/cgroup | grep pids; sleep 0 & wait")
    check("pids:" in out, "no pids cgroup line: %r" % out)
