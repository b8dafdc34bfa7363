"""Where the benchmark runs, and making sure it leaves nothing behind.

crun 1.8.1 refuses hybrid cgroup hosts (v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified).  So the driver re-executes itself in a private mount
namespace (``unshare -m --propagation private``) and there replaces the
cgroup2 mount at /sys/fs/cgroup/unified with an empty scratch tmpfs: every
runtime then sees a plain cgroup v1 host, under identical conditions.  The
host's mounts are never touched, and whatever a runtime writes into the
scratch tmpfs disappears with the namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

ENV_MARK = "PYRUNC_BENCH_PARENT_MNTNS"
UNIFIED = "/sys/fs/cgroup/unified"
CGROUP_ROOT = "/sys/fs/cgroup"
SCRATCH_NAME = "pyrunc-bench-scratch"
scratch_active = False  # True once our scratch tmpfs is mounted on UNIFIED


def _mntns() -> str:
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return ""


def mount_fstype(path: str) -> str | None:
    """fstype of the mount whose mount point is exactly path, else None."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                parts = left.split()
                if len(parts) >= 5 and parts[4] == path:
                    found = right.split()[0]  # the last (top) one wins
    except OSError:
        return None
    return found


def in_namespace() -> bool:
    """True in the driver re-executed inside the private mount namespace."""
    return os.environ.get(ENV_MARK) is not None


def _ns_command(argv: list[str]) -> tuple[list, dict]:
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env[ENV_MARK] = _mntns()
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = ["unshare", "-m", "--propagation", "private", "--",
           sys.executable, "-m", "benchmarks", *argv]
    return cmd, env


def reexec_in_namespace(argv: list[str]) -> None:
    """Replace this process by itself inside a private mount namespace.
    Returns (without exec) when that is not possible or already done."""
    if os.environ.get(ENV_MARK) is not None:
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return
    cmd, env = _ns_command(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", cmd, env)


def run_in_namespace(argv: list[str]) -> int:
    """Run the driver with ARGV inside a private mount namespace (a child; this process stays on
    the host's namespace, where the engine figures run). Without root or unshare: in this
    namespace, as reexec_in_namespace would leave it."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        cmd, env = [sys.executable, "-m", "benchmarks", *argv, "--no-unshare"], None
    else:
        cmd, env = _ns_command(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.call(cmd, env=env)


def prepare_namespace() -> str:
    """Inside the re-executed driver: hide the cgroup2 mount.  Returns a note
    for the report describing the conditions."""
    parent = os.environ.get(ENV_MARK)
    if parent is None:
        return "host mount namespace (not isolated: not root or --no-unshare); crun may refuse a hybrid cgroup host"
    mine = _mntns()
    if not mine or mine == parent:
        return "could not verify a private mount namespace; left mounts untouched"
    fstype = mount_fstype(UNIFIED)
    if fstype != "cgroup2":
        return f"private mount namespace; {UNIFIED} is not a cgroup2 mount ({fstype}), left as is"
    r = subprocess.run(["umount", UNIFIED], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return f"private mount namespace; umount {UNIFIED} failed: {r.stderr.strip()}"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", SCRATCH_NAME, UNIFIED],
                       capture_output=True, text=True, timeout=10)
    global scratch_active
    scratch_active = r.returncode == 0 and mount_fstype(UNIFIED) == "tmpfs"
    extra = "" if r.returncode == 0 else f" (scratch tmpfs failed: {r.stderr.strip()})"
    return (f"all runtimes measured inside one private mount namespace (unshare -m --propagation private) "
            f"where the cgroup2 mount at {UNIFIED} is replaced by an empty scratch tmpfs "
            f"(crun 1.8.1 refuses hybrid hosts); cgroups v1 otherwise, same conditions for all{extra}")


def scrub_scratch(cid: str) -> None:
    """crun (and pyrunc) treat the scratch tmpfs as a cgroup hierarchy and
    leave <id>/cgroup.procs files there; remove them as containers go, so it
    never fills up.  Only ever inside our own scratch tmpfs."""
    if not scratch_active or not cid or "/" in cid or cid.startswith("."):
        return
    p = os.path.join(UNIFIED, cid)
    if os.path.lexists(p):
        shutil.rmtree(p, ignore_errors=True)


def scrub_scratch_prefix(prefix: str) -> int:
    if not scratch_active:
        return 0
    n = 0
    try:
        entries = os.listdir(UNIFIED)
    except OSError:
        return 0
    for e in entries:
        if e.startswith(prefix):
            scrub_scratch(e)
            n += 1
    return n


# -- leftover sweep -----------------------------------------------------------

def _pids_in_our_cgroups(prefix: str) -> list[int]:
    """Processes whose cgroup path has a component starting with prefix:
    container processes of containers this harness created."""
    pids = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open(f"/proc/{ent}/cgroup") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            path = line.split(":", 2)[-1]
            if any(c.startswith(prefix) for c in path.split("/")):
                pids.append(int(ent))
                break
    return pids


def kill_leftover_processes(prefix: str) -> list[int]:
    killed = []
    me = os.getpid()
    for pid in _pids_in_our_cgroups(prefix):
        if pid == me:
            continue
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            # re-check through the pidfd-pinned process before signalling
            with open(f"/proc/{pid}/cgroup") as f:
                if prefix not in f.read():
                    continue
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            pass
        finally:
            os.close(fd)
    return killed


def _own_cgroup_dirs() -> list[str]:
    """Directories where a runtime may have created a container cgroup:
    each hierarchy's root and this process's own cgroup in it."""
    dirs = set()
    try:
        hierarchies = [d for d in os.listdir(CGROUP_ROOT) if os.path.isdir(os.path.join(CGROUP_ROOT, d))]
    except OSError:
        return []
    try:
        with open("/proc/self/cgroup") as f:
            mine = [line.strip().split(":", 2) for line in f if line.strip()]
    except OSError:
        mine = []
    for h in hierarchies:
        base = os.path.join(CGROUP_ROOT, h)
        if os.path.islink(base) or (scratch_active and base == UNIFIED):
            continue
        dirs.add(base)
        for _, ctrls, path in mine:
            names = ctrls.replace("name=", "").split(",")
            if h in names or (h == "unified" and ctrls == ""):
                dirs.add(os.path.normpath(base + path))
    return sorted(dirs)


def remove_leftover_cgroups(prefix: str) -> list[str]:
    """rmdir (only) cgroup directories named after our container ids.
    rmdir fails on a cgroup that still has processes or children, so nothing
    in use is ever affected."""
    removed = []
    for d in _own_cgroup_dirs():
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for e in entries:
            if not e.startswith(prefix):
                continue
            p = os.path.join(d, e)
            # depth-first: nested cgroups a runtime may have made
            for root, subdirs, _ in os.walk(p, topdown=False):
                for s in subdirs:
                    try:
                        os.rmdir(os.path.join(root, s))
                    except OSError:
                        pass
            try:
                os.rmdir(p)
                removed.append(p)
            except OSError:
                pass
    return removed


def unmount_under(path: str) -> list[str]:
    """Unmount anything a broken runtime left mounted below our temp dir
    (this is our private namespace when isolated)."""
    path = os.path.realpath(path)
    points = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == path or mp.startswith(path + "/"):
                    points.append(mp)
    except OSError:
        return []
    done = []
    for mp in sorted(set(points), key=len, reverse=True):
        r = subprocess.run(["umount", "-l", mp], capture_output=True, timeout=10)
        if r.returncode == 0:
            done.append(mp)
    return done
