"""A default seccomp profile in OCI runtime-spec form, modelled on the policy
container engines (Docker/moby, and runc users generally) apply by default.

Policy: deny with EPERM by default; allow the ordinary syscall surface; keep
out what can escape or disturb the host (module loading, kexec, mount and
namespace manipulation, ptrace and cross-process memory access, keyrings,
bpf/perf, clock and swap administration, ...).  A few syscalls are allowed only
with safe arguments (``personality``, ``clone`` without namespace flags) and
``clone3`` returns ENOSYS so libcs fall back to ``clone``.  Capability-gated
groups are left out: the benchmark bundle keeps only AUDIT_WRITE, KILL and
NET_BIND_SERVICE, none of which unlock extra syscalls.

The list is written for this project.  ``python -m benchmarks.seccomp`` writes
``benchmarks/seccomp_default.json`` (the data file the benchmark loads),
dropping names the local libseccomp does not know, since a runtime may refuse
a profile that names them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import sys

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")

EPERM = 1
ENOSYS = 38

# Grouped by area, to make review easier.  Names cover x86_64, i386 and the
# 32-bit-time variants; the libseccomp filter below removes unknown ones.
_ALLOW = {
    "files": """
        access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat
        chown chown32 fchown fchown32 fchownat lchown lchown32 umask
        open openat openat2 creat close close_range dup dup2 dup3
        read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
        lseek _llseek readahead fadvise64 fadvise64_64 fallocate
        truncate truncate64 ftruncate ftruncate64 fsync fdatasync sync syncfs
        sync_file_range copy_file_range sendfile sendfile64 splice tee vmsplice
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64
        mkdir mkdirat mknod mknodat rmdir link linkat unlink unlinkat
        symlink symlinkat readlink readlinkat rename renameat renameat2
        getdents getdents64 fcntl fcntl64 flock ioctl
        utime utimes utimensat utimensat_time64 futimesat
        getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
        listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
        fanotify_mark name_to_handle_at memfd_create
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync
        mlock mlock2 munlock mlockall munlockall remap_file_pages membarrier
        pkey_alloc pkey_free pkey_mprotect
    """,
    "processes": """
        execve execveat exit exit_group fork vfork wait4 waitid waitpid
        getpid getppid gettid getpgid setpgid getpgrp getsid setsid
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
        setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
        setresuid setresuid32 setresgid setresgid32 getresuid getresuid32
        getresgid getresgid32 setfsuid setfsuid32 setfsgid setfsgid32
        getgroups getgroups32 setgroups setgroups32 capget capset prctl
        getrlimit ugetrlimit setrlimit prlimit64 getrusage getpriority setpriority
        ioprio_get ioprio_set sched_yield sched_getaffinity sched_setaffinity
        sched_getattr sched_setattr sched_getparam sched_setparam
        sched_getscheduler sched_setscheduler sched_get_priority_max
        sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64
        set_tid_address set_robust_list get_robust_list rseq restart_syscall
        get_thread_area set_thread_area getcpu seccomp uname sysinfo
        pidfd_open pidfd_send_signal pidfd_getfd process_mrelease
        landlock_create_ruleset landlock_add_rule landlock_restrict_self
        getrandom
    """,
    "signals": """
        kill tkill tgkill rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_sigqueueinfo
        rt_tgsigqueueinfo sigaltstack sigreturn sigprocmask signalfd signalfd4
        pause alarm
    """,
    "time": """
        time gettimeofday times clock_gettime clock_gettime64 clock_getres
        clock_getres_time64 clock_nanosleep clock_nanosleep_time64 nanosleep
        getitimer setitimer timer_create timer_delete timer_getoverrun
        timer_gettime timer_gettime64 timer_settime timer_settime64
        timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64 adjtimex
    """,
    "events": """
        select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait
        epoll_wait_old epoll_pwait epoll_pwait2 eventfd eventfd2
        futex futex_time64 futex_waitv
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents
        io_pgetevents_time64
    """,
    "ipc": """
        pipe pipe2 ipc msgget msgsnd msgrcv msgctl semget semop semtimedop
        semtimedop_time64 semctl shmget shmat shmdt shmctl
        mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive
        mq_timedreceive_time64 mq_notify mq_getsetattr
    """,
    "network": """
        socket socketpair socketcall bind connect listen accept accept4
        getsockname getpeername getsockopt setsockopt shutdown
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg
        recvmmsg_time64
    """,
}

# Only on x86: thread-local storage set-up used by every libc there.
_ALLOW_X86 = "arch_prctl modify_ldt"

# personality(2) values a normal program uses: PER_LINUX, PER_LINUX32,
# UNAME26, PER_LINUX32|UNAME26, and the query value 0xffffffff.
_PERSONALITY_OK = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# clone(2) flags that create namespaces:
# NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

_ARCHES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def _libseccomp_filter():
    """Return a predicate telling whether the local libseccomp knows a name."""
    name = ctypes.util.find_library("seccomp")
    if not name:
        return lambda _n: True
    try:
        lib = ctypes.CDLL(name)
        fn = lib.seccomp_syscall_resolve_name
        fn.argtypes = [ctypes.c_char_p]
        fn.restype = ctypes.c_int
    except (OSError, AttributeError):
        return lambda _n: True
    # __NR_SCMP_ERROR is -1; pseudo-syscall numbers (< -1) are still valid names.
    return lambda n: fn(n.encode()) != -1


def build_profile(machine: str | None = None, known=None) -> dict:
    machine = machine or platform.machine()
    known = known or (lambda _n: True)
    names = set()
    for block in _ALLOW.values():
        names.update(block.split())
    if machine in ("x86_64", "i686", "i386"):
        names.update(_ALLOW_X86.split())
    allowed = sorted(n for n in names if known(n))
    syscalls = [
        {"names": allowed, "action": "SCMP_ACT_ALLOW"},
    ]
    for value in _PERSONALITY_OK:
        syscalls.append({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}],
        })
    if machine != "s390x":  # clone's flags are argument 0 everywhere else
        syscalls.append({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": _CLONE_NS_MASK, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}],
        })
    if known("clone3"):
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": _ARCHES.get(machine, []),
        "syscalls": syscalls,
    }


def load_profile() -> dict:
    """The profile the benchmark uses: the data file, re-targeted to this
    machine's architectures if it was generated elsewhere."""
    try:
        with open(DATA_FILE) as f:
            prof = json.load(f)
    except (OSError, ValueError):
        return build_profile(known=_libseccomp_filter())
    arches = _ARCHES.get(platform.machine())
    if arches is not None and prof.get("architectures") != arches:
        prof = build_profile(known=_libseccomp_filter())
    return prof


def main(argv=None) -> int:
    prof = build_profile(known=_libseccomp_filter())
    out = (argv or sys.argv[1:] or [DATA_FILE])[0]
    with open(out, "w") as f:
        json.dump(prof, f, indent=1)
        f.write("\n")
    n = len(prof["syscalls"][0]["names"])
    print(f"wrote {out}: {n} allowed syscalls + conditional rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
