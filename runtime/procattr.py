"""Process attributes beyond user and capabilities: process.ioPriority (ioprio_set),
process.scheduler (sched_setattr) and linux.personality (personality), config.md and
config-linux.md "Personality".

Checked in the runtime process (plan), applied by the init while it still has its privileges
(apply): a real-time policy or a raised I/O class needs CAP_SYS_NICE / CAP_SYS_ADMIN.
"""
import ctypes

from . import linux as L
from .errors import Error, why

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


class Attrs:
    __slots__ = ("ioprio", "sched", "personality")


def plan(proc, linux, prefix="process"):
    """Check the three fields; returns Attrs or None when none is set."""
    io, sc, pers = proc.get("ioPriority"), proc.get("scheduler"), linux.get("personality")
    if io is None and sc is None and pers is None:
        return None
    a = Attrs()
    a.ioprio = a.sched = a.personality = None
    if io is not None:
        cls = IOPRIO_CLASSES.get(io.get("class"))
        if cls is None:
            raise Error(f"config.json: {prefix}.ioPriority.class: unknown class {io.get('class')!r}")
        prio = io.get("priority", 0)
        if not isinstance(prio, int) or not 0 <= prio <= 7:
            raise Error(f"config.json: {prefix}.ioPriority.priority: {prio!r} is not in 0..7")
        a.ioprio = cls << 13 | prio
    if sc is not None:
        a.sched = _plan_sched(sc, prefix + ".scheduler")
    if pers is not None:
        dom = PERSONALITY_DOMAINS.get(pers.get("domain"))
        if dom is None:
            raise Error(f"config.json: linux.personality.domain: unknown domain {pers.get('domain')!r}")
        for f in pers.get("flags") or []:
            # config-linux.md: "Currently no flag values are supported"
            raise Error(f"config.json: linux.personality.flags: unsupported flag {f!r}")
        a.personality = dom
    return a


def _plan_sched(sc, field):
    pol = SCHED_POLICIES.get(sc.get("policy"))
    if pol is None:
        raise Error(f"config.json: {field}.policy: unknown policy {sc.get('policy')!r}")
    flags = 0
    for f in sc.get("flags") or []:
        if f not in SCHED_FLAGS:
            raise Error(f"config.json: {field}.flags: unknown flag {f!r}")
        flags |= SCHED_FLAGS[f]
    nice = sc.get("nice", 0)
    prio = sc.get("priority", 0)
    if not -20 <= nice <= 19:
        raise Error(f"config.json: {field}.nice: {nice} is not in -20..19")
    if pol in (1, 2):  # FIFO, RR: a real-time priority is required
        if not 1 <= prio <= 99:
            raise Error(f"config.json: {field}.priority: {sc.get('policy')} needs a priority in 1..99")
    elif prio:
        raise Error(f"config.json: {field}.priority: must be 0 for {sc.get('policy')}")
    rt, dl, per = sc.get("runtime", 0), sc.get("deadline", 0), sc.get("period", 0)
    if pol != 6 and (rt or dl or per):
        raise Error(f"config.json: {field}: runtime, deadline and period need SCHED_DEADLINE")
    return (pol, flags, nice, prio, rt, dl, per)


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                ("nice", ctypes.c_int32), ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64),
                ("util_min", ctypes.c_uint32), ("util_max", ctypes.c_uint32)]


def apply(a):
    """In the init, before dropping privileges. Raises Error naming the field the kernel refused."""
    if a.sched is not None:
        pol, flags, nice, prio, rt, dl, per = a.sched
        attr = _SchedAttr(ctypes.sizeof(_SchedAttr), pol, flags, nice, prio, rt, dl, per, 0, 1024)
        if flags & (SCHED_FLAGS["SCHED_FLAG_UTIL_CLAMP_MIN"] | SCHED_FLAGS["SCHED_FLAG_UTIL_CLAMP_MAX"]) == 0:
            attr.util_max = 0
        try:
            L.syscall("sched_setattr", ctypes.c_long(0), ctypes.byref(attr), ctypes.c_uint(0))
        except OSError as e:
            raise Error(f"process.scheduler: sched_setattr: {why(e)}") from None
    if a.ioprio is not None:
        try:
            L.syscall("ioprio_set", ctypes.c_int(1), ctypes.c_int(0), ctypes.c_int(a.ioprio))
        except OSError as e:
            raise Error(f"process.ioPriority: ioprio_set: {why(e)}") from None


def apply_personality(a):
    """Last, just before execve: nothing the runtime does afterwards may see a changed uname."""
    if a.personality is not None:
        try:
            L.personality(a.personality)
        except OSError as e:
            raise Error(f"linux.personality: personality: {why(e)}") from None
