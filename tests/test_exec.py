"""runc exec: the new process joins the container (namespaces, cgroup, root) with the process
settings of the flags or of a process JSON; foreground exit codes and signals; --detach and
--pid-file; runc's errors. Every test runs against pyrunc and runc."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import base_config

NS = ("mnt", "uts", "ipc", "net", "pid", "cgroup", "user")


def running(rt, cfg=None, args=("sleep", "1000"), extra=()):
    """A detached container running ARGS; returns (id, init pid)."""
    b = rt.bundle(cfg, args=list(args))
    cid = rt.new_id()
    rt("run", "-d", *extra, "--bundle", b, cid, check=True)
    return cid, rt.state(cid)["pid"]


def ex(rt, cid, *args, **kw):
    return rt("exec", *args[:-1], cid, *args[-1], **kw) if False else rt("exec", *args, **kw)


def cg_procs(cid):
    """Pids in the container's pids cgroup (v1 hybrid host) or its v2 dir."""
    for d in (f"/sys/fs/cgroup/pids/{cid}", f"/sys/fs/cgroup/unified/{cid}"):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return sorted(int(x) for x in f.read().split())
        except OSError:
            continue
    return None


def one_line_error(p):
    assert p.returncode != 0, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "level=error" in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


# ------------------------------------------------------------------ joining the container
def test_exec_joins_namespaces_cgroup_root(anyrt):
    cid, pid = running(anyrt)
    script = ("for n in " + " ".join(NS) + "; do echo $n=$(readlink /proc/self/ns/$n); done; "
              "cat /proc/self/cgroup; echo ppid=$(cut -d' ' -f4 /proc/self/stat); "
              "echo host=$(hostname); ls /bin/busybox")
    p = anyrt("exec", cid, "sh", "-c", script, check=True)
    out = p.stdout.splitlines()
    got = dict(line.split("=", 1) for line in out if "=" in line and line.split("=", 1)[0] in NS)
    for n in NS:
        assert got[n] == os.readlink(f"/proc/{pid}/ns/{n}"), (n, p.stdout)
    with open(f"/proc/{pid}/cgroup") as f:
        init_cg = sorted(f.read().splitlines())
    assert sorted(line for line in out if line[:1].isdigit() and ":" in line) == init_cg
    assert "host=pyrunc" in out
    assert "/bin/busybox" in out  # the container's root, not the host's


def test_exec_process_settings_from_flags(anyrt):
    cid, _ = running(anyrt)
    p = anyrt("exec", "-e", "TERM=dumb", "-e", "NEWVAR=1", "-u", "1000:1001", "-g", "5", "-g", "6",
              "--cwd", "/tmp", "--no-new-privs", cid,
              "sh", "-c", "id; pwd; env; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n",
              check=True)
    out = p.stdout.splitlines()
    assert "uid=1000 gid=1001 groups=5,6" in out
    assert "/tmp" in out
    assert "TERM=dumb" in out and "NEWVAR=1" in out and "TERM=xterm" not in out
    assert "HOME=/" in out  # uid 1000 has no passwd entry in busybox
    assert "NoNewPrivs:\t1" in out
    assert "1024" in out  # the container's RLIMIT_NOFILE
    assert "CapBnd:\t0000000020000420" in out


def test_exec_as_root_gets_config_caps_and_home(anyrt):
    cid, _ = running(anyrt)
    p = anyrt("exec", "--cap", "CAP_SYS_ADMIN", cid, "sh", "-c",
              "grep -E '^Cap(Eff|Bnd)' /proc/self/status; echo HOME=$HOME; id -u", check=True)
    assert "CapEff:\t0000000020200420" in p.stdout  # config caps + CAP_SYS_ADMIN (bit 21)
    assert "CapBnd:\t0000000020200420" in p.stdout
    assert "HOME=/root" in p.stdout
    assert p.stdout.splitlines()[-1] == "0"


def test_exec_process_json(anyrt, tmp_path):
    cid, _ = running(anyrt)
    proc = {
        "args": ["sh", "-c", "id; pwd; echo A=$A; ulimit -n; grep -E '^Cap(Eff|Bnd)' /proc/self/status; "
                 "cat /proc/self/oom_score_adj; exit 3"],
        "cwd": "/etc", "env": ["PATH=/bin:/usr/bin", "A=b c"],
        "user": {"uid": 0, "gid": 0, "additionalGids": [7]},
        "capabilities": {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 77, "soft": 77}],
        "oomScoreAdj": 123, "noNewPrivileges": True, "terminal": False,
    }
    pj = tmp_path / "process.json"
    pj.write_text(json.dumps(proc))
    p = anyrt("exec", "--process", str(pj), cid)
    assert p.returncode == 3, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "uid=0(root) gid=0(root) groups=7"
    assert "/etc" in out and "A=b c" in out and "77" in out
    if anyrt.name == "pyrunc":
        assert out[-1] == "123"  # runc 1.1 leaves an exec's oomScoreAdj alone (runc 1.2 sets it)
    assert "CapEff:\t0000000000000020" in out and "CapBnd:\t0000000000000020" in out


def test_exec_exit_codes(anyrt):
    cid, _ = running(anyrt)
    assert anyrt("exec", cid, "true").returncode == 0
    assert anyrt("exec", cid, "sh", "-c", "exit 42").returncode == 42
    assert anyrt("exec", cid, "sh", "-c", "kill -9 $$").returncode == 137


def test_exec_stdio_passes_through(anyrt):
    cid, _ = running(anyrt)
    p = anyrt("exec", cid, "sh", "-c", "read x; echo got:$x; echo err >&2", input="hello\n")
    assert p.returncode == 0
    assert p.stdout == "got:hello\n"
    assert p.stderr == "err\n"


def test_exec_seccomp_of_the_container(anyrt):
    cfg = base_config()
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 1}]}
    cid, _ = running(anyrt, cfg)
    p = anyrt("exec", cid, "sh", "-c", "mkdir /tmp/x && echo made || echo denied; grep Seccomp: /proc/self/status")
    assert "denied" in p.stdout and "Seccomp:\t2" in p.stdout, p.stdout + p.stderr


def test_exec_user_namespace(anyrt):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid, pid = running(anyrt, cfg)
    p = anyrt("exec", cid, "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u", check=True)
    out = p.stdout.split()
    assert out[0] == os.readlink(f"/proc/{pid}/ns/user")
    assert out[1:4] == ["0", "100000", "65536"] and out[-1] == "0"


def test_exec_no_pivot_container(anyrt):
    cid, _ = running(anyrt, extra=("--no-pivot",))
    p = anyrt("exec", cid, "sh", "-c", "ls /; cat /proc/1/cmdline | tr '\\0' ' '", check=True)
    assert "linuxrc" in p.stdout.split() and "sleep 1000" in p.stdout


def test_exec_into_created_container(anyrt):
    b = anyrt.bundle(args=["sleep", "1000"])
    cid = anyrt.new_id()
    anyrt("create", "--bundle", b, cid, check=True)
    p = anyrt("exec", cid, "sh", "-c", "echo in; readlink /proc/self/ns/pid")
    assert p.returncode == 0 and "in" in p.stdout, p.stderr
    assert anyrt.state(cid)["status"] == "created"


# ------------------------------------------------------------------ detach, pid file, signals
def test_exec_detach_pid_file(anyrt, tmp_path):
    cid, pid = running(anyrt)
    pf = tmp_path / "e.pid"
    p = anyrt("exec", "-d", "--pid-file", str(pf), cid, "sleep", "1000", timeout=10)
    assert p.returncode == 0, p.stderr
    text = pf.read_text()
    assert text.isdigit(), repr(text)  # bare digits, no newline
    epid = int(text)
    assert os.readlink(f"/proc/{epid}/ns/pid") == os.readlink(f"/proc/{pid}/ns/pid")

    def cmdline():
        with open(f"/proc/{epid}/cmdline", "rb") as f:
            return f.read()
    # the pid file names the process as soon as it exists: runc's own init (`runc init`) may not
    # have exec'd the program yet when exec -d returns, so the command line is awaited
    deadline = time.monotonic() + 10
    while cmdline() != b"sleep\x001000\x00":
        assert time.monotonic() < deadline, cmdline()
        time.sleep(0.01)
    procs = cg_procs(cid)
    if procs is not None:
        assert epid in procs
    assert not any(n.startswith(".") for n in os.listdir(tmp_path) if n.endswith("tmp"))


def test_exec_foreground_forwards_signals(anyrt, tmp_path):
    cid, _ = running(anyrt)
    cmd = [anyrt.binary, "--root", anyrt.root, "exec", cid, "sh", "-c",
           "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 42, err
        assert b"got-term" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------ errors
def _procs_unchanged(rt, cid, before):
    after = cg_procs(cid)
    assert after == before, (before, after)


@pytest.mark.parametrize("case", ["missing-json", "bad-json", "not-object", "empty-args", "rel-cwd",
                                  "no-args", "bad-user", "bad-gid", "no-such-binary", "bad-cwd",
                                  "console-no-tty", "tty-detach-no-socket", "socket-missing",
                                  "bad-uid-type"])
def test_exec_bad_input(anyrt, tmp_path, case):
    cid, _ = running(anyrt)
    before = cg_procs(cid)
    pj = tmp_path / "p.json"
    args = {
        "missing-json": ["-p", str(tmp_path / "nope.json")],
        "bad-json": ["-p", str(pj)],
        "not-object": ["-p", str(pj)],
        "empty-args": ["-p", str(pj)],
        "rel-cwd": ["-p", str(pj)],
        "bad-uid-type": ["-p", str(pj)],
        "no-args": [],
        "bad-user": ["-u", "x", cid, "true"],
        "bad-gid": ["-u", "1:y", cid, "true"],
        "no-such-binary": [cid, "/nonexistent"],
        "bad-cwd": ["--cwd", "/nonexistent", cid, "true"],
        "console-no-tty": ["-d", "--console-socket", str(tmp_path / "s"), cid, "true"],
        "tty-detach-no-socket": ["-d", "-t", cid, "true"],
        "socket-missing": ["-d", "-t", "--console-socket", str(tmp_path / "nosock"), cid, "true"],
    }[case]
    contents = {"bad-json": '{"args": ["true"', "not-object": "[]",
                "empty-args": '{"cwd": "/", "args": []}', "rel-cwd": '{"cwd": "tmp", "args": ["true"]}',
                "bad-uid-type": '{"cwd": "/", "args": ["true"], "user": {"uid": "x"}}'}
    if case in contents:
        pj.write_text(contents[case])
    if args and args[0] in ("-p",) or case == "no-args":
        args = args + [cid]
    p = anyrt("exec", *args, timeout=10)
    line = one_line_error(p)
    want = {
        "missing-json": "no such file or directory", "empty-args": "args must not be empty",
        "rel-cwd": "Cwd must be an absolute path", "no-args": "process args cannot be empty",
        "bad-user": "parsing x as int for uid failed", "bad-gid": "parsing y as int for gid failed",
        "no-such-binary": "/nonexistent", "bad-cwd": "chdir to cwd",
        "console-no-tty": "cannot use console socket if runc will not detach or allocate tty"
        if anyrt.name == "runc" else "--console-socket was given but process.terminal is false",
        "tty-detach-no-socket": "cannot allocate tty if runc will detach without setting console socket"
        if anyrt.name == "runc" else "process.terminal is true (exec: --tty) but no --console-socket",
        "socket-missing": "connect: no such file or directory",
    }.get(case)
    if want:
        assert want in line, line
    _procs_unchanged(anyrt, cid, before)


def test_exec_unknown_container(anyrt):
    anyrt.new_id()
    p = anyrt("exec", "nonexistent-ctr", "true")
    assert "does not exist" in one_line_error(p)


def test_exec_stopped_container(anyrt):
    b = anyrt.bundle(args=["true"])
    cid = anyrt.new_id()
    anyrt("run", "-d", "--bundle", b, cid, check=True)
    deadline = time.monotonic() + 5
    while anyrt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    p = anyrt("exec", cid, "true")
    assert "cannot exec in a stopped container" in one_line_error(p)


def test_exec_paused_container(anyrt):
    if not (os.path.isdir("/sys/fs/cgroup/freezer") or os.path.exists("/sys/fs/cgroup/cgroup.controllers")):
        pytest.skip("no freezer: neither a v1 freezer hierarchy nor a cgroup2 root")
    cid, _ = running(anyrt)
    anyrt("pause", cid, check=True)
    try:
        p = anyrt("exec", cid, "true")
        assert "cannot exec in a paused container" in one_line_error(p)
    finally:
        anyrt("resume", cid)


def test_exec_unknown_capability_warns(anyrt):
    # config.md: an unknown capability is logged as a warning, not fatal (runc does the same)
    cid, _ = running(anyrt)
    p = anyrt("exec", "--cap", "CAP_BOGUS", cid, "true")
    assert p.returncode == 0, p.stderr
    assert "CAP_BOGUS" in p.stderr


def test_exec_preserve_fds(anyrt):
    cid, _ = running(anyrt)
    r, w = os.pipe()
    try:
        p = anyrt("exec", "--preserve-fds", "1", cid, "sh", "-c", "echo via-fd3 >&3",
                  close_fds=False, preexec_fn=lambda: os.dup2(w, 3))
        os.close(w)
        w = -1
        assert p.returncode == 0, p.stderr
        assert os.read(r, 100) == b"via-fd3\n"
        q = anyrt("exec", cid, "sh", "-c", "echo x >&3", close_fds=False, preexec_fn=lambda: os.dup2(r, 3))
        assert q.returncode != 0  # without --preserve-fds nothing past stdio crosses
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
