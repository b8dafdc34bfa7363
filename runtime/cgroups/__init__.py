"""Container cgroups: placement, limits, freezing, killing and stats (cgroup v1, v2 and hybrid).

Imported on every `create`, so this module only needs `os`; the resource writers (v1.py, v2.py),
the device eBPF program and the cgroupfs mount helper are imported lazily.

Layout of a manager: `paths` maps a controller name to the container's cgroup directory, as
runc's state.json does ("cpu", "memory", ..., "name=systemd"); the key "" is the cgroup2
directory (pure v2, or the unified hierarchy of a hybrid host).
"""
import errno
import os
import sys
import time

from runtime.errors import Error

# Controllers that can appear in the super options of a v1 "cgroup" mount.
V1_CONTROLLERS = frozenset(
    "cpu cpuacct cpuset memory devices freezer net_cls net_prio blkio perf_event hugetlb pids rdma misc".split())

_cache = {}


def _mountinfo():
    """Cgroup mounts as (mountpoint, fstype, root, controllers tuple), first mount wins per hierarchy."""
    if "mounts" in _cache:
        return _cache["mounts"]
    mounts, seen = [], set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            root, mnt = _unescape(fields[3]), _unescape(fields[4])
            if rfields[0] == "cgroup2":
                ctrls = ()
            else:
                ctrls = tuple(o for o in rfields[2].split(",") if o in V1_CONTROLLERS or o.startswith("name="))
                if not ctrls:
                    continue
            key = (rfields[0], ctrls)
            if key in seen:  # the same hierarchy mounted twice: keep the first (host) one
                continue
            seen.add(key)
            mounts.append((mnt, rfields[0], root, ctrls))
    _cache["mounts"] = mounts
    return mounts


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as octal
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _own_cgroups():
    """/proc/self/cgroup as {frozenset(controllers) or frozenset() for v2: path}."""
    if "own" not in _cache:
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    own[frozenset(c for c in parts[1].split(",") if c)] = parts[2]
        _cache["own"] = own
    return _cache["own"]


def mode():
    """"v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 mount such as /sys/fs/cgroup/unified)."""
    if "mode" not in _cache:
        mounts = _mountinfo()
        if any(m[0] == "/sys/fs/cgroup" and m[1] == "cgroup2" for m in mounts) or \
                not any(m[1] == "cgroup" for m in mounts):
            _cache["mode"] = "v2"
        elif any(m[1] == "cgroup2" for m in mounts):
            _cache["mode"] = "hybrid"
        else:
            _cache["mode"] = "v1"
    return _cache["mode"]


def _hierarchy_dir(mnt, root, own, cgpath):
    """Directory for cgroupsPath `cgpath` in the hierarchy mounted at mnt (mount root `root`)."""
    if os.path.isabs(cgpath):
        base = "/"
    else:
        # relative: below the cgroup this process is in, as runc does
        base = own if own is not None else "/"
    full = os.path.normpath(os.path.join(base, cgpath))
    # translate the cgroup path (relative to the hierarchy root) into one below this mount
    if root != "/" and (full == root or full.startswith(root.rstrip("/") + "/")):
        full = full[len(root.rstrip("/")):] or "/"
    return os.path.normpath(mnt + "/" + full.lstrip("/")).rstrip("/")


def new_manager(container_id, linux, _layout=None):
    """Manager for a new container from config["linux"]; `_layout` (tests) = {"mode", "root"} for a
    v2 manager on an arbitrary cgroup2 directory."""
    linux = linux or {}
    cgpath = linux.get("cgroupsPath") or ""
    if ":" in cgpath:
        raise Error(f"systemd cgroup driver is not available: cgroupsPath {cgpath!r} is in slice:prefix:name form")
    if not cgpath:
        cgpath = container_id  # runc 1.1 uses the container id below our own cgroup
    if "\x00" in cgpath or ".." in cgpath.split("/"):
        raise Error(f"invalid cgroupsPath {cgpath!r}")
    paths = {}
    if _layout:
        m = _layout["mode"]
        paths[""] = os.path.normpath(_layout["root"] + "/" + cgpath.lstrip("/"))
        return Manager(m, paths, _to_create(paths), linux.get("devices") or [], roots={"": _layout["root"]})
    m = mode()
    own = _own_cgroups()
    roots = {}
    for mnt, fstype, root, ctrls in _mountinfo():
        if fstype == "cgroup2":
            if m == "v1":
                continue
            if m == "v2" and mnt != "/sys/fs/cgroup" and any(x[0] == "/sys/fs/cgroup" for x in _mountinfo()):
                continue
            if "" in paths:
                continue
            paths[""] = _hierarchy_dir(mnt, root, own.get(frozenset()), cgpath)
            roots[""] = mnt
        else:
            if m == "v2":
                continue
            d = _hierarchy_dir(mnt, root, own.get(frozenset(ctrls)), cgpath)
            for c in ctrls:
                paths.setdefault(c, d)
                roots.setdefault(c, mnt)
    if not paths:
        raise Error("no cgroup hierarchy is mounted (see /proc/self/mountinfo)")
    return Manager(m, paths, _to_create(paths), linux.get("devices") or [], roots=roots)


def _to_create(paths):
    """Directories create() is going to make: those missing now. Recorded up front because the
    state is saved (to_dict) before create(), and destroy() must only remove what we made."""
    out = []
    for d in sorted(set(paths.values())):
        p = d
        while not os.path.isdir(p) and p not in out and p != "/":
            out.append(p)
            p = os.path.dirname(p)
    return out


def load_manager(saved):
    """Manager from Manager.to_dict() (saved in state.json)."""
    return Manager(saved["mode"], dict(saved["paths"]), list(saved.get("created", [])),
                   saved.get("devices") or [], roots=dict(saved.get("roots", {})))


def _write(path, value):
    """Write one cgroup file; errors name the file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise Error(f"cannot write {value!r} to {path}: {os.strerror(e.errno)}") from None


def _read(path):
    with open(path) as f:
        return f.read()


class Manager:
    """The cgroups of one container, in every mounted hierarchy."""

    def __init__(self, mode_, paths, created, devices, roots=None):
        self.mode = mode_
        self._paths = paths
        self.created = created      # directories create() made, removed by destroy()
        self.devices = devices      # linux.devices, allowed in the device cgroup like runc does
        self.roots = roots or {}    # hierarchy mountpoints, to know where a parent walk stops

    # ---- bookkeeping ----
    def to_dict(self):
        return {"mode": self.mode, "paths": dict(self._paths), "created": list(self.created),
                "devices": list(self.devices), "roots": dict(self.roots)}

    def paths(self):
        return dict(self._paths)

    def _dirs(self):
        return sorted(set(self._paths.values()))

    def _v2dir(self):
        """The cgroup2 directory, if any."""
        return self._paths.get("")

    def _v1(self, ctrl):
        """v1 directory of a controller, or None on pure v2 / when not mounted."""
        return None if self.mode == "v2" else self._paths.get(ctrl)

    # ---- lifecycle ----
    def create(self):
        """mkdir the container cgroup in every hierarchy (idempotent)."""
        for d in self._dirs():
            missing = []
            p = d
            while not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            for p in reversed(missing):
                try:
                    os.mkdir(p, 0o755)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise Error(f"cannot create cgroup {p}: {os.strerror(e.errno)}") from None
                if p not in self.created:
                    self.created.append(p)
                if os.path.exists(os.path.join(p, "cpuset.cpus")) and self.mode != "v2":
                    _cpuset_inherit(p)

    def apply(self, pid):
        """Move pid into the container cgroup of every hierarchy (but those it joins itself)."""
        joined = getattr(self, "_self_joined", ())
        for d in self._dirs():
            if d in joined:
                continue
            if os.path.exists(os.path.join(d, "cpuset.cpus")) and self.mode != "v2":
                _cpuset_inherit(d)  # v1 refuses tasks in a cpuset without cpus/mems
            _write(os.path.join(d, "cgroup.procs"), pid)

    def self_join(self):
        """The v1 `tasks` files a new single-threaded init writes "0" into to join by itself;
        apply() then skips those hierarchies.

        Why: a cgroup.procs write takes the kernel's global cgroup_threadgroup_rwsem for writing,
        which after a quiet spell waits for an RCU grace period (5-20 ms here, the costliest
        step of create); a task moving itself through `tasks` does not take it. cgroup2 has no
        such way across domains (cgroup.threads stays within one): those still go by apply()."""
        if self.mode == "v2":
            return []
        dirs = sorted({d for k, d in self._paths.items() if k})
        for d in dirs:
            if os.path.exists(os.path.join(d, "cpuset.cpus")):
                _cpuset_inherit(d)  # v1 refuses tasks in a cpuset without cpus/mems
        self._self_joined = frozenset(dirs)
        return [os.path.join(d, "tasks") for d in dirs]

    def v2_dir(self):
        """The cgroup2 directory, for a child born in it (linux.clone_into_cgroup)."""
        return self._paths.get("")

    def mark_joined(self, d):
        """D is joined already (a child born there): apply() skips it."""
        self._self_joined = frozenset(getattr(self, "_self_joined", ())) | {d}

    def destroy(self):
        """Remove the directories create() made (and any sub-cgroups in them); tolerate missing ones."""
        leaves = set(self._dirs())
        for d in sorted(set(self.created), key=lambda p: -p.count("/")):
            if d in leaves:
                _rmtree_cgroup(d)
            else:
                # a parent we made may since hold another container's cgroup: leave it then
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.created = []

    def pids(self):
        """All pids in the container's cgroup, recursively."""
        d = self._v1("pids") or self._v1("freezer") or self._v1("memory") or self._v2dir() or self._dirs()[0]
        out = []
        for root, _dirs, _files in os.walk(d):
            try:
                out.extend(int(x) for x in _read(os.path.join(root, "cgroup.procs")).split())
            except (FileNotFoundError, ProcessLookupError):
                continue
        return sorted(set(out))

    def kill_all(self, sig):
        """Signal every process; SIGKILL uses cgroup.kill when the kernel has it (no fork race)."""
        d2 = self._v2dir()
        if sig == 9 and d2 and os.path.exists(os.path.join(d2, "cgroup.kill")):
            _write(os.path.join(d2, "cgroup.kill"), 1)
            return
        if not self.pids():
            return  # nobody to signal, and nobody left to fork (the usual delete of a stopped one)
        # freeze first so no process can fork a child we would miss
        can_freeze = self._freezer_available()
        was_frozen = can_freeze and self.frozen()
        if can_freeze and not was_frozen:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and not was_frozen:
                self.thaw()

    # ---- freezer ----
    def _freezer_available(self):
        d = self._v1("freezer")
        if d:
            return True
        d2 = self._v2dir()
        return bool(d2 and os.path.exists(os.path.join(d2, "cgroup.freeze")))

    def _freeze_file(self):
        d = self._v1("freezer")
        if d:
            return d, "v1"
        d2 = self._v2dir()
        if d2 and os.path.exists(os.path.join(d2, "cgroup.freeze")):
            return d2, "v2"
        raise Error("freezer cgroup controller is not available")

    def freeze(self):
        self._set_frozen(True)

    def thaw(self):
        self._set_frozen(False)

    def _set_frozen(self, on):
        d, kind = self._freeze_file()
        deadline = time.monotonic() + 10
        while True:
            if kind == "v1":
                # writing FROZEN again nudges tasks that were forking while we froze
                _write(os.path.join(d, "freezer.state"), "FROZEN" if on else "THAWED")
                done = _read(os.path.join(d, "freezer.state")).strip() == ("FROZEN" if on else "THAWED")
            else:
                _write(os.path.join(d, "cgroup.freeze"), 1 if on else 0)
                done = _events(d).get("frozen") == (1 if on else 0)
            if done:
                return
            if time.monotonic() > deadline:
                if on:  # do not leave a half-frozen container behind
                    self._set_frozen(False)
                raise Error(f"cannot {'freeze' if on else 'thaw'} cgroup {d}: timed out")
            time.sleep(0.01)

    def frozen(self):
        try:
            d, kind = self._freeze_file()
        except Error:
            return False
        try:
            if kind == "v1":
                return _read(os.path.join(d, "freezer.state")).strip() == "FROZEN"
            return _read(os.path.join(d, "cgroup.freeze")).strip() == "1"
        except FileNotFoundError:
            return False

    # ---- resources and stats ----
    def set(self, resources):
        """Apply linux.resources (or an `update`)."""
        resources = resources or {}
        if self.mode == "v2":
            from runtime.cgroups import v2
            v2.set_resources(self, resources)
        else:
            from runtime.cgroups import v1
            v1.set_resources(self, resources)

    def stats(self):
        """runc `events --stats` data."""
        if self.mode == "v2":
            from runtime.cgroups import v2
            return v2.stats(self)
        from runtime.cgroups import v1
        return v1.stats(self)

    def oom_count(self):
        try:
            d = self._v1("memory")
            if d:
                return _kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)
            d2 = self._v2dir()
            if d2 and self.mode == "v2":
                return _kv(os.path.join(d2, "memory.events")).get("oom_kill", 0)
        except FileNotFoundError:
            pass
        return 0


def _kv(path):
    """A flat-keyed cgroup file ("key value" lines) as {key: int}."""
    out = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _events(d):
    try:
        return _kv(os.path.join(d, "cgroup.events"))
    except FileNotFoundError:
        return {}


def _cpuset_inherit(d):
    """A fresh v1 cpuset has empty cpus/mems; copy them from the nearest parent that has them."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        f = os.path.join(d, name)
        if _read(f).strip():
            continue
        chain, p = [], d
        while True:
            chain.append(p)
            p = os.path.dirname(p)
            if not os.path.exists(os.path.join(p, name)):
                return
            v = _read(os.path.join(p, name)).strip()
            if v:
                break
        for c in reversed(chain):  # fill every empty level top-down
            if not _read(os.path.join(c, name)).strip():
                _write(os.path.join(c, name), v)


def _rmtree_cgroup(d):
    """rmdir a cgroup and its children (deepest first), retrying while it drains (EBUSY)."""
    if not os.path.isdir(d):
        return
    for root, dirs, _files in os.walk(d, topdown=False):
        for sub in dirs:
            _rmdir_retry(os.path.join(root, sub))
    _rmdir_retry(d)


def _rmdir_retry(p):
    delay = 0.01
    for attempt in range(8):
        try:
            os.rmdir(p)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == 7:
                raise Error(f"cannot remove cgroup {p}: {os.strerror(e.errno)}") from None
            time.sleep(delay)
            delay *= 2


def warn(msg):
    """Non-fatal notice on stderr, where runc only logs a warning."""
    print(f"pyrunc: warning: {msg}", file=sys.stderr)


def mount_cgroupfs(dest, manager, readonly, cgroupns):
    """Mount the container's cgroups at dest (inside the rootfs, in the container's mount ns)."""
    from runtime.cgroups import mount
    mount.mount_cgroupfs(dest, manager, readonly, cgroupns)
