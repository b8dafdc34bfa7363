"""CVE-2019-5736 and CVE-2016-9962 classes: a runtime process visible to the container (an init
waiting at `created`, a process `exec` is bringing in) must not let the container open its
/proc/PID/exe (the host's runtime binary or Python interpreter), its memory, fds, root or cwd.

The attacker is a second container sharing the first one's pid namespace (joined by path): it
sees the waiting init as its pid 1. Opening for write uses `: >>` (zero bytes appended), so even
a failing runtime could not damage the host binary.
"""
import os
import subprocess
import threading
import time

import pytest

from secutil import base_config, runc_xfail

PROBE = r"""
t=%s
for f in exe mem environ; do
  if ( exec 3<"/proc/$t/$f" ) 2>/dev/null; then echo "open-$f:OPEN"; else echo "open-$f:denied"; fi
done
if ( : >>"/proc/$t/exe" ) 2>/dev/null; then echo "write-exe:OPEN"; else echo "write-exe:denied"; fi
r=denied
for f in /proc/$t/fd/*; do
  if readlink "$f" >/dev/null 2>&1 || ( exec 3<"$f" ) 2>/dev/null; then r=OPEN; fi
done
echo "fd:$r"
if ls "/proc/$t/root/" >/dev/null 2>&1; then echo "root:OPEN"; else echo "root:denied"; fi
if readlink "/proc/$t/cwd" >/dev/null 2>&1; then echo "cwd:OPEN"; else echo "cwd:denied"; fi
"""


def _join_pid_ns(cfg, pid):
    ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    ns.append({"type": "pid", "path": f"/proc/{pid}/ns/pid"})
    cfg["linux"]["namespaces"] = ns
    return cfg


def test_created_init_unreachable(anyrt, request):
    # runc 1.1.5's waiting init has already dropped to the container's capabilities and is
    # dumpable: its exe (a sealed memfd copy of runc, never the host binary: the write is still
    # denied), mem, fds, root and cwd can be opened from a container sharing its pid namespace
    runc_xfail(request, anyrt, "the created init is dumpable (exe is a sealed copy, write denied)")
    a = anyrt.new_id("victim")
    anyrt("create", "-b", anyrt.bundle(args=["sleep", "100"]), a, check=True)
    pid = anyrt.state(a)["pid"]
    exe_before = os.stat(f"/proc/{pid}/exe").st_mtime_ns
    cfg = _join_pid_ns(base_config(["sh", "-c", PROBE % 1]), pid)
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert len(lines) == 7, p.stdout
    assert all(line.endswith(":denied") for line in lines), p.stdout
    assert os.stat(f"/proc/{pid}/exe").st_mtime_ns == exe_before
    assert anyrt.state(a)["status"] == "created"


def test_exec_process_unreachable(anyrt):
    """While `exec` brings processes in, a container process scanning /proc for anything it can
    open (exe, mem) finds nothing: every runtime process is non-dumpable until execve."""
    # the scanner notes any pid whose exe it can open that is not a plain busybox process
    scan = r"""
end=$(( $(date +%s) + 4 ))
while [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    if ( exec 3<"$d/mem" ) 2>/dev/null; then
      l=$(readlink "$d/exe" 2>/dev/null)
      case "$l" in */busybox|"") ;; *) echo "OPEN $p $l";; esac
    fi
  done
done
echo done
"""
    cid = anyrt.new_id("scan")
    b = anyrt.bundle(base_config(["sh", "-c", scan]))
    out = os.path.join(anyrt.tmp, "scan.out")
    with open(out, "w") as f:
        proc = subprocess.Popen([anyrt.binary, "--root", anyrt.root, "run", "-b", b, cid],
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = anyrt("state", cid)
            if st.returncode == 0 and '"running"' in st.stdout:
                break
            time.sleep(0.02)
        n = 0
        while proc.poll() is None and n < 15:
            anyrt("exec", cid, "true", timeout=20)
            n += 1
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = open(out).read()
    assert "done" in text, text
    assert "OPEN" not in text, text
