"""cgroup v2 device access control: a BPF_PROG_TYPE_CGROUP_DEVICE program built from the rules.

cgroup2 has no devices.allow/deny files; the kernel asks a BPF program attached to the cgroup
instead. We assemble it here (a handful of instructions per rule), load it with bpf(2) and attach
it with BPF_F_ALLOW_MULTI, then detach the programs it replaces (all attached programs must allow,
so the overlap is never more permissive than either rule set).
"""
import ctypes
import os
import struct

from runtime.errors import Error, why


BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

# struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# opcodes used
LDX_W = 0x61      # dst = *(u32 *)(src + off)
MOV32_X = 0xbc    # w_dst = w_src
MOV64_K = 0xb7    # dst = imm
RSH32_K = 0x74    # w_dst >>= imm
AND32_K = 0x54    # w_dst &= imm
JNE_K = 0x55      # if dst != imm: pc += off
JSET_K = 0x45     # if dst & imm: pc += off
EXIT = 0x95

# registers after the prologue: r2 = type, r3 = access, r4 = major, r5 = minor
R_TYPE, R_ACC, R_MAJ, R_MIN = 2, 3, 4, 5


def insn(op, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def _prologue():
    return [insn(LDX_W, R_TYPE, 1, 0), insn(MOV32_X, R_ACC, R_TYPE), insn(RSH32_K, R_ACC, imm=16),
            insn(AND32_K, R_TYPE, imm=0xFFFF), insn(LDX_W, R_MAJ, 1, 4), insn(LDX_W, R_MIN, 1, 8)]


def _access_mask(access):
    m = 0
    for ch in access or "rwm":
        m |= {"r": ACC_READ, "w": ACC_WRITE, "m": ACC_MKNOD}.get(ch, 0)
        if ch not in "rwm":
            raise Error(f"linux.resources.devices: invalid access {access!r}")
    return m


def _rule_block(rule):
    """Instructions that return the rule's verdict when the request matches, else fall through."""
    checks = []  # each is (op, reg, imm): jump over the rest of the block when it fires
    t = rule.get("type") or "a"
    if t not in ("a", "b", "c"):
        raise Error(f"linux.resources.devices: invalid type {t!r}")
    if t != "a":
        checks.append((JNE_K, R_TYPE, DEV_CHAR if t == "c" else DEV_BLOCK))
    denied_bits = ~_access_mask(rule.get("access")) & 7
    if denied_bits:
        checks.append((JSET_K, R_ACC, denied_bits))  # asks for an access the rule does not cover
    for key, reg in (("major", R_MAJ), ("minor", R_MIN)):
        v = rule.get(key)
        if v is not None and v != -1:
            checks.append((JNE_K, reg, int(v)))
    n = len(checks)
    out = [insn(op, reg, off=(n - i - 1) + 2, imm=imm) for i, (op, reg, imm) in enumerate(checks)]
    out += [insn(MOV64_K, 0, imm=1 if rule.get("allow") else 0), insn(EXIT)]
    return out


def build_program(rules, default_allow=False):
    """Bytes of the filter: the last matching rule wins (as successive v1 devices.allow/deny writes
    do), so rules are tested newest first; nothing matched -> deny (runc's allowlist base)."""
    prog = _prologue()
    for rule in reversed(rules):
        t = rule.get("type") or "a"
        if t == "a" and rule.get("major") in (None, -1) and rule.get("minor") in (None, -1) \
                and _access_mask(rule.get("access")) == 7:
            default_allow = bool(rule.get("allow"))  # a full wildcard decides everything older
            break
        prog += _rule_block(rule)
    prog += [insn(MOV64_K, 0, imm=1 if default_allow else 0), insn(EXIT)]
    return b"".join(prog)


def _bpf(cmd, attr):
    from .. import linux as L
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    ret = L.syscall("bpf", ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    return ret, buf.raw


def load(prog):
    """BPF_PROG_LOAD the program; returns its fd."""
    insns = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(prog) // 8,
                     ctypes.addressof(insns), ctypes.addressof(lic), 1, len(log), ctypes.addressof(log))
    attr[48:48 + 11] = b"pyrunc_dev\x00"  # prog_name
    try:
        fd, _ = _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise Error(f"linux.resources.devices: cannot load the device filter: {why(e)}" + (f" ({detail[0]})" if detail[0] else "")) from None
    return fd


def _attached(cgfd):
    """Ids of the device programs attached directly to this cgroup."""
    ids = (ctypes.c_uint32 * 64)()
    attr = bytearray(40)
    struct.pack_into("<IIIIQI", attr, 0, cgfd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)
    _, out = _bpf(BPF_PROG_QUERY, attr)
    cnt = struct.unpack_from("<I", out, 24)[0]
    return list(ids[:cnt])


def apply(cgroup_dir, rules):
    """Attach a device filter for `rules` (ordered OCI device rules) to cgroup_dir, replacing ours."""
    prog = build_program(rules)
    cgfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    progfd = None
    try:
        try:
            old = _attached(cgfd)
        except OSError:
            old = []
        progfd = load(prog)
        attr = bytearray(20)
        struct.pack_into("<IIII", attr, 0, cgfd, progfd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        try:
            _bpf(BPF_PROG_ATTACH, attr)
        except OSError as e:
            raise Error(f"linux.resources.devices: cannot attach the device filter to {cgroup_dir}: "
                        f"{why(e)}") from None
        for pid in old:  # the old filter stays until the new one is in force
            attr = bytearray(8)
            struct.pack_into("<I", attr, 0, pid)
            try:
                oldfd, _ = _bpf(BPF_PROG_GET_FD_BY_ID, attr)
            except OSError:
                continue
            try:
                attr = bytearray(20)
                struct.pack_into("<III", attr, 0, cgfd, oldfd, BPF_CGROUP_DEVICE)
                _bpf(BPF_PROG_DETACH, attr)
            except OSError:
                pass
            finally:
                os.close(oldfd)
    finally:
        if progfd is not None:
            os.close(progfd)
        os.close(cgfd)
