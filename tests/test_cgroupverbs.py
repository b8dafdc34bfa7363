"""runc's cgroup verbs (pause, resume, ps, events, update) and kill --all / delete --force on real
containers, read back from the cgroup files (v1 here) and from inside; pyrunc against runc."""
import json
import os
import select
import shutil
import subprocess
import time

import pytest

from conftest import RUNTIMES, Runtime, base_config, wait_for
from runtime import cgroupverbs
from runtime.cgroups import stats
from runtime.errors import Error

V1_FREEZER = os.path.isdir("/sys/fs/cgroup/freezer")


@pytest.fixture(autouse=True)
def _needs_v1(request):
    """The container tests read cgroup v1 files (a hybrid host); the pure parsers run anywhere."""
    if not V1_FREEZER and {"anyrt", "both", "paused", "own_pidns"} & set(request.fixturenames):
        pytest.skip("these container tests read cgroup v1 files: no v1 freezer on this host")

MiB = 1 << 20


# ------------------------------------------------------------------ helpers
def _mounts():
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            r = right.split()
            if r and r[0] == "cgroup":
                for opt in r[2].split(","):
                    out.setdefault(opt, left.split()[4])
    return out


def cg_dir(pid, ctrl):
    """The v1 cgroup directory of PID for controller CTRL."""
    mnt = _mounts()[ctrl]
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                # a mount of a non-root cgroup (our own process may be in one) is not handled: the
                # host mounts are of the hierarchy roots
                return os.path.join(mnt, path.lstrip("/"))
    raise AssertionError(f"{ctrl} not in /proc/{pid}/cgroup")


def cg_read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def proc_state(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split()[1]
    return None


def start_detached(rt, args, resources=None, namespaces=None, create_only=False):
    cfg = base_config(args)
    if resources:
        cfg["linux"]["resources"].update(resources)
    if namespaces is not None:
        cfg["linux"]["namespaces"] = [{"type": t} for t in namespaces]
    b = rt.bundle(cfg)
    cid = rt.new_id()
    if create_only:
        rt("create", "--bundle", b, cid, check=True, stdin=subprocess.DEVNULL)
    else:
        rt("run", "-d", "--bundle", b, cid, check=True, stdin=subprocess.DEVNULL)
    return cid, rt.state(cid)["pid"]


def one_line_error(p):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert lines and "Traceback" not in p.stderr, p.stderr
    return lines[-1]


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d))
    return out


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except FileNotFoundError:
        return True
    return st[st.rindex(")") + 2] in "ZX"


class EventReader:
    """`events` as a stream: lines read with a deadline, the process stopped at the end."""

    def __init__(self, rt, *args):
        self.p = subprocess.Popen([rt.binary, "--root", rt.root, "events", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""

    def next(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no event line in time")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 1 << 16)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, kind, timeout=10):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            ev = self.next(max(0.01, deadline - time.monotonic()))
            if ev is None:
                break
            seen.append(ev["type"])
            if ev["type"] == kind:
                return ev
        raise AssertionError(f"no {kind} event; saw {seen}")

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=5)
        self.p.stdout.close()
        self.p.stderr.close()


@pytest.fixture
def both(tmp_path):
    """pyrunc and runc side by side, for comparing outputs on one config."""
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    rts = {n: Runtime(n, RUNTIMES[n], str(tmp_path)) for n in ("pyrunc", "runc")}
    yield rts
    for rt in rts.values():
        assert not rt.cleanup(), f"state left behind by {rt.name}"


# ------------------------------------------------------------------ pause / resume
def test_pause_resume(anyrt):
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & exec sleep 1001"])
    kid = wait_for(lambda: children_of(pid), what="the background child")[0]
    fz = cg_dir(pid, "freezer")
    p = anyrt("resume", cid)
    assert one_line_error(p).endswith('msg="container not paused"')
    anyrt("pause", cid, check=True)
    assert anyrt.state(cid)["status"] == "paused"
    assert cg_read(fz, "freezer.state") == "FROZEN"
    for x in (pid, kid):
        assert proc_state(x) == "D"  # frozen tasks sit in the refrigerator (uninterruptible)
    p = anyrt("pause", cid)
    assert one_line_error(p).endswith('msg="container not running"')
    anyrt("resume", cid, check=True)
    assert anyrt.state(cid)["status"] == "running"
    assert cg_read(fz, "freezer.state") == "THAWED"
    for x in (pid, kid):
        wait_for(lambda: proc_state(x) == "S", what=f"{x} to run again")
    # a paused container dies on SIGKILL (runc thaws it for the signal)
    anyrt("pause", cid, check=True)
    anyrt("kill", cid, "KILL", check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    p = anyrt("pause", cid)
    assert one_line_error(p).endswith('msg="container not running"')
    p = anyrt("resume", cid)
    assert one_line_error(p).endswith('msg="container not paused"')
    anyrt("delete", cid, check=True)
    assert not os.path.exists(fz)


def test_pause_created(anyrt):
    """runc pauses a created container too; resume brings it back to created, start runs it."""
    cid, pid = start_detached(anyrt, ["sleep", "1000"], create_only=True)
    anyrt("pause", cid, check=True)
    assert anyrt.state(cid)["status"] == "paused"
    anyrt("resume", cid, check=True)
    assert anyrt.state(cid)["status"] == "created"
    anyrt("start", cid, check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "running", what="running")


def test_pause_unknown(anyrt):
    for verb in ("pause", "resume", "ps", "events", "update"):
        args = ["--stats"] if verb == "events" else []
        p = anyrt(verb, *args, "no-such-ctr")
        assert "does not exist" in one_line_error(p), verb


# ------------------------------------------------------------------ ps
def test_ps(anyrt):
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1002"])
    wait_for(lambda: len(children_of(pid)) == 2, what="two children")
    procs = sorted(int(x) for x in cg_read(cg_dir(pid, "pids"), "cgroup.procs").split())
    p = anyrt("ps", "--format", "json", cid, check=True)
    assert p.stdout.endswith("]\n") and "\n" not in p.stdout[:-1] and " " not in p.stdout
    assert sorted(json.loads(p.stdout)) == procs and pid in procs and len(procs) == 3
    p = anyrt("ps", cid, check=True)  # ps -ef
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert sorted(int(line.split()[1]) for line in lines[1:]) == procs
    p = anyrt("ps", cid, "-o", "pid,comm", check=True)
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(int(line.split()[0]) for line in lines[1:]) == procs
    assert all(line.split()[1] == "sleep" for line in lines[1:])
    p = anyrt("ps", "-f", "xml", cid)
    assert one_line_error(p).endswith('msg="invalid format option"')
    p = anyrt("ps", cid, "-o", "comm")
    assert one_line_error(p).endswith('msg="couldn\'t find PID field in ps output"')
    p = anyrt("ps", cid, "--no-such-ps-option")
    assert p.returncode == 1 and "exit status 1" in p.stderr
    anyrt("kill", cid, "KILL", check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    wait_for(lambda: anyrt("ps", "-f", "json", cid, check=True).stdout == "null\n", what="no pids")
    p = anyrt("ps", cid, check=True)
    assert len(p.stdout.splitlines()) == 1  # the header only


# ------------------------------------------------------------------ kill --all / delete --force
@pytest.mark.parametrize("own_pidns", [True, False], ids=["pidns", "hostpid"])
def test_kill_all(anyrt, own_pidns):
    nss = None if own_pidns else ["network", "ipc", "uts", "mount"]
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1003"], namespaces=nss)
    kids = wait_for(lambda: len(children_of(pid)) == 2 and children_of(pid), what="two children")
    d = cg_dir(pid, "pids")
    anyrt("kill", "--all", cid, "KILL", check=True)
    for x in [pid] + kids:
        wait_for(lambda: gone(x), what=f"{x} to die")
    wait_for(lambda: not cg_read(d, "cgroup.procs"), what="an empty cgroup")
    assert anyrt.state(cid)["status"] == "stopped"
    anyrt("delete", cid, check=True)
    assert not os.path.exists(d)


def test_kill_all_created(anyrt):
    cid, pid = start_detached(anyrt, ["sleep", "1000"], create_only=True)
    d = cg_dir(pid, "pids")
    anyrt("kill", "--all", cid, "KILL", check=True)
    wait_for(lambda: gone(pid), what="the init to die")
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    assert not cg_read(d, "cgroup.procs")
    anyrt("delete", cid, check=True)


def test_kill_all_term_hostpid(anyrt):
    """A catchable signal reaches every process (frozen while signalled, so none escapes)."""
    nss = ["network", "ipc", "uts", "mount"]
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1004"], namespaces=nss)
    kids = wait_for(lambda: len(children_of(pid)) == 2 and children_of(pid), what="two children")
    anyrt("kill", "--all", cid, "TERM", check=True)
    for x in [pid] + kids:
        wait_for(lambda: gone(x), what=f"{x} to die")
    assert anyrt.state(cid)["status"] == "stopped"


def test_kill_all_stopped_with_children(anyrt):
    """No pid namespace, init dead: the container is stopped but kill --all still reaches the
    processes left in its cgroup, and a plain delete then works."""
    nss = ["network", "ipc", "uts", "mount"]
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1010"], namespaces=nss)
    kids = wait_for(lambda: len(children_of(pid)) == 2 and children_of(pid), what="two children")
    d = cg_dir(pid, "pids")
    anyrt("kill", cid, "KILL", check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    assert sorted(json.loads(anyrt("ps", "-f", "json", cid, check=True).stdout)) == sorted(kids)
    p = anyrt("kill", cid, "TERM")
    assert one_line_error(p).endswith('msg="container not running"')
    anyrt("kill", "--all", cid, "KILL", check=True)
    for x in kids:
        wait_for(lambda: gone(x), what=f"{x} to die")
    wait_for(lambda: not cg_read(d, "cgroup.procs"), what="an empty cgroup")
    anyrt("delete", cid, check=True)
    assert not os.path.exists(d)


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_delete_force_background_children(anyrt, paused):
    """No pid namespace: the init's death leaves its children; delete --force kills them all and
    removes every cgroup directory."""
    nss = ["network", "ipc", "uts", "mount"]
    cid, pid = start_detached(anyrt, ["sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000 & exec sleep 1005"],
                              namespaces=nss)
    kids = wait_for(lambda: len(children_of(pid)) == 3 and children_of(pid), what="three children")
    dirs = [cg_dir(pid, c) for c in ("pids", "memory", "freezer", "cpu", "devices")]
    if paused:
        anyrt("pause", cid, check=True)
    else:
        # kill only the init: the children stay in the cgroup, the container is "stopped"
        anyrt("kill", cid, "KILL", check=True)
        wait_for(lambda: gone(pid), what="the init to die")
        assert all(not gone(k) for k in kids)
    anyrt("delete", "--force", cid, check=True)
    for x in [pid] + kids:
        wait_for(lambda: gone(x), what=f"{x} to die")
    for d in dirs:
        assert not os.path.exists(d), d
    p = anyrt("state", cid)
    assert p.returncode == 1


# ------------------------------------------------------------------ limits in effect
def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ").strip()
    except OSError:
        return ""


def test_fork_bomb_stopped_by_pids_limit(anyrt):
    """A shell forking (up to 500) background children against pids.max 20: with init + shell +
    18 children the cgroup is full, the kernel refuses the 19th child's fork, the shell dies of
    it, the init goes on."""
    script = r'sh -c "i=0; while [ \$i -lt 500 ]; do sleep 1000 & i=\$((i+1)); done"; exec sleep 1006'
    cid, pid = start_detached(anyrt, ["sh", "-c", script], resources={"pids": {"limit": 20}})
    d = cg_dir(pid, "pids")
    assert cg_read(d, "pids.max") == "20"
    # the init's own command line holds "sleep 1006" from the start: await the exec itself, which
    # comes only once the inner shell is gone
    wait_for(lambda: _cmdline(pid) == "sleep 1006", what="the loop to finish")
    # A task's pid charge can outlive its reaping by a moment (kernel 6.18 uncharges after the
    # dead task's last switch-out; 20 was once read here under load): await the charge matching
    # the tasks still there, after which nothing in the container forks and the count is stable.
    def settled():
        tasks = cg_read(d, "tasks").split()
        return int(cg_read(d, "pids.current")) == len(tasks) and tasks
    tasks = wait_for(settled, timeout=30, what="pids.current to match the cgroup's tasks")
    # 19 when every task charged was the container's (init + 18 children); fewer when a fork met
    # runc's exiting init threads still charged
    cur = int(cg_read(d, "pids.current"))
    assert 1 < cur <= 19, [(t, _cmdline(t)) for t in tasks]
    assert 0 < sum(_cmdline(t) == "sleep 1000" for t in tasks) <= 18
    assert int(cg_read(d, "pids.events").split()[1]) >= 1  # refused forks
    st = json.loads(anyrt("events", "--stats", cid, check=True).stdout)
    assert st["data"]["pids"] == {"current": cur, "limit": 20}
    anyrt("delete", "--force", cid, check=True)
    assert not os.path.exists(d)


def test_oom_event(anyrt):
    """A memory hog over memory.limit is OOM-killed; `events` reports it as an oom event."""
    script = "while [ ! -e /dev/shm/go ]; do usleep 10000; done; dd if=/dev/zero of=/dev/null bs=64M count=1; " \
             "exec sleep 1007"
    cid, pid = start_detached(anyrt, ["sh", "-c", script],
                              resources={"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    md = cg_dir(pid, "memory")
    assert cg_read(md, "memory.limit_in_bytes") == str(16 * MiB)
    ev = EventReader(anyrt, "--interval", "100ms", cid)
    try:
        st = ev.until("stats")  # the watch is set up before the first stats event
        assert st["id"] == cid and st["data"]["memory"]["usage"]["limit"] == 16 * MiB
        open(f"/proc/{pid}/root/dev/shm/go", "w").close()
        oom = ev.until("oom")
        assert oom == {"type": "oom", "id": cid}
    finally:
        ev.close()
    # the notification comes when the OOM is found, the kill is counted just after
    wait_for(lambda: int(dict(line.split() for line in cg_read(md, "memory.oom_control").splitlines())
                         ["oom_kill"]) >= 1, what="the OOM kill to be counted")
    st = json.loads(anyrt("events", "--stats", cid, check=True).stdout)["data"]
    assert st["memory"]["usage"]["max"] > 12 * MiB
    assert anyrt.state(cid)["status"] == "running"  # only the hog died


def test_events_stream_ends(anyrt):
    """The stream ends once the container is gone (pyrunc: as soon as it stops; runc: at delete)."""
    cid, pid = start_detached(anyrt, ["sleep", "1000"])
    ev = EventReader(anyrt, "--interval", "50ms", cid)
    try:
        a, b = ev.next(), ev.next()
        assert a["type"] == b["type"] == "stats" and a["id"] == cid
        anyrt("kill", cid, "KILL", check=True)
        if anyrt.name == "runc":
            wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
            anyrt("delete", cid, check=True)
        ev.p.wait(timeout=10)
        assert ev.p.returncode == 0
    finally:
        ev.close()


def test_events_errors(anyrt):
    cid, pid = start_detached(anyrt, ["sleep", "1000"])
    p = anyrt("events", "--interval", "0", cid)
    assert one_line_error(p).endswith('msg="duration interval must be greater than 0"')
    p = anyrt("events", "--interval", "-1s", cid)
    assert one_line_error(p).endswith('msg="duration interval must be greater than 0"')
    p = anyrt("events", "--interval", "xx", cid)
    assert p.returncode == 1 and 'invalid value \\"xx\\" for flag' in p.stderr
    anyrt("kill", cid, "KILL", check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    p = anyrt("events", "--stats", cid)
    assert one_line_error(p).endswith(f'msg="container with id {cid} is not running"')


# ------------------------------------------------------------------ update
def _inside_reader():
    """An init that copies its own limits, as seen inside, to /dev/shm/x every 20ms."""
    return ["sh", "-c", "while :; do cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
                        "/sys/fs/cgroup/cpu/cpu.shares > /dev/shm/x.new; mv /dev/shm/x.new /dev/shm/x; "
                        "usleep 20000; done"]


def test_update_live(anyrt):
    cid, pid = start_detached(anyrt, _inside_reader())
    dirs = {c: cg_dir(pid, c) for c in ("memory", "cpu", "pids", "cpuset", "blkio")}
    anyrt("update", "--memory", "100m", "--memory-swap", "200m", "--memory-reservation", "50m",
          "--cpu-share", "512", "--cpu-period", "200000", "--cpu-quota", "50000", "--pids-limit", "30",
          "--cpuset-cpus", "0", "--blkio-weight", "300", cid, check=True)
    m, c = dirs["memory"], dirs["cpu"]
    assert cg_read(m, "memory.limit_in_bytes") == str(100 * MiB)
    assert cg_read(m, "memory.memsw.limit_in_bytes") == str(200 * MiB)
    assert cg_read(m, "memory.soft_limit_in_bytes") == str(50 * MiB)
    assert cg_read(c, "cpu.shares") == "512"
    assert cg_read(c, "cpu.cfs_period_us") == "200000" and cg_read(c, "cpu.cfs_quota_us") == "50000"
    assert cg_read(dirs["pids"], "pids.max") == "30"
    assert cg_read(dirs["cpuset"], "cpuset.cpus") == "0"
    bw = "blkio.weight" if os.path.exists(os.path.join(dirs["blkio"], "blkio.weight")) else "blkio.bfq.weight"
    assert cg_read(dirs["blkio"], bw).split()[-1] == "300"
    shm = f"/proc/{pid}/root/dev/shm/x"
    wait_for(lambda: open(shm).read().split() == ["30", str(100 * MiB), "512"], what="the limits seen inside")
    # a later update changes only what it names
    anyrt("update", "--memory", "1g", "--memory-swap", "-1", "--pids-limit", "-1", cid, check=True)
    assert cg_read(m, "memory.limit_in_bytes") == str(1 << 30)
    assert cg_read(dirs["pids"], "pids.max") == "max"
    assert cg_read(c, "cpu.shares") == "512" and cg_read(c, "cpu.cfs_quota_us") == "50000"
    wait_for(lambda: open(shm).read().split() == ["max", str(1 << 30), "512"], what="the new limits inside")
    # a lone quota keeps the period
    anyrt("update", "--cpu-quota", "30000", cid, check=True)
    assert cg_read(c, "cpu.cfs_period_us") == "200000" and cg_read(c, "cpu.cfs_quota_us") == "30000"
    st = json.loads(anyrt("events", "--stats", cid, check=True).stdout)["data"]
    assert st["memory"]["usage"]["limit"] == 1 << 30 and "limit" not in st["pids"]
    assert st["cpuset"]["cpus"] == [0]
    if anyrt.name == "pyrunc":
        with open(os.path.join(anyrt.root, cid, "state.json")) as f:
            res = json.load(f)["config"]["linux"]["resources"]
        assert res["memory"] == {"limit": 1 << 30, "swap": -1, "reservation": 50 * MiB}
        assert res["cpu"] == {"shares": 512, "period": 200000, "quota": 30000, "cpus": "0"}
        assert res["pids"] == {"limit": -1} and res["blockIO"] == {"weight": 300}


def test_update_resources_file(anyrt, tmp_path):
    cid, pid = start_detached(anyrt, ["sleep", "1000"])
    f = tmp_path / "res.json"
    # podman passes a whole LinuxResources: the fields runc does not update are ignored
    f.write_text(json.dumps({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}, "pids": {"limit": 77},
                             "cpu": {"shares": 300, "cpus": "1"}, "hugepageLimits": [],
                             "devices": [{"allow": False, "access": "rwm"}]}))
    anyrt("update", f"--resources={f}", "--pids-limit", "5", cid, check=True)  # other flags ignored
    assert cg_read(cg_dir(pid, "memory"), "memory.limit_in_bytes") == str(64 * MiB)
    assert cg_read(cg_dir(pid, "memory"), "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert cg_read(cg_dir(pid, "pids"), "pids.max") == "77"
    assert cg_read(cg_dir(pid, "cpu"), "cpu.shares") == "300"
    assert cg_read(cg_dir(pid, "cpuset"), "cpuset.cpus") == "1"
    anyrt("update", "-r", "-", cid, input=json.dumps({"pids": {"limit": 12}}), check=True)
    assert cg_read(cg_dir(pid, "pids"), "pids.max") == "12"
    assert cg_read(cg_dir(pid, "cpu"), "cpu.shares") == "300"  # unchanged


def test_update_sizes(anyrt):
    """runc's size syntax (go-units RAMInBytes: binary units, optional i/b, one optional space)."""
    cid, pid = start_detached(anyrt, ["sleep", "1000"])
    m = cg_dir(pid, "memory")
    for text, want in (("64m", 64 * MiB), ("1.5g", 3 << 29), ("100MiB", 100 * MiB), ("20 mb", 20 * MiB),
                       ("1t", 1 << 40), (str(48 * MiB), 48 * MiB)):
        anyrt("update", "--memory", text, cid, check=True)
        assert cg_read(m, "memory.limit_in_bytes") == str(want), text


def test_update_bad_input(anyrt, tmp_path):
    cid, pid = start_detached(anyrt, ["sleep", "1000"])
    m = cg_dir(pid, "memory")
    before = cg_read(m, "memory.limit_in_bytes")
    for args, msg in ((["--memory", "abc"], "invalid value for memory: invalid size: 'abc'"),
                      (["--memory", "-2"], "invalid value for memory: invalid size: '-2'"),
                      (["--memory", "1.5.3k"], "invalid value for memory"),
                      (["--memory-swap", "10x"], "invalid value for memory-swap"),
                      (["--cpu-share", "x"], "invalid value for cpu-share"),
                      (["--cpu-period", "-5"], "invalid value for cpu-period"),
                      (["--cpu-quota", "1.5"], "invalid value for cpu-quota"),
                      (["--cpu-shares", "5"], "flag provided but not defined: -"),
                      (["--pids-limit", "x"], "pids-limit"),
                      (["--cpuset-cpus", "77"], "cpuset.cpus"),
                      (["--cpu-share", "1"], 'msg="the minimum allowed cpu-shares is 2"'),
                      (["--cpu-share", "999999"], 'msg="the maximum allowed cpu-shares is 262144"'),
                      (["--memory", "10k"], 'msg="unable to set memory limit to 10240 (current usage: '),
                      (["--l3-cache-schema", "L3:0=f"], "Intel RDT/CAT: l3 cache schema is not enabled")):
        p = anyrt("update", *args, cid)
        assert msg in one_line_error(p), (args, p.stderr)
    bad = tmp_path / "bad.json"
    for text in ("{bad", '{"memory": {"limit": "x"}}', '{"cpu": {"shares": -1}}', "[1]"):
        bad.write_text(text)
        p = anyrt("update", "-r", str(bad), cid)
        one_line_error(p)
    p = anyrt("update", "-r", str(tmp_path / "missing.json"), cid)
    assert "no such file or directory" in one_line_error(p)
    assert cg_read(m, "memory.limit_in_bytes") == before
    anyrt("kill", cid, "KILL", check=True)
    wait_for(lambda: anyrt.state(cid)["status"] == "stopped", what="stopped")
    p = anyrt("update", "--memory", "10m", cid)
    assert one_line_error(p).endswith('msg="container not running"')


# ------------------------------------------------------------------ pyrunc against runc
def _shape(v, path=""):
    """Key paths of a JSON value (list contents collapsed)."""
    if isinstance(v, dict):
        out = {path or "."}
        for k, x in v.items():
            out |= _shape(x, f"{path}.{k}")
        return out
    if isinstance(v, list):
        return {path + "[]"} | set().union(*[_shape(x, path + "[]") for x in v])
    return {path}


def test_stats_match_runc(both):
    """events --stats on one config: the same fields (Go omitempty rules) and limits as runc."""
    res = {"memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 32 * MiB}, "pids": {"limit": 50},
           "cpu": {"shares": 256, "quota": 20000, "period": 100000, "cpus": "0"}}
    got = {}
    for name, rt in both.items():
        cid, pid = start_detached(rt, ["sh", "-c", "sleep 1000 & exec sleep 1008"], resources=res)
        wait_for(lambda: children_of(pid), what="the child")
        p = rt("events", "--stats", cid, check=True)
        assert p.stdout.endswith("}\n") and p.stdout.count("\n") == 1 and ": " not in p.stdout
        ev = json.loads(p.stdout)
        assert list(ev) == ["type", "id", "data"] and ev["type"] == "stats" and ev["id"] == cid
        got[name] = ev["data"]
        rt("delete", "--force", cid, check=True)
    py, rc = got["pyrunc"], got["runc"]
    assert list(py) == list(rc)
    for k in ("cpuset", "pids", "hugetlb", "intel_rdt", "network_interfaces"):
        assert py[k] == rc[k], k
    assert set(py["blkio"]) <= set(stats.BLKIO_KEYS)  # entries only when IO happened
    for k in ("usage", "swap", "kernel", "kernelTCP"):
        assert list(py["memory"][k]) == list(rc["memory"][k]), k
        assert py["memory"][k]["limit"] == rc["memory"][k]["limit"], k
    assert py["memory"]["usage"]["limit"] == 64 * MiB and py["memory"]["swap"]["limit"] == 96 * MiB
    assert sorted(py["memory"]["raw"]) == sorted(rc["memory"]["raw"])
    assert list(py["memory"]["raw"]) == sorted(py["memory"]["raw"])  # Go sorts map keys
    assert list(py["cpu"]["usage"]) == list(rc["cpu"]["usage"])
    assert len(py["cpu"]["usage"]["percpu"]) == len(rc["cpu"]["usage"]["percpu"])
    assert set(py["cpu"]["throttling"]) <= {"periods", "throttledPeriods", "throttledTime"}
    # what the machine's load decides, not the runtime: block IO entries appear once the
    # container did IO (a page-in of sleep after eviction), throttling counts once it was throttled
    def stable(v):
        return {s for s in _shape(v) if not s.startswith((".blkio.", ".cpu.throttling."))} - {".memory.cache"}
    assert stable(py) >= stable(rc)


def test_ps_match_runc(both):
    out = {}
    for name, rt in both.items():
        cid, pid = start_detached(rt, ["sh", "-c", "sleep 1000 & exec sleep 1009"])
        wait_for(lambda: children_of(pid), what="the child")
        js = rt("ps", "-f", "json", cid, check=True).stdout
        tab = rt("ps", cid, "-o", "pid,ppid,comm", check=True).stdout
        procs = sorted(json.loads(js))
        # normalise pids to their rank, then the outputs must be the same
        rank = {str(p): f"P{i}" for i, p in enumerate(procs)}
        lines = [" ".join(rank.get(w, w) for w in line.split()) for line in tab.splitlines()]
        out[name] = (len(procs), sorted(lines))
        rt("delete", "--force", cid, check=True)
    assert out["pyrunc"] == out["runc"]


def test_update_state_matches_runc(both):
    """The same update sequence leaves the same cgroup values under both runtimes."""
    files = {"memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes"),
             "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"), "pids": ("pids.max",),
             "cpuset": ("cpuset.cpus",)}
    seen = {}
    for name, rt in both.items():
        cid, pid = start_detached(rt, ["sleep", "1000"])
        vals = []
        for args in (["--memory", "100m"], ["--memory-swap", "300m", "--memory", "200m"], ["--memory", "-1"],
                     ["--cpu-quota", "40000"], ["--cpu-period", "50000", "--cpu-quota", "10000"],
                     ["--cpu-share", "100", "--pids-limit", "9", "--cpuset-cpus", "1"], ["--pids-limit", "-1"],
                     ["--memory-reservation", "10m"]):
            p = rt("update", *args, cid)
            vals.append((args, p.returncode,
                         {f: cg_read(cg_dir(pid, c), f) for c, fs in files.items() for f in fs}))
        seen[name] = vals
        rt("delete", "--force", cid, check=True)
    assert seen["pyrunc"] == seen["runc"]


# ------------------------------------------------------------------ parsers (no kernel)
@pytest.mark.parametrize("text,want", [
    ("10", 10), ("10 ", 10), ("10b", 10), ("10i", 10), ("10ib", 10), ("1k", 1024), ("10kb", 10240),
    ("10KiB", 10240), ("10 m", 10 * MiB), ("1.5k", 1536), ("1g", 1 << 30), ("2T", 2 << 40), ("1p", 1 << 50),
    ("-1", -1)])
def test_parse_size(text, want):
    assert cgroupverbs.parse_size("memory", text) == want


@pytest.mark.parametrize("text", ["abc", "-2", " 10m", "10x", "1e3", "10.", ".5m", "10mbb", "0x10", "+10m",
                                  "1.5.3k", "", "10m\n", "\u0661\u0660"])
def test_parse_size_bad(text):
    with pytest.raises(Error, match="invalid value for memory"):
        cgroupverbs.parse_size("memory", text)


@pytest.mark.parametrize("text,want", [("5s", 5), ("100ms", 0.1), ("1m30s", 90), ("1.5h", 5400), ("0", 0),
                                       ("250us", 0.00025), ("-1s", -1), ("2m", 120)])
def test_parse_duration(text, want):
    assert cgroupverbs.parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["xx", "5", "s", "1.s5", "", "1d", "."])
def test_parse_duration_bad(text):
    assert cgroupverbs.parse_duration(text) is None


def test_runc_stats_v2_tree(tmp_path):
    """The v2 stats conversion on a cgroup2-shaped directory (this host's cgroup2 has no controllers)."""
    from runtime import cgroups
    d = tmp_path / "cg"
    d.mkdir()
    files = {"cpu.stat": "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\n"
                         "throttled_usec 7\n",
             "memory.current": "4096\n", "memory.max": "max\n", "memory.stat": "file 100\nanon 200\n",
             "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", "memory.swap.current": "0\n",
             "memory.swap.max": "max\n", "pids.current": "3\n", "pids.max": "10\n",
             "io.stat": "8:0 rbytes=512 wbytes=0 rios=1 wios=0\n"}
    for name, text in files.items():
        (d / name).write_text(text)
    mgr = cgroups.load_manager({"mode": "v2", "paths": {"": str(d)}, "created": [], "devices": []})
    s = mgr.stats()
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["cpu"] == {"usage": {"total": 10000, "kernel": 4000, "user": 6000},
                        "throttling": {"periods": 3, "throttledPeriods": 1, "throttledTime": 7000}}
    assert s["memory"]["cache"] == 100 and list(s["memory"]["raw"].items()) == [("anon", 200), ("file", 100)]
    assert s["memory"]["usage"] == {"limit": 2 ** 64 - 1, "usage": 4096, "failcnt": 2}
    assert s["memory"]["kernel"] == {"limit": 0, "failcnt": 0}
    assert s["pids"] == {"current": 3, "limit": 10}
    assert s["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 512},
                                                     {"major": 8, "op": "Write"}]
    assert s["cpuset"]["sched_relax_domain_level"] == 0 and "cpus" not in s["cpuset"]
    assert mgr.oom_count() == 1


def test_events_stream_polls_v2_oom(tmp_path):
    """Without v1 OOM notifications the stream polls the oom_kill counter; it ends with the init."""
    import threading
    from runtime import cgroups, state
    d = tmp_path / "cg"
    d.mkdir()
    (d / "memory.events").write_text("oom 0\noom_kill 0\n")
    (d / "memory.current").write_text("0\n")
    mgr = cgroups.load_manager({"mode": "v2", "paths": {"": str(d)}, "created": [], "devices": []})
    init = subprocess.Popen(["sleep", "30"])
    lines = []

    class Out:
        def write(self, s):
            lines.append(json.loads(s))

        def flush(self):
            pass
    t = threading.Thread(target=cgroupverbs._stream,
                         args=(Out(), "x", mgr, init.pid, state.proc_start_time(init.pid), 0.05))
    try:
        t.start()
        wait_for(lambda: any(e["type"] == "stats" for e in lines), what="a stats event")
        (d / "memory.events").write_text("oom 2\noom_kill 2\n")
        wait_for(lambda: sum(e["type"] == "oom" for e in lines) == 2, what="two oom events")
        assert {"type": "oom", "id": "x"} in lines
    finally:
        init.kill()
        init.wait(timeout=5)
    t.join(timeout=5)
    assert not t.is_alive()
