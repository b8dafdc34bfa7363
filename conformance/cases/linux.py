"""config-linux.md: sysctl, seccomp, masked and readonly paths, personality, mountLabel, intelRdt,
netDevices, memoryPolicy."""

import os
import subprocess
import uuid

from ..harness import case, check, eq, Fail, Skip, MUST, SHOULD, MAY

L = "config-linux.md"


# ---- sysctl ---------------------------------------------------------------------------------------

def _sysctl(key, val, path):
    def fn(t):
        t.linux["sysctl"] = {key: val}
        eq(t.sh("cat " + path).strip(), val, key)
    return fn


for _k, _v in (("net.ipv4.ip_forward", "1"), ("net.core.somaxconn", "333"),
               ("kernel.msgmax", "9000"), ("kernel.shmmni", "2048"),
               ("net.ipv4.conf.all.forwarding", "1")):
    case("sysctl-%s" % _k, L + "#sysctl")(_sysctl(_k, _v, "/proc/sys/" + _k.replace(".", "/")))


@case("sysctl-host-unchanged", L + "#sysctl")
def _(t):
    with open("/proc/sys/net/core/somaxconn") as f:
        before = f.read()
    t.linux["sysctl"] = {"net.core.somaxconn": "77"}
    t.sh("true")
    with open("/proc/sys/net/core/somaxconn") as f:
        eq(f.read(), before, "host net.core.somaxconn")


# ---- seccomp --------------------------------------------------------------------------------------

def need_seccomp(h):
    return None if h.seccomp else "kernel without seccomp filters"


ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def seccomp(t, rules, default="SCMP_ACT_ALLOW", **extra):
    s = {"defaultAction": default, "architectures": ARCHES, "syscalls": rules}
    s.update(extra)
    t.linux["seccomp"] = s
    return s


SC = L + "#seccomp"


@case("seccomp-filter-installed", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}])
    out = t.run(["cat", "/proc/self/status"]).ok().out
    check("Seccomp:\t2" in out, "process not in seccomp filter mode: %r"
          % [l for l in out.splitlines() if l.startswith("Seccomp")])


@case("seccomp-errno-default-eperm", SC, skip=need_seccomp)
def _(t):
    t.writable_tmp()
    seccomp(t, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    out = t.sh("mkdir /tmp/d 2>&1; test -d /tmp/d && echo created; true")
    check("created" not in out, "mkdir not blocked: %r" % out)


@case("seccomp-errnoRet", SC, skip=need_seccomp)
def _(t):
    t.writable_tmp()
    seccomp(t, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}])
    out = t.sh("mkdir /tmp/d 2>&1; true")
    check("not implemented" in out.lower(), "mkdir error is not ENOSYS: %r" % out)


@case("seccomp-kill", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_KILL"}])
    r = t.run(["uname", "-s"])
    check(r.rc != 0 and "Linux" not in r.out, "uname not killed: %r" % r)


@case("seccomp-kill-process", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}])
    r = t.run(["uname"])
    check(r.rc != 0 and "Linux" not in r.out, "uname not killed: %r" % r)


@case("seccomp-trap", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_TRAP"}])
    r = t.run(["uname"])
    check(r.rc != 0 and "Linux" not in r.out, "uname not trapped: %r" % r)


@case("seccomp-log", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_LOG"}])
    eq(t.run(["uname", "-s"]).ok().out.strip(), "Linux", "uname under SCMP_ACT_LOG")


@case("seccomp-args-filter", SC, skip=need_seccomp)
def _(t):
    # block kill(pid, 0) only: the signal number is argument index 1
    seccomp(t, [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}])
    out = t.sh("kill -0 $$ 2>/dev/null && echo zero-ok || echo zero-blocked; "
               "kill -CONT $$ && echo cont-ok")
    eq(out.split(), ["zero-blocked", "cont-ok"], "argument filter")


@case("seccomp-default-errno-allowlist", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    # inverse: default errno, everything a shell needs allowed except one syscall
    allowed = ["read", "write", "open", "openat", "close", "stat", "fstat", "lstat", "newfstatat",
               "statx", "mmap", "mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask",
               "rt_sigreturn", "ioctl", "access", "execve", "exit", "exit_group", "getpid",
               "getppid", "getuid", "geteuid", "getgid", "getegid", "arch_prctl", "set_tid_address",
               "set_robust_list", "prlimit64", "getcwd", "uname", "fcntl", "dup2", "dup3",
               "wait4", "clone", "clone3", "fork", "vfork", "readlink", "lseek", "getdents64",
               "futex", "sigaltstack", "rseq", "pread64", "getrandom", "setpgid", "getpgrp",
               "capget", "capset", "prctl", "setgroups", "setuid", "setgid", "setresuid",
               "setresgid", "chdir", "fchdir", "getpgid", "poll", "ppoll", "select", "pselect6",
               "pipe", "pipe2", "kill", "tgkill", "gettid", "nanosleep", "clock_nanosleep",
               "seccomp", "sched_getaffinity", "epoll_create1", "epoll_ctl", "epoll_wait",
               "epoll_pwait", "getsid", "setsid", "madvise", "umask", "faccessat", "faccessat2",
               "close_range", "mount", "pivot_root", "umount2", "sethostname", "setdomainname",
               "statfs", "fstatfs", "readlinkat", "fchown", "fchmod", "unshare", "setns",
               "keyctl", "mknod", "mknodat", "symlinkat", "unlinkat", "chown", "fchownat",
               "fchmodat", "utimensat", "socketpair", "sendmsg", "recvmsg", "socket", "connect",
               "sendto", "recvfrom", "getsockname", "fsetxattr", "write", "writev", "readv",
               "waitid", "getrlimit", "setrlimit", "sched_yield", "mount_setattr", "open_tree",
               "move_mount", "fsopen", "fsconfig", "fsmount", "personality", "membarrier",
               "openat2", "pidfd_open", "pidfd_send_signal", "epoll_pwait2", "getxattr",
               "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "chroot", "getpriority",
               "setpriority", "ioprio_set", "sched_setscheduler", "sched_setattr",
               "set_mempolicy", "clock_gettime", "gettimeofday", "time", "sysinfo", "times",
               "getresuid", "getresgid", "getgroups", "setsockopt", "bind", "listen", "shutdown"]
    t.writable_tmp()
    seccomp(t, [{"names": allowed, "action": "SCMP_ACT_ALLOW"}], default="SCMP_ACT_ERRNO")
    out = t.sh("echo shell-ok; mkdir /tmp/d 2>/dev/null && echo mk-ok || echo mk-blocked")
    eq(out.split(), ["shell-ok", "mk-blocked"], "default action with an allow list")


@case("seccomp-invalid-action-error", SC, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_NO_SUCH_ACTION"}])
    t.run(["true"]).fails("seccomp with an unknown action")


@case("seccomp-without-noNewPrivileges", SC, skip=need_seccomp)
def _(t):
    t.proc["noNewPrivileges"] = False
    seccomp(t, [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}])
    r = t.run(["cat", "/proc/self/status"]).ok()
    check("Seccomp:\t2" in r.out, "filter not installed without noNewPrivileges")


@case("seccomp-unknown-syscall-ignored", SC, SHOULD, skip=need_seccomp)
def _(t):
    seccomp(t, [{"names": ["conformance_no_such_syscall", "acct"], "action": "SCMP_ACT_ERRNO"}])
    eq(t.sh("echo ok").strip(), "ok", "output")


# ---- masked / readonly paths ------------------------------------------------------------------------

def _procfile(cands):
    for c in cands:
        if os.path.exists(c):
            return c
    raise Skip("none of %s exists on this host" % cands)


@case("maskedPaths-file", L + "#masked-paths")
def _(t):
    f = _procfile(["/proc/kcore", "/proc/timer_list", "/proc/sched_debug", "/proc/keys"])
    t.linux["maskedPaths"] = [f]
    eq(t.sh("wc -c < %s" % f).strip(), "0", "bytes readable from masked %s" % f)


@case("maskedPaths-dir", L + "#masked-paths")
def _(t):
    t.linux["maskedPaths"] = ["/proc/acpi", "/sys/firmware"]
    eq(t.sh("ls -A /sys/firmware | wc -l").strip(), "0", "entries in masked /sys/firmware")


@case("maskedPaths-dir-not-writable", L + "#masked-paths")
def _(t):
    t.linux["maskedPaths"] = ["/sys/firmware"]
    out = t.sh("touch /sys/firmware/x 2>/dev/null && echo wrote || echo refused")
    eq(out.strip(), "refused", "write into a masked directory")


@case("maskedPaths-custom", L + "#masked-paths")
def _(t):
    t.linux["maskedPaths"] = ["/etc/passwd"]
    eq(t.sh("wc -c < /etc/passwd").strip(), "0", "bytes readable from masked /etc/passwd")


@case("maskedPaths-missing-ignored", L + "#masked-paths", SHOULD)
def _(t):
    t.linux["maskedPaths"] = ["/proc/conformance-no-such-file"]
    eq(t.sh("echo ok").strip(), "ok", "output")


@case("readonlyPaths-proc-sys", L + "#readonly-paths")
def _(t):
    t.linux["readonlyPaths"] = ["/proc/sys"]
    out = t.sh("echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote || echo refused")
    eq(out.strip(), "refused", "write to read-only /proc/sys")


@case("readonlyPaths-file", L + "#readonly-paths")
def _(t):
    f = _procfile(["/proc/sysrq-trigger", "/proc/timer_list", "/proc/keys", "/proc/cpuinfo"])
    t.linux["readonlyPaths"] = [f]
    out = t.sh("grep ' %s ' /proc/self/mountinfo; true" % f)
    check(out and "ro" in out.split()[5].split(","), "%s not mounted ro: %r" % (f, out))


@case("readonlyPaths-custom-mount", L + "#readonly-paths")
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    t.linux["readonlyPaths"] = ["/mnt"]
    out = t.sh("touch /mnt/x 2>/dev/null && echo wrote || echo refused")
    eq(out.strip(), "refused", "write to a read-only path")


@case("readonlyPaths-missing-ignored", L + "#readonly-paths", SHOULD)
def _(t):
    t.linux["readonlyPaths"] = ["/proc/conformance-no-such-dir"]
    eq(t.sh("echo ok").strip(), "ok", "output")


# ---- personality, mountLabel, intelRdt, netDevices, memoryPolicy ------------------------------------

@case("personality-linux32", L + "#personality")
def _(t):
    t.linux["personality"] = {"domain": "LINUX32"}
    out = t.sh("uname -m").strip()
    check(out in ("i686", "i386", "armv7l", "armv8l", "s390", "ppc"), "uname -m %r" % out)


@case("personality-linux", L + "#personality")
def _(t):
    t.linux["personality"] = {"domain": "LINUX"}
    eq(t.sh("uname -m").strip(), os.uname().machine, "uname -m")


@case("mountLabel", L + "#mount-label",
      skip=lambda h: None if h.selinux else "SELinux not enabled on this host")
def _(t):
    t.linux["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    out = t.sh("grep ' /mnt ' /proc/self/mountinfo")
    check("context=" in out, "no SELinux context on the mount: %r" % out)


@case("intelRdt-without-resctrl-error", L + "#intelrdt",
      skip=lambda h: "resctrl is mounted on this host" if h.resctrl else None)
def _(t):
    t.linux["intelRdt"] = {"closID": "conformance"}
    t.run(["true"]).fails("intelRdt without a mounted resctrl filesystem")


@case("intelRdt-closID", L + "#intelrdt",
      skip=lambda h: None if h.resctrl else "resctrl not mounted on this host")
def _(t):
    t.linux["intelRdt"] = {"closID": "/"}
    t.run(["true"]).ok()


@case("netDevices-move", L + "#network-devices")
def _(t):
    name = "cf%s" % uuid.uuid4().hex[:8]
    r = subprocess.run(["ip", "link", "add", name, "type", "dummy"], capture_output=True,
                       timeout=10)
    if r.returncode != 0:  # no dummy module: one end of a veth pair (deleting either ends both)
        r2 = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                            capture_output=True, timeout=10)
        if r2.returncode != 0:
            raise Skip("cannot create a dummy or veth link on this host: %s"
                       % r2.stderr.decode().strip())
    try:
        t.linux["netDevices"] = {name: {"name": "eth7"}}
        out = t.sh("ls /sys/class/net; cat /sys/class/net/eth7/operstate 2>/dev/null; "
                   "cat /sys/class/net/eth7/flags 2>/dev/null")
        check("eth7" in out.split(), "eth7 not in the container: %r" % out)
        flags = out.split()[-1]
        check(flags.startswith("0x") and int(flags, 16) & 1, "eth7 is not up: %r" % out)
    finally:
        for n in (name, name + "p"):  # whichever is still on the host (a veth dies with the netns)
            subprocess.run(["ip", "link", "del", n], capture_output=True, timeout=10)


@case("memoryPolicy-bind", L + "#memory-policy",
      skip=lambda h: None if os.path.exists("/proc/self/numa_maps") else "kernel without NUMA")
def _(t):
    t.linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    out = t.run(["cat", "/proc/self/numa_maps"]).ok().out
    check("bind:0" in out, "memory policy not bind:0: %r" % out[:300])
