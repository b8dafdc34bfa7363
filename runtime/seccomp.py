"""linux.seccomp: validate and compile in the runtime, install it last in the container.

libseccomp is reached through a small private ctypes binding instead of pyseccomp: importing
pyseccomp costs ~27 ms (ctypes.util.find_library forks ldconfig/gcc) and it lacks
seccomp_notify_fd and seccomp_arch_resolve_name. `import runtime.seccomp` loads neither ctypes nor
libseccomp (~0.5 ms from cached bytecode).

Runtime flow: check() (create's validation) and prepare() in the runtime process: prepare()
compiles the profile into a BPF program (libseccomp's filter behind our ENOSYS stub), or takes it
from the cache of compiled filters (runtime/bpfcache.py: engines send one profile for every
container, and compiling it costs 20-25 ms). connect_listener() in the runtime before the clone,
then close_listener(). In the init or exec's process, load() right before execve: one seccomp(2)
call, no libseccomp; if it returns a notify fd, send_notify_fd(), then close the fd.
"""

import errno as _errno
import os

from runtime import SPEC_VERSION
from runtime.errors import Error, why

# libseccomp action values (seccomp.h SCMP_ACT_*); the low 16 bits carry ERRNO/TRACE data.
_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,  # == KILL_THREAD, like libseccomp's own alias
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# Spec architecture constants; libseccomp's name for each is the lower-cased suffix.
_ARCHES = frozenset(
    "SCMP_ARCH_" + a
    for a in (
        "X86 X86_64 X32 ARM AARCH64 MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 "
        "PPC64LE S390 S390X PARISC PARISC64 RISCV64 LOONGARCH64 M68K SH SHEB"
    ).split()
)

# Spec flag -> its seccomp(2) flag bit (load() calls seccomp(2) itself).
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}
_FLAG_NEW_LISTENER = 1 << 3
_FLAG_TSYNC_ESRCH = 1 << 4
_ATTR_CTL_OPTIMIZE = 8

# A syscall the process makes under the filter before the agent holds the notify fd cannot be
# notified: it would wait forever. load() connects to the listener *before* installing the filter,
# so only the handover is left: sendmsg(2), or sendmmsg(2) when the profile notifies sendmsg
# (runc, which hands the fd over otherwise, allows NOTIFY on sendmsg; only both is refused).
# `write` is refused as runc refuses it, with its words.
NOTIFY_FORBIDDEN = frozenset({"write"})
_HANDOVER = ("sendmsg", "sendmmsg")

_MAX_ARGS = 6  # syscall arguments seccomp can look at
_U64 = (1 << 64) - 1

_lib = None
# (listenerPath, connected socket) from connect_listener()/load(), used by send_notify_fd().
_pending = None


def _libseccomp():
    """Load libseccomp once, with prototypes for the handful of calls used here."""
    global _lib
    if _lib is None:
        import ctypes

        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise Error(f"linux.seccomp: cannot load libseccomp: {e}") from None
        vp, u32, i = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int

        class _Version(ctypes.Structure):  # struct scmp_version
            _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

        for name, res, args in (
            ("seccomp_init", vp, (u32,)),
            ("seccomp_release", None, (vp,)),
            ("seccomp_attr_set", i, (vp, i, u32)),
            ("seccomp_arch_resolve_name", u32, (ctypes.c_char_p,)),
            ("seccomp_arch_add", i, (vp, u32)),
            ("seccomp_syscall_resolve_name", i, (ctypes.c_char_p,)),
            ("seccomp_syscall_resolve_name_arch", i, (u32, ctypes.c_char_p)),
            ("seccomp_rule_add_array", i, (vp, u32, i, ctypes.c_uint, vp)),
            ("seccomp_export_bpf", i, (vp, i)),
            ("seccomp_version", ctypes.POINTER(_Version), ()),
            ("seccomp_api_get", ctypes.c_uint, ()),
        ):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _lib = lib
    return _lib


def _uint(v, field, limit):
    # bool is an int subclass; JSON true must not pass as 1.
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit:
        raise Error(f"{field}: must be an integer between 0 and {limit}, got {v!r}")
    return v


def _action(name, errno_ret, field, errno_field):
    """Spec action name (+ optional errno) -> libseccomp action value."""
    if name not in _ACTIONS:
        raise Error(f"{field}: unknown action {name}")
    if errno_ret is None:
        errno_ret = _errno.EPERM  # spec default for ERRNO and TRACE
    elif name not in _ERRNO_ACTIONS:
        # Spec: "When the action doesn't support an errno, the runtime MUST ... fail."
        raise Error(f"{errno_field}: not supported with action {name}")
    else:
        # The action carries 16 bits of data; refuse values that would be silently truncated.
        _uint(errno_ret, errno_field, 0xFFFF)
    value = _ACTIONS[name]
    return value | errno_ret if name in _ERRNO_ACTIONS else value


def _parse(seccomp):
    """Validate linux.seccomp and lower it to a plan of libseccomp values (no libseccomp needed)."""
    p = "linux.seccomp"
    if not isinstance(seccomp, dict):
        raise Error(f"{p}: must be an object")
    default_value = _parse_default(seccomp, p)
    arches = _parse_names(seccomp, p, "architectures", _ARCHES, "architecture")
    flags = _parse_names(seccomp, p, "flags", _FLAGS, "flag")
    listener = _parse_listener(seccomp, p)

    syscalls = seccomp.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise Error(f"{p}.syscalls: must be an array")
    rules = []  # (field, names, action value, [conditions per rule])
    notify = False
    for i, sc in enumerate(syscalls):
        rule, uses_notify = _parse_syscall(sc, f"{p}.syscalls[{i}]")
        notify = notify or uses_notify
        rules.append(rule)

    if notify and listener is None:
        raise Error(f"{p}.listenerPath: required when SCMP_ACT_NOTIFY is used")
    if notify and all(n in _notified(seccomp) for n in _HANDOVER):
        raise Error(f"{p}.syscalls: SCMP_ACT_NOTIFY cannot be used for both sendmsg and sendmmsg "
                    "(the notify fd is handed to the agent with one of them)")
    return {
        "default": default_value,
        "default_name": seccomp.get("defaultAction"),
        "arches": arches,
        "flags": flags,
        "rules": rules,
        "notify": notify,
    }


def _parse_default(seccomp, p):
    """defaultAction (+ defaultErrnoRet) -> the default action's libseccomp value."""
    default = seccomp.get("defaultAction")
    if default is None:
        raise Error(f"{p}.defaultAction: required")
    default_value = _action(
        default, seccomp.get("defaultErrnoRet"), f"{p}.defaultAction", f"{p}.defaultErrnoRet"
    )
    if default == "SCMP_ACT_NOTIFY":
        # Every syscall after load(), including handing over the fd, would wait on a listener
        # that does not have the fd yet.
        raise Error(f"{p}.defaultAction: SCMP_ACT_NOTIFY cannot be used as the default action")
    return default_value


def _parse_names(seccomp, p, key, known, what):
    """architectures or flags: an array of names out of KNOWN."""
    names = seccomp.get(key) or []
    if not isinstance(names, list):
        raise Error(f"{p}.{key}: must be an array")
    for i, name in enumerate(names):
        if name not in known:
            raise Error(f"{p}.{key}[{i}]: unknown {what} {name}")
    return names


def _parse_listener(seccomp, p):
    """listenerPath and listenerMetadata; returns listenerPath (or None). As runc: an empty
    listenerPath is none, and without one listenerMetadata is ignored (SCMP_ACT_NOTIFY then
    fails: it needs a listener)."""
    listener = seccomp.get("listenerPath")
    if listener is not None and not isinstance(listener, str):
        raise Error(f"{p}.listenerPath: must be a string")
    metadata = seccomp.get("listenerMetadata")
    if metadata is not None and not isinstance(metadata, str):
        raise Error(f"{p}.listenerMetadata: must be a string")
    return listener or None


def _parse_syscall(sc, f):
    """One entry of syscalls (field F) -> ((F, names, action value, condition groups), notify?)."""
    if not isinstance(sc, dict):
        raise Error(f"{f}: must be an object")
    names = sc.get("names")
    if not isinstance(names, list) or not names:
        raise Error(f"{f}.names: must contain at least one syscall name")
    for j, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise Error(f"{f}.names[{j}]: must be a non-empty string")
    act = sc.get("action")
    if act is None:
        raise Error(f"{f}.action: required")
    value = _action(act, sc.get("errnoRet"), f"{f}.action", f"{f}.errnoRet")
    notify = act == "SCMP_ACT_NOTIFY"
    if notify:
        bad = NOTIFY_FORBIDDEN.intersection(names)
        if bad:
            raise Error(f"{f}.action: SCMP_ACT_NOTIFY cannot be used for the {sorted(bad)[-1]} syscall")
    args = sc.get("args") or []
    if not isinstance(args, list):
        raise Error(f"{f}.args: must be an array")
    conds = []
    for k, a in enumerate(args):
        conds.append(_parse_arg(a, f"{f}.args[{k}]"))
    return (f, names, value, _rule_groups(conds) if len(conds) > 1 else [conds]), notify


def _parse_arg(a, af):
    """One entry of a syscall's args (field AF) -> (index, operator, value, valueTwo)."""
    if not isinstance(a, dict):
        raise Error(f"{af}: must be an object")
    if a.get("op") not in _OPS:
        raise Error(f"{af}.op: unknown operator {a.get('op')}")
    for key in ("index", "value"):
        if key not in a:
            raise Error(f"{af}.{key}: required")
    return (
        _uint(a["index"], f"{af}.index", _MAX_ARGS - 1),
        _OPS[a["op"]],
        _uint(a["value"], f"{af}.value", _U64),
        _uint(a.get("valueTwo", 0), f"{af}.valueTwo", _U64),
    )


def _rule_groups(conds):
    """The conditions of one syscalls entry, grouped into the libseccomp rules it becomes."""
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        # libseccomp ANDs the comparisons of one rule. Profiles in the wild (Docker's) list the
        # same argument several times meaning "any of these values", and runc honours that by
        # turning every comparison into its own rule (rules are ORed). Do the same.
        return [[c] for c in conds]
    return [conds]


def _arch_token(lib, name, field):
    token = lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
    if not token:
        raise Error(f"{field}: architecture {name} is not supported by this libseccomp")
    return token


def check(seccomp: dict):
    """Validate linux.seccomp in the runtime at create time; raise Error naming the bad field.
    Returns the parsed plan.

    Unknown syscall names are not errors: like runc they are skipped when the filter is built,
    so one profile can serve kernels/libseccomp versions that lack some syscalls.
    """
    plan = _parse(seccomp)
    # The init is cloned from this process and calls load() after pivot_root, where the stdlib's
    # extension modules cannot be found: load what load() and the handover use here.
    import ctypes  # noqa: F401
    from runtime import linux  # noqa: F401 - load()'s seccomp(2)
    lib = _libseccomp()
    if plan["notify"]:
        import array  # noqa: F401
        import json  # noqa: F401
        import socket  # noqa: F401
        import struct  # noqa: F401
    for i, a in enumerate(plan["arches"]):
        _arch_token(lib, a, f"linux.seccomp.architectures[{i}]")
    return plan


def connect_listener(seccomp: dict) -> None:
    """Connect to listenerPath now, for the load()/send_notify_fd() of an init cloned later.

    Call in the runtime (parent) before cloning the init: listenerPath is a host path, invisible
    after pivot_root, and runc also connects with the runtime's own credentials. The cloned child
    inherits the connection; the parent then drops its copy with close_listener(), so the agent
    sees EOF once the child has sent the state. No-op unless SCMP_ACT_NOTIFY is used.
    """
    global _pending
    close_listener()
    path = seccomp.get("listenerPath")
    if path and _uses_notify(seccomp):
        _pending = (path, _connect(path))


def close_listener() -> None:
    """Close this process's copy of the connection opened by connect_listener() (if any)."""
    global _pending
    if _pending is not None:
        _pending[1].close()
        _pending = None


def _notified(seccomp):
    """The names of the syscalls the profile notifies."""
    return {n for sc in seccomp.get("syscalls") or []
            if isinstance(sc, dict) and sc.get("action") == "SCMP_ACT_NOTIFY"
            for n in sc.get("names") or []}


def _uses_notify(seccomp):
    return any(
        isinstance(sc, dict) and sc.get("action") == "SCMP_ACT_NOTIFY"
        for sc in seccomp.get("syscalls") or []
    )


class Filter:
    """A compiled filter: plain data, made in the runtime and loaded in the container."""
    __slots__ = ("program", "bits", "notify", "listener", "mmsg")

    def __init__(self, program, bits, notify, listener, mmsg):
        self.program = program    # packed struct sock_filter: our ENOSYS stub, then libseccomp's
        self.bits = bits          # seccomp(2) flags of linux.seccomp.flags
        self.notify = notify      # SCMP_ACT_NOTIFY is used: load() returns the notify fd
        self.listener = listener  # listenerPath
        self.mmsg = mmsg          # hand the notify fd over with sendmmsg (the profile notifies sendmsg)


def _oserr(rc):
    return _errno.errorcode.get(-rc, str(-rc)) + ": " + os.strerror(-rc)


def prepare(seccomp: dict, cache_root=None) -> Filter:
    """Compile linux.seccomp (the runtime process: libseccomp cannot be found after the init's
    pivot_root). With CACHE_ROOT (the state root), a program compiled before for the same profile,
    libseccomp and kernel is taken from the cache, and a new one is kept there."""
    plan = check(seccomp)
    bits = 0
    for f in plan["flags"]:
        bits |= _FLAGS[f]
    if not plan["notify"]:
        # Without a listener the kernel rejects WAIT_KILLABLE_RECV, and it has no meaning anyway.
        bits &= ~_FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    program = name = None
    if cache_root is not None:
        from . import bpfcache
        name = bpfcache.key(seccomp, *_made_by())
        program = bpfcache.get(cache_root, name)
    if program is None:
        program = _compile(plan)
        if name is not None:
            bpfcache.put(cache_root, name, program)
    mmsg = plan["notify"] and "sendmsg" in _notified(seccomp)
    return Filter(program, bits, plan["notify"], seccomp.get("listenerPath"), mmsg)


def _made_by():
    """What besides the profile decides the program: libseccomp (its syscall tables, its code
    generator), the kernel (its actions and architectures, as libseccomp probes them), and this
    file (the stub, the rules' lowering: any change to it is a new key)."""
    lib = _libseccomp()
    v = lib.seccomp_version().contents
    u = os.uname()
    me = os.stat(__file__)
    return ((v.major, v.minor, v.micro), lib.seccomp_api_get(), u.release, u.machine,
            me.st_size, me.st_mtime_ns)


def _compile(plan):
    """The program: our ENOSYS stub, then libseccomp's filter (seccomp_export_bpf)."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(plan["default"])
    if not ctx:
        raise Error("linux.seccomp.defaultAction: libseccomp rejected the default action")
    try:
        for i, a in enumerate(plan["arches"]):
            field = f"linux.seccomp.architectures[{i}]"
            rc = lib.seccomp_arch_add(ctx, _arch_token(lib, a, field))
            if rc < 0 and rc != -_errno.EEXIST:  # EEXIST: the native arch is always present
                raise Error(f"{field}: adding {a}: {_oserr(rc)}")
        if len(plan["rules"]) > 8:
            # Binary-tree dispatch bounds the per-syscall cost of long profiles; same threshold
            # as runc (entries, not names). Costs ~3 ms more to generate for a Docker-size profile.
            lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)
        _add_rules(lib, ctx, plan)
        return _enosys_stub(lib, plan) + _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


# ------------------------------------------------------------------ the ENOSYS stub
# A syscall the profile does not know must fail with ENOSYS, not with the default action: glibc
# (clone3, close_range, faccessat2...) and other libraries fall back to an older call only on
# ENOSYS, so an older profile with a newer libc would break (EPERM) or kill the process. As
# runc 1.1.5 does (libcontainer/seccomp/patchbpf; checked against it on this machine, see
# tests/test_parity_hooks_seccomp.py), a short program is put before libseccomp's: for each
# architecture the profile lists, a syscall number above the largest one the profile names for
# that architecture (whatever the action of its rule, known names only) returns ENOSYS. Not
# when the default action lets syscalls through (ALLOW, LOG, and TRACE, whose tracer decides),
# and not for architectures the profile does not list (none listed: no stub at all), as runc.
_NO_STUB_DEFAULTS = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_TOKEN = 0x4000003E  # libseccomp's SCMP_ARCH_X32: AUDIT_ARCH_X86_64 syscalls with bit 30
_X32_BIT = 0x40000000
_S390 = (0x16, 0x80000016)  # AUDIT_ARCH_S390, AUDIT_ARCH_S390X
# classic BPF opcodes
_LD_ABS, _JEQ, _JGT, _JSET, _JA, _RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_RET_ENOSYS = _ACTIONS["SCMP_ACT_ERRNO"] | _errno.ENOSYS


def _largest(lib, plan):
    """{audit arch: {libseccomp arch token: largest syscall number named}} for the listed
    architectures that know at least one of the names."""
    names = {n for _, rule_names, _, _ in plan["rules"] for n in rule_names}
    out = {}
    for i, a in enumerate(plan["arches"]):
        token = _arch_token(lib, a, f"linux.seccomp.architectures[{i}]")
        top = -1
        for n in names:
            nr = lib.seccomp_syscall_resolve_name_arch(token, n.encode())
            if nr > top:  # -1: unknown there; other negatives: libseccomp's pseudo-syscalls
                top = nr
        if top > 0:
            native = _AUDIT_ARCH_X86_64 if token == _X32_TOKEN else token
            out.setdefault(native, {})[token] = top
    return out


def _enosys_stub(lib, plan):
    """The stub as packed struct sock_filter, or b"" when none is due."""
    if plan["default_name"] in _NO_STUB_DEFAULTS or not plan["arches"]:
        return b""
    largest = _largest(lib, plan)
    if not largest:
        return b""
    # ("ja", label) jumps are resolved at the end; every conditional jump is a short one
    # within its section, so no offset can exceed the 255 of jt/jf.
    prog = [(_LD_ABS, 0, 0, 4)]  # the architecture
    for n, native in enumerate(largest):
        prog += [(_JEQ, 0, 1, native), ("ja", ("arch", n))]
    prog.append(("ja", "filter"))
    labels = {}

    def above(top):
        return [(_JGT, 0, 1, top), (_RET, 0, 0, _RET_ENOSYS), ("ja", "filter")]

    for n, (native, tops) in enumerate(largest.items()):
        labels[("arch", n)] = len(prog)
        prog.append((_LD_ABS, 0, 0, 0))  # the syscall number
        if native == _AUDIT_ARCH_X86_64:
            # bit 30 tells an x32 syscall from an x86_64 one: each has its own largest
            native64 = above(tops[native]) if native in tops else [("ja", "filter")]
            x32 = above(tops[_X32_TOKEN]) if _X32_TOKEN in tops else [("ja", "filter")]
            prog += [(_JSET, len(native64), 0, _X32_BIT)] + native64 + x32
            continue
        if native in _S390:
            # unknown syscalls reach the filter as number 0 there (the multiplexer)
            prog += [(_JEQ, 0, 1, 0), (_RET, 0, 0, _RET_ENOSYS)]
        prog += above(tops[native])
    labels["filter"] = len(prog)
    import struct
    out = bytearray()
    for pos, ins in enumerate(prog):
        if ins[0] == "ja":
            ins = (_JA, 0, 0, labels[ins[1]] - pos - 1)
        out += struct.pack("=HBBI", *ins)
    return bytes(out)


def _export(lib, ctx):
    """libseccomp's filter as packed struct sock_filter (seccomp_export_bpf into a memfd)."""
    mfd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, mfd)
        if rc < 0:
            raise Error(f"linux.seccomp: exporting the seccomp filter: {_oserr(rc)}")
        size = os.lseek(mfd, 0, os.SEEK_END)
        return os.pread(mfd, size, 0)
    finally:
        os.close(mfd)


def _add_rules(lib, ctx, plan):
    import ctypes

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        ]

    for field, names, action, groups in plan["rules"]:
        if action == plan["default"]:
            # Same as the default: a no-op, and libseccomp refuses it with EACCES.
            continue
        arrays = [(len(g), (ArgCmp * len(g))(*g) if g else None) for g in groups]
        for name in names:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp -> skipped, as runc does
                continue
            for n, arr in arrays:
                rc = lib.seccomp_rule_add_array(ctx, action, nr, n, arr)
                if rc < 0:
                    raise Error(f"{field}: adding rule for syscall {name}: {_oserr(rc)}")


def load(f: Filter):
    """Install the filter F; the caller's next step must be execve. Return the notify fd or None."""
    global _pending, _sendmmsg
    if f.notify:
        # made now, before the filter: under it only the handover's syscall runs
        _sendmmsg = _make_sendmmsg() if f.mmsg else None
        if _pending is None or _pending[0] != f.listener:
            # No connect_listener() beforehand: connect now, still before the filter goes in,
            # so that only sendmsg(2) runs under it.
            close_listener()
            _pending = (f.listener, _connect(f.listener))
        try:
            return _load_raw(f.program, f.bits, True)
        except BaseException:
            close_listener()
            raise
    return _load_raw(f.program, f.bits, False)


def _load_raw(prog_bytes, bits, notify):
    """Load the packed filter PROG_BYTES with seccomp(2) (libseccomp's seccomp_load does the
    same, but needs its context, and 2.5 knows no WAIT_KILLABLE_RECV). Returns the notify fd
    (NOTIFY) or None."""
    import ctypes

    class SockFprog(ctypes.Structure):  # struct sock_fprog
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(prog_bytes, len(prog_bytes))
    prog = SockFprog(len(prog_bytes) // 8, ctypes.addressof(buf))  # sizeof(struct sock_filter)
    if notify:
        bits |= _FLAG_NEW_LISTENER
        if bits & _FLAGS["SECCOMP_FILTER_FLAG_TSYNC"]:
            # TSYNC and NEW_LISTENER both want the return value; ESRCH makes TSYNC failures an errno.
            bits |= _FLAG_TSYNC_ESRCH
    from runtime import linux as L
    SECCOMP_SET_MODE_FILTER = 1
    try:
        fd = L.syscall("seccomp", ctypes.c_long(SECCOMP_SET_MODE_FILTER), ctypes.c_ulong(bits),
                       ctypes.byref(prog))
    except OSError as e:
        raise Error(f"linux.seccomp: loading the seccomp filter: {why(e)}") from None
    return fd if notify else None


def _connect(listener_path):
    """Connect to the seccomp agent; the socket is left blocking with a kernel send timeout."""
    import socket
    import struct

    field = "linux.seccomp.listenerPath"
    dfd = None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.settimeout(LISTENER_TIMEOUT)
        addr = listener_path
        if len(os.fsencode(addr)) >= 108:
            # sun_path is 108 bytes; reach long paths through the directory's O_PATH fd.
            d, base = os.path.split(listener_path)
            dfd = os.open(d or ".", os.O_PATH | os.O_CLOEXEC)
            addr = f"/proc/self/fd/{dfd}/{base}"
        s.connect(addr)
        # Blocking + SO_SNDTIMEO: sending is then exactly one sendmsg(2), no poll/fcntl, and a
        # wedged agent still cannot hang us forever.
        s.settimeout(None)
        tv = struct.pack("@ll", int(LISTENER_TIMEOUT), 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    except OSError as e:
        s.close()
        # runc's words ("failed to connect with seccomp agent"), with the field and the path
        raise Error(f"{field}: failed to connect with seccomp agent at {listener_path}: {why(e)}") from None
    finally:
        if dfd is not None:
            os.close(dfd)
    return s


def send_notify_fd(listener_path: str, notify_fd: int, state: dict, metadata=None) -> None:
    """Send the container process state plus the seccomp notify fd to the listener (SCM_RIGHTS).

    One connection per state, closed afterwards, fd only in the first sendmsg (spec). Reuses the
    connection load() opened before the filter went in, else connects now. The caller still owns
    and closes notify_fd.
    """
    import array
    import json
    import socket

    global _pending
    msg = {"ociVersion": SPEC_VERSION, "fds": ["seccompFd"], "pid": state.get("pid"), "state": state}
    if metadata is not None:
        msg["metadata"] = metadata
    data = json.dumps(msg, separators=(",", ":")).encode()
    if _pending is not None and _pending[0] == listener_path:
        s, _pending = _pending[1], None
    else:
        s = _connect(listener_path)
    with s:
        try:
            if _sendmmsg is not None:
                sent = _sendmmsg(s.fileno(), data, notify_fd)
            else:
                fds = array.array("i", [notify_fd])
                sent = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            if sent < len(data):
                s.sendall(data[sent:])
        except OSError as e:
            raise Error(
                f"linux.seccomp.listenerPath: sending seccomp fd to {listener_path}: "
                f"{why(e)}"
            ) from None


LISTENER_TIMEOUT = 30.0  # seconds; a wedged agent must not hang `create` forever
_sendmmsg = None  # load()'s _make_sendmmsg() when the profile notifies sendmsg


def _make_sendmmsg():
    """A function (sock fd, data, fd to pass) -> bytes sent, that hands the fd over with ONE
    sendmmsg(2) and nothing else: for profiles that notify sendmsg (Python has no sendmmsg)."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.sendmmsg
    call.restype, call.argtypes = ctypes.c_int, (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint,
                                                 ctypes.c_int)

    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    class Msghdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                    ("iov", ctypes.POINTER(Iovec)), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    class Mmsghdr(ctypes.Structure):
        _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]

    hdr_len = struct.calcsize("@Nii")  # struct cmsghdr: len, level, type
    cmsg_len = hdr_len + 4  # CMSG_LEN(sizeof(int))
    space = (cmsg_len + 7) & ~7  # CMSG_SPACE(sizeof(int))
    # everything allocated now: the call itself allocates nothing
    control = ctypes.create_string_buffer(space)
    iov = Iovec()
    msg = Mmsghdr()

    def send(sock, data, fd):
        buf = ctypes.create_string_buffer(data, len(data))
        struct.pack_into("@Nii", control, 0, cmsg_len, 1, 1)  # SOL_SOCKET, SCM_RIGHTS
        struct.pack_into("@i", control, hdr_len, fd)
        iov.base, iov.len = ctypes.addressof(buf), len(data)
        msg.hdr.iov, msg.hdr.iovlen = ctypes.pointer(iov), 1
        msg.hdr.control, msg.hdr.controllen = ctypes.addressof(control), space
        if call(sock, ctypes.addressof(msg), 1, 0) != 1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), "sendmmsg")
        return msg.len

    return send
