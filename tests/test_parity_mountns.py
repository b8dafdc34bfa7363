"""Issue 18, mount namespaces and mounts, against pyrunc and runc 1.1.5 side by side:

- config-linux.md's inherit rule (runtime-tools linux_ns_itype): no "mount" in linux.namespaces
  means the container runs in the runtime's mount namespace. runc does, and leaves its /proc,
  /dev, /sys ... mounted on the bundle there for good (and turns the caller's shared mounts
  private); pyrunc runs it too, and leaves the caller's mount table exactly as it was, during the
  container's life, after delete and after a failed create (runtime/rootfs.py: a scratch
  namespace, then a detached tree).
- `--no-pivot`: a process of the container must not be able to mount a fresh procfs from a nested
  user namespace (the host's full /proc must be gone from the container's mount namespace).
- a bind mount whose source the container's user namespace root cannot look up (under a 0700
  directory of the host's root): runc mounts it (its runtime side opens it), so does pyrunc, and
  exec into that container works; the kernel's lock on a read-only host mount stays.

Every scenario that touches a caller's mount namespace runs the runtime inside a private mount
namespace made for the test (a `sleep` holding it): whatever a runtime leaves there goes with it,
never onto the host.
"""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ROOTFS, base_config

DEADLINE = 10.0


# ----------------------------------------------------------------- a caller's mount namespace
class Holder:
    """A private mount namespace held by a sleeping process, with a shared tmpfs in it (SHARED)
    and a peer of it (PEER): a mount made under SHARED in that namespace appears under PEER too.
    A runtime run through it (`nsenter -m`) has that namespace as its own."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path)
        self.shared = os.path.join(self.dir, "shared")
        self.peer = os.path.join(self.dir, "peer")
        os.makedirs(self.shared)
        os.makedirs(self.peer)
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        mine = os.readlink("/proc/self/ns/mnt")
        end = time.monotonic() + DEADLINE
        while True:  # unshare has run once the process's namespace differs from ours
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/mnt") != mine:
                    break
            except OSError:
                pass
            if time.monotonic() > end or self.proc.poll() is not None:
                self.close()
                pytest.skip("unshare -m did not make a mount namespace")
            time.sleep(0.01)
        self.sh(f"mount -t tmpfs -o size=16m pyrunc-test {self.shared} && mount --make-shared {self.shared}"
                f" && mount --bind {self.shared} {self.peer} && cp -a {ROOTFS} {self.shared}/rootfs")
        self.rootfs = os.path.join(self.shared, "rootfs")

    @property
    def ns(self):
        return os.readlink(f"/proc/{self.proc.pid}/ns/mnt")

    def mountinfo(self):
        """The namespace's mount table at and below the test's directory (where a runtime would
        leave the container's mounts: on its rootfs, and on the peer of the shared mount that
        holds it), and its "/": (mount point, propagation tags, fs type) per mount. (Not the
        rest: the copies of other tests' mounts go when those tests remove their mount points.)"""
        with open(f"/proc/{self.proc.pid}/mountinfo") as f:
            out = []
            for line in f:
                fields = line.split()
                mp, sep = fields[4], fields.index("-")
                if mp == "/" or mp == self.dir or mp.startswith(self.dir + "/"):
                    out.append((mp, " ".join(fields[6:sep]), fields[sep + 1]))
            return sorted(out)

    def sh(self, script):
        subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "--", "sh", "-ec", script],
                       check=True, timeout=30)

    def run(self, rt, *args, timeout=30):
        """RT with ARGS in this namespace (its own --root); a CompletedProcess with text output."""
        cmd = ["nsenter", "-t", str(self.proc.pid), "-m", "--", rt.binary, "--root", rt.root, *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True,
                               timeout=timeout)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        return p

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def holder(tmp_path):
    for tool in ("unshare", "nsenter"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} (util-linux) not installed")
    h = Holder(tmp_path / "ns")
    yield h
    h.close()


def no_mountns_config(rootfs, args):
    """The busybox config without a mount namespace (and without maskedPaths/readonlyPaths,
    which runc refuses to apply without one), rooted at ROOTFS."""
    cfg = base_config(args)
    cfg["root"]["path"] = rootfs
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
    del cfg["linux"]["maskedPaths"], cfg["linux"]["readonlyPaths"]
    return cfg


def _runc_leaks(rt, request):
    if rt.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 mounts /proc, /dev, /sys, the cgroups onto the bundle in the "
            "caller's mount namespace and never unmounts them (and makes its shared mounts private)"))


# ------------------------------------------------------- 1. the spec's inherit rule, mount kind
def test_no_mount_namespace_runs_in_the_callers(anyrt, holder):
    """No "mount" in linux.namespaces: the container's mount namespace is the caller's (runc 1.1.5
    runs it too), with its own /proc and /dev."""
    cfg = no_mountns_config(holder.rootfs, ["sh", "-c", "readlink /proc/self/ns/mnt; echo $$; ls /dev/null"])
    p = holder.run(anyrt, "run", "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [holder.ns, "1", "/dev/null"]


@pytest.mark.parametrize("propagation", [None, "rshared"])
def test_no_mount_namespace_leaves_no_mount(anyrt, holder, request, propagation):
    """Nothing of the container is ever mounted in the caller's namespace: not while it runs (an
    exec sees its mounts all the same), not after delete, not after a create that failed half-way
    through its mounts; and the caller's shared mounts stay shared. Its rootfs is below a shared
    mount of the caller's, and rootfsPropagation rshared does not make its mounts reach there."""
    _runc_leaks(anyrt, request)
    holder.sh(f"mkdir {holder.shared}/vol")
    before = holder.mountinfo()
    cfg = no_mountns_config(holder.rootfs, ["sleep", "300"])
    if propagation:
        cfg["linux"]["rootfsPropagation"] = propagation
    # a volume from the shared mount, and a mount inside it: a peer of the caller's would take it there
    cfg["mounts"] += [{"destination": "/mnt", "type": "bind", "source": f"{holder.peer}/vol",
                       "options": ["rbind"]},
                      {"destination": "/mnt/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}]
    cid = anyrt.new_id()
    p = holder.run(anyrt, "run", "-d", "--bundle", anyrt.bundle(cfg), cid)
    assert p.returncode == 0, p.stderr
    e = holder.run(anyrt, "exec", cid, "sh", "-c", "readlink /proc/self/ns/mnt; cat /proc/1/cmdline; "
                   "ls /sys/fs/cgroup/memory/memory.limit_in_bytes; stat -f -c %T /mnt/sub")
    assert e.returncode == 0, e.stderr
    assert e.stdout.split()[0] == holder.ns and "sleep" in e.stdout and "memory.limit_in_bytes" in e.stdout
    assert e.stdout.split()[-1] == "tmpfs"
    during = holder.mountinfo()
    d = holder.run(anyrt, "delete", "--force", cid)
    assert d.returncode == 0, d.stderr
    after = holder.mountinfo()
    # a create that fails after /proc and /dev were mounted (an unknown filesystem type last)
    bad = no_mountns_config(holder.rootfs, ["true"])
    bad["mounts"].append({"destination": "/mnt", "type": "pyrunc-nosuchfs", "source": "none"})
    f = holder.run(anyrt, "run", "--bundle", anyrt.bundle(bad), anyrt.new_id())
    assert f.returncode != 0
    failed = holder.mountinfo()
    assert (during, after, failed) == (before, before, before)


def test_no_mount_namespace_with_hooks(anyrt, holder, request):
    """runc's host-mntns.bats: a createRuntime hook of a container in the caller's mount
    namespace runs once."""
    if anyrt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 runs the createRuntime "
                                              "hooks twice without a mount namespace (fixed later)"))
    marks = os.path.join(holder.dir, "marks")
    os.makedirs(marks)
    cfg = no_mountns_config(holder.rootfs, ["echo", "Hello World"])
    cfg["root"]["readonly"] = False
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marks}/createRuntime.$$"]}]}
    p = holder.run(anyrt, "run", "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Hello World\n"
    assert len(os.listdir(marks)) == 1


def test_no_mount_namespace_keeps_masked_and_readonly_paths(pyrunc, holder):
    """pyrunc applies maskedPaths, readonlyPaths and a read-only root without a mount namespace of
    the container too (runc 1.1.5 refuses them: "unable to restrict sys entries without a
    private MNT namespace"); the caller's mount table is untouched."""
    before = holder.mountinfo()
    cfg = base_config(["sh", "-c", "ls -l /proc/keys; touch /proc/sys/kernel/hostname || echo RO-SYS; "
                                    "touch /x || echo RO-ROOT"])
    cfg["root"]["path"] = holder.rootfs
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
    p = holder.run(pyrunc, "run", "--bundle", pyrunc.bundle(cfg), pyrunc.new_id())
    assert p.returncode == 0, p.stderr
    assert "1,   3" in p.stdout and "RO-SYS" in p.stdout and "RO-ROOT" in p.stdout, p.stdout
    assert holder.mountinfo() == before


def test_no_mount_namespace_with_a_user_namespace_is_refused(anyrt, holder):
    """A new user namespace's root cannot mount in the caller's namespace: runc 1.1.5 fails at
    its first mount ("mount /, flags: 0x84000: operation not permitted"), pyrunc before it makes
    anything, with one line naming the field; neither leaves a mount."""
    before = holder.mountinfo()
    cfg = no_mountns_config(holder.rootfs, ["true"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    p = holder.run(anyrt, "run", "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 1
    if anyrt.name == "pyrunc":
        assert len(p.stderr.strip().splitlines()) == 1 and "linux.namespaces" in p.stderr, p.stderr
    assert holder.mountinfo() == before


# ------------------------------------------------------------------------ 2. --no-pivot
NESTED_PROC = ('unshare -mr true && echo USERNS-OK; '
               'unshare -mrpf sh -c "mount -t proc proc /mnt && echo MOUNTED-PROC"; '
               'unshare -mr sh -c "mount -t sysfs sysfs /mnt && echo MOUNTED-SYS"; true')


@pytest.mark.parametrize("no_pivot", [False, True], ids=["pivot", "no-pivot"])
def test_no_fresh_procfs_from_a_nested_user_namespace(anyrt, no_pivot):
    """A process of the container (an unprivileged user, who may make a user namespace: mapping
    its own uid needs no capability) must not mount a procfs or sysfs of its own, which would
    show what maskedPaths hides. The kernel allows it only while a full one is visible in the
    mount namespace: with --no-pivot the host's /proc and /sys were still there under the moved
    root (runc: "mount: permission denied"; pyrunc mounted it)."""
    cfg = base_config(["sh", "-c", NESTED_PROC])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    args = ["run", "--bundle", anyrt.bundle(cfg)] + (["--no-pivot"] if no_pivot else []) + [anyrt.new_id()]
    p = anyrt(*args)
    assert p.returncode == 0, p.stderr
    if "USERNS-OK" not in p.stdout:
        pytest.skip(f"no nested user namespace for an unprivileged user here: {p.stderr.strip()}")
    assert "MOUNTED" not in p.stdout, p.stdout


def test_no_pivot_never_unmounts_in_the_caller(anyrt, holder):
    """--no-pivot takes the mounts outside the rootfs out of the container's namespace: with
    rootfsPropagation rshared its copies of the caller's shared mounts are peers of them, and an
    umount there would reach the caller's (pyrunc makes them slaves first, as runc does)."""
    holder.sh(f"mount -t tmpfs -o size=1m pyrunc-sub {holder.shared}/rootfs/mnt")  # shared, below SHARED
    before = holder.mountinfo()
    assert sum(1 for m in before if m[0].endswith("/rootfs/mnt")) == 2  # and its copy below PEER
    cfg = base_config(["sh", "-c", "ls /proc/self/fd >/dev/null && echo RAN"])
    cfg["root"]["path"] = ROOTFS  # outside SHARED: all of SHARED goes from the container's view
    cfg["linux"]["rootfsPropagation"] = "rshared"
    p = holder.run(anyrt, "run", "--no-pivot", "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 0, p.stderr
    assert "RAN" in p.stdout
    assert holder.mountinfo() == before


# ------------------------------------------------- 3. bind sources the userns root cannot reach
USERNS = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _source(tmp_path, name, locked=True):
    """A directory with a file f, below a 0700 directory of the host's root when LOCKED (no lookup
    from a user namespace whose root is uid 100000 gets through), else below a 0755 one."""
    top = tmp_path / name
    top.mkdir(mode=0o700)
    os.chmod(top, 0o700 if locked else 0o755)
    data = top / "data"
    data.mkdir()
    (data / "f").write_text(f"{name}-ok\n")
    os.chmod(data, 0o755)
    os.chmod(data / "f", 0o644)
    return str(data)


@pytest.fixture
def hidden_sources(tmp_path):
    """Two sources the user namespace's root cannot reach (runc's userns.bats: "we had bugs where
    1 mount worked but not 2+"), and one it can (the temporary directory itself must be
    reachable then: pytest's is 0700)."""
    shared = tempfile.mkdtemp(prefix="pyrunc-userns-")
    os.chmod(shared, 0o755)
    try:
        yield [_source(tmp_path, "one"), _source(tmp_path, "two"),
               _source(pathlib.Path(shared), "open", locked=False)]
    finally:
        shutil.rmtree(shared)


def _userns_binds(srcs, args):
    """The busybox config in a user namespace, SRCS bound (bind, as in userns.bats) on /mnt, /opt,
    /home (there in the image: the namespace's root may not create a directory in it), the last
    one right before the cgroup mount (userns.bats: "userns with bind mount before a cgroupfs
    mount", cgroup v1 without a cgroup namespace)."""
    cfg = base_config(args)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = USERNS
    cfg["linux"]["gidMappings"] = USERNS
    binds = [{"destination": d, "type": "bind", "source": s, "options": ["bind"]}
             for d, s in zip(("/mnt", "/opt", "/home"), srcs)]
    cg = next(i for i, m in enumerate(cfg["mounts"]) if m["destination"] == "/sys/fs/cgroup")
    cfg["mounts"][cg:cg] = binds
    return cfg


READ_ALL = "cat /mnt/f /opt/f /home/f; cat /sys/fs/cgroup/pids/tasks /sys/fs/cgroup/memory/tasks | wc -l"


def test_bind_sources_unreachable_from_the_user_namespace(anyrt, hidden_sources):
    """runc 1.1.5 opens the sources on its side and mounts them by fd; pyrunc failed with
    "permission denied". The cgroup v1 mount after them is the real cgroupfs."""
    p = anyrt.run(_userns_binds(hidden_sources, ["sh", "-c", READ_ALL]))
    assert p.returncode == 0, p.stderr
    out = p.stdout.split()
    assert out[:3] == ["one-ok", "two-ok", "open-ok"] and int(out[3]) >= 2, p.stdout


def test_exec_into_a_container_with_unreachable_bind_sources(anyrt, hidden_sources):
    """exec works in that container too (userns.bats: "userns with inaccessible mount + exec"), and
    nothing that carried the sources is left open in the container's processes (its init has its
    stdio only)."""
    cid = anyrt.new_id()
    b = anyrt.bundle(_userns_binds(hidden_sources, ["sleep", "300"]))
    p = anyrt("run", "-d", "--bundle", b, cid, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    e = anyrt("exec", "--cwd", "/mnt", cid, "sh", "-c", "cat f /opt/f; ls /proc/1/fd")
    assert e.returncode == 0, e.stderr
    lines = e.stdout.split()
    assert lines[:2] == ["one-ok", "two-ok"]
    assert sorted(lines[2:]) == ["0", "1", "2"], lines


def _userns_bind(src, args, options=("rbind", "ro")):
    cfg = base_config(args)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = USERNS
    cfg["linux"]["gidMappings"] = USERNS
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": src, "options": list(options)})
    return cfg


def test_read_only_host_mount_stays_locked(anyrt, holder):
    """The source sits on a read-only mount of the caller's: even the container's root with
    CAP_SYS_ADMIN in its user namespace cannot remount its bind read-write (the kernel locks the
    flags of the mounts a less privileged namespace inherits; a bind made from a tree cloned on
    the host would not be locked)."""
    src = os.path.join(holder.dir, "rosrc")
    os.makedirs(os.path.join(src, "d"))
    os.chmod(os.path.join(src, "d"), 0o777)  # only the mount's read-only flag stops a write
    holder.sh(f"mount --bind {src} {src} && mount -o remount,bind,ro {src}")
    cfg = _userns_bind(os.path.join(src, "d"), ["sh", "-c", "mount -o remount,bind,rw /mnt && "
                                                "echo REMOUNTED-RW; touch /mnt/x && echo WROTE; true"],
                       options=("rbind",))
    caps = cfg["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k] = caps[k] + ["CAP_SYS_ADMIN"]
    p = holder.run(anyrt, "run", "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 0, p.stderr
    assert "REMOUNTED-RW" not in p.stdout and "WROTE" not in p.stdout
    assert not os.path.exists(os.path.join(src, "d", "x"))


@pytest.mark.parametrize("no_pivot", [False, True], ids=["pivot", "no-pivot"])
def test_rshared_never_mounts_on_the_callers_root(anyrt, holder, request, no_pivot):
    """runc issue 1961 (no_pivot.bats): rootfsPropagation rshared, and a rootfs that is a mount
    point: with --no-pivot, the MS_MOVE of the rootfs onto the container's "/", a peer of the
    caller's "/", must not put the rootfs on top of the caller's "/" too (it could not be
    unmounted there). The caller's "/" is shared here (made so in the test's own namespace)."""
    if anyrt.name == "runc" and no_pivot:
        request.applymarker(pytest.mark.xfail(strict=True, reason="runc 1.1.5 has runc issue 1961 "
                                              "(fixed later): the rootfs lands on the caller's /"))
    holder.sh(f"mount --make-shared / && mount --bind {holder.rootfs} {holder.rootfs}")
    before = holder.mountinfo()
    cfg = base_config(["true"])
    cfg["root"]["path"] = holder.rootfs
    cfg["linux"]["rootfsPropagation"] = "rshared"
    flags = ["--no-pivot"] if no_pivot else []
    p = holder.run(anyrt, "run", *flags, "--bundle", anyrt.bundle(cfg), anyrt.new_id())
    assert p.returncode == 0, p.stderr
    assert holder.mountinfo() == before
