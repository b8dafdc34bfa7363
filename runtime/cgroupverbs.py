"""runc's cgroup verbs on a container's saved cgroup manager: pause, resume, ps, events, update.

Each verb loads the manager saved in state.json (runtime.cgroups.load_manager) and keeps the
container lock only as long as it reads or changes the state: `events` streams without it, so a
`delete` is never blocked by a watcher. Output formats follow runc 1.1 (types.Event JSON; the stats
come from Manager.stats already in types.Stats shape, with Go's omitempty rules and sorted map keys).

pause, resume, ps --format json and events are on the hot path (see runtime/hotpath.py): they print
JSON with hotpath's json_dumps and parse without re; json and re are imported by update alone.
"""
import errno
import posix  # not os (hot path: see runtime/hotpath.py)
import select
import sys
import time

from . import hotpath, state
from .hotpath import dirname, exists, join
from .errors import Error, describe, why


def _open(root, cid, shared=False):
    return state.Container(root, cid).open(shared=shared)


def _manager(c):
    cg = c.data.get("cgroup")
    if not cg:
        raise Error(f"container {c.id} has no cgroup recorded in its state")
    from . import cgroups
    return cgroups.load_manager(cg)


# ------------------------------------------------------------------ pause / resume
def pause(root, cid):
    c = _open(root, cid)
    try:
        if c.status() not in ("running", "created"):  # runc pauses created containers too
            raise Error("container not running")
        _manager(c).freeze()
    finally:
        c.unlock()
    return 0


def resume(root, cid):
    c = _open(root, cid)
    try:
        if c.status() != "paused":
            raise Error("container not paused")
        _manager(c).thaw()
    finally:
        c.unlock()
    return 0


# ------------------------------------------------------------------ ps
def pids(root, cid):
    c = _open(root, cid, shared=True)
    try:
        return _manager(c).pids()
    finally:
        c.unlock()


def ps(root, cid, fmt, ps_args, out=None):
    """json: the cgroup's pids (null when none, as runc); table: host `ps` lines of those pids."""
    out = out or sys.stdout
    if fmt not in ("table", "json"):
        raise Error("invalid format option")
    plist = pids(root, cid)
    if fmt == "json":
        out.write((hotpath.json_dumps(plist) if plist else "null") + "\n")
        return 0
    import subprocess  # the table is for people: engines ask for json (docker top, containerd)
    try:
        p = subprocess.run(["ps"] + (list(ps_args) or ["-ef"]), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
    except FileNotFoundError:
        raise Error('exec: "ps": executable file not found in $PATH') from None
    text = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        raise Error(f"exit status {p.returncode}: {text}")
    lines = text.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise Error("couldn't find PID field in ps output")
    col = titles.index("PID")
    want = set(plist)
    res = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        try:
            pid = int(fields[col])
        except (ValueError, IndexError):
            raise Error(f"unable to parse pid: {line.strip()!r}") from None
        if pid in want:
            res.append(line)
    out.write("\n".join(res) + "\n")
    return 0


def _event(kind, cid, data=None):
    ev = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = data
    # as Go's encoder: UTF-8 as is (ids cannot hold the <, > and & it would escape)
    return hotpath.json_dumps(ev, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ events
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
              "h": 3600.0}
_DIGITS = frozenset("0123456789")


def parse_duration(text):
    """Go's time.ParseDuration (e.g. 5s, 1.5m, 300ms, 1h2m), in seconds; None when invalid."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    total, pos, n = 0.0, 0, len(s)
    while pos < n:
        # a number: [0-9]*(\.[0-9]*)?, not empty nor "." alone
        end = pos
        while end < n and s[end] in _DIGITS:
            end += 1
        if end < n and s[end] == ".":
            end += 1
            while end < n and s[end] in _DIGITS:
                end += 1
        num = s[pos:end]
        if num in ("", "."):
            return None
        # then a unit: the two-letter ones before s and m ("ms" is not "m" then "s")
        unit = s[end:end + 2] if s[end:end + 2] in _DUR_UNITS else s[end:end + 1]
        if unit not in _DUR_UNITS:
            return None
        total += float(num) * _DUR_UNITS[unit]
        pos = end + len(unit)
    return sign * total


def events(root, cid, stats_only=False, interval="5s", out=None):
    """runc events: one stats event with --stats; otherwise stats every interval and an oom event
    each time the memory cgroup reports an OOM, until the container stops or its cgroup goes."""
    out = out or sys.stdout
    secs = parse_duration(interval)
    if secs is None:
        raise Error(f'invalid value "{interval}" for flag --interval: parse error')
    if secs <= 0:
        raise Error("duration interval must be greater than 0")
    c = _open(root, cid, shared=True)
    try:
        st = c.status()
        if st == "stopped":
            raise Error(f"container with id {cid} is not running")
        mgr = _manager(c)
        pid, start = c.data.get("pid"), c.data.get("pid_start")
    finally:
        c.unlock()
    try:
        if stats_only:
            _emit(out, _event("stats", cid, mgr.stats()))
            return 0
        return _stream(out, cid, mgr, pid, start, secs)
    except BrokenPipeError:
        # the reader went away: not an error; keep the interpreter's final flush quiet
        try:
            posix.dup2(posix.open("/dev/null", posix.O_WRONLY), out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0


def _emit(out, line):
    out.write(line)
    out.flush()


class _OomWatch:
    """OOM notifications: v1 memory.oom_control through cgroup.event_control and an eventfd (as
    runc), else polling the oom_kill counter (cgroup v2 memory.events)."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.efd = -1
        self.count = mgr.oom_count()
        self._files = []
        d = mgr.oom_control()
        if d:
            try:
                self.efd = posix.eventfd(0, posix.EFD_CLOEXEC)
                ofd = posix.open(join(d, "memory.oom_control"), posix.O_RDONLY | posix.O_CLOEXEC)
                self._files.append(ofd)
                cfd = posix.open(join(d, "cgroup.event_control"), posix.O_WRONLY | posix.O_CLOEXEC)
                try:
                    posix.write(cfd, f"{self.efd} {ofd}".encode())
                finally:
                    posix.close(cfd)
                self.control = join(d, "cgroup.event_control")
            except OSError:
                self.close()
                self.efd = -1

    def fds(self):
        return [self.efd] if self.efd >= 0 else []

    def poll_every(self):
        return None if self.efd >= 0 else 0.2

    def events(self, readable):
        """How many oom events happened since the last call; -1 when the cgroup is gone."""
        if self.efd >= 0:
            if self.efd not in readable:
                return 0
            try:
                posix.eventfd_read(self.efd)
            except BlockingIOError:
                return 0
            # the kernel also signals the eventfd when the cgroup is removed
            if not exists(self.control):
                return -1
            return 1
        n = self.mgr.oom_count()
        new, self.count = max(0, n - self.count), n
        return new

    def close(self):
        for fd in self._files + ([self.efd] if self.efd >= 0 else []):
            try:
                posix.close(fd)
            except OSError:
                pass
        self._files = []


def _stream(out, cid, mgr, pid, start, secs):
    from . import linux as L
    pidfd = -1
    if pid:
        try:
            pidfd = L.pidfd_open(pid)
        except OSError:
            pidfd = -1
        if pidfd < 0 or not state.proc_alive(pid, start):
            if pidfd >= 0:
                posix.close(pidfd)
            return 0  # stopped in the meantime
    watch = _OomWatch(mgr)
    try:
        next_tick = time.monotonic() + secs
        while True:
            now = time.monotonic()
            timeout = max(0.0, next_tick - now)
            if watch.poll_every() is not None:
                timeout = min(timeout, watch.poll_every())
            fds = watch.fds() + ([pidfd] if pidfd >= 0 else [])
            try:
                readable, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            n = watch.events(readable)
            if n < 0:
                return 0
            for _ in range(n):
                _emit(out, _event("oom", cid))
            if pidfd >= 0 and pidfd in readable:
                # the init is gone: report an OOM kill that raced with its death, then stop
                if watch.efd >= 0:
                    r, _, _ = select.select(watch.fds(), [], [], 0)
                    for _ in range(max(0, watch.events(r))):
                        _emit(out, _event("oom", cid))
                return 0
            if time.monotonic() >= next_tick:
                try:
                    data = mgr.stats()  # runc's types.Stats
                except (OSError, Error) as e:
                    from . import log
                    log.error(str(e) if isinstance(e, Error) else describe(e))
                else:
                    _emit(out, _event("stats", cid, data))
                next_tick += secs
                if next_tick < time.monotonic():
                    next_tick = time.monotonic() + secs
            if not mgr.exists():
                return 0
    finally:
        watch.close()
        if pidfd >= 0:
            posix.close(pidfd)


# ------------------------------------------------------------------ update
# docker/go-units RAMInBytes as runc 1.1 vendors it: a decimal number, an optional space, then an
# optional binary unit prefix with optional i/b ("100m", "1.5 GiB", "10kb")
_SIZE_RE = r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?"
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(flag, text):
    """runc's size flags: "-1" is unlimited, otherwise RAMInBytes (binary units)."""
    if text == "-1":
        return -1
    import re
    m = re.fullmatch(_SIZE_RE, text, re.ASCII)
    if not m:
        raise Error(f"invalid value for {flag}: invalid size: '{text}'")
    try:
        v = float(m.group(1))
    except ValueError:
        raise Error(f'invalid value for {flag}: strconv.ParseFloat: parsing "{m.group(1)}": invalid syntax') from None
    if m.group(2):
        v *= _UNITS[m.group(2).lower()]
    if v >= 2 ** 63:
        raise Error(f"invalid value for {flag}: {text!r} is too large")
    return int(v)


def _parse_uint(flag, text):
    import re
    if not re.fullmatch(r"[0-9]+", text, re.ASCII) or int(text) >= 2 ** 64:
        raise Error(f'invalid value for {flag}: strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


def _parse_int(flag, text):
    import re
    if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII) or not -2 ** 63 <= int(text) < 2 ** 63:
        raise Error(f'invalid value for {flag}: strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def resources_from_flags(o):
    """The LinuxResources fragment that runc builds from update's flags (0 / "" mean unchanged)."""
    r = {"memory": {}, "cpu": {}, "blockIO": {}, "pids": {}}
    if o.get("blkio-weight"):
        r["blockIO"]["weight"] = o["blkio-weight"]
    if o.get("cpuset-cpus"):
        r["cpu"]["cpus"] = o["cpuset-cpus"]
    if o.get("cpuset-mems"):
        r["cpu"]["mems"] = o["cpuset-mems"]
    for flag, key in (("cpu-period", "period"), ("cpu-rt-period", "realtimePeriod"), ("cpu-share", "shares")):
        if o.get(flag):
            r["cpu"][key] = _parse_uint(flag, o[flag])
    for flag, key in (("cpu-quota", "quota"), ("cpu-rt-runtime", "realtimeRuntime")):
        if o.get(flag):
            r["cpu"][key] = _parse_int(flag, o[flag])
    for flag, key in (("memory", "limit"), ("memory-swap", "swap"), ("kernel-memory", "kernel"),
                      ("kernel-memory-tcp", "kernelTCP"), ("memory-reservation", "reservation")):
        if o.get(flag):
            r["memory"][key] = parse_size(flag, o[flag])
    if o.get("pids-limit"):
        r["pids"]["limit"] = o["pids-limit"]
    return r


# what runc's update takes from a resources JSON: (section, key, kind); other keys are ignored
_UPDATE_FIELDS = (
    ("memory", "limit", "int"), ("memory", "reservation", "int"), ("memory", "swap", "int"),
    ("memory", "kernel", "int"), ("memory", "kernelTCP", "int"),
    ("cpu", "shares", "uint"), ("cpu", "quota", "int"), ("cpu", "period", "uint"),
    ("cpu", "realtimeRuntime", "int"), ("cpu", "realtimePeriod", "uint"), ("cpu", "cpus", "str"),
    ("cpu", "mems", "str"), ("blockIO", "weight", "uint16"), ("pids", "limit", "int"),
)


def resources_from_json(text, where):
    """Check a LinuxResources JSON and keep the fields update applies (0 / "" mean unchanged)."""
    import json
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise Error(f"{where}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Error(f"{where}: expected a JSON object (LinuxResources), got {type(doc).__name__}")
    r = {"memory": {}, "cpu": {}, "blockIO": {}, "pids": {}}
    for sect, key, kind in _UPDATE_FIELDS:
        part = doc.get(sect)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise Error(f"{where}: {sect}: expected an object")
        if part.get(key) is None:
            continue
        v = part[key]
        field = f"{where}: {sect}.{key}"
        if kind == "str":
            if not isinstance(v, str):
                raise Error(f"{field}: expected a string, got {json.dumps(v)}")
        else:
            if isinstance(v, bool) or not isinstance(v, int):
                raise Error(f"{field}: expected an integer, got {json.dumps(v)}")
            lo, hi = {"int": (-2 ** 63, 2 ** 63), "uint": (0, 2 ** 64), "uint16": (0, 2 ** 16)}[kind]
            if not lo <= v < hi:
                raise Error(f"{field}: {v} is out of range")
        if v not in (0, ""):
            r[sect][key] = v
    unified = doc.get("unified")
    if unified is not None:
        if not isinstance(unified, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in unified.items()):
            raise Error(f"{where}: unified: expected an object of strings")
        if unified:
            r["unified"] = unified
    return r


def _read_resources_arg(path):
    if path == "-":
        return sys.stdin.read(), "resources (stdin)"
    try:
        with open(path) as f:
            return f.read(), f"resources file {path}"
    except OSError as e:
        raise Error(f"open {path}: {why(e).lower()}") from None


def update(root, cid, o):
    """runc update: apply the changed resources live and merge them into the saved ones."""
    if o.get("l3-cache-schema"):
        raise Error("Intel RDT/CAT: l3 cache schema is not enabled")
    if o.get("mem-bw-schema"):
        raise Error("Intel RDT/MBA: memory bandwidth schema is not enabled")
    if o.get("resources"):
        # as runc: with a resources file every other flag is ignored
        r = resources_from_json(*_read_resources_arg(o["resources"]))
    else:
        r = resources_from_flags(o)
    c = _open(root, cid)
    try:
        if c.status() == "stopped":
            raise Error("container not running")
        mgr = _manager(c)
        mem, cpu = r["memory"], r["cpu"]
        if mem.get("kernel") or mem.get("kernelTCP"):
            from . import log
            log.warning("Kernel memory settings are ignored and will be removed")
        mem.pop("kernel", None)
        mem.pop("kernelTCP", None)
        if mem.get("limit") == -1 and "swap" not in mem:
            mem["swap"] = -1  # unlimited memory with swap unset: swap unlimited too (as runc)
        saved = _saved_resources(c)
        # quota and period go together (cgroup v2 cpu.max holds both): a lone one keeps the other
        old_cpu = saved.get("cpu") or {}
        if ("quota" in cpu) != ("period" in cpu):
            if "quota" in cpu and old_cpu.get("period"):
                cpu["period"] = old_cpu["period"]
            elif "period" in cpu and old_cpu.get("quota"):
                cpu["quota"] = old_cpu["quota"]
        delta = {k: v for k, v in r.items() if v}
        if "pids" in delta and delta["pids"]["limit"] < 0:
            delta["pids"]["limit"] = -1
        if delta:
            from .cgroups import CgroupError
            try:
                mgr.set(delta)
            except CgroupError as e:
                raise Error(_runc_message(e, delta)) from None
        for k, v in delta.items():
            if isinstance(v, dict):
                saved[k] = dict(saved.get(k) or {}, **v)
            else:
                saved[k] = v
        c.data.setdefault("config", {}).setdefault("linux", {})["resources"] = saved
        c.write()
    finally:
        c.unlock()
    return 0


def _runc_message(e, delta):
    """runc's wording for the limits the kernel refuses most often (a CgroupError's field says which)."""
    if e.field == "cpu.shares" and e.kernel is not None:  # the kernel clamped the value
        want = delta["cpu"]["shares"]
        return f"the {'maximum' if want > e.kernel else 'minimum'} allowed cpu-shares is {e.kernel}"
    if e.field == "memory.limit" and e.errno == errno.EBUSY and e.path.endswith("memory.limit_in_bytes"):
        d = dirname(e.path)  # v1: the usage is above the new limit
        return (f"unable to set memory limit to {delta['memory']['limit']} (current usage: "
                f"{_readint(d, 'memory.usage_in_bytes')}, peak usage: {_readint(d, 'memory.max_usage_in_bytes')})")
    return str(e)


def _readint(d, name, default=0):
    try:
        with open(join(d, name)) as f:
            v = f.read().strip()
        return int(v) if v else default
    except (OSError, ValueError):
        return default


def _saved_resources(c):
    cfg = c.data.get("config") or {}
    return hotpath.json_loads(hotpath.json_dumps((cfg.get("linux") or {}).get("resources") or {}))
