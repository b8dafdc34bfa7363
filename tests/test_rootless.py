"""Rootless containers: pyrunc (and runc, for comparison) run by an unprivileged user.

A throwaway user is made for the module (useradd, with its own /etc/subuid and /etc/subgid
ranges; userdel and the ranges removed afterwards). Every runtime call runs as that user through
setpriv, with XDG_RUNTIME_DIR in a scratch dir the user owns, so the default state root is used.

The interpreter of the venv lives under /root/.pyenv, and /root is mode 700 here: the user could
not even start pyrunc. Rather than change /root (an ACL or a chmod would outlive a crashed test
and widen access for everyone), each pyrunc call runs in a private mount namespace made by root
just for it (unshare -m): there a tmpfs hides /root and only /root/.pyenv is bound back into it,
so the user sees the interpreter and nothing else of /root; the host's /root is never touched
and the namespace ends with the call. runc is a static binary and needs none of it.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import PYRUNC, ROOTFS, base_config, edit_lines, exited, untraversable as _blocked  # noqa: E402
from recvtty import Receiver  # noqa: E402

RUNC = shutil.which("runc") or "runc"
SUB_START, SUB_COUNT = 1_300_000, 65536  # the test user's /etc/subuid and /etc/subgid range
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create the test user")


def _interpreter_reach():
    """(hidden dir, kept dir) for the private-mount trick of the module docstring, e.g.
    ("/root", "/root/.pyenv"); None when the interpreter is reachable as it is."""
    real = os.path.realpath(os.path.join(os.path.dirname(PYRUNC), "python"))
    hide = _blocked(real)
    if hide is None:
        return None
    keep = os.path.join(hide, os.path.relpath(real, hide).split("/")[0])
    return hide, keep


# "$W" keeps the caller's cwd; /proc/self/cwd is the kept dir as it was before the tmpfs hid it
_REACH = ('H=$1 K=$2; shift 2; W=$PWD; cd "$K" && mount -t tmpfs -o mode=755,size=4k tmpfs "$H" && '
          'mkdir -p "$K" && mount --no-canonicalize --bind /proc/self/cwd "$K" && cd "$W" && exec "$@"')


class User:
    def __init__(self, name, uid, gid, scratch):
        self.name, self.uid, self.gid, self.scratch = name, uid, gid, scratch

    def cmd(self, argv, xdg=True, cgroup2=None):
        """ARGV run as this user with a clean environment (moved first, by root, into the cgroup2
        directory CGROUP2 when given)."""
        env = ["env", "-i", f"PATH={ENV_PATH}", f"USER={self.name}", f"HOME={self.scratch}"]
        if xdg:
            env.append(f"XDG_RUNTIME_DIR={self.scratch}/xdg")
        inner = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups"] + env + list(argv)
        reach = _interpreter_reach() if argv[0] == PYRUNC else None
        if reach:
            inner = ["unshare", "-m", "--propagation", "private", "sh", "-c", _REACH, "sh", *reach] + inner
        if cgroup2:
            inner = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup2] + inner
        return inner


def _kill_user_procs(uid):
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == uid:
                    os.kill(int(p), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass


def _user_procs(uid):
    """Live (not zombie) processes of UID."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == uid and not exited(p):
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        out.append((int(p), f.read().replace(b"\0", b" ").decode(errors="replace")))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


@pytest.fixture(scope="module")
def user():
    if not (shutil.which("useradd") and shutil.which("setpriv") and shutil.which("newuidmap")):
        pytest.skip("needs useradd, setpriv and newuidmap (package uidmap)")
    name = "pyrl" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-U", name],
                   check=True, timeout=30)
    try:
        pw = pwd.getpwnam(name)
        for f in ("/etc/subuid", "/etc/subgid"):
            edit_lines(f, drop=name, add=f"{name}:{SUB_START}:{SUB_COUNT}")
        scratch = tempfile.mkdtemp(prefix="pyrunc-rootless-")
        os.chmod(scratch, 0o755)
        os.chown(scratch, pw.pw_uid, pw.pw_gid)
        try:
            u = User(name, pw.pw_uid, pw.pw_gid, scratch)
            _check_reachable(u)
            yield u
        finally:
            _kill_user_procs(pw.pw_uid)
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        for f in ("/etc/subuid", "/etc/subgid"):
            edit_lines(f, drop=name)
        # -f: zombies of the user's containers may still wait for pid 1 to reap them
        subprocess.run(["userdel", "-f", name], timeout=30, stderr=subprocess.DEVNULL)


def _check_reachable(u):
    """Skip (with the reason) when the user cannot run pyrunc or read the rootfs from here."""
    for what, path in (("the repository", PYRUNC), ("the rootfs", os.path.join(ROOTFS, "bin"))):
        if _blocked(path):
            pytest.skip(f"{what} is under {_blocked(path)}, which an unprivileged user cannot traverse")
    reach = _interpreter_reach()
    if reach:
        real = os.path.realpath(os.path.join(os.path.dirname(PYRUNC), "python"))
        d = os.path.dirname(real)
        while d != reach[0]:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                pytest.skip(f"the venv's interpreter is also under {d}, which the test user cannot traverse")
            d = os.path.dirname(d)
    p = subprocess.run(u.cmd([PYRUNC, "--version"]), capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        pytest.skip(f"the test user cannot run pyrunc: {p.stderr.strip()[:200]}")


class RootlessRuntime:
    """One runtime run as the test user; every container is deleted --force at the end."""

    def __init__(self, name, user):
        self.name, self.user = name, user
        self.binary = PYRUNC if name == "pyrunc" else RUNC
        self.state_root = os.path.join(user.scratch, "xdg", name)  # the default root
        self.ids = set()
        self.bundles = []

    def __call__(self, *args, check=True, timeout=30, xdg=True, cgroup2=None, **kw):
        # files, not pipes: a detached container keeps its stdio open, and EOF would never come
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.user.cmd([self.binary] + [str(a) for a in args], xdg=xdg, cgroup2=cgroup2),
                               stdout=out, stderr=err, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
        return p

    def new_id(self):
        cid = f"rl-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def spec_bundle(self, args, edit=None):
        """A bundle whose config is this runtime's own `spec --rootless`, written by the user, with
        the shared rootfs (absolute path, readable by everyone), no terminal, and ARGS."""
        d = os.path.join(self.user.scratch, f"bundle-{self.name}-{uuid.uuid4().hex[:8]}")
        os.mkdir(d)
        self.bundles.append(d)
        os.chown(d, self.user.uid, self.user.gid)
        self("spec", "--rootless", "--bundle", d)
        path = os.path.join(d, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = ROOTFS
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        if edit:
            edit(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return d

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid, check=False)
        for d in self.bundles:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["pyrunc", "runc"])
def rt(request, user):
    r = RootlessRuntime(request.param, user)
    try:
        yield r
    finally:
        r.cleanup()
    left = os.listdir(r.state_root) if os.path.isdir(r.state_root) else []
    procs = _user_procs(user.uid)
    _kill_user_procs(user.uid)
    assert not left, f"state left behind in {r.state_root}: {left}"
    assert not procs, f"processes of the test user left behind: {procs}"


@pytest.fixture
def pyrunc(user):
    r = RootlessRuntime("pyrunc", user)
    try:
        yield r
    finally:
        r.cleanup()
    left = os.listdir(r.state_root) if os.path.isdir(r.state_root) else []
    _kill_user_procs(user.uid)
    assert not left, f"state left behind: {left}"


def _one_line_error(p, *words):
    assert p.returncode == 1, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "level=error" in ln]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


# ---------------------------------------------------------------------------------------- spec
def test_spec_rootless_is_runcs(user):
    """`pyrunc spec --rootless` writes runc's rootless config (but for runc's own names/versions)."""
    out = {}
    for name in ("pyrunc", "runc"):
        r = RootlessRuntime(name, user)
        d = os.path.join(user.scratch, f"spec-{name}")
        os.mkdir(d)
        os.chown(d, user.uid, user.gid)
        r("spec", "--rootless", "--bundle", d)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
        shutil.rmtree(d)
        cfg.pop("ociVersion")
        cfg.pop("hostname")
        out[name] = cfg
    assert out["pyrunc"] == out["runc"]
    assert out["pyrunc"]["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert out["pyrunc"]["linux"]["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]


# ---------------------------------------------------------------------------------------- run
def test_run_root_in_container_is_the_user(rt):
    """uid 0 inside is the user outside: the id maps, and a file made in a bind-mounted dir."""
    share = os.path.join(rt.user.scratch, f"share-{rt.name}")
    os.mkdir(share)
    os.chown(share, rt.user.uid, rt.user.gid)

    def edit(cfg):
        cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": share, "options": ["rbind", "rw"]})
    b = rt.spec_bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
                        "cat /proc/self/setgroups; touch /mnt/made-inside; "
                        "test -c /dev/null && echo x > /dev/null && echo devnull-ok"], edit)
    cid = rt.new_id()
    p = rt("run", "--bundle", b, cid)
    lines = p.stdout.split("\n")
    assert lines[0].split() == ["0", str(rt.user.uid), "1"]
    assert lines[1].split() == ["0", str(rt.user.gid), "1"]
    assert lines[2:6] == ["0", "0", "deny", "devnull-ok"]
    st = os.stat(os.path.join(share, "made-inside"))
    assert (st.st_uid, st.st_gid) == (rt.user.uid, rt.user.gid)
    shutil.rmtree(share)


def test_default_state_root_is_xdg(rt):
    """Without --root, the state lives in $XDG_RUNTIME_DIR/<runtime>, 0700 and sticky like runc's."""
    b = rt.spec_bundle(["sleep", "1000"])
    cid = rt.new_id()
    rt("create", "--bundle", b, cid)
    assert os.path.isdir(os.path.join(rt.state_root, cid))
    st = os.stat(rt.state_root)
    assert st.st_uid == rt.user.uid and stat.S_IMODE(st.st_mode) == 0o1700
    rt("delete", "--force", cid)
    assert not os.path.exists(os.path.join(rt.state_root, cid))


def test_lifecycle_and_exec(rt):
    b = rt.spec_bundle(["sleep", "1000"])
    cid = rt.new_id()
    rt("create", "--bundle", b, cid)
    st = rt.state(cid)
    assert st["status"] == "created"
    pid = st["pid"]
    assert os.stat(f"/proc/{pid}").st_uid == rt.user.uid  # the init is the user's on the host
    rt("start", cid)
    assert rt.state(cid)["status"] == "running"
    p = rt("exec", cid, "sh", "-c", "cat /proc/self/uid_map; id -u; cat /proc/1/cmdline")
    out = p.stdout.split("\n")
    assert out[0].split() == ["0", str(rt.user.uid), "1"]
    assert out[1] == "0" and out[2].startswith("sleep")
    assert cid in rt("list", "-q").stdout.split()
    listed = [x for x in json.loads(rt("list", "-f", "json").stdout) if x["id"] == cid]
    assert listed[0]["owner"] == rt.user.name  # the owner of the state dir, as runc
    rt("kill", cid, "KILL")
    deadline = time.monotonic() + 10
    while rt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "init not dead 10 s after SIGKILL"
        time.sleep(0.02)
    rt("delete", cid)
    assert rt("state", cid, check=False).returncode != 0
    assert exited(pid)


@pytest.fixture
def root_only_mount(request):
    """A mount (request.param: tmpfs, or a full procfs) below a host directory only root may
    search, as another program's 0700 temp dir may hold one: out of the test user's reach.
    Removed at the end."""
    d = tempfile.mkdtemp(prefix="pyrunc-rootonly-")  # 0700, root's
    mp = os.path.join(d, "data")
    os.mkdir(mp)
    kind = getattr(request, "param", "tmpfs")
    subprocess.run(["mount", "-t", kind, "-o", "nosuid,nodev,noexec", kind, mp], check=True, timeout=20)
    try:
        yield mp
    finally:
        subprocess.run(["umount", "-l", mp], timeout=20, check=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("how", ["run", "create-start"])
def test_no_pivot(rt, how, root_only_mount):
    """--no-pivot (MS_MOVE + chroot) as the user: the mounts outside the rootfs that can be hidden
    are, and one the user cannot even reach (root_only_mount) is left out of the way, as runc
    leaves it (it only looks for procfs and sysfs); before, pyrunc failed: "moving it to /
    (--no-pivot): permission denied"."""
    show = "cat /proc/self/uid_map; id -u; ls /; grep -c . /proc/self/mountinfo"
    cid = rt.new_id()
    if how == "run":
        out = rt("run", "--no-pivot", "--bundle", rt.spec_bundle(["sh", "-c", show]), cid).stdout
    else:
        rt("create", "--no-pivot", "--bundle", rt.spec_bundle(["sleep", "1000"]), cid)
        rt("start", cid)
        assert rt.state(cid)["status"] == "running"
        out = rt("exec", cid, "sh", "-c", show + "; cat /proc/1/cmdline").stdout
    lines = out.split("\n")
    assert lines[0].split() == ["0", str(rt.user.uid), "1"] and lines[1] == "0", out
    assert {"bin", "etc", "proc", "sys"} <= set(lines) and "work" not in lines, out  # the rootfs is /
    assert int(lines[lines.index("var") + 1]) > 10, out  # the container's own mounts, in sight
    if how != "run":
        assert lines[-1].startswith("sleep"), out
        rt("delete", "--force", cid)


@pytest.mark.parametrize("root_only_mount", ["proc"], indirect=True)
def test_no_pivot_refuses_a_procfs_it_cannot_hide(rt, root_only_mount):
    """A full procfs left in the mount namespace would let a nested user namespace of the
    container mount a fresh, unmasked one (the kernel's mount_too_revealing): one the user cannot
    reach, and so cannot hide, fails the create, naming it (runc fails too: "error jailing
    process inside rootfs: mount <it> ... permission denied")."""
    cid = rt.new_id()
    p = rt("run", "--no-pivot", "--bundle", rt.spec_bundle(["true"]), cid, check=False)
    assert p.returncode == 1 and root_only_mount in p.stderr and "permission denied" in p.stderr, p.stderr
    if rt.name == "pyrunc":
        _one_line_error(p, "--no-pivot", f"the proc mounted on {root_only_mount} cannot be hidden")
    assert rt("state", cid, check=False).returncode != 0  # nothing half-made


def test_kill_all_and_delete_force(rt):
    """Without a cgroup of its own, kill --all and delete --force still end the container (its pid
    namespace dies with its init)."""
    b = rt.spec_bundle(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b, cid)
    pid = rt.state(cid)["pid"]
    p = rt("kill", "--all", cid, "KILL", check=False)
    if rt.name == "runc":
        # runc 1.1.5 finds no process list without a cgroup ("lstat : no such file or directory")
        assert p.returncode == 1
        rt("kill", cid, "KILL")
    else:
        assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while not exited(pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt("delete", "--force", cid)


def test_wider_maps_from_subuid(rt):
    """Ranges granted in /etc/subuid and /etc/subgid are mapped through newuidmap/newgidmap."""
    def edit(cfg):
        for k in ("uidMappings", "gidMappings"):
            own = rt.user.uid if k == "uidMappings" else rt.user.gid
            cfg["linux"][k] = [{"containerID": 0, "hostID": own, "size": 1},
                               {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        if rt.name == "pyrunc":  # runc 1.1.5 refuses additional groups in any rootless container
            cfg["process"]["user"]["additionalGids"] = [1001]
    b = rt.spec_bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -G"], edit)
    cid = rt.new_id()
    p = rt("run", "--bundle", b, cid)
    rows = [ln.split() for ln in p.stdout.splitlines()]
    want = [["0", str(rt.user.uid), "1"], ["1", str(SUB_START), str(SUB_COUNT)]]
    assert rows[0:2] == want
    assert rows[2:4] == [["0", str(rt.user.gid), "1"], ["1", str(SUB_START), str(SUB_COUNT)]]
    assert rows[4] == ["1000"]
    # runc never calls setgroups when rootless: the user's own group stays, as gid 0
    assert rows[5] == (["1000", "1001"] if rt.name == "pyrunc" else ["1000", "0"])


def test_ungranted_range_is_refused(rt):
    def edit(cfg):
        cfg["linux"]["uidMappings"].append({"containerID": 1, "hostID": SUB_START + SUB_COUNT, "size": 10})
    b = rt.spec_bundle(["true"], edit)
    cid = rt.new_id()
    p = rt("run", "--bundle", b, cid, check=False)
    assert p.returncode != 0
    if rt.name == "pyrunc":
        _one_line_error(p, "linux.uidMappings", "newuidmap", "/etc/subuid")
    assert not os.path.exists(os.path.join(rt.state_root, cid))


def test_join_user_and_network_namespaces_of_the_user(rt):
    """Namespaces joined by path (the intermediate-process path): a user+network namespace pair the
    user made with unshare; the container's pid, mount, ipc and uts namespaces are new."""
    holder = subprocess.Popen(rt.user.cmd(["unshare", "-Ur", "-n", "sleep", "1000"], xdg=False),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 10
        while True:  # setpriv, env and unshare exec in turn: the pid stays; wait for the mapped ns
            assert holder.poll() is None and time.monotonic() < deadline, "unshare did not start"
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/user") != own and \
                        open(f"/proc/{holder.pid}/uid_map").read().strip():
                    break
            except OSError:
                pass
            time.sleep(0.01)
        net = os.readlink(f"/proc/{holder.pid}/ns/net")

        def edit(cfg):
            cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [
                {"type": "user", "path": f"/proc/{holder.pid}/ns/user"},
                {"type": "network", "path": f"/proc/{holder.pid}/ns/net"}]
            # the mappings stay (runc 1.1.5 wants them even for a joined user namespace; they
            # describe it as it is)
        b = rt.spec_bundle(["sh", "-c", "cat /proc/self/uid_map; ls -l /proc/self/ns/net"], edit)
        p = rt("run", "--bundle", b, rt.new_id())
        assert p.stdout.split("\n")[0].split() == ["0", str(rt.user.uid), "1"], p.stdout
        assert p.stdout.rstrip().endswith(net), p.stdout
    finally:
        holder.kill()
        holder.wait(timeout=10)


# ---------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("case", ["no-userns", "resources", "sysfs", "ext4"])
def test_refused_with_a_clear_error(rt, case):
    def edit(cfg):
        if case == "no-userns":
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
            del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
        elif case == "resources":
            cfg["linux"]["resources"] = {"memory": {"limit": 100 * 2**20}}
        elif case == "ext4":  # a filesystem the kernel mounts for the real root only
            cfg["mounts"].append({"destination": "/mnt", "type": "ext4", "source": "/dev/nonexistent"})
        else:
            i = next(i for i, m in enumerate(cfg["mounts"]) if m["destination"] == "/sys")
            cfg["mounts"][i] = {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                                "options": ["nosuid", "noexec", "nodev", "ro"]}
    b = rt.spec_bundle(["true"], edit)
    cid = rt.new_id()
    p = rt("run", "--bundle", b, cid, check=False)
    assert p.returncode != 0
    if rt.name == "pyrunc":
        words = {"no-userns": ["linux.namespaces", "requires a user namespace"],
                 "resources": ["linux.resources", "memory", "delegated"],
                 "sysfs": ["mounts[5]", "sysfs", "network namespace"],
                 "ext4": ["mounts[7]", "ext4", "/mnt", "real root"]}[case]
        _one_line_error(p, *words)
    assert not os.path.exists(os.path.join(rt.state_root, cid))


def test_cgroups_skipped_with_a_warning(pyrunc):
    b = pyrunc.spec_bundle(["sh", "-c", "cat /proc/self/cgroup"])
    cid = pyrunc.new_id()
    p = pyrunc("run", "--bundle", b, cid)
    assert "level=warning" in p.stderr and "not delegated" in p.stderr
    # the container stays in the caller's cgroups: no directory named after it anywhere
    assert not any(cid in ln for ln in p.stdout.splitlines())


def test_no_state_root_without_xdg(pyrunc):
    """No XDG_RUNTIME_DIR and no /run/user/<uid>: /run/pyrunc is root's, and the error says what to do."""
    b = pyrunc.spec_bundle(["true"])
    p = pyrunc("run", "--bundle", b, pyrunc.new_id(), check=False, xdg=False)
    _one_line_error(p, "/run/pyrunc", "--root", "XDG_RUNTIME_DIR")


def test_explicit_root_flag(pyrunc):
    b = pyrunc.spec_bundle(["true"])
    root = os.path.join(pyrunc.user.scratch, "explicit-root")
    cid = pyrunc.new_id()
    try:
        pyrunc("--root", root, "run", "--bundle", b, cid)
        assert os.listdir(root) == []
    finally:
        pyrunc("--root", root, "delete", "--force", cid, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_rootless_false_wants_real_cgroups(rt):
    """--rootless false: cgroup errors are not tolerated, as in runc; nothing is left."""
    b = rt.spec_bundle(["true"])
    cid = rt.new_id()
    p = rt("--rootless", "false", "run", "--bundle", b, cid, check=False)
    assert p.returncode == 1
    assert "cgroup" in p.stderr and "ermission denied" in p.stderr, p.stderr
    if rt.name == "pyrunc":
        _one_line_error(p, "cannot create cgroup")
    assert not os.path.exists(os.path.join(rt.state_root, cid))


def test_rootless_flag_bad_value(rt):
    b = rt.spec_bundle(["true"])
    p = rt("--rootless", "maybe", "run", "--bundle", b, rt.new_id(), check=False)
    assert p.returncode == 1
    if rt.name == "pyrunc":
        _one_line_error(p, "--rootless", "maybe")


def test_root_with_rootless_true_still_uses_cgroups(tmp_path):
    """Root with --rootless true (runc: only cgroup errors are tolerated): writable cgroups are
    used as ever, device rules included."""
    b = tmp_path / "b"
    b.mkdir()
    (b / "config.json").write_text(json.dumps(base_config(["sleep", "1000"])))
    root, cid = str(tmp_path / "root"), "rl-" + uuid.uuid4().hex[:10]

    def run(*a):
        with tempfile.TemporaryFile() as err:  # a file: the init keeps a pipe open
            p = subprocess.run([PYRUNC, "--root", root, "--rootless", "true"] + list(a), stdout=subprocess.DEVNULL,
                               stderr=err, timeout=30, stdin=subprocess.DEVNULL)
            err.seek(0)
            p.stderr = err.read().decode(errors="replace")
        return p
    try:
        p = run("create", "--bundle", str(b), cid)
        assert p.returncode == 0 and "not delegated" not in p.stderr, p.stderr
        with open(os.path.join(root, cid, "state.json")) as f:
            cg = json.load(f).get("cgroup")
        assert cg and any(v.endswith("/" + cid) for v in cg["paths"].values()), cg
        devices = cg["paths"].get("devices")
        if devices:
            with open(os.path.join(devices, "devices.list")) as f:
                assert "a *:* rwm" not in f.read()  # the default deny-all plus allow-list applied
    finally:
        assert run("delete", "--force", cid).returncode == 0
    assert os.listdir(root) == []


# ---------------------------------------------------------------------------------------- delegated cgroups
def _cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2") and left.split()[3] == "/":
                out.append((left.split()[4], right.split()[0]))
    return out


@pytest.fixture
def delegation(user):
    """A cgroup of ours in every hierarchy, handed to the user (chown), as a delegating manager
    (systemd's Delegate=yes) would; yields its path relative to the hierarchy roots."""
    name = "pyrunc-rootless-" + uuid.uuid4().hex[:8]
    made, unified = [], None
    try:
        for mnt, fstype in _cgroup_mounts():
            d = os.path.join(mnt, name)
            os.mkdir(d)
            made.append(d)
            if fstype == "cgroup2":
                unified = d
            for f in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset needs them before any task
                if os.path.exists(os.path.join(d, f)):
                    with open(os.path.join(mnt, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())
            for root, dirs, files in os.walk(d):
                for e in dirs + files + ["."]:
                    os.chown(os.path.join(root, e), user.uid, user.gid)
        yield "/" + name, unified
    finally:
        left = []
        for d in made:
            for root, dirs, _ in os.walk(d, topdown=False):
                for sub in dirs:
                    left.append(os.path.join(root, sub))
                    os.rmdir(os.path.join(root, sub))
            os.rmdir(d)
        assert not left, f"container cgroups left behind: {left}"


def test_delegated_cgroups_are_used(rt, delegation):
    """Where the user owns a cgroup subtree, the container gets its own cgroups there, with its
    resources (pids.max) applied; kill --all uses them; delete removes them."""
    base, unified = delegation
    if unified is None:
        pytest.skip("no cgroup2 hierarchy to delegate")

    def edit(cfg):
        cfg["linux"]["cgroupsPath"] = base + "/ctr"
        cfg["linux"]["resources"] = {"pids": {"limit": 77}}
    b = rt.spec_bundle(["sh", "-c", "sleep 1000 & sleep 1000"], edit)
    cid = rt.new_id()
    # the runtime starts in the delegated cgroup2 dir: cgroup v2 lets a process move another only
    # below a common ancestor whose cgroup.procs it may write
    p = rt("run", "-d", "--bundle", b, cid, cgroup2=unified)
    assert "not delegated" not in p.stderr
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        cg = f.read()
    assert f"pids:{base}/ctr" in cg or "pids" not in cg, cg
    assert f"0::{base}/ctr" in cg, cg
    pids = [m for m, t in _cgroup_mounts() if t == "cgroup" and m.endswith("/pids")]
    if pids:
        with open(os.path.join(pids[0], base.lstrip("/"), "ctr", "pids.max")) as f:
            assert f.read().strip() == "77"
    rt("kill", "--all", cid, "KILL")
    deadline = time.monotonic() + 10
    while not exited(pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt("delete", cid)
    assert not os.path.exists(os.path.join(unified, "ctr"))


# ---------------------------------------------------------------------------------------- terminal
def _read_lines(master, n, timeout=10):
    """N lines from a pty master (CRs dropped)."""
    import select
    buf = b""
    deadline = time.monotonic() + timeout
    while buf.replace(b"\r", b"").count(b"\n") < n:
        assert time.monotonic() < deadline, buf
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").replace("\r", "").split("\n")


@pytest.fixture
def console(rt):
    """A console socket the user's runtime can connect to; yields (path, Receiver)."""
    sock_dir = os.path.join(rt.user.scratch, f"sock-{uuid.uuid4().hex[:8]}")
    os.mkdir(sock_dir)
    path = os.path.join(sock_dir, "console.sock")
    try:
        with Receiver(path) as r:
            os.chmod(path, 0o777)  # connect() needs write permission on the socket file
            os.chown(sock_dir, rt.user.uid, rt.user.gid)
            yield path, r
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_terminal_through_console_socket(rt, console):
    path, r = console
    b = rt.spec_bundle(["sh", "-c", "tty; cat /proc/self/uid_map; sleep 1000"],
                       lambda cfg: cfg["process"].__setitem__("terminal", True))
    cid = rt.new_id()
    rt("create", "--bundle", b, "--console-socket", path, cid)
    name, master, _ = r.receive(timeout=10)
    try:
        rt("start", cid)
        lines = _read_lines(master, 2)
        assert lines[0].startswith("/dev/pts/"), lines
        assert lines[1].split() == ["0", str(rt.user.uid), "1"], lines
    finally:
        os.close(master)


def test_exec_terminal_through_console_socket(rt, console):
    path, r = console
    b = rt.spec_bundle(["sleep", "1000"])
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b, cid)
    rt("exec", "-d", "-t", "--console-socket", path, cid, "sh", "-c", "tty; cat /proc/self/uid_map; sleep 1")
    name, master, _ = r.receive(timeout=10)
    try:
        lines = _read_lines(master, 2)
        assert lines[0].startswith("/dev/pts/"), lines
        assert lines[1].split() == ["0", str(rt.user.uid), "1"], lines
    finally:
        os.close(master)
