"""Issue 13 #4: a hook cannot hold the runtime past its timeout, nor outlive a failed create.

A hostile hook (the bundle author's) never reads its stdin while the state is large, forks
children that stay in its process group and others that leave it (setsid, double fork), floods
stdout/stderr, or leaves a descendant holding its output pipes. The runtime must time out on time,
count it as a failure, kill the whole tree, keep its error message bounded, and wait for the hook
itself, not for EOF on its output. Every hook process carries TOKEN in its command line (forked
Python children keep it), so survivors are found on the host.

Each detector also runs against a weakened pyrunc (tests/security/weaken.py) and must flag it.
"""
import json
import os
import sys
import time
import uuid

import pytest

from secutil import base_config, cgroup_dirs, procs_mentioning, remove_cgroups
from weaken import weakened

SLACK = 5  # seconds over the hook timeout before the runtime counts as blocked (machine under load)
HOOK_SLEEP = 8  # what a blocking runtime would wait for: well over timeout + SLACK

TREE_HOOK = r"""
import os, sys, time
token, sleep, code = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def quiet():  # descendants let go of the hook's stdio (or runc waits on them, see below)
    fd = os.open("/dev/null", os.O_RDWR)
    os.dup2(fd, 0); os.dup2(fd, 1); os.dup2(fd, 2)
if os.fork() == 0:  # stays in the hook's process group
    quiet(); time.sleep(60); os._exit(0)
if os.fork() == 0:  # leaves it: a new session, then a double fork
    quiet(); os.setsid()
    if os.fork() == 0:
        time.sleep(60); os._exit(0)
    time.sleep(60); os._exit(0)
time.sleep(sleep)  # never reads stdin
sys.exit(code)
"""


def _token():
    return f"hooktok-{uuid.uuid4().hex[:12]}"


def _survivors(token, wait=3.0):
    """Processes carrying TOKEN, after giving killed ones WAIT seconds to go away."""
    deadline = time.monotonic() + wait
    while procs_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    return procs_mentioning(token)


def _kill(pids):
    for p in pids:
        try:
            os.kill(p, 9)
        except OSError:
            pass


def _python_hook(code, *args, timeout=None):
    h = {"path": sys.executable, "args": ["python3", "-c", code, *args]}
    if timeout:
        h["timeout"] = timeout
    return h


def tree_violations(rt, phase="createRuntime", timeout=2, sleep=HOOK_SLEEP, code=0, state_kb=200):
    """A hook that forks a tree and never reads stdin (a large state: STATE_KB of annotations).
    With SLEEP > TIMEOUT the hook times out; with SLEEP 0 it fails with CODE at once."""
    token = _token()
    cfg = base_config(["true"])
    cfg["annotations"] = {"big": "x" * (state_kb << 10)}
    cfg["hooks"] = {phase: [_python_hook(TREE_HOOK, token, str(sleep), str(code), timeout=timeout)]}
    cid = rt.new_id("hk")
    bad = []
    t = time.monotonic()
    try:
        p = rt("create", "-b", rt.bundle(cfg), cid, timeout=sleep + 30)
    except Exception as e:  # noqa: BLE001 - a hung runtime (killed by the harness)
        p = None
        bad.append(f"create: {type(e).__name__}")
    took = time.monotonic() - t
    limit = (timeout or 0) + SLACK
    try:
        if p is not None:
            if p.returncode == 0:
                bad.append(f"create succeeded although its {phase} hook "
                           + ("timed out" if sleep > (timeout or 0) else f"exited {code}"))
            if "Traceback" in p.stderr:
                bad.append("traceback")
        if took > limit:
            bad.append(f"create took {took:.1f}s, over the {timeout}s timeout + {SLACK}s")
        left = _survivors(token)
        if left:
            bad.append(f"{len(left)} hook processes survived the failed create")
            _kill(left)
        rt("delete", "--force", cid, timeout=30)
        if os.path.exists(os.path.join(rt.root, cid)) or cgroup_dirs(cid):
            bad.append("state or cgroup left")
    finally:
        _kill(procs_mentioning(token))
        remove_cgroups(cid)  # what a runtime left there (runc 1.1.5, its hook's survivors)
    return bad


def test_hook_timeout_with_unread_large_stdin(anyrt, request):
    """The reported case: ~200 KB of state never read, a long hook, timeout 2."""
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 kills only the hook "
                                              "process at the timeout: its descendants survive"))
    assert tree_violations(anyrt) == []


def test_failed_hook_tree_killed(anyrt, request):
    """A hook that forks a tree then fails at once: the tree goes with the failed create."""
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 leaves a failed "
                                              "hook's descendants running"))
    assert tree_violations(anyrt, sleep=0, code=3, timeout=None) == []


def test_weakened_blocking_stdin_flagged(tmp_path):
    """The old code: the state written to a pipe with a blocking write before the timeout starts."""
    weak = weakened(tmp_path, {"hooks.py": [
        ("    stdin = _state_memfd(data)\n", "    stdin, _w = os.pipe()\n"),
        ("    os.close(stdin)\n", "    os.close(stdin)\n    try:\n        os.write(_w, data)\n"
                                  "    except OSError:\n        pass\n    os.close(_w)\n")]})
    try:
        bad = tree_violations(weak)
    finally:
        weak.cleanup()
    assert any("took" in b for b in bad), bad


def test_weakened_no_group_kill_flagged(tmp_path):
    """Only the hook process killed (no process group, no subreaper sweep)."""
    weak = weakened(tmp_path, {"hooks.py": [
        ("            os.setsid()  # its own session", "            pass  # its own session"),
        ("        os.killpg(pid, SIGKILL)\n    except OSError:\n        pass\n    try:\n"
         "        os.waitpid(pid, 0)",
         "        os.kill(pid, SIGKILL)\n    except OSError:\n        pass\n    try:\n"
         "        os.waitpid(pid, 0)"),
        ("    if kids_before is None:\n        return", "    if True:\n        return")]})
    try:
        bad = tree_violations(weak, sleep=0, code=3, timeout=None)
    finally:
        weak.cleanup()
    assert any("survived" in b for b in bad), bad


# ---- output: bounded in the error, never waited for to EOF
FLOOD_HOOK = r"""
import os, sys
chunk = b"y" * 65536
for _ in range(int(sys.argv[2])):
    os.write(1, chunk); os.write(2, chunk)
sys.exit(1)
"""


def flood_violations(rt, mib=16):
    """A failing hook writing MIB MiB to each of stdout and stderr: the runtime's error is short."""
    token = _token()
    cfg = base_config(["true"])
    cfg["hooks"] = {"createRuntime": [_python_hook(FLOOD_HOOK, token, str(mib * 16), timeout=20)]}
    cid = rt.new_id("fl")
    p = rt("create", "-b", rt.bundle(cfg), cid, timeout=60)
    bad = []
    if p.returncode == 0:
        bad.append("create succeeded")
    if len(p.stderr) > 64 << 10:
        bad.append(f"error message of {len(p.stderr)} bytes")
    if "Traceback" in p.stderr:
        bad.append("traceback")
    rt("delete", "--force", cid, timeout=30)
    return bad


def test_hook_output_bounded(anyrt, request):
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 keeps a hook's whole "
                                              "output and prints it in the error"))
    assert flood_violations(anyrt) == []


def test_weakened_unbounded_output_flagged(tmp_path):
    weak = weakened(tmp_path, {"hooks.py": [("OUT_CAP = 4096", "OUT_CAP = 1 << 40")]})
    try:
        bad = flood_violations(weak)
    finally:
        weak.cleanup()
    assert any("error message of" in b for b in bad), bad


HOLDER_HOOK = r"""
import os, sys, time
if os.fork() == 0:  # keeps the hook's stdout and stderr open, then goes away by itself
    time.sleep(float(sys.argv[2])); os._exit(0)
sys.exit(0)
"""


def holder_violations(rt, hold=HOOK_SLEEP):
    """A successful hook (no timeout) whose child keeps its output pipes open: the runtime waits
    for the hook, not for the pipes' EOF."""
    token = _token()
    cfg = base_config(["true"])
    cfg["hooks"] = {"createRuntime": [_python_hook(HOLDER_HOOK, token, str(hold))]}
    cid = rt.new_id("ho")
    t = time.monotonic()
    bad = []
    try:
        p = rt("create", "-b", rt.bundle(cfg), cid, timeout=hold + 30)
        took = time.monotonic() - t
        if p.returncode != 0:
            bad.append(f"create failed: {p.stderr.strip()}")
        if took > SLACK:
            bad.append(f"create took {took:.1f}s: waited for the hook's descendant")
    finally:
        rt("delete", "--force", cid, timeout=30)
        _kill(procs_mentioning(token))
    return bad


def test_hook_waited_for_not_its_pipes(anyrt, request):
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 waits for EOF on the "
                                              "hook's output: a descendant holding it holds runc"))
    assert holder_violations(anyrt) == []


def test_weakened_waits_for_eof_flagged(tmp_path):
    weak = weakened(tmp_path, {"hooks.py": [
        ("                    c.drain()  # what it wrote before exiting",
         "                    os.set_blocking(c.fd, True); c.drain(1 << 62)  # what it wrote before exiting")]})
    try:
        bad = holder_violations(weak)
    finally:
        weak.cleanup()
    assert any("took" in b for b in bad), bad


# ---- large states
SIZE_HOOK = r"""
import json, sys
d = sys.stdin.buffer.read()
st = json.loads(d)
open(sys.argv[2], "w").write(f"{len(d)} {len(st['annotations']['big'])} {st['id']}")
"""


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "poststart", "poststop"])
def test_hook_gets_4mib_state(anyrt, tmp_path, phase):
    """At least 4 MiB of annotations reach a hook whole (runtime-namespace hooks; the container's
    own hooks get the same state through the init)."""
    out = str(tmp_path / "size")
    big = 4 << 20
    cfg = base_config(["true"])
    cfg["annotations"] = {"big": "x" * big}
    cfg["hooks"] = {phase: [_python_hook(SIZE_HOOK, _token(), out, timeout=30)]}
    cid = anyrt.new_id("big")
    p = anyrt("run", "-b", anyrt.bundle(cfg), cid, timeout=60)
    if anyrt.name == "pyrunc" and "Message too long" in p.stderr:
        pytest.xfail("pyrunc create: the init's sync socket refuses a state this large "
                     "(issue 13 #4, create side: not in hooks.py)")
    assert p.returncode == 0, p.stderr[-2000:]
    n, nbig, sid = open(out).read().split()
    assert int(nbig) == big and int(n) > big and sid == cid


def test_run_hook_4mib_unread_in_process(tmp_path):
    """hooks.run_hook alone: a 4 MiB state that the hook never reads, and a 4 MiB one it reads."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from runtime import hooks
    from runtime.errors import Error
    state = json.dumps({"id": "x", "annotations": {"big": "y" * (4 << 20)}})
    hooks.run_hook({"path": "/bin/true", "timeout": 10}, state, "prestart", 0)
    out = tmp_path / "n"
    hooks.run_hook({"path": "/bin/sh", "args": ["sh", "-c", f"wc -c > {out}"], "timeout": 10},
                   state, "prestart", 0)
    assert int(out.read_text()) == len(state)
    t = time.monotonic()
    with pytest.raises(Error, match="timed out"):
        hooks.run_hook({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}, state, "prestart", 0)
    assert time.monotonic() - t < 1 + SLACK
