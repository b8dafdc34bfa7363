"""Docker 20.10 (its own dockerd and managed containerd, cgroupfs) driving pyrunc, and runc for
comparison: each scenario runs once with `--runtime pyrunc` and once with `--runtime runc`."""
import json
import os
import shlex
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from dockerfix import DOCKER, IMG, PYRUNC, docker  # noqa: F401 (fixture)
from e2efix import runtime, sh, wait_for  # noqa: F401 (fixture)


def _name(runtime, tag=""):
    return f"e2e-{runtime[0]}-{tag}{uuid.uuid4().hex[:8]}"


def _run(dk, runtime, *args, net="none", **kw):
    return dk("run", "--runtime", runtime[0], "--network", net, *args, **kw)


def _rm(dk, *names):
    dk("rm", "-f", "-v", *names, check=False, timeout=120)


def _gone(dk, name):
    p = dk("inspect", "--type", "container", name, check=False)
    return p.returncode != 0 and "No such" in p.stderr


def _status_field(dk, cmd, field):
    for line in cmd.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in {cmd!r}")


# ------------------------------------------------------------------ run, exec, stdio
def test_run_env_workdir_user_exit(docker, runtime):
    p = _run(docker, runtime, "--rm", "-e", "FOO=bar baz", "-w", "/tmp", "-u", "1000:1000", IMG,
             "sh", "-c", 'echo "$FOO"; pwd; id -u; id -g')
    assert p.stdout.split("\n") == ["bar baz", "/tmp", "1000", "1000", ""], p.stdout
    p = _run(docker, runtime, "--rm", IMG, "sh", "-c", "exit 7", check=False)
    assert p.returncode == 7, p.stderr
    # a missing program: Docker's 127 with the runtime's error passed on
    p = _run(docker, runtime, "--rm", IMG, "/no/such/program", check=False)
    assert p.returncode == 127 and "/no/such/program" in p.stderr, (p.returncode, p.stderr)


def test_run_stdin_and_tty(docker, runtime):
    p = _run(docker, runtime, "--rm", "-i", IMG, "wc", "-c", input="12345")
    assert p.stdout.strip() == "5", p.stderr
    p = _run(docker, runtime, "--rm", "-t", IMG, "sh", "-c", "tty; stty size")
    out = p.stdout.replace("\r", "").split("\n")
    assert out[0].startswith("/dev/pts/"), p.stdout


def test_run_interactive_tty(docker, runtime):
    # `docker run -it` wants a terminal on its own stdin: script(1) gives it one
    cmd = [DOCKER, "-H", f"unix://{docker.sock}", "run", "--rm", "-it", "--runtime", runtime[0], "--network", "none",
           IMG, "sh", "-c", "read line; echo got:$line; tty"]
    p = sh(["script", "-qec", shlex.join(cmd), "/dev/null"], input="hello\n", env=docker.env, timeout=60)
    out = p.stdout.replace("\r", "")
    assert "got:hello\n/dev/pts/" in out, p.stdout + p.stderr


def test_detached_exec_logs_top_stats_cp(docker, runtime, tmp_path):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sh", "-c", "echo out; echo err >&2; exec sleep 1000")
    try:
        assert dk.status(name) == "running"
        wait_for(lambda: dk("logs", name).stdout == "out\n", what="container log")
        assert dk("logs", name).stderr == "err\n"

        p = dk("exec", "-e", "A=1", "-w", "/etc", "-u", "1000:1000", name, "sh", "-c", 'echo "$A" "$(pwd)" "$(id -u)"')
        assert p.stdout == "1 /etc 1000\n", p.stdout
        p = dk("exec", name, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 3", check=False)
        assert (p.returncode, p.stdout, p.stderr) == (3, "exec-out\n", "exec-err\n"), p
        p = dk("exec", "-i", name, "wc", "-c", input="1234567")
        assert p.stdout.strip() == "7"
        p = dk("exec", "-t", name, "tty")
        assert p.stdout.strip().startswith("/dev/pts/"), p.stdout
        dk("exec", "-d", name, "sh", "-c", "echo detached > /tmp/flag")
        wait_for(lambda: dk("exec", name, "cat", "/tmp/flag", check=False).stdout == "detached\n",
                 what="the detached exec")

        p = dk("top", name)
        assert "sleep 1000" in p.stdout, p.stdout
        p = dk("stats", "--no-stream", "--format", "{{json .}}", name)
        stats = json.loads(p.stdout)
        assert stats["Name"] == name and int(stats["PIDs"]) >= 1, stats
        assert not stats["MemUsage"].startswith("0B"), stats

        src = tmp_path / "in.txt"
        src.write_text("copied in\n")
        dk("cp", str(src), f"{name}:/tmp/in.txt")
        assert dk("exec", name, "cat", "/tmp/in.txt").stdout == "copied in\n"
        dk("exec", name, "sh", "-c", "echo copied out > /tmp/out.txt")
        dk("cp", f"{name}:/tmp/out.txt", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "copied out\n"

        _rm(dk, name)  # rm -f of a running container
        assert _gone(dk, name)
    finally:
        _rm(dk, name)


def test_nonroot_stdio_reopen_run(docker, runtime):
    # the stdio pipes belong to root: the runtime hands them to the container user (runc's
    # fixStdioPermissions), or a non-root program can't open /dev/stdin or /dev/stdout
    p = _run(docker, runtime, "--rm", "-i", "--user", "1000:1000", IMG, "sh", "-c",
             "cat /dev/stdin; echo x > /dev/stdout", input="in\n", check=False)
    assert (p.returncode, p.stdout) == (0, "in\nx\n"), (p.returncode, p.stdout, p.stderr)


def test_nonroot_stdio_reopen_exec(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sleep", "1000")
    try:
        p = dk("exec", "-i", "-u", "1000", name, "sh", "-c", "cat /dev/stdin; echo x > /dev/stdout",
               input="in\n", check=False)
        assert (p.returncode, p.stdout) == (0, "in\nx\n"), (p.returncode, p.stdout, p.stderr)
    finally:
        _rm(dk, name)


def test_process_name(docker, runtime):
    # /proc/PID/comm: runc names the program after the path it was run by (/bin/sleep, a symlink
    # to busybox, gives "sleep"). pyrunc runs the file it opened and checked, by descriptor (the
    # CVE-2019-5736 family, runtime/program.py): the kernel (6.14 and later) names it after that
    # file, "busybox" here, the same name for the init and for exec. Never the runtime's own.
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sleep", "1000")
    try:
        want_init, want_exec = "sleep\n", "cat\n"
        if runtime[0] != "runc":  # the file's own name: the applets are links to busybox, or hardlinks
            import os
            from e2efix import ROOTFS
            for w, applet in (("init", "sleep"), ("exec", "cat")):
                path = os.path.join(ROOTFS, "bin", applet)
                n = os.path.basename(os.readlink(path)) if os.path.islink(path) else applet
                if w == "init":
                    want_init = n + "\n"
                else:
                    want_exec = n + "\n"
        assert dk("exec", name, "cat", "/proc/1/comm").stdout == want_init
        assert dk("exec", name, "cat", "/proc/self/comm").stdout == want_exec
        assert dk("exec", name, "cat", "/proc/1/cmdline").stdout == "sleep\x001000\x00"
    finally:
        _rm(dk, name)


# ------------------------------------------------------------------ lifecycle
def test_stop_term_trap(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done")
    try:
        dk("stop", "-t", "30", name, timeout=60)
        assert dk.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 42"
    finally:
        _rm(dk, name)


def test_stop_timeout_ignored_term(docker, runtime):
    dk, name = docker, _name(runtime)
    # sleep as pid 1 has no handler: the kernel drops SIGTERM, stop escalates to SIGKILL
    _run(dk, runtime, "-d", "--name", name, IMG, "sleep", "1000")
    try:
        t0 = time.monotonic()
        dk("stop", "-t", "1", name, timeout=60)
        assert time.monotonic() - t0 >= 1
        assert dk.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    finally:
        _rm(dk, name)


def test_kill_signal(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sh", "-c",
         "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done")
    try:
        wait_for(lambda: "ready" in dk("logs", name).stdout, what="trap set")
        dk("kill", "-s", "USR1", name)
        wait_for(lambda: "got-usr1" in dk("logs", name).stdout, what="USR1 delivered")
        assert dk.status(name) == "running"
        dk("kill", "-s", "KILL", name)
        wait_for(lambda: dk.status(name) == "exited", what="container to exit")
        assert dk.inspect(name, "{{.State.ExitCode}}") == "137"
    finally:
        _rm(dk, name)


def test_wait(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sh", "-c", "sleep 0.3; exit 4")
    try:
        assert dk("wait", name, timeout=60).stdout.strip() == "4"
    finally:
        _rm(dk, name)


def test_restart_on_failure(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, "--restart", "on-failure:2", IMG, "sh", "-c", "exit 3")
    try:
        wait_for(lambda: dk.inspect(name, "{{.RestartCount}} {{.State.Status}}") == "2 exited", timeout=60,
                 what="two restarts, then the end")
        assert dk.inspect(name, "{{.State.ExitCode}}") == "3"
    finally:
        _rm(dk, name)


def test_pause_unpause_rm_paused(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, IMG, "sleep", "1000")
    try:
        dk("pause", name)
        assert dk.status(name) == "paused"
        dk("unpause", name)
        assert dk.status(name) == "running"
        assert dk("exec", name, "echo", "alive").stdout == "alive\n"
        dk("pause", name)
        assert dk.status(name) == "paused"
        dk("rm", "-f", name, timeout=60)
        assert _gone(dk, name)
    finally:
        _rm(dk, name)


def test_update_resources(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, "--memory", "64m", "--pids-limit", "50", IMG, "sleep", "1000")
    try:
        read = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
        assert dk("exec", name, "sh", "-c", read).stdout.split() == [str(64 << 20), "50"]
        dk("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "77", name)
        assert dk("exec", name, "sh", "-c", read).stdout.split() == [str(96 << 20), "77"]
        assert dk.inspect(name, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}") == f"{96 << 20} 77"
        # cgroupfs: the container's cgroup is <cgroup-parent>/<id> in each hierarchy
        cg = f"/sys/fs/cgroup/memory{dk.cgroup_parent}/{dk.inspect(name, '{{.Id}}')}/memory.limit_in_bytes"
        with open(cg) as f:
            assert f.read().strip() == str(96 << 20)
    finally:
        _rm(dk, name)


def test_create_start_restart(docker, runtime):
    # the same container id goes through create/delete again for each start
    dk, name = docker, _name(runtime)
    dk("create", "--runtime", runtime[0], "--network", "none", "--name", name, IMG, "sh", "-c",
       "echo run-$$; trap 'exit 0' TERM; while :; do sleep 0.1; done")
    try:
        assert dk.status(name) == "created"
        dk("start", name)
        pid = dk.inspect(name, "{{.State.Pid}}")
        dk("restart", "-t", "10", name, timeout=60)
        assert dk.status(name) == "running" and dk.inspect(name, "{{.State.Pid}}") != pid
        dk("stop", "-t", "10", name, timeout=60)
        assert dk.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
        dk("start", name)
        assert dk.status(name) == "running"
        wait_for(lambda: len(dk("logs", name).stdout.split()) == 3, what="three runs logged")
    finally:
        _rm(dk, name)


def test_twenty_containers(docker, runtime):
    dk = docker
    group = _name(runtime, "twenty-")
    names = [f"{group}-{i}" for i in range(20)]
    try:
        with ThreadPoolExecutor(20) as ex:
            results = list(ex.map(lambda n: _run(dk, runtime, "-d", "--name", n, IMG, "sleep", "1000",
                                                 check=False, timeout=180), names))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
        running = dk("ps", "-q", "--filter", f"name={group}-", "--filter", "status=running").stdout
        assert len(running.split()) == 20, running
        p = dk("exec", names[7], "echo", "one of twenty")
        assert p.stdout == "one of twenty\n"
        dk("rm", "-f", *names, timeout=180)
        assert dk("ps", "-aq", "--filter", f"name={group}-").stdout == ""
    finally:
        _rm(dk, *names)


# ------------------------------------------------------------------ security
def test_read_only_and_tmpfs(docker, runtime):
    p = _run(docker, runtime, "--rm", "--read-only", "--tmpfs", "/run:size=1m", IMG, "sh", "-c",
             "touch /x 2>&1; touch /run/y && echo run-ok; grep ' /run ' /proc/mounts", check=False)
    assert "Read-only file system" in p.stdout and "run-ok" in p.stdout, p.stdout + p.stderr
    assert "tmpfs /run tmpfs" in p.stdout and "size=1024k" in p.stdout, p.stdout


def test_capabilities(docker, runtime):
    p = _run(docker, runtime, "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "NET_BIND_SERVICE",
             IMG, "grep", "^Cap", "/proc/self/status")
    assert _status_field(docker, p.stdout, "CapEff") == "%016x" % ((1 << 0) | (1 << 10)), p.stdout
    assert _status_field(docker, p.stdout, "CapBnd") == "%016x" % ((1 << 0) | (1 << 10)), p.stdout
    p = _run(docker, runtime, "--rm", "--cap-drop", "CHOWN", "--cap-add", "SYS_ADMIN", IMG, "sh", "-c",
             "grep ^CapEff /proc/self/status; touch /tmp/f; chown 1 /tmp/f 2>&1; true")
    default = 0xA80425FB  # Docker's default set
    assert _status_field(docker, p.stdout, "CapEff") == "%016x" % ((default & ~1) | (1 << 21)), p.stdout
    assert "Operation not permitted" in p.stdout


def test_no_new_privileges(docker, runtime):
    p = _run(docker, runtime, "--rm", "--security-opt", "no-new-privileges", IMG, "grep", "^NoNewPrivs",
             "/proc/self/status")
    assert _status_field(docker, p.stdout, "NoNewPrivs") == "1"
    p = _run(docker, runtime, "--rm", IMG, "grep", "^NoNewPrivs", "/proc/self/status")
    assert _status_field(docker, p.stdout, "NoNewPrivs") == "0"


def test_seccomp(docker, runtime, tmp_path):
    dk = docker
    p = _run(dk, runtime, "--rm", IMG, "sh", "-c", "grep ^Seccomp: /proc/self/status; unshare -n true 2>&1; true")
    assert _status_field(dk, p.stdout, "Seccomp") == "2", p.stdout  # Docker's default profile
    assert "Operation not permitted" in p.stdout, p.stdout  # unshare needs CAP_SYS_ADMIN there
    p = _run(dk, runtime, "--rm", "--security-opt", "seccomp=unconfined", IMG, "grep", "^Seccomp:", "/proc/self/status")
    assert _status_field(dk, p.stdout, "Seccomp") == "0", p.stdout
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    p = _run(dk, runtime, "--rm", "--security-opt", f"seccomp={profile}", IMG, "sh", "-c",
             "grep ^Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; touch /tmp/f && echo touch-ok")
    assert _status_field(dk, p.stdout, "Seccomp") == "2", p.stdout
    assert "Operation not permitted" in p.stdout and "touch-ok" in p.stdout, p.stdout


def test_ulimit_hostname_sysctl_shm(docker, runtime):
    p = _run(docker, runtime, "--rm", "--ulimit", "nofile=1024:2048", "--hostname", "box1", "--shm-size", "8m",
             "--sysctl", "net.ipv4.ip_unprivileged_port_start=80", IMG, "sh", "-c",
             "ulimit -n; ulimit -H -n; hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; "
             "grep ' /dev/shm ' /proc/mounts")
    out = p.stdout.splitlines()
    assert out[:4] == ["1024", "2048", "box1", "80"] and "size=8192k" in out[4], p.stdout


# ------------------------------------------------------------------ resources and devices
def test_pids_limit(docker, runtime):
    # the shell gives up at the first fork the pids controller refuses
    p = _run(docker, runtime, "--rm", "--pids-limit", "8", IMG, "sh", "-c",
             "cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done 2>&1",
             check=False)
    assert p.stdout.splitlines()[0] == "8" and "can't fork" in p.stdout, p.stdout + p.stderr


def test_memory_oom_killed(docker, runtime):
    dk, name = docker, _name(runtime)
    # tail keeps the last "line" of an endless newline-less stream: it grows until the OOM killer
    p = _run(dk, runtime, "--name", name, "--memory", "16m", "--memory-swap", "16m", IMG, "tail", "/dev/zero",
             check=False, timeout=120)
    try:
        assert p.returncode == 137, (p.returncode, p.stderr)
        # the OOM event and the exit travel separately from the shim to dockerd
        wait_for(lambda: dk.inspect(name, "{{.State.OOMKilled}} {{.State.ExitCode}}") == "true 137",
                 what="OOMKilled in inspect")
    finally:
        _rm(dk, name)


def test_devices(docker, runtime):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this host")
    p = _run(docker, runtime, "--rm", "--device", "/dev/fuse", IMG, "sh", "-c",
             "test -c /dev/fuse && exec 3<>/dev/fuse && echo fuse-ok")
    assert p.stdout == "fuse-ok\n", p.stderr
    # mknod is allowed by Docker's default rules; opening the node needs a rule for its device
    script = "mknod /tmp/n c 10 229 && (exec 3<>/tmp/n) 2>&1 && echo open-ok; true"
    p = _run(docker, runtime, "--rm", IMG, "sh", "-c", script)
    assert "Operation not permitted" in p.stdout and "open-ok" not in p.stdout, p.stdout
    p = _run(docker, runtime, "--rm", "--device-cgroup-rule", "c 10:229 rwm", IMG, "sh", "-c", script)
    assert p.stdout == "open-ok\n", p.stdout + p.stderr


def test_volumes(docker, runtime, tmp_path):
    dk, vol = docker, _name(runtime, "vol-")
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "from-host").write_text("host data\n")
    try:
        p = _run(dk, runtime, "--rm", "-v", f"{host}:/data", "-v", f"{vol}:/vol", IMG, "sh", "-c",
                 "cat /data/from-host; echo from container > /data/from-ctr; echo persisted > /vol/f")
        assert p.stdout == "host data\n"
        assert (host / "from-ctr").read_text() == "from container\n"
        p = _run(dk, runtime, "--rm", "-v", f"{vol}:/vol:ro", IMG, "sh", "-c", "cat /vol/f; touch /vol/g 2>&1; true")
        assert p.stdout.startswith("persisted\n") and "Read-only file system" in p.stdout, p.stdout
    finally:
        dk("volume", "rm", "-f", vol, check=False)


def test_init(docker, runtime):
    p = _run(docker, runtime, "--rm", "--init", IMG, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$")
    first, pid = p.stdout.splitlines()
    assert "docker-init" in first and pid != "1", p.stdout


# ------------------------------------------------------------------ networks and health
def _netns(dk, name):
    return dk("exec", name, "readlink", "/proc/1/ns/net").stdout.strip()


def test_network_none_host_container(docker, runtime):
    dk, name = docker, _name(runtime)
    p = _run(dk, runtime, "--rm", IMG, "sh", "-c", "ls /sys/class/net")
    assert p.stdout.split() == ["lo"], p.stdout
    p = _run(dk, runtime, "--rm", IMG, "readlink", "/proc/self/ns/net", net="host")
    assert p.stdout.strip() == os.readlink(f"/proc/{dk.proc.pid}/ns/net")
    _run(dk, runtime, "-d", "--name", name, IMG, "sleep", "1000")
    try:
        p = _run(dk, runtime, "--rm", IMG, "readlink", "/proc/self/ns/net", net=f"container:{name}")
        assert p.stdout.strip() == _netns(dk, name)
        assert p.stdout.strip() != os.readlink(f"/proc/{dk.proc.pid}/ns/net")
    finally:
        _rm(dk, name)


def test_pid_ipc_namespaces(docker, runtime):
    dk, name = docker, _name(runtime)
    p = _run(dk, runtime, "--rm", "--pid", "host", IMG, "readlink", "/proc/self/ns/pid")
    assert p.stdout.strip() == os.readlink(f"/proc/{dk.proc.pid}/ns/pid")
    _run(dk, runtime, "-d", "--name", name, "--ipc", "shareable", IMG, "sleep", "1000")
    try:
        ipc = dk("exec", name, "readlink", "/proc/1/ns/ipc").stdout.strip()
        p = _run(dk, runtime, "--rm", "--ipc", f"container:{name}", "--pid", f"container:{name}", IMG, "sh", "-c",
                 "readlink /proc/self/ns/ipc; tr '\\0' ' ' < /proc/1/cmdline")
        assert p.stdout.split("\n") == [ipc, "sleep 1000 "], p.stdout
    finally:
        _rm(dk, name)


@pytest.fixture(scope="module")
def user_network(docker):
    net = f"pyrunc-e2e-{uuid.uuid4().hex[:8]}"
    docker("network", "create", "--driver", "bridge", "--subnet", docker.subnet,
           "-o", f"com.docker.network.bridge.name={docker.bridge}", net)
    try:
        yield net
    finally:
        docker("network", "rm", net, check=False)


def test_user_bridge_network(docker, runtime, user_network):
    # libnetwork joins the container to the network from an OCI prestart hook
    # (/proc/<dockerd>/exe libnetwork-setkey): both runtimes must run it
    dk, srv, cli = docker, _name(runtime, "srv-"), _name(runtime, "cli-")
    _run(dk, runtime, "-d", "--name", srv, IMG, "sh", "-c",
         "mkdir /www && echo hello-from-$HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www", net=user_network)
    _run(dk, runtime, "-d", "--name", cli, IMG, "sleep", "1000", net=user_network)
    try:
        ip = dk.inspect(cli, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
        assert ip.rsplit(".", 1)[0] == dk.subnet.rsplit(".", 1)[0], ip
        assert dk("exec", cli, "sh", "-c", "ip -4 -o addr show eth0").stdout.count(ip + "/24") == 1
        # by name, through Docker's embedded DNS (busybox's static wget crashes in glibc's resolver:
        # nc); the server may still be starting: poll
        get = ["exec", cli, "sh", "-c", f'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 2 {srv} 8080']
        out = wait_for(lambda: dk(*get, check=False).stdout, timeout=30, what="the server to answer")
        assert "200 OK" in out and "hello-from-" in out, out
    finally:
        _rm(dk, srv, cli)


def test_healthcheck(docker, runtime):
    dk, name = docker, _name(runtime)
    _run(dk, runtime, "-d", "--name", name, "--health-cmd", "test -e /tmp/ready", "--health-interval", "1s",
         "--health-retries", "1", IMG, "sh", "-c", "touch /tmp/ready; exec sleep 1000")
    try:
        wait_for(lambda: dk.inspect(name, "{{.State.Health.Status}}") == "healthy", timeout=60,
                 what="the container to turn healthy")
        dk("exec", name, "rm", "/tmp/ready")
        wait_for(lambda: dk.inspect(name, "{{.State.Health.Status}}") == "unhealthy", timeout=60,
                 what="the container to turn unhealthy")
    finally:
        _rm(dk, name)


# ------------------------------------------------------------------ daemon restarts (last: they restart the daemon)
def test_dockerd_restart_brings_back_restart_always(docker, runtime):
    dk, name, other = docker, _name(runtime, "always-"), _name(runtime, "no-")
    _run(dk, runtime, "-d", "--name", name, "--restart", "always", IMG, "sh", "-c",
         "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    _run(dk, runtime, "-d", "--name", other, IMG, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    try:
        pid = dk.inspect(name, "{{.State.Pid}}")
        dk.restart()
        wait_for(lambda: dk.status(name) == "running", timeout=60, what="the restart=always container back")
        assert dk.inspect(name, "{{.State.Pid}}") != pid
        assert dk.inspect(name, "{{.HostConfig.Runtime}}") == runtime[0]
        assert dk.status(other) == "exited"
        assert dk("exec", name, "echo", "back").stdout == "back\n"
    finally:
        _rm(dk, name, other)


def test_add_runtime_flag_and_default_runtime(docker):
    """The command-line form of the doc: --add-runtime, --exec-opt and --default-runtime, nothing
    of the sort in daemon.json."""
    dk = docker
    with open(dk.config) as f:
        cfg = json.load(f)
    path = cfg.pop("runtimes")["pyrunc"]["path"]
    cfg.pop("exec-opts")
    flags_cfg = os.path.join(dk.base, "daemon-flags.json")
    with open(flags_cfg, "w") as f:
        json.dump(cfg, f)
    documented = dk.config
    name = _name(("default",))
    try:
        dk.config = flags_cfg
        dk.restart(["--add-runtime", f"pyrunc={path}", "--exec-opt", "native.cgroupdriver=cgroupfs",
                    "--default-runtime", "pyrunc"])
        default, runtimes = dk("info", "--format", "{{.DefaultRuntime}} {{json .Runtimes}}").stdout.split(" ", 1)
        assert default == "pyrunc" and json.loads(runtimes)["pyrunc"]["path"] == PYRUNC, runtimes
        assert dk("info", "--format", "{{.CgroupDriver}}").stdout.strip() == "cgroupfs"
        dk("run", "-d", "--name", name, "--network", "none", IMG, "sleep", "1000")
        cid = dk.inspect(name, "{{.Id}}")
        assert dk.inspect(name, "{{.HostConfig.Runtime}}") == "pyrunc"
        # the state dir Docker gave the runtime holds pyrunc's state for it
        root = os.path.join(dk.base, "exec", "runtime-runc", "moby")
        p = subprocess.run([PYRUNC, "--root", root, "state", cid], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and json.loads(p.stdout)["status"] == "running", p.stderr
        with open(os.path.join(root, cid, "state.json")) as f:
            assert "init_process_pid" not in json.load(f)  # runc's key: this one is pyrunc's
    finally:
        _rm(dk, name)
        dk.config = documented
        dk.restart()
