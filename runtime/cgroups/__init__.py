"""Container cgroups: one manager interface, three host layouts (cgroup v1, v2 and hybrid).

    Manager               create, place, set, freeze/thaw/frozen, kill_all, pids, stats, destroy
      V1Manager           one directory per v1 controller
        HybridManager     ... plus the cgroup2 directory of /sys/fs/cgroup/unified
      V2Manager           one cgroup2 directory
      (rootless variants: runtime/cgroups/rootless.py)
    Placement             how one process enters them (Manager.place: self-join, CLONE_INTO_CGROUP)
    CgroupError           an Error that names the config field it came from

Imported on every `create` (and kill --all, delete), so this module only needs posix and the
path helpers of runtime/hotpath.py (not os: hot path, see there); the resource
writers (v1.py, v2.py), the stats readers (stats.py), the device eBPF program and the cgroupfs
mount helper are imported lazily.

Layout of a manager: `paths` maps a controller name to the container's cgroup directory, as
runc's state.json does ("cpu", "memory", ..., "name=systemd"); the key "" is the cgroup2
directory (pure v2, or the unified hierarchy of a hybrid host). A manager only acts on the
directories it is given, so tests hand it a tmp dir standing in for /sys/fs/cgroup.
"""
import errno
import posix
import time

from runtime.errors import Error, describe, why
from runtime.hotpath import dirname, exists, isdir, ismount, join, normpath, walk_dirs

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
    if cgpath.startswith("/"):
        base = "/"
    else:
        # relative: below the cgroup this process is in, as runc does
        base = own if own is not None else "/"
    full = normpath(join(base, cgpath))
    # translate the cgroup path (relative to the hierarchy root) into one below this mount
    if root != "/" and (full == root or full.startswith(root.rstrip("/") + "/")):
        full = full[len(root.rstrip("/")):] or "/"
    return normpath(mnt + "/" + full.lstrip("/")).rstrip("/")


def new_manager(container_id, linux, _layout=None):
    """Manager for a new container from config["linux"]; `_layout` (tests) = {"mode", "root"} for a
    v2 manager on an arbitrary cgroup2 directory."""
    linux = linux or {}
    cgpath = linux.get("cgroupsPath") or ""
    if ":" in cgpath:
        raise CgroupError(f"systemd cgroup driver is not available: cgroupsPath {cgpath!r} is in "
                          "slice:prefix:name form", field="cgroupsPath")
    if not cgpath:
        cgpath = container_id  # runc 1.1 uses the container id below our own cgroup
    if "\x00" in cgpath or ".." in cgpath.split("/"):
        raise CgroupError(f"invalid cgroupsPath {cgpath!r}", field="cgroupsPath")
    paths = {}
    if _layout:
        paths[""] = normpath(_layout["root"] + "/" + cgpath.lstrip("/"))
        return _CLASSES[_layout["mode"]](paths, _to_create(paths), linux.get("devices") or [],
                                         roots={"": _layout["root"]})
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
    return _CLASSES[m](paths, _to_create(paths), linux.get("devices") or [], roots=roots)


def _to_create(paths):
    """Directories create() is going to make: those missing now. Recorded up front because the
    state is saved (to_dict) before create(), and destroy() must only remove what we made."""
    out = []
    for d in sorted(set(paths.values())):
        p = d
        while not isdir(p) and p not in out and p != "/":
            out.append(p)
            p = dirname(p)
    return out


def load_manager(saved):
    """Manager from Manager.to_dict() (saved in state.json)."""
    return _CLASSES[saved["mode"]](saved["paths"], saved.get("created", []), saved.get("devices") or [],
                                   roots=saved.get("roots"))


# ---------------------------------------------------------------- errors and file access
class CgroupError(Error):
    """A cgroup step failed. `field` is the config field it came from ("memory.limit" for
    linux.resources.memory.limit, "cgroupsPath", ...) or None, `path` the cgroup file or
    directory, `errno` the kernel's errno (None when the check was ours), `kernel` the value the
    kernel kept instead of ours (cpu.shares clamps). The message is the one-line user error."""

    def __init__(self, msg, field=None, path=None, errno=None, kernel=None):
        super().__init__(msg)
        self.field, self.path, self.errno, self.kernel = field, path, errno, kernel


def _write(path, value, field=None):
    """Write one cgroup file; errors name the field (when known) and the file."""
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
        try:
            posix.write(fd, str(value).encode())
        finally:
            posix.close(fd)
    except OSError as e:
        where = f"linux.resources.{field}: " if field else ""
        raise CgroupError(f"{where}cannot write {value!r} to {path}: {why(e)}",
                          field=field, path=path, errno=e.errno) from None


def _read(path):
    with open(path) as f:
        return f.read()


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
        return _kv(join(d, "cgroup.events"))
    except FileNotFoundError:
        return {}


def warn(msg):
    """Non-fatal notice: a warning line in the log (--log FILE when given, else stderr), as runc
    logs it. Never a bare print to stderr: under an engine (containerd's shim, conmon) the
    runtime's stderr at create is the container's own, and the line would land in its output."""
    from runtime import log
    log.warning(msg)


# ---------------------------------------------------------------- placement
class Placement:
    """How one process enters the container's cgroups; made by Manager.place, which chooses.

    The fast way is for a new process that still sees the host's cgroup files (not in a user
    namespace, not rootless): it is born in its cgroup2 directory (clone3 CLONE_INTO_CGROUP, in
    spawn) and joins its v1 hierarchies itself by writing "0" to their `tasks` files (join, in
    the child, before it leaves the host's mount namespace). Why: a cgroup.procs write takes the
    kernel's global cgroup_threadgroup_rwsem for writing, which after a quiet spell waits for an
    RCU grace period (5-20 ms here, the costliest step of create); a task moving itself through
    `tasks` does not take it, nor does a child born in its cgroup. cgroup2 has no self-join
    across domains (cgroup.threads stays within one), hence the clone3 there.
    finish(pid), in the parent, moves the process by cgroup.procs into whatever is left."""

    __slots__ = ("_mgr", "tasks", "_clone_dir", "_joined")

    def __init__(self, mgr, tasks=(), clone_dir=None, joined=()):
        self._mgr = mgr
        self.tasks = list(tasks)      # v1 `tasks` files the child writes "0" into (join)
        self._clone_dir = clone_dir   # cgroup2 directory the child is born in (spawn)
        self._joined = set(joined)    # directories finish() skips

    def spawn(self, flags=0, fork=None):
        """Fork (fork(), or clone(flags) when fork is None) with the child born in the cgroup2
        directory when the kernel lets it; returns 0 in the child, its pid in the parent."""
        from runtime import linux as L  # loaded already by every caller
        d = self._clone_dir
        if d:
            try:
                fd = posix.open(d, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
            except OSError:
                fd = -1
            if fd >= 0:
                child = -1
                try:
                    child = L.clone_into_cgroup(flags, fd)
                except OSError:
                    child = -1  # an older kernel, a refusing cgroup: finish() will say why
                finally:
                    posix.close(fd)
                if child > 0 and _killed_at_birth(child):
                    # Kernel quirk (seen on 6.18): a child born by CLONE_INTO_CGROUP in a cgroup
                    # that was once killed through cgroup.kill (or from a parent living in one) is
                    # SIGKILLed by the kernel right away: the fork compares the kill counter of
                    # the parent's cgroup with the target's. It never ran: reap it, and make the
                    # process the ordinary way (finish() then moves it by cgroup.procs).
                    _reap(child)
                    child = -1
                if child > 0:
                    self._joined.add(d)
                if child >= 0:
                    return child
        if fork is not None:
            return fork()
        try:
            return L.clone(flags)
        except OSError as e:  # the new namespaces are linux.namespaces' (EPERM, ENOSPC, EINVAL)
            raise Error(f"linux.namespaces: cannot create the container's namespaces: "
                        f"{describe(e)}") from None

    def join(self):
        """In the new process: join the v1 hierarchies by writing "0" to their `tasks` files.
        Once: the process's children (the init of an intermediate) are born there."""
        for path in self.tasks:
            try:
                fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
                try:
                    posix.write(fd, b"0")
                finally:
                    posix.close(fd)
            except OSError as e:
                raise CgroupError(f"cannot join cgroup: cannot write 0 to {path}: {why(e)}",
                                  path=path, errno=e.errno) from None
        self.tasks = []

    def finish(self, pid):
        """In the parent: move PID by cgroup.procs into every directory it did not join itself."""
        self._mgr._enter(pid, self._joined)


def _killed_at_birth(pid):
    """Whether our just-cloned child PID is already dead or has a SIGKILL pending: the kernel
    queues the cgroup.kill SIGKILL inside clone3, before the call returns to us."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read(4096)
    except OSError:
        return False  # our child is readable until reaped: this is no child of ours
    for line in text.split(b"\n"):
        key, _, value = line.partition(b":")
        if key == b"State" and value.strip()[:1] in (b"Z", b"X"):
            # dead already: of the kernel's SIGKILL, or done (an intermediate process can send
            # the init's pid and exit before we look): only the first is a death at birth
            try:
                info = posix.waitid(posix.P_PID, pid, posix.WEXITED | posix.WNOHANG | posix.WNOWAIT)
            except ChildProcessError:
                return False
            return info is not None and info.si_code == posix.CLD_KILLED and info.si_status == 9
        if key in (b"SigPnd", b"ShdPnd"):
            try:
                if int(value.strip(), 16) & (1 << 8):  # SIGKILL is signal 9: bit 8
                    return True
            except ValueError:
                pass
    return False


def _reap(pid):
    """Reap our child PID, dead or dying of the kernel's SIGKILL (never signalled by us)."""
    try:
        posix.waitpid(pid, 0)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------- managers
class Manager:
    """The cgroups of one container, in every mounted hierarchy (runc's cgroups.Manager).

    A subclass says where things are (the freezer, cgroup.kill, the directory to list pids from,
    the self-join split) and how resources are written and stats read; the lifecycle is here."""

    mode = None  # "v1", "v2" or "hybrid", saved in state.json

    def __init__(self, paths, created=(), devices=(), roots=None):
        self._paths = dict(paths)
        self.created = list(created)   # directories create() made, removed by destroy()
        self.devices = list(devices)   # linux.devices: saved, but they add no device cgroup rule (v1.py)
        self.roots = dict(roots or {})  # hierarchy mountpoints, to know where a parent walk stops

    # ---- bookkeeping ----
    def to_dict(self):
        return {"mode": self.mode, "paths": dict(self._paths), "created": list(self.created),
                "devices": list(self.devices), "roots": dict(self.roots)}

    def paths(self):
        return dict(self._paths)

    def _dirs(self):
        return sorted(set(self._paths.values()))

    def exists(self):
        """Whether the container's cgroup is still there (events stops when it goes)."""
        return isdir(self._paths.get("memory") or self._dirs()[0])

    # ---- where things are (subclasses) ----
    def _pids_dir(self):
        return self._dirs()[0]

    def _freezer(self):
        """(directory, "v1" or "v2") of the freezer, or None."""
        return None

    def _kill_file(self):
        """cgroup.kill, when the kernel has it."""
        return None

    def _self_join_dirs(self):
        """The directories a new process can join by itself (v1 `tasks`)."""
        return []

    def _clone_dir(self):
        """The cgroup2 directory a new process can be born in (CLONE_INTO_CGROUP)."""
        return None

    def _prepare(self, d):
        """Before a process enters D (v1: fill an empty cpuset)."""

    # ---- lifecycle ----
    def create(self):
        """mkdir the container cgroup in every hierarchy (idempotent)."""
        for d in self._dirs():
            missing = []
            p = d
            while not isdir(p):
                missing.append(p)
                p = dirname(p)
            for p in reversed(missing):
                try:
                    posix.mkdir(p, 0o755)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise CgroupError(f"cannot create cgroup {p}: {why(e)}",
                                      path=p, errno=e.errno) from None
                if p not in self.created:
                    self.created.append(p)
                self._prepare(p)

    def place(self, pid=None, self_join=False):
        """Put a process in the container's cgroups; returns its Placement.

        place(pid): an existing process, by cgroup.procs in every hierarchy.
        place(self_join=True): for a process about to be made that can reach the host's cgroup
        files: Placement.spawn makes it (born in the cgroup2 directory), Placement.join in the
        child joins the v1 hierarchies, Placement.finish(pid) does the rest."""
        if not self_join:
            pl = Placement(self)
        else:
            dirs = self._self_join_dirs()
            for d in dirs:
                self._prepare(d)  # v1 refuses tasks in a cpuset without cpus/mems
            pl = Placement(self, [join(d, "tasks") for d in dirs], self._clone_dir(), dirs)
        if pid is not None:
            pl.finish(pid)
        return pl

    def apply(self, pid):
        """place(pid), runc's name."""
        self.place(pid)

    def _enter(self, pid, skip=()):
        for d in self._dirs():
            if d in skip:
                continue
            self._prepare(d)
            _write(join(d, "cgroup.procs"), pid)

    def destroy(self):
        """Remove the container's directories (and any sub-cgroups in them), whoever made them, as
        runc's delete does; of their parents only those create() made, and only when empty.
        Missing ones are fine; a hierarchy's root is never touched."""
        roots = set(self.roots.values())
        leaves = [d for d in self._dirs() if d not in roots and not ismount(d)]
        for d in sorted(leaves, key=lambda p: -p.count("/")):
            _rmtree_cgroup(d)
        for d in sorted(set(self.created) - set(leaves), key=lambda p: -p.count("/")):
            # a parent we made may since hold another container's cgroup: leave it then
            try:
                posix.rmdir(d)
            except OSError:
                pass
        self.created = []

    # ---- before create: what is there already ----
    def frozen_now(self):
        """Whether any of the container's existing directories is frozen (or freezing), by itself
        or through a parent: a process entering it would stop at once."""
        for c, d in self._paths.items():
            try:
                if c == "freezer":
                    if _read(join(d, "freezer.state")).strip() != "THAWED":
                        return True
                elif c == "":
                    if _events(d).get("frozen") == 1 or \
                            _read(join(d, "cgroup.freeze")).strip() == "1":
                        return True
            except OSError:
                continue  # not there (yet), or no freezer in this hierarchy
        return False

    def sub(self, args):
        """The manager of the container's sub-cgroups named by exec --cgroup ARGS, each
        "[CONTROLLER[,CONTROLLER...]:]PATH" (PATH relative to the container's cgroup; without a
        controller, one argument for every hierarchy). It never removes anything."""
        wanted = {}
        for a in args:
            parts = a.split(":")
            if len(parts) > 2:
                raise CgroupError(f"invalid --cgroup argument: {a}")
            if len(parts) == 1:
                if len(args) != 1:
                    raise CgroupError(f"invalid --cgroup argument: {a} (missing <controller>: prefix)")
                wanted = {c: a for c in self._paths}
                continue
            for ctrl in parts[0].split(","):
                if not ctrl:
                    raise CgroupError(f"invalid --cgroup argument: {a} (empty <controller> prefix)")
                if ctrl in wanted:
                    raise CgroupError(f"invalid --cgroup argument(s): controller {ctrl} specified multiple times")
                if ctrl not in self._paths:
                    raise CgroupError(f"--cgroup {a}: unknown controller {ctrl}")
                wanted[ctrl] = parts[1]
        paths = dict(self._paths)
        for ctrl, rel in wanted.items():
            base = self._paths[ctrl]
            d = normpath(join(base, rel.lstrip("/")))
            if d != base and not d.startswith(base.rstrip("/") + "/"):
                raise CgroupError(f"--cgroup: {rel} is not a sub cgroup path")
            if not isdir(d):
                raise CgroupError(f"--cgroup: cgroup {d}: no such file or directory", path=d)
            paths[ctrl] = d
        return type(self)(paths, (), self.devices, roots=self.roots)

    def frozen_by_parent(self):
        """Whether the v1 freezer cgroup is frozen through a parent (thawing ours does nothing)."""
        d = self._paths.get("freezer")
        try:
            return bool(d) and _read(join(d, "freezer.parent_freezing")).strip() == "1"
        except OSError:
            return False

    def thaw_for_kill(self):
        """The container's processes that a frozen parent cgroup (not ours to thaw) keeps from
        dying, already SIGKILLed, are moved out of the v1 freezer hierarchy's container cgroup
        into this runtime's own freezer cgroup (running, so not frozen): the kernel thaws a task
        that moves into a cgroup that is not frozen, and it dies. cgroup v2 needs none of this:
        a SIGKILL ends a frozen task there."""
        d = self._paths.get("freezer")
        if not d:
            return
        own = _own_cgroups().get(frozenset({"freezer"}))
        root = self.roots.get("freezer")
        if own is None or not root:
            return
        target = normpath(root + "/" + own.lstrip("/"))
        if target == d or target.startswith(d.rstrip("/") + "/"):
            return
        for sub in walk_dirs(d):
            try:
                pids = _read(join(sub, "cgroup.procs")).split()
            except OSError:
                continue
            for pid in pids:
                try:
                    _write(join(target, "cgroup.procs"), pid)
                except CgroupError:
                    pass  # gone already

    def pids(self):
        """All pids in the container's cgroup, recursively."""
        out = []
        for root in walk_dirs(self._pids_dir()):
            try:
                out.extend(int(x) for x in _read(join(root, "cgroup.procs")).split())
            except (FileNotFoundError, ProcessLookupError):
                continue
        return sorted(set(out))

    def kill_all(self, sig):
        """Signal every process; SIGKILL uses cgroup.kill when the kernel has it (no fork race)."""
        k = self._kill_file()
        if sig == 9 and k:
            _write(k, 1)
            return
        if not self.pids():
            return  # nobody to signal, and nobody left to fork (the usual delete of a stopped one)
        # freeze first so no process can fork a child we would miss
        can_freeze = self._freezer() is not None
        was_frozen = can_freeze and self.frozen()
        if can_freeze and not was_frozen:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and not was_frozen:
                self.thaw()

    # ---- freezer ----
    def freeze(self):
        self._set_frozen(True)

    def thaw(self):
        self._set_frozen(False)

    def _set_frozen(self, on):
        fz = self._freezer()
        if fz is None:
            raise CgroupError("freezer cgroup controller is not available")
        d, kind = fz
        deadline = time.monotonic() + 10
        while True:
            if kind == "v1":
                # writing FROZEN again nudges tasks that were forking while we froze
                _write(join(d, "freezer.state"), "FROZEN" if on else "THAWED")
                done = _read(join(d, "freezer.state")).strip() == ("FROZEN" if on else "THAWED")
            else:
                _write(join(d, "cgroup.freeze"), 1 if on else 0)
                done = _events(d).get("frozen") == (1 if on else 0)
            if done:
                return
            if time.monotonic() > deadline:
                if on:  # do not leave a half-frozen container behind
                    self._set_frozen(False)
                raise CgroupError(f"cannot {'freeze' if on else 'thaw'} cgroup {d}: timed out", path=d)
            time.sleep(0.01)

    def frozen(self):
        fz = self._freezer()
        if fz is None:
            return False
        d, kind = fz
        try:
            if kind == "v1":
                return _read(join(d, "freezer.state")).strip() == "FROZEN"
            return _read(join(d, "cgroup.freeze")).strip() == "1"
        except FileNotFoundError:
            return False

    # ---- resources and stats (subclasses) ----
    def set(self, resources):
        """Apply linux.resources (or an `update`); a CgroupError names the field it failed on."""
        raise NotImplementedError

    def stats(self):
        """runc's types.Stats (the "data" of an `events` stats event), Go's omitempty applied."""
        raise NotImplementedError

    def oom_count(self):
        """How many processes the OOM killer has killed in the container."""
        return 0

    def oom_control(self):
        """The v1 memory directory whose memory.oom_control takes eventfd notifications
        (cgroup.event_control), or None: then poll oom_count."""
        return None


class V1Manager(Manager):
    """cgroup v1: one directory per controller (comounted ones share it)."""

    mode = "v1"

    def _v1dirs(self):
        return {c: d for c, d in self._paths.items() if c}

    def _pids_dir(self):
        p = self._paths
        return p.get("pids") or p.get("freezer") or p.get("memory") or self._dirs()[0]

    def _freezer(self):
        d = self._paths.get("freezer")
        return (d, "v1") if d else None

    def _self_join_dirs(self):
        return sorted(set(self._v1dirs().values()))

    def _prepare(self, d):
        if exists(join(d, "cpuset.cpus")):
            _cpuset_inherit(d)  # v1 refuses tasks in a cpuset without cpus/mems

    def set(self, resources):
        from runtime.cgroups import v1
        v1.set_resources(self._v1dirs(), resources or {}, self.devices)

    def stats(self):
        from runtime.cgroups import stats
        return stats.v1(self._v1dirs())

    def oom_count(self):
        d = self._paths.get("memory")
        try:
            return _kv(join(d, "memory.oom_control")).get("oom_kill", 0) if d else 0
        except FileNotFoundError:
            return 0

    def oom_control(self):
        return self._paths.get("memory")


class HybridManager(V1Manager):
    """v1 controllers plus the cgroup2 hierarchy (/sys/fs/cgroup/unified): resources and stats are
    v1's; the cgroup2 directory adds cgroup.kill, a freezer fallback and CLONE_INTO_CGROUP."""

    mode = "hybrid"

    def _pids_dir(self):
        p = self._paths
        return p.get("pids") or p.get("freezer") or p.get("memory") or p.get("") or self._dirs()[0]

    def _freezer(self):
        return super()._freezer() or _v2_freezer(self._paths.get(""))

    def _kill_file(self):
        return _v2_kill_file(self._paths.get(""))

    def _clone_dir(self):
        return self._paths.get("")


class V2Manager(Manager):
    """cgroup v2: one directory."""

    mode = "v2"

    def _dir(self):
        return self._paths[""]

    def _pids_dir(self):
        return self._dir()

    def _freezer(self):
        return _v2_freezer(self._dir())

    def _kill_file(self):
        return _v2_kill_file(self._dir())

    def _clone_dir(self):
        return self._dir()

    def set(self, resources):
        from runtime.cgroups import v2
        v2.set_resources(self._dir(), self.roots.get("", "/sys/fs/cgroup"), resources or {}, self.devices)

    def stats(self):
        from runtime.cgroups import stats
        return stats.v2(self._dir())

    def oom_count(self):
        try:
            return _kv(join(self._dir(), "memory.events")).get("oom_kill", 0)
        except FileNotFoundError:
            return 0


_CLASSES = {"v1": V1Manager, "hybrid": HybridManager, "v2": V2Manager}


def _v2_freezer(d):
    return (d, "v2") if d and exists(join(d, "cgroup.freeze")) else None


def _v2_kill_file(d):
    k = d and join(d, "cgroup.kill")
    return k if k and exists(k) else None


# ---------------------------------------------------------------- helpers
def _cpuset_inherit(d):
    """A fresh v1 cpuset has empty cpus/mems; copy them from the nearest parent that has them."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        f = join(d, name)
        if _read(f).strip():
            continue
        chain, p = [], d
        while True:
            chain.append(p)
            p = dirname(p)
            if not exists(join(p, name)):
                return
            v = _read(join(p, name)).strip()
            if v:
                break
        for c in reversed(chain):  # fill every empty level top-down
            if not _read(join(c, name)).strip():
                _write(join(c, name), v)


def _rmtree_cgroup(d):
    """rmdir a cgroup and its children (deepest first), retrying while it drains (EBUSY)."""
    if not isdir(d):
        return
    for sub in walk_dirs(d, topdown=False):  # d itself last
        _rmdir_retry(sub)


def _rmdir_retry(p):
    delay = 0.01
    for attempt in range(8):
        try:
            posix.rmdir(p)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == 7:
                raise CgroupError(f"cannot remove cgroup {p}: {why(e)}", path=p, errno=e.errno) from None
            time.sleep(delay)
            delay *= 2


def mount_cgroupfs(dest, manager, readonly, cgroupns):
    """Mount the container's cgroups at dest (inside the rootfs, in the container's mount ns)."""
    from runtime.cgroups import mount
    mount.mount_cgroupfs(dest, manager, readonly, cgroupns)
