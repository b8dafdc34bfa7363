"""cgroup v1 (and hybrid) resource writers: linux.resources -> one controller directory each.

`dirs` maps a v1 controller name to the container's directory in its hierarchy (V1Manager passes
its own); every error is a CgroupError naming the linux.resources field it came from.
"""
import os

from runtime.cgroups import CgroupError, _read, _write, warn

# Devices every runc container may use regardless of linux.resources.devices (runc 1.1 appends
# these after the user's rules): mknod of anything, the standard char devices, ptys and tun.
# Nothing else is appended: the nodes of linux.devices are made in /dev, but whether the
# container may open them is for linux.resources.devices alone, as in runc 1.1 (a deny rule
# there is the last word: e.g. /dev/kmsg listed as a device with "c 1:11" denied stays unreadable).
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def device_rules(devices, resources):
    """The full ordered rule list: the user's rules, then runc's defaults. DEVICES (linux.devices)
    adds no rule (see DEFAULT_DEVICE_RULES)."""
    del devices
    return list(resources.get("devices") or []) + DEFAULT_DEVICE_RULES


def rule_line(rule):
    """A v1 devices.allow/deny line: "c 1:3 rwm", "a" for everything."""
    t = rule.get("type") or "a"
    major, minor = rule.get("major"), rule.get("minor")
    access = rule.get("access") or "rwm"
    if t not in ("a", "b", "c"):
        raise CgroupError(f"linux.resources.devices: invalid type {t!r}", field="devices")
    if any(ch not in "rwm" for ch in access):
        raise CgroupError(f"linux.resources.devices: invalid access {access!r}", field="devices")
    if t == "a" and major in (None, -1) and minor in (None, -1) and access == "rwm":
        return "a"
    mj = "*" if major in (None, -1) else str(int(major))
    mn = "*" if minor in (None, -1) else str(int(minor))
    return f"{t} {mj}:{mn} {access}"


def _need(dirs, ctrl, field):
    d = dirs.get(ctrl)
    if not d:
        raise CgroupError(f"linux.resources.{field}: {ctrl} cgroup controller is not mounted on this host",
                          field=field)
    return d


def _wr(d, name, value, field):
    """Write an interface file the kernel may not have (then say so, naming the field)."""
    p = os.path.join(d, name)
    if not os.path.exists(p):
        raise CgroupError(f"linux.resources.{field}: {name} is not supported by this kernel", field=field, path=p)
    _write(p, value, field)


def _lim(v):
    """-1 (or less) means unlimited in v1 files."""
    return -1 if v is None or v < 0 else int(v)


def set_resources(dirs, r, devices=()):
    """Apply linux.resources R in the v1 directories DIRS; DEVICES is linux.devices (allowed too)."""
    if r.get("unified"):
        raise CgroupError("invalid configuration: linux.resources.unified: cannot use unified on cgroup v1",
                          field="unified")
    _set_memory(dirs, r.get("memory") or {})
    _set_cpu(dirs, r.get("cpu") or {})
    if r.get("pids") is not None and r["pids"].get("limit") is not None:
        lim = r["pids"]["limit"]
        _wr(_need(dirs, "pids", "pids"), "pids.max", "max" if lim <= 0 else int(lim), "pids.limit")
    _set_blkio(dirs, r.get("blockIO") or {})
    _set_hugetlb(dirs, r.get("hugepageLimits") or [])
    _set_network(dirs, r.get("network") or {})
    if r.get("rdma"):
        _need(dirs, "rdma", "rdma")
        raise CgroupError("linux.resources.rdma: not supported by pyrunc", field="rdma")
    if "devices" in r:
        _set_devices(dirs, r, devices)


def _set_devices(dirs, r, devices):
    d = dirs.get("devices")
    if not d:
        warn("devices cgroup controller is not mounted; device rules are not enforced")
        return
    # like runc, the base is deny-all (an allowlist) whatever the rules say; the rules then apply
    # in order, so a later rule overrides an earlier one as the spec says
    _write(os.path.join(d, "devices.deny"), "a", "devices")
    for rule in device_rules(devices, r):
        name = "devices.allow" if rule.get("allow") else "devices.deny"
        _write(os.path.join(d, name), rule_line(rule), "devices")


def _set_memory(dirs, m):
    if not m:
        return
    d = _need(dirs, "memory", "memory")
    limit, swap = m.get("limit"), m.get("swap")
    mem = os.path.join(d, "memory.limit_in_bytes")
    if limit is not None and limit == -1 and swap is None:
        swap = -1  # unlimited memory with unset swap means both unlimited (as runc)
    memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
    if swap is not None and not os.path.exists(memsw):
        if swap not in (0, -1) and (limit is None or swap != limit):
            raise CgroupError("linux.resources.memory.swap: swap accounting is not enabled in this kernel",
                              field="memory.swap", path=memsw)
        swap = None
    if limit is not None and swap is not None:
        if swap != -1 and limit != -1 and swap < limit:
            raise CgroupError("linux.resources.memory.swap: memory+swap limit must be >= memory limit",
                              field="memory.swap")
        # the kernel keeps memory <= memsw at all times: raise memsw first when growing
        cur_sw = int(_read(memsw))
        new_lim = float("inf") if _lim(limit) == -1 else limit
        if new_lim > cur_sw:
            _write(memsw, _lim(swap), "memory.swap")
            _write(mem, _lim(limit), "memory.limit")
        else:
            _write(mem, _lim(limit), "memory.limit")
            _write(memsw, _lim(swap), "memory.swap")
    elif limit is not None:
        _write(mem, _lim(limit), "memory.limit")
    elif swap is not None:
        _write(memsw, _lim(swap), "memory.swap")
    if m.get("reservation") is not None:
        _write(os.path.join(d, "memory.soft_limit_in_bytes"), _lim(m["reservation"]), "memory.reservation")
    if m.get("kernel") is not None:
        warn("linux.resources.memory.kernel is deprecated and ignored")
    if m.get("kernelTCP") is not None:
        tcp = os.path.join(d, "memory.kmem.tcp.limit_in_bytes")
        if os.path.exists(tcp):  # still in v1 memory cgroups (kernel memory itself is gone)
            _write(tcp, _lim(m["kernelTCP"]), "memory.kernelTCP")
        else:
            warn("linux.resources.memory.kernelTCP: not supported by this kernel, ignored")
    sw = m.get("swappiness")
    if sw is not None:
        if not 0 <= sw <= 100:
            raise CgroupError(f"linux.resources.memory.swappiness: invalid value {sw}, valid range is 0-100",
                              field="memory.swappiness")
        _wr(d, "memory.swappiness", int(sw), "memory.swappiness")
    if m.get("disableOOMKiller"):
        _wr(d, "memory.oom_control", 1, "memory.disableOOMKiller")
    if m.get("useHierarchy") is not None:
        want = "1" if m["useHierarchy"] else "0"
        # recent kernels only accept 1 here: skip the write when it already matches
        if _read(os.path.join(d, "memory.use_hierarchy")).strip() != want:
            _wr(d, "memory.use_hierarchy", want, "memory.useHierarchy")
    if m.get("checkBeforeUpdate"):
        pass  # v2-only check in runc; nothing to do on v1


def _set_cpu(dirs, c):
    if not c:
        return
    cpu_keys = ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle", "burst")
    if any(c.get(k) is not None for k in cpu_keys):
        d = _need(dirs, "cpu", "cpu")
        if c.get("shares"):
            _wr(d, "cpu.shares", int(c["shares"]), "cpu.shares")
            got = int(_read(os.path.join(d, "cpu.shares")))
            if got != int(c["shares"]):  # the kernel clamps to [2, 262144]; runc reports it
                raise CgroupError(f"linux.resources.cpu.shares: {c['shares']} is out of range (kernel set {got})",
                                  field="cpu.shares", path=os.path.join(d, "cpu.shares"), kernel=got)
        period, quota = c.get("period"), c.get("quota")
        if period:
            try:
                _wr(d, "cpu.cfs_period_us", int(period), "cpu.period")
            except CgroupError:
                # a shorter period can be refused while the old quota is in force: quota first
                if quota is None:
                    raise
                _wr(d, "cpu.cfs_quota_us", int(quota), "cpu.quota")
                _wr(d, "cpu.cfs_period_us", int(period), "cpu.period")
        if quota is not None and quota != 0:
            _wr(d, "cpu.cfs_quota_us", int(quota) if quota > 0 else -1, "cpu.quota")
        if c.get("burst") is not None:
            _wr(d, "cpu.cfs_burst_us", int(c["burst"]), "cpu.burst")
        # rt: the period must be set before the runtime that has to fit in it
        if c.get("realtimePeriod"):
            _wr(d, "cpu.rt_period_us", int(c["realtimePeriod"]), "cpu.realtimePeriod")
        if c.get("realtimeRuntime"):
            _wr(d, "cpu.rt_runtime_us", int(c["realtimeRuntime"]), "cpu.realtimeRuntime")
        if c.get("idle") is not None:
            _wr(d, "cpu.idle", int(c["idle"]), "cpu.idle")
    if c.get("cpus") or c.get("mems"):
        d = _need(dirs, "cpuset", "cpu.cpus")
        if c.get("cpus"):
            _wr(d, "cpuset.cpus", c["cpus"], "cpu.cpus")
        if c.get("mems"):
            _wr(d, "cpuset.mems", c["mems"], "cpu.mems")


def _dev(e):
    return f"{int(e['major'])}:{int(e['minor'])}"


def _set_blkio(dirs, b):
    if not b:
        return
    d = _need(dirs, "blkio", "blockIO")
    # CFQ's blkio.weight is gone on modern kernels; BFQ's blkio.bfq.weight takes the same range
    wname = "blkio.weight" if os.path.exists(os.path.join(d, "blkio.weight")) else "blkio.bfq.weight"
    if b.get("weight"):
        _wr(d, wname, int(b["weight"]), "blockIO.weight")
    if b.get("leafWeight"):
        _wr(d, "blkio.leaf_weight", int(b["leafWeight"]), "blockIO.leafWeight")
    for e in b.get("weightDevice") or []:
        if e.get("weight"):
            _wr(d, wname + "_device", f"{_dev(e)} {int(e['weight'])}", "blockIO.weightDevice")
        if e.get("leafWeight"):
            _wr(d, "blkio.leaf_weight_device", f"{_dev(e)} {int(e['leafWeight'])}", "blockIO.weightDevice")
    for key, fname in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                       ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                       ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                       ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for e in b.get(key) or []:
            _wr(d, fname, f"{_dev(e)} {int(e['rate'])}", "blockIO." + key)


def _set_hugetlb(dirs, limits):
    if not limits:
        return
    d = _need(dirs, "hugetlb", "hugepageLimits")
    for h in limits:
        _wr(d, f"hugetlb.{h['pageSize']}.limit_in_bytes", int(h["limit"]), f"hugepageLimits[{h['pageSize']}]")


def _set_network(dirs, n):
    if n.get("classID") is not None:
        d = _need(dirs, "net_cls", "network.classID")
        _wr(d, "net_cls.classid", int(n["classID"]), "network.classID")
    for p in n.get("priorities") or []:
        d = _need(dirs, "net_prio", "network.priorities")
        _wr(d, "net_prio.ifpriomap", f"{p['name']} {int(p['priority'])}", "network.priorities")
