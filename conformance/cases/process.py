"""config.md#process (every field), user, capabilities, rlimits, hostname/domainname, root,
annotations and extensibility."""

import os

from ..harness import case, check, eq, Fail, Skip, MUST, SHOULD, MAY

P = "config.md#process"
LP = "config.md#linux-process"

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def capmask(names):
    m = 0
    for n in names:
        m |= 1 << CAPS.index(n)
    return m


def status(t):
    r = t.run(["cat", "/proc/self/status"]).ok("run")
    out = {}
    for line in r.out.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def setcaps(t, **sets):
    t.proc["capabilities"] = {k: list(v) for k, v in sets.items()}


# ---- args / cwd / env -------------------------------------------------------------------------

@case("process-args", P)
def _(t):
    r = t.run(["echo", "a  b", "", "c"]).ok("run")
    eq(r.out, "a  b  c\n", "output")


@case("process-args-path-lookup", P)
def _(t):
    t.proc["env"] = ["PATH=/usr/bin:/bin"]
    r = t.run(["basename", "/x/yz"]).ok("run")
    eq(r.out.strip(), "yz", "output of a program found through PATH")


@case("process-args-missing-program-error", P)
def _(t):
    r = t.run(["/no/such/program"])
    r.fails("run of a missing program")


@case("process-cwd", P)
def _(t):
    t.proc["cwd"] = "/usr/bin"
    eq(t.sh("pwd").strip(), "/usr/bin", "cwd")


@case("process-env", P)
def _(t):
    t.proc["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "HOME=/root"]
    r = t.run(["cat", "/proc/self/environ"]).ok("run")
    env = [e for e in r.out.split("\0") if e]
    for e in t.proc["env"]:
        check(e in env, "%r missing from the environment %r" % (e, env))


@case("process-env-nothing-extra", P, SHOULD)
def _(t):
    t.proc["env"] = ["PATH=/bin:/usr/bin", "HOME=/root", "TERM=xterm", "ONLY=1"]
    r = t.run(["cat", "/proc/self/environ"]).ok("run")
    env = sorted(e for e in r.out.split("\0") if e)
    eq(env, sorted(t.proc["env"]), "environment")


# ---- user -------------------------------------------------------------------------------------

@case("process-user-uid", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 1234, "gid": 0}
    eq(t.sh("id -u").strip(), "1234", "uid")


@case("process-user-gid", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 0, "gid": 4321}
    eq(t.sh("id -g").strip(), "4321", "gid")


@case("process-user-all-ids", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 1000, "gid": 1001}
    st = status(t)
    eq(st["Uid"].split(), ["1000"] * 4, "real/effective/saved/fs uid")
    eq(st["Gid"].split(), ["1001"] * 4, "real/effective/saved/fs gid")


@case("process-user-additionalGids", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 77, 1000]}
    st = status(t)
    eq(sorted(int(g) for g in st["Groups"].split()), [5, 77, 1000], "supplementary groups")


@case("process-user-no-additionalGids", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 0, "gid": 0}
    st = status(t)
    eq(st["Groups"].split(), [], "supplementary groups")


@case("process-user-umask", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    st = status(t)
    eq(st.get("Umask"), "0027", "umask")


@case("process-user-nonroot-denied", "config.md#posix-platform-user")
def _(t):
    t.proc["user"] = {"uid": 1000, "gid": 1000}
    t.add_mount("/mnt", "tmpfs", "tmpfs", ["mode=755"])
    out = t.sh("touch /mnt/x 2>/dev/null && echo wrote || echo denied")
    eq(out.strip(), "denied", "uid 1000 writing a root-owned 0755 directory")


# ---- terminal ---------------------------------------------------------------------------------

@case("process-terminal-false", P)
def _(t):
    t.proc["terminal"] = False
    out = t.sh("test -t 0 && echo in-tty; test -t 1 && echo out-tty; echo done")
    eq(out.strip(), "done", "stdio are not terminals")


@case("process-terminal-true", P)
def _(t):
    out = t.console_run("test -t 0 && test -t 1 && test -t 2 && echo all-tty; tty")
    check("all-tty" in out, "stdio are not a terminal: %r" % out)
    check("/dev/pts/" in out or "/dev/console" in out, "tty name: %r" % out)


@case("process-consoleSize", P)
def _(t):
    t.proc["consoleSize"] = {"height": 33, "width": 111}
    out = t.console_run("stty size")
    check("33 111" in out, "console size: %r" % out)


@case("process-consoleSize-ignored-without-terminal", P)
def _(t):
    t.proc["terminal"] = False
    t.proc["consoleSize"] = {"height": 33, "width": 111}
    eq(t.sh("echo fine").strip(), "fine", "output")


@case("dev-console-with-terminal", "config-linux.md#default-devices")
def _(t):
    out = t.console_run("test -c /dev/console && echo is-char; "
                        "grep -c ' /dev/console ' /proc/self/mountinfo")
    check("is-char" in out, "/dev/console is not a char device: %r" % out)


# ---- rlimits ----------------------------------------------------------------------------------

RLIMITS = [
    ("RLIMIT_CPU", "Max cpu time", 1000, 2000),
    ("RLIMIT_FSIZE", "Max file size", 1 << 30, 1 << 31),
    ("RLIMIT_DATA", "Max data size", 1 << 30, 1 << 31),
    ("RLIMIT_STACK", "Max stack size", 8 << 20, 16 << 20),
    ("RLIMIT_CORE", "Max core file size", 512, 1024),
    ("RLIMIT_RSS", "Max resident set", 1 << 30, 1 << 31),
    ("RLIMIT_NPROC", "Max processes", 1000, 2000),
    ("RLIMIT_NOFILE", "Max open files", 512, 1000),
    ("RLIMIT_MEMLOCK", "Max locked memory", 65536, 131072),
    ("RLIMIT_AS", "Max address space", 1 << 32, 1 << 33),
    ("RLIMIT_LOCKS", "Max file locks", 100, 200),
    ("RLIMIT_SIGPENDING", "Max pending signals", 100, 200),
    ("RLIMIT_MSGQUEUE", "Max msgqueue size", 8192, 16384),
    ("RLIMIT_NICE", "Max nice priority", 10, 20),
    ("RLIMIT_RTPRIO", "Max realtime priority", 5, 10),
    ("RLIMIT_RTTIME", "Max realtime timeout", 100000, 200000),
]


def _limits(t):
    r = t.run(["cat", "/proc/self/limits"]).ok("run")
    out = {}
    for line in r.out.splitlines()[1:]:
        name = line[:26].strip()
        f = line[26:].split()
        if len(f) >= 2:
            out[name] = (f[0], f[1])
    return out


def _rl_case(num, typ, row, soft0, hard0):
    def fn(t):
        import resource
        soft, hard = soft0, hard0
        _, own_hard = resource.getrlimit(num)
        capeff = int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16)
        if own_hard != resource.RLIM_INFINITY and own_hard < hard and not capeff & (1 << 24):
            if own_hard == 0:
                raise Skip("host hard limit of %s is 0 and CAP_SYS_RESOURCE is missing" % typ)
            hard = own_hard
            soft = min(soft, hard)
        t.proc["rlimits"] = [{"type": typ, "soft": soft, "hard": hard}]
        got = _limits(t).get(row)
        eq(got, (str(soft), str(hard)), "%s (soft, hard)" % typ)
    return fn


for _n, (_typ, _row, _s, _h) in enumerate(RLIMITS):  # listed in kernel numbering order
    case("rlimit-%s" % _typ[7:].lower(), "config.md#posix-process")(
        _rl_case(_n, _typ, _row, _s, _h))


@case("rlimit-unlimited", "config.md#posix-process")
def _(t):
    inf = 2 ** 64 - 1
    t.proc["rlimits"] = [{"type": "RLIMIT_CORE", "soft": inf, "hard": inf}]
    eq(_limits(t).get("Max core file size"), ("unlimited", "unlimited"), "RLIMIT_CORE")


@case("rlimit-invalid-type-error", "config.md#posix-process")
def _(t):
    t.proc["rlimits"] = [{"type": "RLIMIT_NO_SUCH_THING", "soft": 1, "hard": 1}]
    t.run(["true"]).fails("run with an unknown rlimit type")


@case("rlimit-duplicate-error", "config.md#posix-process")
def _(t):
    t.proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                         {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]
    t.run(["true"]).fails("run with duplicated rlimits")


# ---- capabilities -----------------------------------------------------------------------------

SET1 = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]


@case("caps-bounding", LP)
def _(t):
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1)
    eq(int(status(t)["CapBnd"], 16), capmask(SET1), "CapBnd")


@case("caps-effective", LP)
def _(t):
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1)
    eq(int(status(t)["CapEff"], 16), capmask(SET1), "CapEff")


@case("caps-permitted", LP)
def _(t):
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1)
    eq(int(status(t)["CapPrm"], 16), capmask(SET1), "CapPrm")


@case("caps-inheritable", LP)
def _(t):
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1, inheritable=["CAP_KILL"])
    eq(int(status(t)["CapInh"], 16), capmask(["CAP_KILL"]), "CapInh")


@case("caps-ambient-nonroot", LP)
def _(t):
    t.proc["user"] = {"uid": 1000, "gid": 1000}
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1,
            inheritable=["CAP_KILL", "CAP_CHOWN"], ambient=["CAP_KILL", "CAP_CHOWN"])
    st = status(t)
    eq(int(st["CapAmb"], 16), capmask(["CAP_KILL", "CAP_CHOWN"]), "CapAmb")
    eq(int(st["CapEff"], 16), capmask(["CAP_KILL", "CAP_CHOWN"]), "CapEff via ambient")


@case("caps-nonroot-without-ambient", LP)
def _(t):
    t.proc["user"] = {"uid": 1000, "gid": 1000}
    setcaps(t, bounding=SET1, effective=SET1, permitted=SET1)
    st = status(t)
    eq((int(st["CapEff"], 16), int(st["CapAmb"], 16)), (0, 0), "CapEff, CapAmb")


@case("caps-all-empty", LP)
def _(t):
    setcaps(t, bounding=[], effective=[], permitted=[], inheritable=[], ambient=[])
    st = status(t)
    eq([int(st[k], 16) for k in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb")],
       [0] * 5, "all capability sets")


@case("caps-missing-chown-denied", LP)
def _(t):
    t.writable_tmp()
    setcaps(t, bounding=["CAP_KILL"], effective=["CAP_KILL"], permitted=["CAP_KILL"])
    out = t.sh("touch /tmp/f && chown 1000 /tmp/f 2>/dev/null && echo chowned || echo denied")
    eq(out.strip(), "denied", "chown without CAP_CHOWN")


@case("caps-chown-allowed", LP)
def _(t):
    t.writable_tmp()
    setcaps(t, bounding=["CAP_CHOWN"], effective=["CAP_CHOWN"], permitted=["CAP_CHOWN"])
    out = t.sh("touch /tmp/f && chown 1000 /tmp/f 2>/dev/null && echo chowned || echo denied")
    eq(out.strip(), "chowned", "chown with CAP_CHOWN")


@case("caps-unknown-not-fatal", LP, SHOULD)
def _(t):
    setcaps(t, bounding=SET1 + ["CAP_NO_SUCH_CAP"], effective=SET1, permitted=SET1)
    t.run(["true"]).ok("run with an unknown capability")


# ---- noNewPrivileges, oomScoreAdj, scheduler, ioPriority, LSM labels ----------------------------

@case("noNewPrivileges-true", LP)
def _(t):
    t.proc["noNewPrivileges"] = True
    eq(status(t).get("NoNewPrivs"), "1", "NoNewPrivs")


@case("noNewPrivileges-false", LP)
def _(t):
    t.proc["noNewPrivileges"] = False
    eq(status(t).get("NoNewPrivs"), "0", "NoNewPrivs")


@case("oomScoreAdj-set", LP)
def _(t):
    t.proc["oomScoreAdj"] = 123
    eq(t.run(["cat", "/proc/self/oom_score_adj"]).ok().out.strip(), "123", "oom_score_adj")


@case("oomScoreAdj-unset-unchanged", LP)
def _(t):
    t.proc.pop("oomScoreAdj", None)
    with open("/proc/self/oom_score_adj") as f:
        mine = f.read().strip()
    eq(t.run(["cat", "/proc/self/oom_score_adj"]).ok().out.strip(), mine, "oom_score_adj")


@case("scheduler-policy-nice", LP)
def _(t):
    t.proc["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    r = t.run(["cat", "/proc/self/stat", "/proc/self/sched"])
    if r.rc != 0:
        raise Fail("scheduler not applied (run failed: %r)" % r)
    stat = r.out.splitlines()[0].split(")")[-1].split()
    nice, policy = stat[16], stat[38]
    eq((policy, nice), ("3", "7"), "(policy, nice)")


@case("ioPriority", LP)
def _(t):
    t.proc["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    r = t.run(["ionice"])
    if r.rc != 0:
        raise Fail("ioPriority not applied (run failed: %r)" % r)
    check("best-effort" in r.out and "6" in r.out, "io priority: %r" % r.out)


@case("apparmorProfile", LP, skip=lambda h: None if h.apparmor else "AppArmor not enabled on this host")
def _(t):
    t.proc["apparmorProfile"] = "unconfined"
    t.run(["cat", "/proc/self/attr/current"]).ok()


@case("selinuxLabel", LP, skip=lambda h: None if h.selinux else "SELinux not enabled on this host")
def _(t):
    t.proc["selinuxLabel"] = "system_u:system_r:container_t:s0"
    out = t.run(["cat", "/proc/self/attr/current"]).ok().out
    check("container_t" in out, "label %r" % out)


# ---- hostname / domainname ----------------------------------------------------------------------

@case("hostname", "config.md#hostname")
def _(t):
    t.config["hostname"] = "conf-host-x"
    eq(t.sh("hostname").strip(), "conf-host-x", "hostname")


@case("domainname", "config.md#domainname")
def _(t):
    t.config["domainname"] = "conf.example"
    eq(t.sh("cat /proc/sys/kernel/domainname").strip(), "conf.example", "domainname")


@case("hostname-host-unchanged", "config.md#hostname")
def _(t):
    before = os.uname().nodename
    t.config["hostname"] = "conf-other"
    t.sh("hostname")
    eq(os.uname().nodename, before, "host hostname")


# ---- root -----------------------------------------------------------------------------------------

@case("root-readonly", "config.md#root")
def _(t):
    out = t.sh("touch /conformance-ro 2>&1 || echo refused")
    check("refused" in out, "root filesystem is writable: %r" % out)
    check(not os.path.exists(os.path.join(t.config["root"]["path"], "conformance-ro")),
          "file written into the read-only root")


@case("root-readonly-mountinfo", "config.md#root")
def _(t):
    out = t.sh("cat /proc/self/mountinfo")
    root = [l for l in out.splitlines() if l.split()[4] == "/"]
    check(root, "no / in mountinfo")
    check("ro" in root[-1].split()[5].split(","), "/ is not mounted ro: %r" % root[-1])


@case("root-writable", "config.md#root")
def _(t):
    root = t.small_rootfs()
    t.sh("echo data > /written")
    eq(open(os.path.join(root, "written")).read(), "data\n", "file written through the rootfs")


@case("root-path-relative", "config.md#root")
def _(t):
    t.config["root"]["path"] = os.path.relpath(t.config["root"]["path"], t.bundle)
    eq(t.sh("echo relative").strip(), "relative", "output")


# ---- annotations and unknown properties -----------------------------------------------------------

@case("annotations-accepted", "config.md#annotations")
def _(t):
    t.config["annotations"] = {"com.example.a": "1", "org.opencontainers.image.os": "linux"}
    t.run(["true"]).ok("run with annotations")


def _unknown(where):
    def fn(t):
        if where == "top":
            t.config["com.example.unknownTop"] = {"x": [1, 2]}
        elif where == "process":
            t.proc["com.example.unknownProcess"] = True
        elif where == "linux":
            t.linux["com.example.unknownLinux"] = "yes"
        elif where == "mount":
            t.config["mounts"][0]["com.example.unknownMount"] = 1
        elif where == "namespace":
            t.linux["namespaces"][0]["com.example.unknownNs"] = 1
        elif where == "hook":
            t.config["hooks"] = {"poststop": [{"path": "/bin/true",
                                               "com.example.unknownHook": "x"}]}
        elif where == "resources":
            t.linux.setdefault("resources", {})["com.example.unknownRes"] = {}
        eq(t.sh("echo fine").strip(), "fine", "output")
    return fn


for _w in ("top", "process", "linux", "mount", "namespace", "hook", "resources"):
    case("unknown-property-ignored-%s" % _w, "config.md#extensibility")(_unknown(_w))


# ---- invalid values (config.md#valid-values: runtimes MUST generate an error) ----------------------

@case("process-cwd-relative-error", P)
def _(t):
    t.proc["cwd"] = "usr/bin"
    t.run(["true"]).fails("run with a relative process.cwd")


@case("process-args-empty-error", P)
def _(t):
    t.run([]).fails("run with empty process.args")


@case("annotations-empty-key-error", "config.md#annotations")
def _(t):
    t.config["annotations"] = {"": "value"}
    t.run(["true"]).fails("run with an empty annotation key")
