"""Shared fixtures: a runtime runner with its own --root, and bundles made from the busybox one.

Every container a test makes is deleted with --force when the test ends, and the state root must
then be empty: a leak fails the test.
"""
import copy
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
BASE_CONFIG = os.path.join(REPO, "bundles", "busybox", "config.json")
RUNTIMES = {"pyrunc": PYRUNC, "runc": shutil.which("runc") or "runc"}


def base_config(args=("true",)):
    with open(BASE_CONFIG) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = ROOTFS
    cfg["process"]["args"] = list(args)
    return cfg


class Runtime:
    """Runs one runtime binary with a private --root; remembers ids to clean up."""

    def __init__(self, name, binary, tmp):
        self.name = name
        self.binary = binary
        self.tmp = tmp
        self.root = os.path.join(tmp, f"root-{name}")
        self.ids = set()
        self.n = 0

    def new_id(self, prefix="t"):
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def bundle(self, cfg=None, args=None, **changes):
        """Write a bundle dir holding CFG (default: busybox config with ARGS)."""
        cfg = copy.deepcopy(cfg) if cfg is not None else base_config(args or ("true",))
        if args is not None:
            cfg["process"]["args"] = list(args)
        for k, v in changes.items():
            cfg[k] = v
        self.n += 1
        d = os.path.join(self.tmp, f"bundle-{self.name}-{self.n}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return d

    def __call__(self, *args, check=False, timeout=20, input=None, **kw):
        """Run the runtime. Output goes through files, not pipes: a detached container inherits
        the runtime's stdio and would hold a pipe open forever."""
        cmd = [self.binary, "--root", self.root, *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(cmd, stdout=out, stderr=err, text=True, timeout=timeout,
                               input=input, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} failed ({p.returncode}): {p.stderr}")
        return p

    def state(self, cid):
        p = self(("state"), cid, check=True)
        return json.loads(p.stdout)

    def run(self, cfg=None, args=None, timeout=20, **kw):
        """Foreground run of a fresh container; returns the CompletedProcess."""
        b = self.bundle(cfg, args)
        cid = self.new_id()
        return self("run", "--bundle", b, cid, timeout=timeout, **kw)

    def cleanup(self):
        """delete --force every id; what is left: state dirs, and (pyrunc only) cgroups. The
        cgroups a runtime left under our ids are removed either way: runc 1.1.5 leaves some on
        failed creates (a hook's survivors, a killed create), and the machine must not keep them."""
        for cid in self.ids:
            subprocess.run([self.binary, "--root", self.root, "delete", "--force", cid],
                           capture_output=True, timeout=20)
        # pyrunc's cache of compiled seccomp filters stays by design (runtime/bpfcache.py)
        left = [n for n in os.listdir(self.root) if n != ".seccomp:cache"] if os.path.isdir(self.root) else []
        for cid in self.ids:
            dirs = remove_cgroups(cid)
            if dirs and self.name == "pyrunc":
                left += dirs
        return left


def wait_for(cond, timeout=20.0, what="condition", interval=0.01):
    """COND()'s first true value, polled until TIMEOUT: a race is awaited, never slept through."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def cgroup_dirs_of(cid):
    """CID's cgroup directories where a runtime without cgroupsPath puts them: below our own
    cgroup in every hierarchy (cheap: one stat each, no tree walk)."""
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        name = ctrls.replace("name=", "") if ctrls else "unified"
        d = os.path.join("/sys/fs/cgroup", name, path.lstrip("/"), cid)
        if os.path.isdir(d):
            out.append(d)
    return out


def untraversable(path):
    """The first ancestor directory of PATH that others cannot traverse (no o+x), or None: an
    ordinary test user cannot reach PATH through it."""
    import stat
    p = "/"
    for part in path.strip("/").split("/")[:-1]:
        p = os.path.join(p, part)
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return p
    return None


def edit_lines(path, drop=None, add=None):
    """Rewrite a colon-separated table (/etc/subuid, /etc/subgid) atomically: without the lines
    whose first field is DROP, with the line ADD appended."""
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln and not (drop and ln.split(":")[0] == drop)]
    if add:
        lines.append(add)
    tmp = path + ".pyrunc-test"
    with open(tmp, "w") as f:
        f.write("".join(ln + "\n" for ln in lines))
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def exited(pid):
    """Gone, or a zombie: an orphan is reparented to this machine's pid 1, which reaps when it
    pleases, so "exited" is all a test can ask for."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def end_user_procs(uid, timeout=20):
    """SIGKILL every process of UID (a throwaway test user's) and await their end (twice: one
    may fork while we look)."""
    def pids():
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if os.stat(f"/proc/{p}").st_uid == uid:
                        out.append(int(p))
                except FileNotFoundError:
                    pass
        return out
    for _ in range(2):
        for pid in pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        wait_for(lambda: all(exited(p) for p in pids()), timeout=timeout, what=f"uid {uid}'s processes to end")


def rmdir_tree(top, deadline):
    """rmdir TOP and every directory below it, leaves first (a cgroup tree: only one the test
    made). One still busy (a process that just died may not have left it yet) is retried until
    DEADLINE (a time.monotonic() value), then left; returns the directories left."""
    import time
    left = []
    for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    left.append(d)  # still busy: a process that will not die is the test's finding
                    break
                time.sleep(0.02)
    return left


def remove_cgroups(cid, timeout=5.0):
    """Remove CID's cgroups (after the processes in them are gone: awaited up to TIMEOUT);
    returns the ones that were there."""
    import time
    dirs = cgroup_dirs_of(cid)
    end = time.monotonic() + timeout
    for d in dirs:
        rmdir_tree(d, end)
    return dirs


@pytest.fixture
def pyrunc(tmp_path):
    rt = Runtime("pyrunc", PYRUNC, str(tmp_path))
    yield rt
    left = rt.cleanup()
    assert not left, f"state left behind: {left}"


@pytest.fixture(params=["pyrunc", "runc"])
def anyrt(request, tmp_path):
    """The same test against pyrunc and runc (runc's result shows what the machine allows)."""
    name = request.param
    if name == "runc" and not shutil.which("runc"):
        pytest.skip("runc not installed")
    rt = Runtime(name, RUNTIMES[name], str(tmp_path))
    yield rt
    left = rt.cleanup()
    assert not left, f"state left behind: {left}"
