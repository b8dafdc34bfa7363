"""Every config of the engine corpus (tests/data/engine-configs/) runs: create, start, state,
kill, delete, with runc and with pyrunc, on this machine (as root). Shared/slave volumes also
carry mounts as the kubelet's mountPropagation expects, the same with both. And the rest of the
engine-sent family (FAMILY: values engines send in other setups) runs with pyrunc wherever with runc.

What is replaced, and why (everything else is the engine's config as captured):
  - root.path: a copy of the busybox rootfs (the engine's image layers are gone), chowned to the
    user namespace's root when the config maps one, as the engine does;
  - process.args: /bin/sleep (the process must outlive `state`); process.terminal: false (no
    console socket here);
  - hooks: dropped (Docker's libnetwork-setkey hook calls back into the dockerd that made it);
  - linux.cgroupsPath: a unique path under this session's parent (removed at the end);
  - namespace paths: the namespaces of a holder process this module starts (the other container
    or netns the engine named is gone);
  - bind mount sources under the engine's private root: a fresh file or directory, as recorded at
    capture time in <engine>/_captures.json.
When runc fails on a config here (this machine's limits: no CAP_SYS_RESOURCE for negative
oomScoreAdj or for raising rlimits past the hard limit), pyrunc must fail too, and the test is
skipped with both errors as the reason."""
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import RUNTIMES, ROOTFS, Runtime, rmdir_tree, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "engine-configs"))
import corpus  # noqa: E402

SESSION = uuid.uuid4().hex[:8]
CGROUP_PARENT = f"pyrunc-corpus-{SESSION}"
ENTRIES = corpus.entries()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    # not under pytest's 0700 tmp dirs: a user namespace's root (podman --uidmap) must reach the
    # rootfs and the bind mount sources
    base = tempfile.mkdtemp(prefix=f"pyrunc-corpus-{SESSION}-")
    os.chmod(base, 0o755)
    rootfs = os.path.join(base, "rootfs")
    # a private copy: runtimes make mount points (/data, /etc/myfile, ...) in the rootfs
    subprocess.run(["cp", "-a", ROOTFS, rootfs], check=True, timeout=120)
    holder = subprocess.Popen(["unshare", "--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child",
                               "sleep", "3600"], stdin=subprocess.DEVNULL)
    try:
        def child():
            try:
                with open(f"/proc/{holder.pid}/task/{holder.pid}/children") as f:
                    return f.read().split()
            except OSError:
                return None
        pid = int(wait_for(child, interval=0.05, what="the namespace holder")[0])
        yield {"base": base, "rootfs": rootfs, "holder": pid}
    finally:
        holder.kill()
        holder.wait(timeout=20)
        _remove_cgroups(CGROUP_PARENT)
        _umount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def _remove_cgroups(rel):
    """rmdir the session's cgroup parent, leaves first (only what this module created)."""
    deadline = time.monotonic() + 10
    for top in glob.glob(f"/sys/fs/cgroup/*/{rel}") + glob.glob(f"/sys/fs/cgroup/unified/{rel}"):
        rmdir_tree(top, deadline)


def _umount_under(path):
    """Unmount PATH and what is mounted below it, deepest first (only this module's dirs)."""
    with open("/proc/self/mountinfo") as f:
        mps = {line.split()[4] for line in f}
    for mp in sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL, timeout=20)


def _host_has_device(kind, major, minor):
    return os.path.exists(f"/sys/dev/{'block' if kind == 'b' else 'char'}/{major}:{minor}")


def prepare(cid, engine, scenario, cfg, env):
    """The corpus config made runnable here (see the module docstring); None + reason to skip."""
    cfg = copy.deepcopy(cfg)
    for d in (cfg.get("linux") or {}).get("devices") or []:
        if d.get("type") in ("c", "b", "u") and not _host_has_device(d["type"], d.get("major"), d.get("minor")):
            return None, f"device {d['path']} ({d['major']}:{d['minor']}) does not exist on this host"
    blk = ((cfg.get("linux") or {}).get("resources") or {}).get("blockIO") or {}
    for k, v in blk.items():
        if isinstance(v, list):
            for e in v:
                if not _host_has_device("b", e["major"], e["minor"]):
                    return None, f"block device {e['major']}:{e['minor']} does not exist on this host"
    engine_root = os.path.join(env["base"], cid)
    kinds = corpus.captures(engine)["scenarios"].get(scenario, {}).get("sources", {})
    for m in cfg.get("mounts") or []:
        src = m.get("source") or ""
        if "@ENGINE_ROOT@" in src:
            real = src.replace("@ENGINE_ROOT@", engine_root)
            if kinds.get(src) == "file":
                os.makedirs(os.path.dirname(real), exist_ok=True)
                open(real, "a").close()
            else:
                os.makedirs(real, exist_ok=True)
            m["source"] = real
    for dest, src, opt in _shared_volumes(cfg):
        # the engine's check (Docker, CRI): the source of a shared/slave volume is on a shared
        # mount; here it becomes one of its own (unmounted with everything under it afterwards)
        subprocess.run(["mount", "--bind", src, src], check=True, timeout=20)
        subprocess.run(["mount", "--make-shared", src], check=True, timeout=20)
        for d in ("host-mnt", "ctr-mnt"):
            os.makedirs(os.path.join(src, d), exist_ok=True)
    text = json.dumps(cfg).replace("@ENGINE_ROOT@", engine_root).replace("@ROOTFS@", env["rootfs"])
    cfg = json.loads(text)
    cfg["root"]["path"] = env["rootfs"]
    linux = cfg.get("linux") or {}
    if linux.get("uidMappings"):
        # the engine chowns the image for the user namespace (podman --uidmap): so do we, once
        uid = next(m["hostID"] for m in linux["uidMappings"] if m["containerID"] == 0)
        gid = next(m["hostID"] for m in linux["gidMappings"] if m["containerID"] == 0)
        path = os.path.join(env["base"], f"rootfs-{uid}-{gid}")
        if not os.path.isdir(path):
            subprocess.run(["cp", "-a", env["rootfs"], path + ".tmp"], check=True, timeout=120)
            subprocess.run(["chown", "-R", "-h", f"{uid}:{gid}", path + ".tmp"], check=True, timeout=120)
            os.rename(path + ".tmp", path)
        cfg["root"]["path"] = path
    p = cfg["process"]
    p["args"] = ["/bin/sleep", "60"]
    p["terminal"] = False
    p.pop("consoleSize", None)
    cfg.pop("hooks", None)
    linux = cfg.setdefault("linux", {})
    linux["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
    for ns in linux.get("namespaces") or []:
        if ns.get("path"):
            ns["path"] = f"/proc/{env['holder']}/ns/{corpus.NSFILE[ns['type']]}"
    return cfg, None


_PROPAGATING = ("shared", "rshared", "slave", "rslave")


def _mountpoints(pid):
    with open(f"/proc/{pid}/mountinfo") as f:
        return {line.split()[4] for line in f}


def _shared_volumes(cfg):
    """[(destination, source, option)] of the bind mounts that ask for shared/slave propagation."""
    out = []
    for m in cfg.get("mounts") or []:
        opts = m.get("options") or []
        prop = [o for o in opts if o in _PROPAGATING]
        if prop and ("bind" in opts or "rbind" in opts or m.get("type") == "bind"):
            out.append((m["destination"], m["source"], prop[-1]))
    return out


def _propagation(pid, volumes):
    """For each shared/slave volume: does a mount made on the host under its source show in the
    container, and one made in the container show on the host (the mountPropagation contract)?"""
    out = {}
    for dest, src, opt in volumes:
        hm, cm = os.path.join(src, "host-mnt"), os.path.join(src, "ctr-mnt")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "corpus-host", hm], check=True, timeout=20)
        subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "mount", "-t", "tmpfs", "-o", "size=64k",
                        "corpus-ctr", os.path.join(dest, "ctr-mnt")], check=True, timeout=20)
        with open("/proc/self/mountinfo") as f:
            host = {line.split()[4] for line in f}
        out[(dest, opt)] = {"host_to_container": os.path.join(dest, "host-mnt") in _mountpoints(pid),
                            "container_to_host": os.path.realpath(cm) in host}
    return out


def lifecycle(rt, cfg, cid, seen):
    """create, start, state (running), kill, state (stopped), delete; None or the failure. SEEN
    gets what propagates through the shared/slave volumes while it runs."""
    b = rt.bundle(cfg)
    p = rt("create", "--bundle", b, cid, timeout=60)
    if p.returncode:
        return f"create: {p.stderr.strip()[-400:]}"
    p = rt("start", cid, timeout=30)
    if p.returncode:
        return f"start: {p.stderr.strip()[-400:]}"
    st = rt.state(cid)
    assert st["status"] == "running", st
    seen.update(_propagation(st["pid"], _shared_volumes(cfg)))
    rt("kill", cid, "KILL", check=True)
    wait_for(lambda: rt.state(cid)["status"] == "stopped", what=f"{rt.name} {cid} to stop")
    rt("delete", cid, check=True)
    assert rt("state", cid).returncode != 0
    return None


@pytest.mark.parametrize("path", [p for _, p in ENTRIES], ids=[i for i, _ in ENTRIES])
def test_runs(path, env, tmp_path):
    ident = os.path.relpath(path, corpus.CORPUS)[:-len(".json")]
    engine, scenario = ident.split("/")
    raw = corpus.load(path)
    results = {}
    props = {"runc": {}, "pyrunc": {}}
    rts = []
    try:
        for name in ("runc", "pyrunc"):
            rt = Runtime(name, RUNTIMES[name], str(tmp_path))
            rts.append(rt)
            cid = rt.new_id(f"corpus-{name}")
            cfg, skip = prepare(cid, engine, scenario, raw, env)
            if skip:
                pytest.skip(skip)
            results[name] = lifecycle(rt, cfg, cid, props[name])
    finally:
        for rt in rts:
            left = rt.cleanup()
            for cid in rt.ids:
                _umount_under(os.path.join(env["base"], cid))
                shutil.rmtree(os.path.join(env["base"], cid), ignore_errors=True)
            assert not left, f"{rt.name}: state left behind: {left}"
    if results["runc"] is None:
        assert results["pyrunc"] is None, f"runc runs {ident}, pyrunc does not: {results['pyrunc']}"
        assert len(props["runc"]) == len(_shared_volumes(raw)), props
        for (dest, opt), r in props["runc"].items():
            p = props["pyrunc"].get((dest, opt))
            assert p == r, f"{dest} ({opt}): runc {r}, pyrunc {p}"
            # what the kubelet relies on (HostToContainer, Bidirectional): mounts reach back to
            # the host only when the root is shared too (the default root propagation is rslave)
            root_shared = (raw.get("linux") or {}).get("rootfsPropagation") in ("shared", "rshared")
            assert r["host_to_container"], (dest, opt, r)
            assert r["container_to_host"] == (opt in ("shared", "rshared") and root_shared), (dest, opt, r)
    elif results["pyrunc"] is not None:
        pytest.skip(f"runc fails too on this machine: runc: {results['runc']} | pyrunc: {results['pyrunc']}")


# -- the rest of the engine-sent family, beside the corpus: values engines send in some setups,
# each run with runc and pyrunc (busybox config + the change); pyrunc must run what runc runs.
def _res(k, v):
    return lambda c: c["linux"].setdefault("resources", {}).__setitem__(k, v)


def _mount(**m):
    return lambda c: c["mounts"].append(dict({"destination": "/mnt", "source": "/tmp"}, **m))


def _set(where, k, v):
    return lambda c: (c if where is None else c[where]).__setitem__(k, v)


FAMILY = {
    "devices-type-a": _res("devices", [{"allow": False, "type": "a", "access": "rwm"},
                                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]),
    "devices-no-type": _res("devices", [{"allow": False, "access": "rwm"}]),
    "memory-swap-minus-1": _res("memory", {"limit": 67108864, "swap": -1}),
    "memory-limit-minus-1": _res("memory", {"limit": -1}),
    "cpu-quota-minus-1": _res("cpu", {"quota": -1, "period": 100000}),
    "cpu-all-zero": _res("cpu", {"quota": 0, "period": 0, "shares": 0}),
    "unified-empty": _res("unified", {}),
    "pids-minus-1": _res("pids", {"limit": -1}),
    "seccomp-kill-process": lambda c: c["linux"].__setitem__("seccomp", {
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    "seccomp-errnoret-on-allow": lambda c: c["linux"].__setitem__("seccomp", {
        "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_LOG", "errnoRet": 5}]}),
    "seccomp-unknown-syscall": lambda c: c["linux"].__setitem__("seccomp", {
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call", "acct"], "action": "SCMP_ACT_ERRNO"}]}),
    "mount-bind-empty-type": _mount(type="", options=["rbind", "ro"]),
    "mount-bind-no-type": _mount(options=["bind"]),
    "mount-bind-type-none": _mount(type="none", options=["rbind"]),
    "mount-rro": _mount(type="bind", options=["rbind", "rro"]),
    "mount-selinux-z": _mount(type="bind", options=["rbind", "z"]),
    "mount-podman-U": _mount(type="bind", options=["rbind", "U"]),
    "mount-copy-symlink": _mount(type="bind", options=["rbind", "copy-symlink"]),
    "mount-tmpcopyup": lambda c: c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                                                     "options": ["tmpcopyup"]}),
    "mount-tmpfs-data": lambda c: c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                                                      "options": ["nr_inodes=1k", "uid=0", "gid=0", "huge=never"]}),
    "oom-score-adj-1000": _set("process", "oomScoreAdj", 1000),
    "annotations": _set(None, "annotations", {"org.opencontainers.image.stopSignal": "SIGTERM",
                                              "io.kubernetes.cri.sandbox-id": "x", "run.oci.keep_original_groups": "1"}),
    "capabilities-empty": _set("process", "capabilities", {}),
    "capability-unknown": lambda c: c["process"]["capabilities"]["bounding"].append("CAP_NO_SUCH"),
    "user-umask": lambda c: c["process"]["user"].__setitem__("umask", 0o22),
    "masked-path-missing": lambda c: c["linux"].__setitem__("maskedPaths", ["/proc/no-such-thing"]),
    "device-no-filemode-uid-gid": lambda c: c["linux"].__setitem__("devices", [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]),
    "hooks-empty-lists": _set(None, "hooks", {"prestart": [], "createRuntime": []}),
}


@pytest.mark.parametrize("change", list(FAMILY.values()), ids=list(FAMILY))
def test_engine_family(change, tmp_path):
    from conftest import base_config
    cfg = base_config(("true",))
    cfg["process"]["terminal"] = False
    change(cfg)
    out = {}
    for name in ("runc", "pyrunc"):
        rt = Runtime(name, RUNTIMES[name], str(tmp_path))
        try:
            out[name] = rt.run(copy.deepcopy(cfg), timeout=60)
        finally:
            left = rt.cleanup()
            assert not left, left
    if out["runc"].returncode == 0:
        assert out["pyrunc"].returncode == 0, out["pyrunc"].stderr
    else:
        pytest.skip(f"runc refuses it here: {out['runc'].stderr.strip()[-300:]}")
