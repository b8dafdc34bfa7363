"""cgroup v2 resource writers and the v1->v2 value translations of the OCI fields.

resources_to_files is pure (config -> the file writes, each with the linux.resources field it comes
from); set_resources applies them in one cgroup2 directory.
"""
import os

from runtime.cgroups import CgroupError, _read, _write, warn

MAX_SHARES, MIN_SHARES = 262144, 2


# ---------------------------------------------------------------- pure translations

def shares_to_weight(shares):
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], linearly (runc 1.1's mapping); 0 = unset."""
    if not shares:
        return 0
    return 1 + ((int(shares) - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def cpu_max(quota, period):
    """OCI quota/period -> cpu.max text; "" when neither is set. Quota <= 0 means no limit."""
    if not quota and not period:
        return ""
    period = int(period) if period else 100000  # the kernel's default period
    if quota is None or quota <= 0:
        return f"max {period}"
    return f"{int(quota)} {period}"


def blkio_weight_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000]; 0 = unset."""
    if not weight:
        return 0
    return 1 + (int(weight) - 10) * 9999 // 990


def swap_to_v2(swap, memory):
    """OCI memory.swap is memory+swap (a v1 memsw limit); v2 memory.swap.max is swap alone.

    Returns -1 for "max", 0 for "leave unset"."""
    if memory == -1 and not swap:
        return -1  # unlimited memory with unset swap: both unlimited, like v1
    if swap in (-1, 0, None):
        return swap or 0
    if memory in (None, 0, -1):
        raise CgroupError("linux.resources.memory.swap: cannot set a swap limit without a memory limit",
                          field="memory.swap")
    if memory < 0:
        raise CgroupError(f"linux.resources.memory.limit: invalid value {memory}", field="memory.limit")
    if swap < memory:
        raise CgroupError("linux.resources.memory.swap: memory+swap limit must be >= memory limit",
                          field="memory.swap")
    return swap - memory


def mem_value(v):
    """-1 -> "max"; others as is."""
    return "max" if v is None or v < 0 else str(int(v))


def io_max_lines(block_io):
    """throttle* entries -> io.max lines "maj:min rbps=N" (one key per line, merged by the kernel),
    as (line, OCI key) pairs."""
    out = []
    for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for e in block_io.get(key) or []:
            rate = int(e["rate"])
            out.append((f"{int(e['major'])}:{int(e['minor'])} {name}={rate if rate > 0 else 'max'}", key))
    return out


def resources_to_files(r, have=lambda name: True):
    """linux.resources (minus devices) -> ordered [(controller or "", file, value, field)] for a v2
    cgroup; `field` is the linux.resources field the write comes from ("memory.limit", ...).

    `have(file)` tells whether an optional interface file exists (e.g. io.bfq.weight)."""
    out = []
    _memory_files(r.get("memory") or {}, out)
    _cpu_files(r.get("cpu") or {}, out)
    p = r.get("pids")
    if p and p.get("limit") is not None:
        out.append(("pids", "pids.max", "max" if p["limit"] <= 0 else str(int(p["limit"])), "pids.limit"))
    _io_files(r.get("blockIO") or {}, have, out)
    for h in r.get("hugepageLimits") or []:
        out.append(("hugetlb", f"hugetlb.{h['pageSize']}.max", mem_value(h["limit"]),
                    f"hugepageLimits[{h['pageSize']}]"))
    n = r.get("network") or {}
    if n.get("classID") is not None or n.get("priorities"):
        raise CgroupError("linux.resources.network: net_cls/net_prio do not exist on cgroup v2", field="network")
    for dev, lim in (r.get("rdma") or {}).items():
        parts = []
        if lim.get("hcaHandles") is not None:
            parts.append(f"hca_handle={int(lim['hcaHandles'])}")
        if lim.get("hcaObjects") is not None:
            parts.append(f"hca_object={int(lim['hcaObjects'])}")
        if parts:
            out.append(("rdma", "rdma.max", f"{dev} {' '.join(parts)}", f"rdma[{dev}]"))
    for key, value in (r.get("unified") or {}).items():
        if "/" in key or key.startswith(".") or "." not in key:
            raise CgroupError(f"linux.resources.unified: invalid key {key!r}", field="unified")
        ctrl = key.split(".", 1)[0]
        out.append(("" if ctrl == "cgroup" else ctrl, key, str(value), f"unified[{key}]"))
    return out


def _memory_files(m, out):
    if not m:
        return
    limit = m.get("limit")
    swap = swap_to_v2(m.get("swap"), limit)
    # swap.max first: lowering memory.max while swap.max stays is always fine, and vice versa
    if swap:
        out.append(("memory", "memory.swap.max", mem_value(swap), "memory.swap"))
    if limit:
        out.append(("memory", "memory.max", mem_value(limit), "memory.limit"))
    if m.get("reservation"):
        out.append(("memory", "memory.low", mem_value(m["reservation"]), "memory.reservation"))
    if m.get("disableOOMKiller"):
        warn("linux.resources.memory.disableOOMKiller is not supported on cgroup v2")
    if m.get("swappiness") is not None:
        warn("linux.resources.memory.swappiness is not supported on cgroup v2")
    if m.get("kernel") or m.get("kernelTCP"):
        warn("linux.resources.memory.kernel/kernelTCP are deprecated and ignored")


def _cpu_files(c, out):
    if not c:
        return
    if c.get("realtimeRuntime") or c.get("realtimePeriod"):
        raise CgroupError("linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2",
                          field="cpu.realtimeRuntime" if c.get("realtimeRuntime") else "cpu.realtimePeriod")
    if c.get("shares"):
        out.append(("cpu", "cpu.weight", str(shares_to_weight(c["shares"])), "cpu.shares"))
    cm = cpu_max(c.get("quota"), c.get("period"))
    if cm:
        out.append(("cpu", "cpu.max", cm, "cpu.quota" if c.get("quota") else "cpu.period"))
    if c.get("burst") is not None:
        out.append(("cpu", "cpu.max.burst", str(int(c["burst"])), "cpu.burst"))
    if c.get("idle") is not None:
        out.append(("cpu", "cpu.idle", str(int(c["idle"])), "cpu.idle"))
    if c.get("cpus"):
        out.append(("cpuset", "cpuset.cpus", c["cpus"], "cpu.cpus"))
    if c.get("mems"):
        out.append(("cpuset", "cpuset.mems", c["mems"], "cpu.mems"))


def _io_files(b, have, out):
    if not b:
        return
    # BFQ takes the v1 range directly; the io.weight interface needs converting
    bfq = have("io.bfq.weight")
    if b.get("weight"):
        if bfq:
            out.append(("io", "io.bfq.weight", str(int(b["weight"])), "blockIO.weight"))
        else:
            out.append(("io", "io.weight", f"default {blkio_weight_to_io_weight(b['weight'])}", "blockIO.weight"))
    if b.get("leafWeight"):
        warn("linux.resources.blockIO.leafWeight is not supported on cgroup v2")
    for e in b.get("weightDevice") or []:
        if e.get("weight"):
            dev = f"{int(e['major'])}:{int(e['minor'])}"
            if bfq:
                out.append(("io", "io.bfq.weight", f"{dev} {int(e['weight'])}", "blockIO.weightDevice"))
            else:
                out.append(("io", "io.weight", f"{dev} {blkio_weight_to_io_weight(e['weight'])}",
                            "blockIO.weightDevice"))
    for line, key in io_max_lines(b):
        out.append(("io", "io.max", line, "blockIO." + key))


# ---------------------------------------------------------------- writing

def _enable(root, d, ctrl, field):
    """Make `ctrl` available in d: enable it in the subtree_control of every ancestor up to the
    hierarchy root (runc does the same when it creates the cgroup)."""
    if ctrl in _read(os.path.join(d, "cgroup.controllers")).split():
        return
    root = root.rstrip("/")
    chain, p = [], os.path.dirname(d)
    while p.startswith(root) and len(p) >= len(root):
        chain.append(p)
        if p == root:
            break
        p = os.path.dirname(p)
    for p in reversed(chain):
        if ctrl not in _read(os.path.join(p, "cgroup.controllers")).split():
            raise CgroupError(f"linux.resources.{field}: {ctrl} cgroup controller is not available in {p} "
                              "(cgroup.controllers)", field=field, path=p)
        if ctrl not in _read(os.path.join(p, "cgroup.subtree_control")).split():
            _write(os.path.join(p, "cgroup.subtree_control"), "+" + ctrl, field)


def set_resources(d, root, r, devices=()):
    """Apply linux.resources R in the cgroup2 directory D (ROOT: the hierarchy's mountpoint);
    DEVICES is linux.devices, which adds no rule (v1.device_rules)."""
    files = resources_to_files(r, have=lambda n: os.path.exists(os.path.join(d, n)))
    for ctrl, name, value, field in files:
        if ctrl:
            _enable(root, d, ctrl, field)
        p = os.path.join(d, name)
        if not os.path.exists(p):
            raise CgroupError(f"linux.resources.{field}: {name} is not supported by this kernel "
                              f"({ctrl or 'cgroup'} controller)", field=field, path=p)
        _write(p, value, field)
    if "devices" in r:
        from runtime.cgroups import devices_bpf, v1
        devices_bpf.apply(d, v1.device_rules(devices, r))
