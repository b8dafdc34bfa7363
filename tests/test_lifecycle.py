"""runtime.md lifecycle through runc's verbs: create, start, state, kill, delete, list, run."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import base_config


def wait_status(rt, cid, want, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rt.state(cid)
        if st["status"] == want:
            return st
        time.sleep(0.01)
    raise AssertionError(f"{cid} never became {want}: {st}")


def cgroup_dirs(cid):
    out = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if base.count("/") > 7:
            dirs[:] = []
            continue
        if os.path.basename(base) == cid:
            out.append(base)
    return out


def test_full_lifecycle(anyrt, tmp_path):
    b = anyrt.bundle(args=["sleep", "100"])
    cid = anyrt.new_id()
    pidfile = tmp_path / "init.pid"
    anyrt("create", "--bundle", b, "--pid-file", str(pidfile), cid, check=True)
    st = anyrt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == b and st["ociVersion"]
    pid = st["pid"]
    raw = pidfile.read_bytes()
    assert raw == str(pid).encode()  # bare digits, no newline
    assert os.path.exists(f"/proc/{pid}")
    # created: the user program has not run yet
    assert b"sleep" not in open(f"/proc/{pid}/cmdline", "rb").read()
    anyrt("start", cid, check=True)
    st = wait_status(anyrt, cid, "running")
    assert st["pid"] == pid
    assert open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] == b"sleep"
    anyrt("kill", cid, "KILL", check=True)
    st = wait_status(anyrt, cid, "stopped")
    assert "pid" not in st or st["pid"] == 0
    anyrt("delete", cid, check=True)
    p = anyrt("state", cid)
    assert p.returncode == 1 and "does not exist" in p.stderr
    assert not cgroup_dirs(cid)


def test_state_schema(pyrunc):
    import jsonschema
    with open(os.path.join(os.path.dirname(__file__), "..", "oci-schemas", "state-schema.json")) as f:
        schema = json.load(f)
    cfg = base_config(["sleep", "100"])
    cfg["annotations"] = {"org.example.key": "value"}
    b = pyrunc.bundle(cfg)
    cid = pyrunc.new_id()
    pyrunc("create", "-b", b, cid, check=True)
    st = pyrunc.state(cid)
    # the defs refs in state-schema are to defs.json; only check the top-level shape here
    for k in ("ociVersion", "id", "status", "pid", "bundle"):
        assert k in st
    assert st["annotations"] == {"org.example.key": "value"}
    assert os.path.isabs(st["bundle"])
    assert st["status"] in schema["properties"]["status"]["enum"]


def test_status_from_kernel(pyrunc):
    """A container whose init died behind our back is stopped, not a stale 'running'."""
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "-b", b, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_status(pyrunc, cid, "stopped")
    pyrunc("delete", cid, check=True)


def test_start_errors(anyrt):
    b = anyrt.bundle(args=["sleep", "100"])
    cid = anyrt.new_id()
    anyrt("create", "-b", b, cid, check=True)
    anyrt("start", cid, check=True)
    p = anyrt("start", cid)
    assert p.returncode == 1
    anyrt("kill", cid, "9", check=True)
    wait_status(anyrt, cid, "stopped")
    p = anyrt("start", cid)
    assert p.returncode == 1 and "stopped" in p.stderr
    p = anyrt("start", "no-such-container")
    assert p.returncode == 1 and "does not exist" in p.stderr


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", "15", "sigterm"])
def test_kill_signal_forms(pyrunc, sig):
    # pid 1 of a pid namespace ignores signals it has no handler for: trap TERM
    b = pyrunc.bundle(args=["sh", "-c", "trap 'exit 0' TERM; echo > /dev/shm/ready; while :; do sleep 0.05; done"])
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "-b", b, cid, check=True)
    time.sleep(0.2)  # the trap is set before the shell loops
    pyrunc("kill", cid, sig, check=True)
    wait_status(pyrunc, cid, "stopped")


def test_kill_default_is_sigterm_and_stopped_is_error(anyrt):
    b = anyrt.bundle(args=["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
    cid = anyrt.new_id()
    anyrt("run", "-d", "-b", b, cid, check=True)
    time.sleep(0.2)  # let the shell install its trap
    anyrt("kill", cid, check=True)
    wait_status(anyrt, cid, "stopped")
    p = anyrt("kill", cid, "KILL")
    assert p.returncode == 1 and "not running" in p.stderr


def test_kill_unknown_signal_leaves_container(anyrt):
    b = anyrt.bundle(args=["sleep", "100"])
    cid = anyrt.new_id()
    anyrt("run", "-d", "-b", b, cid, check=True)
    for bad in ("SIGFOO", "999", "-3"):
        p = anyrt("kill", cid, bad)
        assert p.returncode != 0
    assert anyrt.state(cid)["status"] == "running"


def test_delete_semantics(pyrunc):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "-b", b, cid, check=True)
    p = pyrunc("delete", cid)
    assert p.returncode == 1 and "not stopped" in p.stderr
    assert pyrunc.state(cid)["status"] == "running"
    pyrunc("delete", "--force", cid, check=True)
    assert pyrunc("state", cid).returncode == 1
    assert not cgroup_dirs(cid)
    # --force on an unknown id is not an error (containerd relies on it); without it is
    assert pyrunc("delete", "--force", cid).returncode == 0
    p = pyrunc("delete", cid)
    assert p.returncode == 1 and "does not exist" in p.stderr


def test_delete_force_created(pyrunc):
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id()
    pyrunc("create", "-b", b, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    pyrunc("delete", "-f", cid, check=True)
    assert not os.path.exists(f"/proc/{pid}/status") or "Z" in open(f"/proc/{pid}/status").read()


def test_duplicate_id(anyrt):
    b = anyrt.bundle(args=["sleep", "100"])
    cid = anyrt.new_id()
    anyrt("create", "-b", b, cid, check=True)
    p = anyrt("create", "-b", b, cid)
    assert p.returncode == 1 and "exists" in p.stderr
    assert anyrt.state(cid)["status"] == "created"


@pytest.mark.parametrize("bad", ["a/b", "..", "", "a b"])
def test_invalid_id(pyrunc, bad):
    b = pyrunc.bundle()
    p = pyrunc("create", "-b", b, bad)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert not os.listdir(pyrunc.root) if os.path.isdir(pyrunc.root) else True


def test_list_formats(pyrunc):
    b = pyrunc.bundle(args=["sleep", "100"])
    ids = sorted(pyrunc.new_id() for _ in range(2))
    for cid in ids:
        pyrunc("create", "-b", b, cid, check=True)
    table = pyrunc("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [ln.split()[0] for ln in table[1:]] == ids
    assert all(ln.split()[2] == "created" for ln in table[1:])
    js = json.loads(pyrunc("list", "--format", "json", check=True).stdout)
    assert sorted(s["id"] for s in js) == ids
    assert pyrunc("list", "-q", check=True).stdout.split() == ids


def test_list_empty(pyrunc):
    assert json.loads(pyrunc("list", "-f", "json", check=True).stdout) is None


def test_run_exit_codes(anyrt):
    assert anyrt.run(args=["sh", "-c", "exit 3"]).returncode == 3
    # killed by a signal: 128+N (pid 1 cannot SIGKILL itself: kill it from outside)
    b = anyrt.bundle(args=["sh", "-c", "echo ready; exec sleep 100"])
    cid = anyrt.new_id()
    p = subprocess.Popen([anyrt.binary, "--root", anyrt.root, "run", "-b", b, cid],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        anyrt("kill", cid, "KILL", check=True)
        assert p.wait(timeout=10) == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p = anyrt.run(args=["sh", "-c", "echo out; echo err >&2"])
    assert p.returncode == 0 and p.stdout == "out\n" and "err" in p.stderr


def test_run_keep(pyrunc):
    b = pyrunc.bundle(args=["true"])
    cid = pyrunc.new_id()
    pyrunc("run", "--keep", "-b", b, cid, check=True)
    assert pyrunc.state(cid)["status"] == "stopped"
    pyrunc("delete", cid, check=True)


def test_run_forwards_signals(anyrt):
    b = anyrt.bundle(args=["sh", "-c", "trap 'echo got-usr1; exit 5' USR1; echo ready; "
                                       "while :; do sleep 0.05; done"])
    cid = anyrt.new_id()
    p = subprocess.Popen([anyrt.binary, "--root", anyrt.root, "run", "-b", b, cid],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=10)
        assert "got-usr1" in out
        assert p.returncode == 5
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_run_missing_program(anyrt):
    p = anyrt.run(args=["/no/such/program"])
    assert p.returncode != 0
    assert "no such file" in p.stderr.lower() or "not found" in p.stderr.lower()
    assert "Traceback" not in p.stderr


def test_version_and_help(pyrunc):
    p = pyrunc("--version", check=True)
    assert p.stdout.startswith("pyrunc version ") and "spec: 1.3.0" in p.stdout
    p = pyrunc("--help", check=True)
    for verb in ("create", "start", "run", "state", "kill", "delete", "list"):
        assert verb in p.stdout
    assert pyrunc("create", "--help", check=True).stdout.count("--bundle") == 1
    p = pyrunc("no-such-verb")
    assert p.returncode == 3  # urfave/cli's status for an unknown command, as runc's


def test_no_pivot(pyrunc):
    b = pyrunc.bundle(args=["sh", "-c", "ls /bin/busybox"])
    cid = pyrunc.new_id()
    p = pyrunc("run", "--no-pivot", "-b", b, cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "/bin/busybox"


def test_concurrent_commands_serialize(pyrunc):
    """Five creates of one id race: exactly one wins, the losers leave nothing."""
    b = pyrunc.bundle(args=["sleep", "100"])
    cid = pyrunc.new_id()
    procs = [subprocess.Popen([pyrunc.binary, "--root", pyrunc.root, "create", "-b", b, cid],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(5)]
    codes = [p.wait(timeout=20) for p in procs]
    assert codes.count(0) == 1, [p.stderr.read() for p in procs]
    assert pyrunc.state(cid)["status"] == "created"
    assert len(cgroup_dirs(cid)) >= 1
