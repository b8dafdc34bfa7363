"""linux.memoryPolicy (config-linux.md "Memory policy", spec 1.3): the NUMA policy of the
container's processes, set with set_mempolicy(2) just before execve (it is kept across execve and
inherited by children).

plan() checks the field in the runtime process; apply() is the one syscall in the init (or in an
exec'd process, which does not descend from the init and so gets it set the same way).
"""
import ctypes

from . import linux as L
from .errors import Error, why

MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
         "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14,
         "MPOL_F_NUMA_BALANCING": 1 << 13}
_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")            # set_mempolicy(2): EINVAL with a node
_NEED_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")
_MAX_NODE = 4096 * 8 - 2  # the kernel refuses a maxnode above PAGE_SIZE * 8
F = "config.json: linux.memoryPolicy"


def parse_nodes(text):
    """'0-3,7' -> sorted node numbers; raises ValueError on bad syntax."""
    nodes = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise ValueError(part)
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or b > _MAX_NODE:
            raise ValueError(part)
        nodes.update(range(a, b + 1))
    return sorted(nodes)


def plan(mp):
    """Check linux.memoryPolicy; returns (mode | flags, node mask words, maxnode)."""
    if not isinstance(mp, dict):
        raise Error(f"{F}: must be an object")
    mode = mp.get("mode")
    if mode not in MODES:
        raise Error(f"{F}.mode: unknown or missing mode {mode!r} (one of {', '.join(MODES)})")
    nodes_s = mp.get("nodes", "")
    if not isinstance(nodes_s, str):
        raise Error(f"{F}.nodes: must be a string such as \"0-3,7\"")
    try:
        nodes = parse_nodes(nodes_s)
    except ValueError as e:
        raise Error(f"{F}.nodes: bad node list {nodes_s!r} (at {str(e)!r})") from None
    if nodes and mode in _NO_NODES:
        raise Error(f"{F}.nodes: {mode} takes no nodes")
    if not nodes and mode in _NEED_NODES:
        raise Error(f"{F}.nodes: {mode} needs at least one node")
    flags = 0
    fl = mp.get("flags") or []
    if not isinstance(fl, list):
        raise Error(f"{F}.flags: must be an array of strings")
    for i, f in enumerate(fl):
        if f not in FLAGS:
            raise Error(f"{F}.flags[{i}]: unknown flag {f!r} (one of {', '.join(FLAGS)})")
        flags |= FLAGS[f]
    if flags & FLAGS["MPOL_F_STATIC_NODES"] and flags & FLAGS["MPOL_F_RELATIVE_NODES"]:
        raise Error(f"{F}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
    if flags & (FLAGS["MPOL_F_STATIC_NODES"] | FLAGS["MPOL_F_RELATIVE_NODES"]) and mode in _NO_NODES:
        raise Error(f"{F}.flags: {mode} takes no node flags")
    if flags & FLAGS["MPOL_F_NUMA_BALANCING"] and mode not in ("MPOL_BIND", "MPOL_PREFERRED_MANY"):
        raise Error(f"{F}.flags: MPOL_F_NUMA_BALANCING goes with MPOL_BIND or MPOL_PREFERRED_MANY only")
    words = [0] * ((nodes[-1] // 64 + 1) if nodes else 1)
    for n in nodes:
        words[n // 64] |= 1 << (n % 64)
    # the kernel reads maxnode - 1 bits (a historical off-by-one every caller compensates for)
    return MODES[mode] | flags, words, len(words) * 64 + 1


def apply(planned):
    """set_mempolicy(2) in the calling process."""
    mode, words, maxnode = planned
    mask = (ctypes.c_ulong * len(words))(*words)
    try:
        L.syscall("set_mempolicy", ctypes.c_int(mode), mask, ctypes.c_ulong(maxnode))
    except OSError as e:
        raise Error(f"linux.memoryPolicy: set_mempolicy: {why(e)}") from None
