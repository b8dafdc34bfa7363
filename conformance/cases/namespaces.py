"""config-linux.md#namespaces (new, inherited, joined by path, errors),
#user-namespace-mappings and #offset-for-time-namespace."""

import os
import time

from ..harness import case, check, eq, Fail, Skip, MUST, SHOULD

NS = "config-linux.md#namespaces"
FILE = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
        "user": "user", "cgroup": "cgroup", "time": "time"}
UNSHARE = {"pid": ["--pid", "--fork"], "network": ["--net"], "mount": ["--mount"],
           "ipc": ["--ipc"], "uts": ["--uts"], "user": ["--user", "--map-root-user"],
           "cgroup": ["--cgroup"], "time": ["--time"]}
MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _need(typ):
    def f(h):
        if not os.path.exists("/proc/self/ns/" + FILE[typ]):
            return "kernel has no %s namespaces" % typ
        return None
    return f


def set_ns(t, typ, path=None, present=True):
    nss = [n for n in t.linux["namespaces"] if n["type"] != typ]
    if present:
        n = {"type": typ}
        if path:
            n["path"] = path
        nss.append(n)
    t.linux["namespaces"] = nss


def userns_friendly(t):
    """A user namespace may not mount cgroup v1 hierarchies: drop that mount."""
    t.config["mounts"] = [m for m in t.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]


def in_ns(t, typ):
    return t.sh("readlink /proc/self/ns/%s" % FILE[typ]).strip()


def host_ns(typ):
    return os.readlink("/proc/self/ns/" + FILE[typ])


def holder(t, typ):
    p = t.helper(["unshare"] + UNSHARE[typ] + ["sleep", "30"])
    f = FILE[typ] + ("_for_children" if typ == "pid" else "")
    path = "/proc/%d/ns/%s" % (p.pid, f)
    end = time.time() + 3
    while time.time() < end:
        try:
            if os.readlink(path) != host_ns(typ):
                return path
        except OSError:
            pass
        time.sleep(0.01)
    raise Fail("could not set up a %s namespace to join" % typ)


def _new(typ):
    def fn(t):
        set_ns(t, typ)
        if typ == "user":
            t.linux["uidMappings"] = MAP
            t.linux["gidMappings"] = MAP
            userns_friendly(t)
        got = in_ns(t, typ)
        check(got and got != host_ns(typ), "container %s namespace %r is the host's" % (typ, got))
    return fn


def _inherit(typ):
    def fn(t):
        set_ns(t, typ, present=False)
        if typ == "uts":
            t.config.pop("hostname", None)
            t.config.pop("domainname", None)
        eq(in_ns(t, typ), host_ns(typ), "%s namespace (must be the runtime's)" % typ)
    return fn


def _join(typ):
    def fn(t):
        path = holder(t, typ)
        set_ns(t, typ, path=path)
        if typ == "user":
            userns_friendly(t)
            # the joined namespace maps only root: devpts gid=5 cannot be used there; the
            # mappings given are exactly those of the joined namespace
            for m in t.config["mounts"]:
                if m["type"] == "devpts":
                    m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
            pid = path.split("/")[2]
            for k, f in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
                with open("/proc/%s/%s" % (pid, f)) as fh:
                    t.linux[k] = [{"containerID": int(a), "hostID": int(b), "size": int(c)}
                                  for a, b, c in (l.split() for l in fh if l.strip())]
        eq(in_ns(t, typ), os.readlink(path), "%s namespace (must be the one at path)" % typ)
    return fn


for _t in ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"):
    case("ns-%s-new" % _t, NS, skip=_need(_t))(_new(_t))
for _t in ("pid", "network", "ipc", "uts", "user", "cgroup", "time"):
    case("ns-%s-inherited-when-absent" % _t, NS, skip=_need(_t))(_inherit(_t))
for _t in ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"):
    case("ns-%s-join-path" % _t, NS, skip=_need(_t))(_join(_t))


@case("ns-path-wrong-type-error", NS)
def _(t):
    path = holder(t, "ipc")
    set_ns(t, "network", path=path.replace("/net", "/ipc").rsplit("/", 1)[0] + "/ipc")
    t.run(["true"]).fails("network namespace path pointing at an ipc namespace")


@case("ns-path-missing-error", NS)
def _(t):
    set_ns(t, "network", path=t.path("no-such-ns"))
    t.run(["true"]).fails("namespace path that does not exist")


@case("ns-duplicate-error", NS)
def _(t):
    t.linux["namespaces"].append({"type": "ipc"})
    t.run(["true"]).fails("duplicated namespace type")


@case("ns-pid-process-is-pid1", NS)
def _(t):
    eq(t.sh("echo $$").strip(), "1", "pid of the container process")


@case("ns-pid-isolated-view", NS)
def _(t):
    out = t.sh("ls -d /proc/[0-9]* | wc -l")
    check(int(out.strip()) <= 3, "container sees %s processes" % out.strip())


@case("ns-network-only-loopback", NS)
def _(t):
    eq(t.sh("ls /sys/class/net").split(), ["lo"], "network interfaces")


@case("ns-cgroup-root-view", NS, skip=_need("cgroup"))
def _(t):
    set_ns(t, "cgroup")
    out = t.run(["cat", "/proc/self/cgroup"]).ok().out
    paths = {l.split(":", 2)[2] for l in out.splitlines() if l.split(":")[1]}
    eq(paths, {"/"}, "cgroup paths seen in the cgroup namespace")


@case("userns-uid-map", "config-linux.md#user-namespace-mappings", skip=_need("user"))
def _(t):
    set_ns(t, "user")
    t.linux["uidMappings"] = MAP
    t.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]
    userns_friendly(t)
    eq(t.run(["cat", "/proc/self/uid_map"]).ok().out.split(), ["0", "100000", "65536"], "uid_map")


@case("userns-gid-map", "config-linux.md#user-namespace-mappings", skip=_need("user"))
def _(t):
    set_ns(t, "user")
    t.linux["uidMappings"] = MAP
    t.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]
    userns_friendly(t)
    eq(t.run(["cat", "/proc/self/gid_map"]).ok().out.split(), ["0", "200000", "1000"], "gid_map")


@case("userns-multiple-ranges", "config-linux.md#user-namespace-mappings", skip=_need("user"))
def _(t):
    set_ns(t, "user")
    t.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000},
                              {"containerID": 1000, "hostID": 300000, "size": 10}]
    t.linux["gidMappings"] = MAP
    userns_friendly(t)
    out = t.run(["cat", "/proc/self/uid_map"]).ok().out.split()
    eq(out, ["0", "100000", "1000", "1000", "300000", "10"], "uid_map")


@case("userns-host-uid-of-process", "config-linux.md#user-namespace-mappings", skip=_need("user"))
def _(t):
    set_ns(t, "user")
    t.linux["uidMappings"] = MAP
    t.linux["gidMappings"] = MAP
    userns_friendly(t)
    t.proc["args"] = ["sleep", "30"]
    cid = t.create()
    pid = t.state(cid)["pid"]
    with open("/proc/%d/status" % pid) as f:
        uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
    eq(uid, "100000", "host uid of container root")


@case("userns-no-chown-of-rootfs", "config-linux.md#user-namespace-mappings", SHOULD,
      skip=_need("user"))
def _(t):
    set_ns(t, "user")
    t.linux["uidMappings"] = MAP
    t.linux["gidMappings"] = MAP
    userns_friendly(t)
    before = os.stat(os.path.join(t.config["root"]["path"], "bin", "busybox")).st_uid
    eq(t.sh("stat -c %u /bin/busybox").strip(), "65534", "owner seen inside (unmapped)")
    eq(os.stat(os.path.join(t.config["root"]["path"], "bin", "busybox")).st_uid, before,
       "owner of the rootfs on the host")


@case("timens-offsets", "config-linux.md#offset-for-time-namespace", skip=_need("time"))
def _(t):
    set_ns(t, "time")
    t.linux["timeOffsets"] = {"boottime": {"secs": 10000000, "nanosecs": 0},
                              "monotonic": {"secs": 10000000, "nanosecs": 0}}
    up = float(t.sh("cat /proc/uptime").split()[0])
    with open("/proc/uptime") as f:
        mine = float(f.read().split()[0])
    check(up >= mine + 10000000 - 5, "uptime in the container %s (host %s)" % (up, mine))
