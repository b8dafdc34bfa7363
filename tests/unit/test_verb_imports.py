"""Which modules each short verb imports (runtime/hotpath.py says why it matters: every import on
these paths is paid by every `pyrunc state`, `kill`, ... an engine runs).

Each verb runs in a fresh `python -I -S` started the way bin/pyrunc starts it (posix, never os:
runtime/hotpath.py): the child notes sys.modules, runs runtime.cli.main(argv) against a private
--root under tmp_path, and reports the modules the verb added. The containers are fakes: a
state.json written here, a process of the test's own (sleep) standing in for the init, a
directory of plain files standing in for a v1 cgroup (freezer.state, cgroup.procs). No root, no
kernel cgroups, no container: the unit tier runs this as nobody.

A verb importing a module missing from its ALLOWED list fails with the module's name. If the
import is really needed on that path, add it to ALLOWED with the reason, and to runtime/hotpath.py's
table when it costs; the modules in HEAVY may not be added (their cost is in hotpath.py's table).
"""
import functools
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run in the child: bin/pyrunc's start-up (-I -S, posix), then the verb.
_CHILD = r"""
import posix, sys
sys.path.insert(0, sys.argv[1])
report = sys.argv[2]
before = set(sys.modules)
from runtime import cli
code = cli.main(sys.argv[3:])
sys.stdout.flush()
new = sorted(set(sys.modules) - before)
fd = posix.open(report, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600)
posix.write(fd, ("%s\n" % code + "\n".join(new)).encode())
posix.close(fd)
"""

# Never on a short verb's path (costs in runtime/hotpath.py's table), unless ALLOWED names it as a
# root the verb needs (then it and what it imports are allowed).
HEAVY = {"os", "posixpath", "_collections_abc", "json", "re", "enum", "signal", "socket", "ctypes", "jsonschema", "pyroute2", "inspect",
         "dataclasses", "typing", "subprocess", "selectors", "threading", "importlib.util",
         "importlib.resources", "platform", "contextlib", "functools", "collections", "struct",
         "array", "weakref", "copy", "tempfile", "shutil", "traceback", "logging", "locale"}

# What every verb imports: the command line, the errors, the log lines, the hot-path helpers
# (with _json: their JSON is its C scanner and encoder, not json).
CLI = {"runtime", "runtime.cli", "runtime.errors", "runtime.log", "runtime.hotpath", "_json",
       "_stat"}  # _stat: built in, the file-type tests of hotpath's path helpers
# state, kill, start, delete, list: container.py and what it shares with the other verbs.
# fcntl: the state dir's flock.
LIFECYCLE = CLI | {"runtime.container", "runtime.state", "runtime.lifecycle", "runtime.testpoint", "fcntl"}
# pause, resume, ps, events: cgroupverbs.py with the saved cgroup manager (runtime.cgroups, errno);
# select (built in) waits in events' stream
CGROUPVERBS = CLI | {"runtime.cgroupverbs", "runtime.state", "fcntl", "select", "runtime.cgroups", "errno"}

# verb: (the modules it may import, the HEAVY modules it needs: they and their imports are allowed)
ALLOWED = {
    "help": (CLI, ()),
    # libseccomp's version line: ctypes calls seccomp_version() (no os function for it)
    "--version": (CLI | {"runtime.features"}, ("ctypes",)),
    "state": (LIFECYCLE, ()),
    "state-missing": (LIFECYCLE, ()),
    "kill": (LIFECYCLE | {"runtime.signals"}, ()),
    "start": (LIFECYCLE | {"select"}, ()),  # poll for the init's FIFO hangup
    "delete": (LIFECYCLE, ()),
    "delete-missing": (LIFECYCLE, ()),
    # a container with cgroups: the saved manager removes them (runtime.cgroups, errno)
    "delete-cgroup": (LIFECYCLE | {"runtime.cgroups", "errno"}, ()),
    "kill-all": (LIFECYCLE | {"runtime.signals", "runtime.cgroups", "errno"}, ()),
    "list": (LIFECYCLE | {"pwd"}, ()),  # the OWNER column: the state dir's owner by name
    "list-json": (LIFECYCLE | {"pwd"}, ()),
    "pause": (CGROUPVERBS, ()),
    "resume": (CGROUPVERBS, ()),
    "ps": (CGROUPVERBS, ()),  # --format json (engines); the table runs the host's ps (subprocess)
    # the stats readers use os: events is no per-container call (engines read cgroups themselves)
    "events-stats": (CGROUPVERBS | {"runtime.cgroups.stats"}, ("os",)),
    # features: derived from the tables the verbs parse config.json with (rootfs, process, seccomp,
    # hooks, ...); not on a per-container path (an engine asks once). Those modules bring ctypes
    # (runtime/linux) and, through hooks.py, signal.
    "features": (CLI | {"runtime.features", "runtime.config", "runtime.schemas",
                        "runtime.hooks", "runtime.linux", "runtime.mempolicy", "runtime.process", "runtime.rootfs",
                        "runtime.seccomp", "runtime.fastcheck", "runtime.procfs", "runtime.idmap", "runtime.plan",
                        "resource",
                        "select", "errno", "fcntl"}, ("ctypes",)),
    # exec's runtime side, up to the container's status (a stopped one is refused): the passed
    # --preserve-fds are checked (lifecycle.passed_fds) before anything opens an fd
    # (exec's runtime side goes on to the process chain, which uses os throughout)
    "exec": ((LIFECYCLE - {"runtime.container", "runtime.testpoint"}) | {"runtime.exec"}, ("os",)),
}

_CLOSURE = r"""
import posix, sys
before = set(sys.modules)
for m in sys.argv[1:]:
    __import__(m)
sys.stdout.write("\n".join(sorted(set(sys.modules) - before)))
"""


@functools.lru_cache(maxsize=None)
def closure(roots):
    """The modules `import ROOTS` adds after bin/pyrunc's start-up, in this Python (what ctypes
    pulls in differs between Python versions)."""
    if not roots:
        return frozenset()
    p = subprocess.run([sys.executable, "-I", "-S", "-c", _CLOSURE, *roots], cwd="/", stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return frozenset(p.stdout.split())


def run_verb(tmp_path, name, *argv, root=None):
    """(exit code, stdout, stderr, modules the verb imported) of `pyrunc --root ROOT ARGV`."""
    report = tmp_path / f"modules-{name}"
    root = root or str(tmp_path / "root")
    p = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD, REPO, str(report), "--root", root, *argv],
                       cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"the child failed: {p.stderr}"
    code, *mods = report.read_text().split("\n")
    _ARGV[name] = argv
    return int(code), p.stdout, p.stderr, set(m for m in mods if m)


_ARGV = {}


def check_imports(name, mods):
    own, roots = ALLOWED[name]
    heavy_own = sorted(own & HEAVY)
    assert not heavy_own, (f"ALLOWED[{name!r}] lists heavy modules {heavy_own}: name them as the verb's "
                           f"heavy roots, with the reason (runtime/hotpath.py says what they cost)")
    allowed = own | closure(roots)
    extra = sorted(mods - allowed)
    heavy = [m for m in extra if m in HEAVY]
    assert not extra, (
        f"`pyrunc {name}` now imports {extra}" + (f", of which heavy: {heavy}" if heavy else "") +
        f". Who imports them: `python -I -S -X importtime -c \"import posix, sys; sys.path.insert(0, '.'); "
        f"from runtime import cli; cli.main({list(_ARGV.get(name, ()))!r})\"` in the source tree "
        f"(with a --root). Make the import lazy (runtime/hotpath.py says what each costs), or, if this "
        f"path needs it, add it to ALLOWED[{name!r}] in {__file__} with the reason")


# ------------------------------------------------------------------ fake containers
def _start_time(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2:].split()[19])


def _write_state(root, cid, pid=0, cgroup=None, status="running"):
    d = os.path.join(root, cid)
    os.makedirs(d, mode=0o711, exist_ok=True)
    doc = {"ociVersion": "1.3.0", "id": cid, "pid": pid, "pid_start": _start_time(pid) if pid else None,
           "status": status, "bundle": "/nonexistent/bundle", "rootfs": "/nonexistent/bundle/rootfs",
           "created": "2026-01-01T00:00:00.000000000Z", "owner": ""}
    if cgroup:
        doc["cgroup"] = {"mode": "v1", "paths": {"freezer": cgroup, "pids": cgroup}}
    import json
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump(doc, f)
    return d


def _fake_cgroup(tmp_path, pid):
    d = tmp_path / "cgroup"
    d.mkdir()
    (d / "freezer.state").write_text("THAWED\n")
    (d / "cgroup.procs").write_text(f"{pid}\n")
    (d / "pids.current").write_text("1\n")
    (d / "pids.max").write_text("max\n")
    return str(d)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir(mode=0o711)
    return str(r)


@pytest.fixture
def sleeper():
    """A process of ours standing in for a container's init."""
    p = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def _wait_for(cond, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# ------------------------------------------------------------------ the verbs
def test_help(tmp_path):
    code, out, _, mods = run_verb(tmp_path, "help", "help")
    assert code == 0 and "COMMANDS:" in out
    check_imports("help", mods)


def test_version(tmp_path):
    code, out, _, mods = run_verb(tmp_path, "--version", "--version")
    assert code == 0 and out.startswith("pyrunc version ")
    check_imports("--version", mods)


def test_features(tmp_path):
    code, out, _, mods = run_verb(tmp_path, "features", "features")
    assert code == 0 and '"ociVersionMax"' in out
    check_imports("features", mods)


def test_state_running(tmp_path, root, sleeper):
    _write_state(root, "c1", sleeper.pid, _fake_cgroup(tmp_path, sleeper.pid))
    code, out, err, mods = run_verb(tmp_path, "state", "state", "c1")
    assert code == 0, err
    assert '"status": "running"' in out and f'"pid": {sleeper.pid}' in out
    check_imports("state", mods)


def test_state_of_a_missing_container(tmp_path, root):
    code, _, err, mods = run_verb(tmp_path, "state-missing", "state", "nope")
    assert code == 1 and "container nope does not exist" in err
    check_imports("state-missing", mods)


def test_delete_of_a_missing_container_logged_as_json(tmp_path, root):
    """containerd's way: --log FILE --log-format json before every verb."""
    log = tmp_path / "log.json"
    code, _, err, mods = run_verb(tmp_path, "delete-missing", "--log", str(log), "--log-format", "json",
                                  "delete", "nope")
    assert code == 1 and "container nope does not exist" in err
    assert log.read_text().startswith('{"level":"error","msg":"container nope does not exist","time":"')
    check_imports("delete-missing", mods)


def test_kill(tmp_path, root, sleeper):
    _write_state(root, "c1", sleeper.pid)
    code, _, err, mods = run_verb(tmp_path, "kill", "kill", "c1", "KILL")
    assert code == 0, err
    assert sleeper.wait(timeout=10) == -9
    check_imports("kill", mods)


def test_start(tmp_path, root):
    """A fake init: named as pyrunc's, holding the exec FIFO open until it reads start's byte."""
    d = os.path.join(root, "c1")
    os.mkdir(d, 0o711)
    os.mkfifo(os.path.join(d, "exec.fifo"), 0o622)
    init = subprocess.Popen([sys.executable, "-I", "-S", "-c",
                             "import os, sys\n"
                             "with open('/proc/self/comm', 'w') as f: f.write('pyrunc:init')\n"
                             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                             "os.read(fd, 1)\n", os.path.join(d, "exec.fifo")], stdin=subprocess.DEVNULL)
    try:
        _wait_for(lambda: open(f"/proc/{init.pid}/comm").read().strip() == "pyrunc:init", "the fake init's name")
        _write_state(root, "c1", init.pid, status="created")
        code, _, err, mods = run_verb(tmp_path, "start", "start", "c1")
        assert code == 0, err
        assert init.wait(timeout=10) == 0
    finally:
        init.kill()
        init.wait()
    check_imports("start", mods)


def test_delete_with_cgroups(tmp_path, root):
    """A stopped container whose (empty, fake) v1 cgroup directory delete removes."""
    cg = tmp_path / "cgroup"
    cg.mkdir()
    d = _write_state(root, "c1", cgroup=str(cg), status="stopped")
    code, _, err, mods = run_verb(tmp_path, "delete-cgroup", "delete", "c1")
    assert code == 0, err
    assert not os.path.exists(d) and not cg.exists()
    check_imports("delete-cgroup", mods)


def test_kill_all(tmp_path, root, sleeper):
    cg = tmp_path / "cgroup"
    cg.mkdir()
    _write_state(root, "c1", sleeper.pid, cgroup=str(cg))
    code, _, err, mods = run_verb(tmp_path, "kill-all", "kill", "--all", "c1", "KILL")
    assert code == 0, err
    check_imports("kill-all", mods)


def test_delete(tmp_path, root):
    d = _write_state(root, "c1", status="stopped")
    code, _, err, mods = run_verb(tmp_path, "delete", "delete", "c1")
    assert code == 0, err
    assert not os.path.exists(d)
    check_imports("delete", mods)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_list(tmp_path, root, sleeper, fmt):
    _write_state(root, "c1", sleeper.pid)
    _write_state(root, "c2", status="stopped")
    name = "list" if fmt == "table" else "list-json"
    code, out, err, mods = run_verb(tmp_path, name, "list", "--format", fmt)
    assert code == 0, err
    assert "c1" in out and "c2" in out and "running" in out and "stopped" in out
    check_imports(name, mods)


def test_pause_and_resume(tmp_path, root, sleeper):
    cg = _fake_cgroup(tmp_path, sleeper.pid)
    _write_state(root, "c1", sleeper.pid, cg)
    code, _, err, mods = run_verb(tmp_path, "pause", "pause", "c1")
    assert code == 0, err
    assert open(os.path.join(cg, "freezer.state")).read().strip() == "FROZEN"
    check_imports("pause", mods)
    code, _, err, mods = run_verb(tmp_path, "resume", "resume", "c1")
    assert code == 0, err
    assert open(os.path.join(cg, "freezer.state")).read().strip() == "THAWED"
    check_imports("resume", mods)


def test_ps_json(tmp_path, root, sleeper):
    _write_state(root, "c1", sleeper.pid, _fake_cgroup(tmp_path, sleeper.pid))
    code, out, err, mods = run_verb(tmp_path, "ps", "ps", "--format", "json", "c1")
    assert code == 0, err
    assert out == f"[{sleeper.pid}]\n"
    check_imports("ps", mods)


def test_events_stats(tmp_path, root, sleeper):
    _write_state(root, "c1", sleeper.pid, _fake_cgroup(tmp_path, sleeper.pid))
    code, out, err, mods = run_verb(tmp_path, "events-stats", "events", "--stats", "c1")
    assert code == 0, err
    assert out.startswith('{"type":"stats","id":"c1","data":{')
    check_imports("events-stats", mods)


def test_exec_parent_side(tmp_path, root):
    _write_state(root, "c1", status="stopped")
    code, _, err, mods = run_verb(tmp_path, "exec", "exec", "c1", "true")
    assert code == 255 and "stopped" in err, err  # runc's exit status for a failed exec
    check_imports("exec", mods)


def test_exec_process_file_needs_no_json(tmp_path):
    """Every engine's exec passes --process FILE: reading it imports neither json nor re (8-30 ms
    of each exec, benchmarks/PROFILE.md); a broken file is still worded by json."""
    good, bad = tmp_path / "p.json", tmp_path / "bad.json"
    good.write_text('{"args": ["true"], "cwd": "/", "env": ["A=\\u00e9"]}')
    bad.write_text('{"args": ')
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from runtime import exec as e;"
            "p = e._load_json(sys.argv[1]);"
            "assert p['env'] == ['A=\\u00e9'], p; print(sorted({'json', 're'} & set(sys.modules)));"
            "from runtime.errors import Error\n"
            "try: e._load_json(sys.argv[2])\n"
            "except Error as x: print(x)")
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(good), str(bad), REPO],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    assert first == "[]"
    assert second.startswith(f"{bad}: invalid JSON: Expecting value: line 1")


# ------------------------------------------------------------------ hotpath's helpers themselves
@pytest.mark.parametrize("obj", [
    {"a": "\u00e9\u2028<>&\"\\", "b": [1, 2.5, None, True, False], "c": {}, "d": {"x": [1, {}], "y": []}},
    [], {}, "x", 0, -1.5e300, None])
def test_json_helpers_match_json(obj):
    import json
    from runtime import hotpath
    assert hotpath.json_dumps(obj) == json.dumps(obj, separators=(",", ":"))
    assert hotpath.json_dumps(obj, ensure_ascii=False) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    assert hotpath.json_dumps_indent(obj) == json.dumps(obj, indent=2)
    assert hotpath.json_dumps_indent(obj, "\t") == json.dumps(obj, indent="\t")
    assert hotpath.json_loads(json.dumps(obj)) == obj
    assert hotpath.json_loads(b" \n" + json.dumps(obj).encode() + b"\t") == obj


@pytest.mark.parametrize("text", ["", " ", "{", "[1,]", "1 2", "{'a': 1}", b"\xff", "nul"])
def test_json_loads_refuses_with_value_error(text):
    from runtime import hotpath
    with pytest.raises(ValueError):
        hotpath.json_loads(text)


def test_module_available():
    from runtime import hotpath
    assert hotpath.module_available("os") and hotpath.module_available("runtime.state")
    assert not hotpath.module_available("runtime.no_such_module")
    assert not hotpath.module_available("no_such_module_pyrunc") and not hotpath.module_available("no_such.sub")


def test_exit_now_flushes_and_skips_teardown(tmp_path):
    """exit_now's code is the process's status, what was written is flushed, and no atexit
    handler (the interpreter's teardown) runs."""
    code = ("import atexit, sys; sys.path.insert(0, sys.argv[1]); from runtime import hotpath; "
            "atexit.register(lambda: print('teardown')); sys.stdout.write('out'); sys.stderr.write('err'); "
            "hotpath.exit_now(7)")
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code, REPO], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (7, "out", "err")
