"""config.md "process" as seen from inside a real container: user, rlimits, capabilities,
noNewPrivileges, oomScoreAdj, ioPriority, scheduler, personality, preserved fds, LISTEN_FDS;
each checked with pyrunc and, where runc 1.1.5 has the field, with runc too."""
import os
import subprocess

import pytest

import envutil as E
from envutil import base_config, ok, fails, status_field

pytestmark = [E.needs_root, E.have_rootfs]
BOTH = E.runtime_params()

CAP_NUM = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
           "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def mask(*names):
    v = 0
    for n in names:
        v |= 1 << CAP_NUM[n]
    return v


@pytest.mark.parametrize("rt", BOTH)
def test_user_uid_gid_groups_umask(rt, tmp_path):
    cfg = base_config("id -u; id -g; grep ^Groups: /proc/self/status; umask")
    cfg["process"]["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [7, 42], "umask": 0o027}
    out = ok(rt, cfg, tmp_path).split("\n")
    assert out[0] == "1234" and out[1] == "2345"
    assert sorted(out[2].split()[1:]) == ["42", "7"]
    assert out[3] == "0027"


@pytest.mark.parametrize("rt", BOTH)
def test_rlimits(rt, tmp_path):
    cfg = base_config("cat /proc/self/limits")
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_STACK", "soft": 8388608, "hard": 18446744073709551615},
    ]
    out = ok(rt, cfg, tmp_path)
    lim = {}
    for line in out.splitlines()[1:]:
        name = line[:26].strip()
        f = line[26:].split()
        lim[name] = (f[0], f[1])
    assert lim["Max open files"] == ("123", "456")
    assert lim["Max core file size"] == ("0", "0")
    assert lim["Max processes"] == ("1000", "2000")
    assert lim["Max msgqueue size"] == ("4096", "8192")
    assert lim["Max stack size"] == ("8388608", "unlimited")


@pytest.mark.parametrize("rt", BOTH)
def test_capabilities_all_sets(rt, tmp_path):
    cfg = base_config("grep ^Cap /proc/self/status")
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    out = ok(rt, cfg, tmp_path)
    caps = {k: int(status_field(out, k), 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    # after execve as non-root: P' = (P inheritable & file caps) | ambient, E' = ambient
    assert caps["CapBnd"] == mask("CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_CHOWN")
    assert caps["CapInh"] == mask("CAP_NET_BIND_SERVICE", "CAP_KILL")
    assert caps["CapAmb"] == mask("CAP_NET_BIND_SERVICE")
    assert caps["CapPrm"] == mask("CAP_NET_BIND_SERVICE")
    assert caps["CapEff"] == mask("CAP_NET_BIND_SERVICE")


@pytest.mark.parametrize("rt", BOTH)
def test_capabilities_root_keeps_permitted(rt, tmp_path):
    cfg = base_config("grep ^Cap /proc/self/status")
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_SYS_ADMIN", "CAP_SETPCAP"],
        "permitted": ["CAP_KILL", "CAP_SYS_ADMIN"],
        "effective": ["CAP_KILL"],
    }
    out = ok(rt, cfg, tmp_path)
    # uid 0 execve: P' = bounding-limited full set, E' = P' (the kernel's root rule)
    assert int(status_field(out, "CapBnd"), 16) == mask("CAP_KILL", "CAP_SYS_ADMIN", "CAP_SETPCAP")
    assert int(status_field(out, "CapAmb"), 16) == 0


@pytest.mark.parametrize("rt", BOTH)
def test_no_capabilities_field_keeps_none_dropped(rt, tmp_path):
    cfg = base_config("grep ^CapBnd /proc/self/status")
    cfg["process"]["capabilities"] = {}
    out = ok(rt, cfg, tmp_path)
    assert int(status_field(out, "CapBnd"), 16) == 0


@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt, nnp, tmp_path):
    cfg = base_config("grep ^NoNewPrivs /proc/self/status")
    cfg["process"]["noNewPrivileges"] = nnp
    assert status_field(ok(rt, cfg, tmp_path), "NoNewPrivs") == ("1" if nnp else "0")


@pytest.mark.parametrize("rt", BOTH)
def test_oom_score_adj(rt, tmp_path):
    cfg = base_config("cat /proc/self/oom_score_adj")
    cfg["process"]["oomScoreAdj"] = 345
    assert ok(rt, cfg, tmp_path).strip() == "345"


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no process.ioPriority (runc 1.2)"))
@pytest.mark.parametrize("cls,prio,want", [("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
                                           ("IOPRIO_CLASS_IDLE", 0, "idle"),
                                           ("IOPRIO_CLASS_RT", 2, "realtime: prio 2")])
def test_io_priority(rt, cls, prio, want, tmp_path):
    cfg = base_config("ionice -p $$")
    cfg["process"]["ioPriority"] = {"class": cls, "priority": prio}
    assert ok(rt, cfg, tmp_path).strip() == want


def _stat_fields(out):
    # /proc/self/stat: field 19 nice, 18 priority, 41 rt_priority, 42 policy (1-based)
    rest = out.rsplit(")", 1)[1].split()
    return {"nice": int(rest[16]), "rt_priority": int(rest[37]), "policy": int(rest[38])}


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no process.scheduler (runc 1.2)"))
@pytest.mark.parametrize("sched,want", [
    ({"policy": "SCHED_BATCH", "nice": 7}, {"policy": 3, "nice": 7, "rt_priority": 0}),
    ({"policy": "SCHED_IDLE"}, {"policy": 5, "rt_priority": 0}),
    ({"policy": "SCHED_FIFO", "priority": 10}, {"policy": 1, "rt_priority": 10}),
    ({"policy": "SCHED_RR", "priority": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
     {"policy": 2 | 0x40000000, "rt_priority": 3}),
])
def test_scheduler(rt, sched, want, tmp_path):
    cfg = base_config(args=["cat", "/proc/self/stat"])  # exec'd directly: the init's own values
    cfg["process"]["scheduler"] = sched
    if sched["policy"] in ("SCHED_FIFO", "SCHED_RR"):
        # RT group scheduling: a new cpu cgroup has no real-time budget until given one
        cfg["linux"]["resources"]["cpu"] = {"realtimePeriod": 1000000, "realtimeRuntime": 10000}
    got = _stat_fields(ok(rt, cfg, tmp_path))
    if want["policy"] & 0x40000000:  # RESET_ON_FORK is not shown in stat; the policy is
        want = dict(want, policy=want["policy"] & ~0x40000000)
    for k, v in want.items():
        assert got[k] == v, (k, got)


@pytest.mark.parametrize("rt", E.runtime_params(runc_skip="no linux.personality (runc 1.2)"))
@pytest.mark.parametrize("domain,machine,pers", [("LINUX32", "i686", "00000008"),
                                                  ("LINUX", os.uname().machine, "00000000")])
def test_personality(rt, domain, machine, pers, tmp_path):
    if os.uname().machine != "x86_64" and domain == "LINUX32":
        pytest.skip("LINUX32 shows i686 only on x86_64")
    cfg = base_config("uname -m; cat /proc/self/personality")
    cfg["linux"]["personality"] = {"domain": domain}
    assert ok(rt, cfg, tmp_path).split() == [machine, pers]


@pytest.mark.parametrize("rt", BOTH)
def test_only_stdio_reach_the_container(rt, tmp_path):
    # no pipelines: the shell (pid 1) would hold pipe fds of its own while ls looks
    cfg = base_config("ls /proc/1/fd; echo ---; ls /proc/self/fd")
    pid1, child = ok(rt, cfg, tmp_path).split("---")
    assert sorted(pid1.split(), key=int) == ["0", "1", "2"], pid1
    assert sorted(child.split(), key=int)[:-1] == ["0", "1", "2"], child  # ls's own dirfd is last
    cfg["process"]["args"] = ["sh", "-c", "exec ls -l /proc/self/fd/"]
    out = ok(rt, cfg, tmp_path)
    for line in out.splitlines():
        assert "pyrunc" not in line and "runc" not in line and "config.json" not in line


@pytest.mark.parametrize("rt", BOTH)
def test_preserve_fds(rt, tmp_path):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    # put the two write ends at 3 and 4 in the runtime: pass_fds keeps numbers, so dup them there
    os.write(w1, b"")
    cfg = base_config("echo one >&3; echo two >&4; ls /proc/self/fd | sort -n | tr '\\n' ' '")
    try:
        out = _run_with_fds(rt, cfg, tmp_path, {3: w1, 4: w2}, ["--preserve-fds", "2"])
        os.close(w1)
        os.close(w2)
        w1 = w2 = -1
        assert os.read(r1, 100) == b"one\n"
        assert os.read(r2, 100) == b"two\n"
        assert out.split()[:5] == ["0", "1", "2", "3", "4"]
        assert len(out.split()) == 6  # plus ls's own dirfd
    finally:
        for fd in (r1, r2, w1, w2):
            if fd >= 0:
                os.close(fd)


def _run_with_fds(rt, cfg, tmp_path, mapping, extra, env=None, pid_env=False):
    """Run with MAPPING {target fd: source fd} dup2'ed in the runtime process so the numbers are
    exact (the rest of pytest's fds leak to the runtime on purpose: none may reach the
    container); with PID_ENV, LISTEN_PID is the runtime's own pid. Returns stdout."""
    bundle = E.write_bundle(tmp_path, cfg)
    root = str(tmp_path / f"root-{rt}")
    name = E.cid()

    def dup():
        for t, s in mapping.items():
            os.dup2(s, t)

    pre = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] if pid_env else []
    cmd = [*pre, E.RUNTIMES[rt], "--root", root, "run", "-b", bundle, *extra, name]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=E.TIMEOUT,
                           close_fds=False, preexec_fn=dup, env=env)
        assert p.returncode == 0, p
        return p.stdout.decode()
    finally:
        subprocess.run([E.RUNTIMES[rt], "--root", root, "delete", "--force", name],
                       capture_output=True, timeout=E.TIMEOUT)


@pytest.mark.parametrize("rt", BOTH)
def test_listen_fds(rt, tmp_path):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    cfg = base_config("echo sock >&3; echo extra >&4; echo $LISTEN_FDS $LISTEN_PID")
    env = dict(os.environ, LISTEN_FDS="1")
    try:
        out = _run_with_fds(rt, cfg, tmp_path, {3: w1, 4: w2}, ["--preserve-fds", "1"], env=env, pid_env=True)
        os.close(w1)
        os.close(w2)
        w1 = w2 = -1
        assert out.strip() == "1 1"
        assert os.read(r1, 100) == b"sock\n"
        assert os.read(r2, 100) == b"extra\n"
    finally:
        for fd in (r1, r2, w1, w2):
            if fd >= 0:
                os.close(fd)


@pytest.mark.parametrize("rt", BOTH)
def test_listen_fds_for_another_pid_are_ignored(rt, tmp_path):
    cfg = base_config("echo ${LISTEN_FDS:-none}; ls /proc/self/fd | wc -l")
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID="1")
    r = E.run(rt, cfg, tmp_path, env=env)
    assert r.rc == 0, r
    assert r.out.split() == ["none", "4"]


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("rt", BOTH)
def test_unknown_rlimit(rt, tmp_path):
    cfg = base_config()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
    fails(rt, cfg, tmp_path, "RLIMIT_BOGUS")


@pytest.mark.parametrize("bad,word", [
    ({"ioPriority": {"class": "IOPRIO_CLASS_NOPE", "priority": 1}}, "ioPriority"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}, "ioPriority"),
    ({"scheduler": {"policy": "SCHED_NOPE"}}, "scheduler"),
    ({"scheduler": {"policy": "SCHED_FIFO"}}, "scheduler.priority"),
    ({"scheduler": {"policy": "SCHED_OTHER", "nice": 40}}, "scheduler"),
    ({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}}, "scheduler"),
    ({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}, "rlimits[0]"),
])
def test_bad_process_fields(bad, word, tmp_path):
    cfg = base_config()
    cfg["process"].update(bad)
    fails("pyrunc", cfg, tmp_path, word)


@pytest.mark.parametrize("bad,word", [({"domain": "LINUX64"}, "personality"),
                                      ({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}, "personality.flags")])
def test_bad_personality(bad, word, tmp_path):
    cfg = base_config()
    cfg["linux"]["personality"] = bad
    fails("pyrunc", cfg, tmp_path, word)


@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("field,value", [("apparmorProfile", "some-profile"), ("selinuxLabel", "system_u:system_r:svirt_lxc_net_t:s0")])
def test_lsm_requested_but_unavailable(rt, field, value, tmp_path):
    if field == "apparmorProfile" and os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("apparmor is enabled here")
    if field == "selinuxLabel" and os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here")
    cfg = base_config("echo should-not-run")
    cfg["process"][field] = value
    r = E.run(rt, cfg, tmp_path)
    if rt == "runc" and r.rc == 0:
        pytest.skip(f"runc 1.1.5 ignores {field} when the LSM is off")
    assert r.rc == 1 and "should-not-run" not in r.out, r
    if rt == "pyrunc":
        assert field in r.err
