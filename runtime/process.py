"""The process settings of config.md "process" applied in the child just before execve:
rlimits, user and groups, capabilities, noNewPrivileges, oomScoreAdj (the program itself:
runtime/program.py).

Capabilities are set with capset(2) and prctl(2) directly: python-prctl knows neither ambient
capabilities nor CAP_CHECKPOINT_RESTORE (40), both of which config.md allows.
"""
import ctypes
import errno
import os
import resource
import stat

from . import linux as L
from .errors import Error, why
from .plan import Record

CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE")
CAP_INDEX = {n: i for i, n in enumerate(CAPS)}
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

_DEV_NULL = os.makedev(1, 3)
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _last_cap():
    from . import procfs
    try:
        return int(procfs.read("sys/kernel/cap_last_cap"))
    except (OSError, ValueError):
        return len(CAPS) - 1


class Plan(Record):
    """What the child must apply, computed and checked in the runtime process."""
    __slots__ = ("uid", "gid", "groups", "umask", "caps", "rlimits", "nnp", "oom", "cwd", "env",
                 "args", "apparmor", "selinux")


def plan_process(proc, prefix="process"):
    """Check config.md process fields; raises Error naming the bad one."""
    user = proc.get("user") or {}
    caps = None
    given = proc.get("capabilities")
    if given is not None:
        last = _last_cap()
        caps = {}
        for kind in CAP_SETS:
            bits = 0
            for name in given.get(kind) or []:
                idx = CAP_INDEX.get(name)
                if idx is None:
                    # config.md: logged as a warning; the runtime SHOULD NOT fail
                    from . import log
                    log.warning(f"{prefix}.capabilities.{kind}: unknown capability {name!r} ignored")
                    continue
                if idx <= last:  # runc skips capabilities the kernel does not know
                    bits |= 1 << idx
            caps[kind] = bits
    rlimits = []
    seen = set()
    for i, r in enumerate(proc.get("rlimits") or []):
        t = r.get("type")
        if t not in RLIMITS:
            raise Error(f"config.json: {prefix}.rlimits[{i}].type: unknown rlimit {t!r}")
        if t in seen:
            raise Error(f"config.json: {prefix}.rlimits[{i}].type: duplicate rlimit {t!r}")
        seen.add(t)
        soft, hard = r.get("soft", 0), r.get("hard", 0)
        if soft > hard:
            raise Error(f"config.json: {prefix}.rlimits[{i}]: soft limit {soft} exceeds hard limit {hard}")
        rlimits.append((RLIMITS[t], min(soft, 2**64 - 1), min(hard, 2**64 - 1)))
    apparmor = proc.get("apparmorProfile")
    selinux = proc.get("selinuxLabel")
    if apparmor and not os.path.exists("/sys/kernel/security/apparmor"):
        raise Error(f"config.json: {prefix}.apparmorProfile: apparmor is not enabled on this host")
    if selinux and not os.path.exists("/sys/fs/selinux/enforce"):
        raise Error(f"config.json: {prefix}.selinuxLabel: SELinux is not enabled on this host")
    return Plan(uid=user.get("uid", 0), gid=user.get("gid", 0),
                groups=tuple(user.get("additionalGids") or ()), umask=user.get("umask"),
                caps=caps, rlimits=tuple(rlimits), nnp=bool(proc.get("noNewPrivileges")),
                oom=proc.get("oomScoreAdj"), cwd=proc.get("cwd") or "/",
                env=tuple(proc.get("env") or ()), args=tuple(proc.get("args") or ()),
                apparmor=apparmor, selinux=selinux)


def env_dict(env):
    out = {}
    for e in env:
        k, sep, v = e.partition("=")
        if sep:
            out[k] = v
    return out


# ---------------------------------------------------------------- child side
def apply_early(p):
    """Settings that need the runtime's privileges: rlimits and oomScoreAdj."""
    for res, soft, hard in p.rlimits:
        soft = resource.RLIM_INFINITY if soft >= 2**64 - 1 else soft
        hard = resource.RLIM_INFINITY if hard >= 2**64 - 1 else hard
        try:
            # prlimit, not setrlimit: its failures are the kernel's errno (setrlimit's EPERM is a
            # ValueError with Python's own words)
            resource.prlimit(0, res, (soft, hard))
        except (ValueError, OSError) as e:
            raise Error(_rlimit_error(res, soft, hard, e)) from None
    if p.oom is not None:
        from . import procfs
        try:
            procfs.write("self/oom_score_adj", str(p.oom))
        except OSError as e:
            if e.errno == errno.EACCES and _oom_now() == p.oom:
                return  # in a user namespace: the runtime wrote it (runtime/chain/parent.py)
            # a score below the current one needs CAP_SYS_RESOURCE (containerd's CRI gives the
            # pause container -998): name the field, not just "Permission denied"
            raise Error(f"process.oomScoreAdj: setting {p.oom}: {why(e)}") from None


def _oom_now():
    from . import procfs
    try:
        return int(procfs.read("self/oom_score_adj", 64))
    except (OSError, ValueError):
        return None


def _rlimit_error(res, soft, hard, e):
    """One line naming the rlimit, the values and the reason, with the hard limit we have when
    the new one is above it (raising it needs CAP_SYS_RESOURCE, which this runtime lacks)."""
    name = next(k for k, v in RLIMITS.items() if v == res)
    reason = why(e) if isinstance(e, OSError) else "invalid argument"
    try:
        have = resource.getrlimit(res)[1]
    except (ValueError, OSError):
        have = None
    if have is not None and have != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY
                                                                or hard > have):
        reason += f" (above the hard limit {have} this runtime has: raising it needs CAP_SYS_RESOURCE)"
    return f"process.rlimits: {name}: setting soft {soft}, hard {hard}: {reason}"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capset(eff, perm, inh):
    hdr = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (eff >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (perm >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inh >> (32 * i)) & 0xFFFFFFFF
    L.capset(hdr, data)


def fix_stdio(uid):
    """Give fds 0-2 to the container's user (runc's fixStdioPermissions): an engine's pipes are
    root's, mode 0600, and a program that reopens /dev/stdout (nginx's logs, `cat /dev/stdin`)
    would get EACCES once we are that user. /dev/null and what the user owns already are left
    alone; where the kernel refuses (an owner not mapped in our user namespace, a read-only
    /dev) the fd stays as it is, as with runc. Only the owner changes, never the group."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed
        if st.st_uid == uid or (stat.S_ISCHR(st.st_mode) and st.st_rdev == _DEV_NULL):
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise Error(f"process.user.uid: giving stdio fd {fd} to uid {uid}: {why(e)}") from None


def apply_user(p):
    """Drop to the configured user with exactly the configured capabilities (the order matters:
    the bounding set needs CAP_SETPCAP, setuid clears caps unless KEEPCAPS is on)."""
    fix_stdio(p.uid)
    caps = p.caps
    if caps is not None:
        last = _last_cap()
        for i in range(last + 1):
            if not caps["bounding"] >> i & 1:
                _step("process.capabilities.bounding", f"dropping {_cap_name(i)}", L.prctl, PR_CAPBSET_DROP, i)
        _step("process.capabilities", "prctl PR_SET_KEEPCAPS", L.prctl, PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(p.groups)
    except PermissionError as e:
        # denied in a rootless user namespace that maps one gid (runtime/rootless.py): there is
        # nothing to set then, and nothing that could be
        from . import procfs
        if p.groups or procfs.read("self/setgroups").strip() != b"deny":
            raise Error(f"process.user.additionalGids: setgroups: {why(e)}") from None
    except OSError as e:
        raise Error(f"process.user.additionalGids: setgroups: {why(e)}") from None
    _step("process.user.gid", f"setresgid {p.gid}", os.setresgid, p.gid, p.gid, p.gid)
    _step("process.user.uid", f"setresuid {p.uid}", os.setresuid, p.uid, p.uid, p.uid)
    if caps is not None:
        _step("process.capabilities", "prctl PR_SET_KEEPCAPS", L.prctl, PR_SET_KEEPCAPS, 0)
        _step("process.capabilities", "capset", _capset, caps["effective"], caps["permitted"],
              caps["inheritable"])
        _step("process.capabilities.ambient", "clearing the ambient set", L.prctl, PR_CAP_AMBIENT,
              PR_CAP_AMBIENT_CLEAR_ALL)
        for i in range(_last_cap() + 1):
            if caps["ambient"] >> i & 1:
                try:
                    L.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i)
                except OSError:
                    pass  # not in permitted+inheritable: the kernel refuses, runc ignores it too
    if p.umask is not None:
        os.umask(p.umask)
    else:
        os.umask(0o022)
    if p.nnp:
        _step("process.noNewPrivileges", "prctl PR_SET_NO_NEW_PRIVS", L.prctl, L.PR_SET_NO_NEW_PRIVS, 1)


def _step(field, what, call, *args):
    """CALL(*ARGS); an OSError becomes the one-line Error "FIELD: WHAT: reason"."""
    try:
        return call(*args)
    except OSError as e:
        raise Error(f"{field}: {what}: {why(e)}") from None


def _cap_name(i):
    return CAPS[i] if i < len(CAPS) else f"capability {i}"


def seal_imports():
    """From here on the filesystem is the container's: an import would read its files and run
    them with our privileges. Only built-in and frozen modules may still load; everything else the
    child needs was imported before the fork (runtime/chain/__init__.py), so a miss fails loudly."""
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path
                        if getattr(f, "__name__", "") in ("BuiltinImporter", "FrozenImporter")]
    sys.path_hooks.clear()
    sys.path_importer_cache.clear()
