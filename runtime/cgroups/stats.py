"""A container's cgroup stats in runc's shape (libcontainer types.Stats, the "data" of `runc events`).

Go's JSON encoder drops zero numbers and empty lists/maps of `omitempty` fields, and writes maps
with sorted keys: the dicts built here follow the same rules and key order, so `events` prints them
as they are. v1 reads one directory per controller (`dirs`), v2 one cgroup2 directory.
Imported only by `events` (Manager.stats).
"""
import os

from runtime.cgroups import _kv, _read

U64_MAX = 2 ** 64 - 1

# what types.Stats.blkio holds, in runc's order
BLKIO_KEYS = ("ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive", "ioServiceTimeRecursive",
              "ioWaitTimeRecursive", "ioMergedRecursive", "ioTimeRecursive", "sectorsRecursive")

_CPUSET_UINTS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance")

# runc's v1 blkio read order: the first group whose first file has entries wins
_BLKIO_GROUPS = (
    (("blkio.bfq.sectors_recursive", "sectorsRecursive"),
     ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.bfq.time_recursive", "ioTimeRecursive"),
     ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.sectors_recursive", "sectorsRecursive"),
     ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.time_recursive", "ioTimeRecursive"),
     ("blkio.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive")),
)


# ---------------------------------------------------------------- Go's encoding rules
def omit(d):
    """Go's omitempty: drop zero numbers, empty strings/lists/maps and None."""
    return {k: v for k, v in d.items() if v not in (0, "", None, [], {})}


def _mem_entry(limit=0, usage=0, max_=0, failcnt=0):
    """types.MemoryData: limit and failcnt always, usage and max when set."""
    out = {"limit": limit}
    if usage:
        out["usage"] = usage
    if max_:
        out["max"] = max_
    out["failcnt"] = failcnt
    return out


def _no_memory():
    return {k: {"limit": 0, "failcnt": 0} for k in ("usage", "swap", "kernel", "kernelTCP")}


def _shape(cpu_usage, throttling, cpuset, memory, pids, blkio, hugetlb):
    return {"cpu": {"usage": cpu_usage, "throttling": throttling}, "cpuset": cpuset, "memory": memory,
            "pids": pids, "blkio": {k: blkio[k] for k in BLKIO_KEYS if blkio.get(k)},
            "hugetlb": {k: hugetlb[k] for k in sorted(hugetlb)}, "intel_rdt": {}, "network_interfaces": None}


def _huge(usage, max_, failcnt):
    return dict(omit({"usage": usage, "max": max_}), failcnt=failcnt)


def _throttling(periods, throttled, time_ns):
    return omit({"periods": periods, "throttledPeriods": throttled, "throttledTime": time_ns})


# ---------------------------------------------------------------- file readers
def _int(path, default=0):
    try:
        v = _read(path).strip()
        return int(v) if v else default
    except (OSError, ValueError):
        return default


def _kv_or_empty(path):
    try:
        return _kv(path)
    except OSError:
        return {}


def _read_or(path, default=""):
    try:
        return _read(path)
    except OSError:
        return default


def cpulist(text):
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


def _blkio_file(path):
    """A v1 blkio stats file ("maj:min Op value" lines, or "maj:min value") as runc's entries."""
    out = []
    for line in _read_or(path).splitlines():
        f = line.replace(":", " ").split()
        if len(f) < 3:
            continue  # the "Total N" line
        try:
            e = {"major": int(f[0]), "minor": int(f[1]), "op": f[2] if len(f) == 4 else "",
                 "value": int(f[3] if len(f) == 4 else f[2])}
        except ValueError:
            continue
        out.append(omit(e))
    return out


# ---------------------------------------------------------------- cgroup v1
def v1(dirs):
    """types.Stats from the v1 controller directories DIRS ({controller: directory})."""
    def on(ctrl, read, default):
        d = dirs.get(ctrl)
        return read(d) if d else default
    usage = on("cpuacct", _v1_cpu_usage, {"kernel": 0, "user": 0})
    st = on("cpu", lambda d: _kv_or_empty(os.path.join(d, "cpu.stat")), {})
    throttling = _throttling(st.get("nr_periods", 0), st.get("nr_throttled", 0), st.get("throttled_time", 0))
    return _shape(usage, throttling, on("cpuset", _v1_cpuset, _cpuset([], [], {}, 0)),
                  on("memory", _v1_memory, _no_memory()), on("pids", _v1_pids, {}), on("blkio", _blkio_v1, {}),
                  on("hugetlb", _v1_hugetlb, {}))


def _v1_cpu_usage(d):
    usage = {"total": _int(os.path.join(d, "cpuacct.usage"))}
    kernel = user = 0
    try:
        usage["percpu"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu")).split()]
        usage["percpu_kernel"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu_sys")).split()]
        usage["percpu_user"] = [int(x) for x in _read(os.path.join(d, "cpuacct.usage_percpu_user")).split()]
    except (FileNotFoundError, ValueError):
        pass
    try:
        # cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds
        st = _kv(os.path.join(d, "cpuacct.stat"))
        hz = os.sysconf("SC_CLK_TCK")
        kernel = st.get("system", 0) * 10 ** 9 // hz
        user = st.get("user", 0) * 10 ** 9 // hz
    except FileNotFoundError:
        pass
    return dict(omit(usage), kernel=kernel, user=user)


def _cpuset(cpus, mems, vals, relax):
    """types.CPUSetStats in Go's field order (cpus and mems omitted when empty)."""
    out = {"cpus": cpus} if cpus else {}
    out["cpu_exclusive"] = vals.get("cpu_exclusive", 0)
    if mems:
        out["mems"] = mems
    for k in _CPUSET_UINTS[1:]:
        out[k] = vals.get(k, 0)
    out["sched_relax_domain_level"] = relax
    return out


def _v1_cpuset(d):
    return _cpuset(cpulist(_read_or(os.path.join(d, "cpuset.cpus"))), cpulist(_read_or(os.path.join(d, "cpuset.mems"))),
                   {k: _int(os.path.join(d, "cpuset." + k)) for k in _CPUSET_UINTS},
                   _int(os.path.join(d, "cpuset.sched_relax_domain_level")))


def _v1_memory(d):
    def entry(prefix):
        lim = _int(os.path.join(d, prefix + "limit_in_bytes"))
        # v1 reports "unlimited" as a huge page-rounded number; runc passes it through as uint64
        return _mem_entry(lim if lim >= 0 else U64_MAX, _int(os.path.join(d, prefix + "usage_in_bytes")),
                          _int(os.path.join(d, prefix + "max_usage_in_bytes")),
                          _int(os.path.join(d, prefix + "failcnt")))
    raw = _kv_or_empty(os.path.join(d, "memory.stat"))
    memory = {"cache": raw["cache"]} if raw.get("cache") else {}
    memory.update(usage=entry("memory."), swap=entry("memory.memsw."), kernel=entry("memory.kmem."),
                  kernelTCP=entry("memory.kmem.tcp."))
    if raw:
        memory["raw"] = dict(sorted(raw.items()))
    return memory


def _v1_pids(d):
    mx = _read_or(os.path.join(d, "pids.max")).strip()
    return omit({"current": _int(os.path.join(d, "pids.current")), "limit": 0 if mx in ("max", "") else int(mx)})


def _v1_hugetlb(d):
    out = {}
    for f in os.listdir(d):
        if f.startswith("hugetlb.") and f.endswith(".limit_in_bytes") and f.count(".") == 2:
            size = f.split(".")[1]
            out[size] = _huge(_int(os.path.join(d, f"hugetlb.{size}.usage_in_bytes")),
                              _int(os.path.join(d, f"hugetlb.{size}.max_usage_in_bytes")),
                              _int(os.path.join(d, f"hugetlb.{size}.failcnt")))
    return out


def _blkio_v1(d):
    got = {}
    for group in _BLKIO_GROUPS:
        for i, (fname, key) in enumerate(group):
            entries = _blkio_file(os.path.join(d, fname))
            if not entries:
                if i == 0:
                    break
                return got
            got[key] = entries
        else:
            return got
    return got


# ---------------------------------------------------------------- cgroup v2
def v2(d):
    """types.Stats from the cgroup2 directory D."""
    def kv(name):
        return _kv_or_empty(os.path.join(d, name))

    def num(name, default=0):
        try:
            v = _read(os.path.join(d, name)).strip()
        except OSError:
            return default
        return U64_MAX if v == "max" else int(v) if v else default
    st = kv("cpu.stat")
    usage = {"total": st.get("usage_usec", 0) * 1000}
    usage = dict(omit(usage), kernel=st.get("system_usec", 0) * 1000, user=st.get("user_usec", 0) * 1000)
    throttling = _throttling(st.get("nr_periods", 0), st.get("nr_throttled", 0), st.get("throttled_usec", 0) * 1000)
    cpuset = _cpuset([], [], {}, 0)  # runc reads no cpuset stats on cgroup v2

    if os.path.exists(os.path.join(d, "memory.current")):
        raw = kv("memory.stat")
        memory = {}
        if raw.get("file"):
            memory["cache"] = raw["file"]
        memory.update(usage=_mem_entry(num("memory.max"), num("memory.current"), num("memory.peak"),
                                       kv("memory.events").get("max", 0)),
                      swap=_mem_entry(num("memory.swap.max"), num("memory.swap.current"), num("memory.swap.peak")),
                      kernel={"limit": 0, "failcnt": 0}, kernelTCP={"limit": 0, "failcnt": 0})
        if raw:
            memory["raw"] = dict(sorted(raw.items()))
    else:
        memory = _no_memory()

    pids = {}
    if os.path.exists(os.path.join(d, "pids.current")):
        mx = num("pids.max")
        pids = omit({"current": num("pids.current"), "limit": 0 if mx == U64_MAX else mx})

    blkio = {}
    if os.path.exists(os.path.join(d, "io.stat")):
        sb, sv = [], []
        for line in _read(os.path.join(d, "io.stat")).splitlines():
            f = line.split()
            if not f or ":" not in f[0]:
                continue
            mj, mn = (int(x) for x in f[0].split(":"))
            vals = dict(x.split("=", 1) for x in f[1:] if "=" in x)
            for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb),
                                 ("rios", "Read", sv), ("wios", "Write", sv)):
                if key in vals:
                    lst.append(omit({"major": mj, "minor": mn, "op": op, "value": int(vals[key])}))
        blkio = {"ioServiceBytesRecursive": sb, "ioServicedRecursive": sv}

    hugetlb = {}
    for f in os.listdir(d):
        if f.startswith("hugetlb.") and f.endswith(".current"):
            size = f.split(".")[1]
            hugetlb[size] = _huge(num(f), num(f"hugetlb.{size}.max"), kv(f"hugetlb.{size}.events").get("max", 0))
    return _shape(usage, throttling, cpuset, memory, pids, blkio, hugetlb)
