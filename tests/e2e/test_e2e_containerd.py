"""containerd 1.6 (runc v2 shim, started by the test) driving pyrunc, and runc for comparison."""
import json
import os
import subprocess
import tempfile
import uuid

from e2efix import containerd, runtime, wait_for  # noqa: F401 (fixtures)

IMG = "localhost/busybox:latest"


def _id(runtime):
    return f"e2e-{runtime[0]}-{uuid.uuid4().hex[:8]}"


def _run(ctd, runtime, cid, *args, detach=False, **kw):
    name, binary = runtime
    opts = ["--runc-binary", binary, "--runc-root", os.path.join(ctd.base, "runtime-root", name),
            "--fifo-dir", os.path.join(ctd.base, "fifo")]
    return ctd("run", *(["-d"] if detach else ["--rm"]), *opts, IMG, cid, *args, **kw)


def _run_output(ctd, runtime, cid, *args, **kw):
    """A foreground `ctr run --rm` whose stdout and stderr the shim writes to a file; returns
    (the ctr result, the file's text).

    Not ctr's own stdout: ctr reads it through a fifo that its client opens in a goroutine, and
    when the task is deleted it cancels that open if it has not happened yet, so under load a
    short task's whole output can be lost between the shim and ctr, whatever the runtime (the
    shim itself waits for its copy of the container's pipes before it deletes)."""
    name, binary = runtime
    log = os.path.join(ctd.base, f"{cid}.log")
    opts = ["--runc-binary", binary, "--runc-root", os.path.join(ctd.base, "runtime-root", name),
            "--fifo-dir", os.path.join(ctd.base, "fifo"), "--log-uri", f"file://{log}"]
    p = ctd("run", "--rm", *opts, IMG, cid, *args, **kw)
    try:
        with open(log) as f:
            return p, f.read()
    finally:
        if os.path.exists(log):
            os.unlink(log)


def _reading(pid, path_end):
    """Whether process PID has a fifo ending in PATH_END open for reading (not just an O_PATH
    handle: containerd's fifo package holds one of those while its real open is pending)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if not os.readlink(f"/proc/{pid}/fd/{fd}").endswith(path_end):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = int(f.read().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue
        if not flags & 0o10000000 and flags & 3 in (0, 2):  # not O_PATH; O_RDONLY or O_RDWR
            return True
    return False


def _exec_output(ctd, cid, eid, script):
    """`ctr tasks exec` of SCRIPT, whose output starts only once ctr has really opened its stdout
    fifo: ctr's client opens it in a goroutine and cancels a pending open when the process is
    deleted, so a short exec's whole output can otherwise be lost under load (see _run_output).
    The go-ahead is a file the test puts in the container's rootfs."""
    from e2efix import ENV
    rootfs = os.path.join(ctd.base, "state", "io.containerd.runtime.v2.task", ctd.ns, cid, "rootfs")
    go = f"/.go-{eid}"
    cmd = ["ctr", "--address", ctd.sock, "--namespace", ctd.ns, "tasks", "exec",
           "--fifo-dir", os.path.join(ctd.base, "fifo"), "--exec-id", eid, cid, "sh", "-c",
           f"while [ ! -e {go} ]; do sleep 0.01; done; rm -f {go}; {script}"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True, env=ENV)
        try:
            wait_for(lambda: _reading(proc.pid, f"{eid}-stdout") or proc.poll() is not None,
                     what="ctr to open the exec's stdout fifo")
            open(rootfs + go, "w").close()
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())


def _task_status(ctd, cid):
    for line in ctd("tasks", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return f[2]
    return None


def _remove(ctd, cid):
    ctd("tasks", "kill", "-s", "SIGKILL", cid, check=False)
    ctd("tasks", "delete", "--force", cid, check=False)
    ctd("containers", "delete", cid, check=False)


def test_run(containerd, runtime):
    _, out = _run_output(containerd, runtime, _id(runtime), "echo", "hello from containerd")
    assert out == "hello from containerd\n"


def test_run_exit_code(containerd, runtime):
    p = _run(containerd, runtime, _id(runtime), "sh", "-c", "exit 5", check=False)
    assert p.returncode == 5, p.stderr


def test_shim_fds_do_not_leak(containerd, runtime):
    # the shim hands the runtime its own socket as fd 3: only stdio may reach the container
    _, out = _run_output(containerd, runtime, _id(runtime), "sh", "-c", "ls /proc/self/fd")
    assert sorted(out.split()) == ["0", "1", "2", "3"], out  # 3: ls's own dir fd


def test_detached_exec_ps_pause_metrics_kill_delete(containerd, runtime):
    ctd, cid = containerd, _id(runtime)
    _run(ctd, runtime, cid, "sleep", "1000", detach=True)
    try:
        assert _task_status(ctd, cid) == "RUNNING"
        # the shim really drove this runtime: its state is under the --runc-root we gave
        root = os.path.join(ctd.base, "runtime-root", runtime[0])
        assert any(cid in dirs for _, dirs, _ in os.walk(root)), root
        fifo = ["--fifo-dir", os.path.join(ctd.base, "fifo")]
        p = _exec_output(ctd, cid, "e1", "echo exec-out; exit 3")
        assert (p.returncode, p.stdout) == (3, "exec-out\n"), p.stderr

        p = ctd("tasks", "ps", cid)
        pids = [line.split()[0] for line in p.stdout.splitlines()[1:] if line.strip()]
        assert len(pids) == 1 and pids[0].isdigit(), p.stdout

        ctd("tasks", "pause", cid)
        assert _task_status(ctd, cid) == "PAUSED"
        ctd("tasks", "resume", cid)
        assert _task_status(ctd, cid) == "RUNNING"

        p = ctd("tasks", "metrics", "--format", "json", cid)
        m = json.loads(p.stdout)
        assert m, p.stdout

        ctd("tasks", "kill", "-s", "SIGKILL", cid)
        wait_for(lambda: _task_status(ctd, cid) == "STOPPED", what="task to stop")
        ctd("tasks", "delete", cid)
        ctd("containers", "delete", cid)
        assert cid not in ctd("containers", "ls", "-q").stdout.split()
    finally:
        _remove(ctd, cid)


def test_kill_term(containerd, runtime):
    ctd, cid = containerd, _id(runtime)
    _run(ctd, runtime, cid, "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.1; done", detach=True)
    try:
        ctd("tasks", "kill", cid)  # SIGTERM
        wait_for(lambda: _task_status(ctd, cid) == "STOPPED", what="task to stop")
        p = ctd("tasks", "delete", cid)
        assert "9" in p.stdout or p.returncode == 0
    finally:
        _remove(ctd, cid)


def _ctr_in_pty(ctd, *args):
    """Run ctr with a terminal of its own (script(1)): `ctr ... -t` puts its stdin in raw mode."""
    import shlex
    from e2efix import ENV, sh
    ctr = ["ctr", "--address", ctd.sock, "--namespace", ctd.ns, *args]
    return sh(["script", "-qec", shlex.join(ctr), "/dev/null"], env=ENV)


def test_run_and_exec_tty(containerd, runtime):
    # the shim passes --console-socket to the runtime's create and exec
    ctd, (name, binary) = containerd, runtime
    opts = ["--runc-binary", binary, "--runc-root", os.path.join(ctd.base, "runtime-root", name),
            "--fifo-dir", os.path.join(ctd.base, "fifo")]
    p = _ctr_in_pty(ctd, "run", "--rm", "-t", *opts, IMG, _id(runtime), "tty")
    assert "/dev/pts/" in p.stdout, p.stdout + p.stderr
    cid = _id(runtime)
    _run(ctd, runtime, cid, "sleep", "1000", detach=True)
    try:
        p = _ctr_in_pty(ctd, "tasks", "exec", "-t", "--fifo-dir", os.path.join(ctd.base, "fifo"),
                        "--exec-id", "t1", cid, "tty")
        assert "/dev/pts/" in p.stdout, p.stdout + p.stderr
    finally:
        _remove(ctd, cid)
