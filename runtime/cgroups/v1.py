"""cgroup v1 (and hybrid) resource writers and stats, one controller directory each."""
import os

from runtime.cgroups import _kv, _read, _write, warn
from runtime.errors import Error

# Devices every runc container may use regardless of linux.resources.devices (runc 1.1 appends
# these after the user's rules): mknod of anything, the standard char devices, ptys and tun.
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

UNLIMITED = -1


def device_rules(mgr, resources):
    """The full ordered rule list: user rules, runc's defaults, then linux.devices (rwm)."""
    rules = list(resources.get("devices") or [])
    rules += DEFAULT_DEVICE_RULES
    for d in mgr.devices:
        if d.get("type") in ("c", "b", "u"):
            rules.append({"allow": True, "type": "c" if d["type"] == "u" else d["type"],
                          "major": d.get("major"), "minor": d.get("minor"), "access": "rwm"})
    return rules


def rule_line(rule):
    """A v1 devices.allow/deny line: "c 1:3 rwm", "a" for everything."""
    t = rule.get("type") or "a"
    major, minor = rule.get("major"), rule.get("minor")
    access = rule.get("access") or "rwm"
    if t not in ("a", "b", "c"):
        raise Error(f"linux.resources.devices: invalid type {t!r}")
    if any(ch not in "rwm" for ch in access):
        raise Error(f"linux.resources.devices: invalid access {access!r}")
    if t == "a" and major in (None, -1) and minor in (None, -1) and access == "rwm":
        return "a"
    mj = "*" if major in (None, -1) else str(int(major))
    mn = "*" if minor in (None, -1) else str(int(minor))
    return f"{t} {mj}:{mn} {access}"


def _need(mgr, ctrl, field):
    d = mgr._v1(ctrl)
    if not d:
        raise Error(f"linux.resources.{field}: {ctrl} cgroup controller is not mounted on this host")
    return d


def _wr(d, name, value, field):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        raise Error(f"linux.resources.{field}: {name} is not supported by this kernel")
    _write(p, value)


def _lim(v):
    """-1 (or less) means unlimited in v1 files."""
    return -1 if v is None or v < 0 else int(v)


def set_resources(mgr, r):
    if r.get("unified"):
        raise Error("linux.resources.unified: cannot use unified resources on cgroup v1")
    _set_memory(mgr, r.get("memory") or {})
    _set_cpu(mgr, r.get("cpu") or {})
    if r.get("pids") is not None and r["pids"].get("limit") is not None:
        lim = r["pids"]["limit"]
        _wr(_need(mgr, "pids", "pids"), "pids.max", "max" if lim <= 0 else int(lim), "pids.limit")
    _set_blkio(mgr, r.get("blockIO") or {})
    _set_hugetlb(mgr, r.get("hugepageLimits") or [])
    _set_network(mgr, r.get("network") or {})
    if r.get("rdma"):
        raise Error("linux.resources.rdma: rdma cgroup controller is not mounted on this host") \
            if not mgr._v1("rdma") else Error("linux.resources.rdma: not supported by pyrunc")
    if "devices" in r:
        _set_devices(mgr, r)


def _set_devices(mgr, r):
    d = mgr._v1("devices")
    if not d:
        warn("devices cgroup controller is not mounted; device rules are not enforced")
        return
    # like runc, the base is deny-all (an allowlist) whatever the rules say; the rules then apply
    # in order, so a later rule overrides an earlier one as the spec says
    _write(os.path.join(d, "devices.deny"), "a")
    for rule in device_rules(mgr, r):
        name = "devices.allow" if rule.get("allow") else "devices.deny"
        _write(os.path.join(d, name), rule_line(rule))


def _set_memory(mgr, m):
    if not m:
        return
    d = _need(mgr, "memory", "memory")
    limit, swap = m.get("limit"), m.get("swap")
    if limit is not None and limit == -1 and swap is None:
        swap = -1  # unlimited memory with unset swap means both unlimited (as runc)
    memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
    if swap is not None and not os.path.exists(memsw):
        if swap not in (0, -1) and (limit is None or swap != limit):
            raise Error("linux.resources.memory.swap: swap accounting is not enabled in this kernel")
        swap = None
    if limit is not None and swap is not None:
        if swap != -1 and limit != -1 and swap < limit:
            raise Error("linux.resources.memory.swap: memory+swap limit must be >= memory limit")
        # the kernel keeps memory <= memsw at all times: raise memsw first when growing
        cur_sw = int(_read(memsw))
        new_lim = float("inf") if _lim(limit) == -1 else limit
        if new_lim > cur_sw:
            _write(memsw, _lim(swap))
            _write(os.path.join(d, "memory.limit_in_bytes"), _lim(limit))
        else:
            _write(os.path.join(d, "memory.limit_in_bytes"), _lim(limit))
            _write(memsw, _lim(swap))
    elif limit is not None:
        _write(os.path.join(d, "memory.limit_in_bytes"), _lim(limit))
    elif swap is not None:
        _write(memsw, _lim(swap))
    if m.get("reservation") is not None:
        _write(os.path.join(d, "memory.soft_limit_in_bytes"), _lim(m["reservation"]))
    if m.get("kernel") is not None:
        warn("linux.resources.memory.kernel is deprecated and ignored")
    if m.get("kernelTCP") is not None:
        tcp = os.path.join(d, "memory.kmem.tcp.limit_in_bytes")
        if os.path.exists(tcp):  # still in v1 memory cgroups (kernel memory itself is gone)
            _write(tcp, _lim(m["kernelTCP"]))
        else:
            warn("linux.resources.memory.kernelTCP: not supported by this kernel, ignored")
    sw = m.get("swappiness")
    if sw is not None:
        if not 0 <= sw <= 100:
            raise Error(f"linux.resources.memory.swappiness: invalid value {sw}, valid range is 0-100")
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


def _set_cpu(mgr, c):
    if not c:
        return
    cpu_keys = ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle", "burst")
    if any(c.get(k) is not None for k in cpu_keys):
        d = _need(mgr, "cpu", "cpu")
        if c.get("shares"):
            _wr(d, "cpu.shares", int(c["shares"]), "cpu.shares")
            got = int(_read(os.path.join(d, "cpu.shares")))
            if got != int(c["shares"]):  # the kernel clamps to [2, 262144]; runc reports it
                raise Error(f"linux.resources.cpu.shares: {c['shares']} is out of range (kernel set {got})")
        period, quota = c.get("period"), c.get("quota")
        if period:
            try:
                _wr(d, "cpu.cfs_period_us", int(period), "cpu.period")
            except Error:
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
        d = _need(mgr, "cpuset", "cpu.cpus")
        if c.get("cpus"):
            _wr(d, "cpuset.cpus", c["cpus"], "cpu.cpus")
        if c.get("mems"):
            _wr(d, "cpuset.mems", c["mems"], "cpu.mems")


def _dev(e):
    return f"{int(e['major'])}:{int(e['minor'])}"


def _set_blkio(mgr, b):
    if not b:
        return
    d = _need(mgr, "blkio", "blockIO")
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


def _set_hugetlb(mgr, limits):
    if not limits:
        return
    d = _need(mgr, "hugetlb", "hugepageLimits")
    for h in limits:
        _wr(d, f"hugetlb.{h['pageSize']}.limit_in_bytes", int(h["limit"]), f"hugepageLimits[{h['pageSize']}]")


def _set_network(mgr, n):
    if n.get("classID") is not None:
        d = _need(mgr, "net_cls", "network.classID")
        _wr(d, "net_cls.classid", int(n["classID"]), "network.classID")
    for p in n.get("priorities") or []:
        d = _need(mgr, "net_prio", "network.priorities")
        _wr(d, "net_prio.ifpriomap", f"{p['name']} {int(p['priority'])}", "network.priorities")


# ---------------------------------------------------------------- stats

def _int(path, default=0):
    try:
        v = _read(path).strip()
        return int(v) if v else default
    except (FileNotFoundError, ValueError, OSError):
        return default


def _u64(v):
    # v1 reports "unlimited" as a huge page-rounded number; runc passes it through as uint64
    return v if v >= 0 else 2 ** 64 - 1


def _blkio_entries(path):
    out = []
    try:
        text = _read(path)
    except (FileNotFoundError, OSError):
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            mj, mn = f[0].split(":")
            out.append({"major": int(mj), "minor": int(mn), "op": f[1], "value": int(f[2])})
        elif len(f) == 2 and ":" in f[0]:
            mj, mn = f[0].split(":")
            out.append({"major": int(mj), "minor": int(mn), "op": "", "value": int(f[1])})
    return out


def stats(mgr):
    s = {}
    d = mgr._v1("cpuacct")
    cpu = {"usage": {}, "throttling": {}}
    if d:
        u = cpu["usage"]
        u["total"] = _int(os.path.join(d, "cpuacct.usage"))
        try:
            u["percpu"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu")).split()]
            u["percpu_kernel"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu_sys")).split()]
            u["percpu_user"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu_user")).split()]
        except (FileNotFoundError, ValueError):
            pass
        try:
            # cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds
            st = _kv(os.path.join(d, "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK")
            u["kernel"] = st.get("system", 0) * 10 ** 9 // hz
            u["user"] = st.get("user", 0) * 10 ** 9 // hz
        except FileNotFoundError:
            pass
    d = mgr._v1("cpu")
    if d:
        try:
            st = _kv(os.path.join(d, "cpu.stat"))
            cpu["throttling"] = {"periods": st.get("nr_periods", 0),
                                 "throttled_periods": st.get("nr_throttled", 0),
                                 "throttled_time": st.get("throttled_time", 0)}
        except FileNotFoundError:
            pass
    s["cpu"] = cpu
    d = mgr._v1("cpuset")
    if d:
        s["cpuset"] = {"cpus": _cpulist(_read_or(os.path.join(d, "cpuset.cpus"))),
                       "mems": _cpulist(_read_or(os.path.join(d, "cpuset.mems")))}
    d = mgr._v1("memory")
    if d:
        raw = {}
        try:
            raw = _kv(os.path.join(d, "memory.stat"))
        except FileNotFoundError:
            pass

        def entry(prefix):
            return {"limit": _u64(_int(os.path.join(d, prefix + "limit_in_bytes"))),
                    "usage": _int(os.path.join(d, prefix + "usage_in_bytes")),
                    "max": _int(os.path.join(d, prefix + "max_usage_in_bytes")),
                    "failcnt": _int(os.path.join(d, prefix + "failcnt"))}
        s["memory"] = {"cache": raw.get("total_cache", raw.get("cache", 0)),
                       "usage": entry("memory."), "swap": entry("memory.memsw."),
                       "kernel": entry("memory.kmem."), "kernelTCP": entry("memory.kmem.tcp."),
                       "raw": raw}
    d = mgr._v1("pids")
    if d:
        mx = _read_or(os.path.join(d, "pids.max")).strip()
        s["pids"] = {"current": _int(os.path.join(d, "pids.current")),
                     "limit": 0 if mx in ("max", "") else int(mx)}
    d = mgr._v1("blkio")
    if d:
        def pick(*names):
            for n in names:
                e = _blkio_entries(os.path.join(d, n))
                if e:
                    return e
            return []
        s["blkio"] = {
            "ioServiceBytesRecursive": pick("blkio.io_service_bytes_recursive",
                                            "blkio.bfq.io_service_bytes_recursive",
                                            "blkio.throttle.io_service_bytes_recursive"),
            "ioServicedRecursive": pick("blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive",
                                        "blkio.throttle.io_serviced_recursive"),
            "ioQueueRecursive": pick("blkio.io_queued_recursive"),
            "ioServiceTimeRecursive": pick("blkio.io_service_time_recursive"),
            "ioWaitTimeRecursive": pick("blkio.io_wait_time_recursive"),
            "ioMergedRecursive": pick("blkio.io_merged_recursive"),
            "ioTimeRecursive": pick("blkio.time_recursive"),
            "sectorsRecursive": pick("blkio.sectors_recursive"),
        }
    d = mgr._v1("hugetlb")
    if d:
        s["hugetlb"] = {}
        for f in sorted(os.listdir(d)):
            if f.startswith("hugetlb.") and f.endswith(".limit_in_bytes") and f.count(".") == 2:
                size = f.split(".")[1]
                s["hugetlb"][size] = {"usage": _int(os.path.join(d, f"hugetlb.{size}.usage_in_bytes")),
                                      "max": _int(os.path.join(d, f"hugetlb.{size}.max_usage_in_bytes")),
                                      "failcnt": _int(os.path.join(d, f"hugetlb.{size}.failcnt"))}
    return s


def _read_or(path, default=""):
    try:
        return _read(path)
    except (FileNotFoundError, OSError):
        return default


def _cpulist(text):
    """ "0-2,5" -> [0, 1, 2, 5]"""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out
