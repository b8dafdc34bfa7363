"""config-linux.md#devices, #default-devices, runtime-linux.md (dev symlinks, file descriptors),
config-linux.md#allowed-device-list (devices cgroup)."""

import os
import time

from ..harness import case, check, eq, Fail, MUST, SHOULD

DEV = "config-linux.md#devices"
DD = "config-linux.md#default-devices"


def add_dev(t, path, typ, major=None, minor=None, mode=None, uid=None, gid=None, allow=True):
    d = {"path": path, "type": typ}
    if major is not None:
        d["major"], d["minor"] = major, minor
    if mode is not None:
        d["fileMode"] = mode
    if uid is not None:
        d["uid"] = uid
    if gid is not None:
        d["gid"] = gid
    t.linux.setdefault("devices", []).append(d)
    if allow and typ != "p":
        t.linux.setdefault("resources", {}).setdefault("devices", []).append(
            {"allow": True, "type": "b" if typ == "b" else "c", "major": major, "minor": minor,
             "access": "rwm"})
    return d


@case("device-char", DEV)
def _(t):
    add_dev(t, "/dev/conf-null", "c", 1, 3, 0o666, 0, 0)
    eq(t.sh("stat -c '%F %t:%T' /dev/conf-null").strip(), "character special file 1:3",
       "device node")


@case("device-char-usable", DEV)
def _(t):
    add_dev(t, "/dev/conf-zero", "c", 1, 5, 0o666, 0, 0)
    eq(t.sh("head -c 3 /dev/conf-zero | od -An -tx1").split(), ["00", "00", "00"], "data read")


@case("device-block", DEV)
def _(t):
    add_dev(t, "/dev/conf-blk", "b", 7, 200, 0o600, 0, 0, allow=False)
    eq(t.sh("stat -c '%F %t:%T' /dev/conf-blk").strip(), "block special file 7:c8", "device node")


@case("device-fifo", DEV)
def _(t):
    add_dev(t, "/dev/conf-fifo", "p", mode=0o600)
    eq(t.sh("stat -c '%F' /dev/conf-fifo").strip(), "fifo", "node type")


@case("device-unbuffered-char", DEV)
def _(t):
    add_dev(t, "/dev/conf-u", "u", 1, 7, 0o666)
    t.linux["resources"]["devices"][-1]["type"] = "c"
    eq(t.sh("stat -c '%F %t:%T' /dev/conf-u").strip(), "character special file 1:7",
       "device node")


@case("device-fileMode", DEV)
def _(t):
    add_dev(t, "/dev/conf-null", "c", 1, 3, 0o640, 0, 0)
    eq(t.sh("stat -c '%a' /dev/conf-null").strip(), "640", "mode")


@case("device-uid-gid", DEV)
def _(t):
    add_dev(t, "/dev/conf-null", "c", 1, 3, 0o666, 1234, 4321)
    eq(t.sh("stat -c '%u:%g' /dev/conf-null").strip(), "1234:4321", "owner")


@case("device-outside-dev", DEV)
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    add_dev(t, "/mnt/conf-null", "c", 1, 3, 0o666, 0, 0)
    eq(t.sh("stat -c '%F %t:%T' /mnt/conf-null").strip(), "character special file 1:3",
       "device node")


@case("device-existing-file-mismatch-error", DEV)
def _(t):
    root = t.small_rootfs()   # a private copy: a runtime may clobber the file
    add_dev(t, "/etc/passwd", "c", 1, 3, 0o666, 0, 0)
    r = t.run(["true"])
    check(os.path.isfile(os.path.join(root, "etc", "passwd")),
          "the existing /etc/passwd of the rootfs was replaced by a device node")
    r.fails("device over an existing regular file")


for _p, _mm in (("null", (1, 3)), ("zero", (1, 5)), ("full", (1, 7)), ("random", (1, 8)),
                ("urandom", (1, 9)), ("tty", (5, 0))):
    def _mk(p, mm):
        def fn(t):
            eq(t.sh("stat -c '%F %t:%T' /dev/" + p).strip(),
               "character special file %x:%x" % mm, "/dev/%s" % p)
        return fn
    case("default-device-%s" % _p, DD)(_mk(_p, _mm))


@case("default-device-null-usable", DD)
def _(t):
    eq(t.sh("echo x > /dev/null && cat /dev/null | wc -c").strip(), "0", "/dev/null")


@case("default-device-zero-usable", DD)
def _(t):
    eq(t.sh("head -c 4 /dev/zero | od -An -tx1").split(), ["00"] * 4, "/dev/zero")


@case("default-device-full-usable", DD)
def _(t):
    out = t.sh("echo x 2>/dev/null > /dev/full && echo wrote || echo enospc; "
               "head -c 2 /dev/full | wc -c")
    eq(out.split(), ["enospc", "2"], "/dev/full")


@case("default-device-urandom-usable", DD)
def _(t):
    eq(t.sh("head -c 16 /dev/urandom | wc -c").strip(), "16", "/dev/urandom")


@case("default-device-random-usable", DD)
def _(t):
    eq(t.sh("head -c 16 /dev/random | wc -c").strip(), "16", "/dev/random")


@case("default-device-ptmx", DD)
def _(t):
    out = t.sh("readlink /dev/ptmx || stat -c '%t:%T' /dev/ptmx; "
               "stat -Lc '%F' /dev/ptmx")
    lines = out.split()
    check(lines[0] in ("pts/ptmx", "/dev/pts/ptmx") or lines[0] == "5:2",
          "/dev/ptmx is neither a link to pts/ptmx nor a bind: %r" % out)


@case("default-device-ptmx-usable", DD)
def _(t):
    # opening /dev/ptmx must give a pty of this container's devpts instance
    out = t.console_run("ls /dev/pts | grep -c '^[0-9]'")
    check(out.strip().splitlines()[-1].strip() in ("1", "2"), "ptys in /dev/pts: %r" % out)


@case("default-devices-despite-deny-all", DD)
def _(t):
    t.linux.setdefault("resources", {})["devices"] = [{"allow": False, "access": "rwm"}]
    out = t.sh("head -c 1 /dev/zero | wc -c; echo > /dev/null && echo null-ok; "
               "head -c 1 /dev/urandom | wc -c")
    eq(out.split(), ["1", "null-ok", "1"], "default devices with a deny-all device list")


# ---- devices cgroup ------------------------------------------------------------------------------

def tun(t):
    """The host's tun node bind-mounted in: not in linux.devices, so only the cgroup rules."""
    if not os.path.exists("/dev/fuse"):
        raise Fail("host has no /dev/fuse")
    t.add_mount("/dev/conf-tun", "bind", "/dev/fuse", ["bind"])


# 10:229 (fuse) is not a default device; opening it is harmless.  A cgroup denial is EPERM.
OPEN_R = "(: < /dev/conf-tun) 2>&1 | grep -q 'not permitted' && echo r-denied || echo r-ok; "
OPEN_W = "(: > /dev/conf-tun) 2>&1 | grep -q 'not permitted' && echo w-denied || echo w-ok"


@case("devices-cgroup-deny", "config-linux.md#allowed-device-list",
      skip=lambda h: h.need_ctrl("devices"))
def _(t):
    tun(t)
    t.linux.setdefault("resources", {})["devices"] = [{"allow": False, "access": "rwm"}]
    eq(t.sh(OPEN_R + OPEN_W).split(), ["r-denied", "w-denied"], "open of a denied device")


@case("devices-cgroup-allow", "config-linux.md#allowed-device-list",
      skip=lambda h: h.need_ctrl("devices"))
def _(t):
    tun(t)
    t.linux["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "major": 10, "minor": 229,
                                         "access": "rw"}]}
    eq(t.sh(OPEN_R + OPEN_W).split(), ["r-ok", "w-ok"], "open of an allowed device")


@case("devices-cgroup-listed-order", "config-linux.md#allowed-device-list",
      skip=lambda h: h.need_ctrl("devices"))
def _(t):
    tun(t)
    t.linux["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "major": 10, "minor": 229,
                                         "access": "rw"},
                                        {"allow": False, "type": "c", "major": 10,
                                         "minor": 229, "access": "w"}]}
    eq(t.sh(OPEN_R + OPEN_W).split(), ["r-ok", "w-denied"], "later entries override earlier ones")


@case("devices-cgroup-list-file", "config-linux.md#allowed-device-list",
      skip=lambda h: h.need_ctrl("devices"))
def _(t):
    t.linux["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "major": 10,
                                         "minor": 200, "access": "rwm"}]}
    t.proc["args"] = ["sleep", "30"]
    cid = t.create()
    pid = t.state(cid)["pid"]
    path = [l.split(":", 2)[2].strip() for l in open("/proc/%d/cgroup" % pid)
            if l.split(":")[1] == "devices"][0]
    with open(os.path.join(t.host.controllers["devices"], path.lstrip("/"), "devices.list")) as f:
        lst = f.read().split("\n")
    check("c 10:200 rwm" in lst, "devices.list lacks c 10:200 rwm: %r" % lst)
    check("a *:* rwm" not in lst, "devices.list still allows everything")


# ---- runtime-linux.md ------------------------------------------------------------------------------

for _dst, _src in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                   ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
    def _mk(dst, src):
        def fn(t):
            eq(t.sh("readlink /dev/" + dst).strip(), src, "/dev/%s link" % dst)
        return fn
    case("dev-symlink-%s" % _dst, "runtime-linux.md#dev-symbolic-links")(_mk(_dst, _src))


@case("fds-only-stdio", "runtime-linux.md#file-descriptors")
def _(t):
    t.proc["args"] = ["sleep", "30"]
    cid = t.create()
    t.start(cid).ok("start")
    t.wait_status(cid, "running")
    pid = t.state(cid)["pid"]
    time.sleep(0.1)
    fds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))
    eq(fds, [0, 1, 2], "open file descriptors of the container process")


@case("fds-no-leak-from-caller", "runtime-linux.md#file-descriptors")
def _(t):
    # fds the caller leaves open (inherited by the runtime) must not reach the container
    r, w = os.pipe()
    t.proc["args"] = ["sleep", "30"]
    cid = t.new_id()
    try:
        t.call("create", "--bundle", t.write_bundle(), cid, pass_fds=(r, w),
               out=t.path("ctr.out")).ok("create")
    finally:
        os.close(r)
        os.close(w)
    t.start(cid).ok("start")
    t.wait_status(cid, "running")
    pid = t.state(cid)["pid"]
    t.pids.append(pid)
    time.sleep(0.1)
    fds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))
    eq(fds, [0, 1, 2], "open fds of the container process (caller passed %d, %d)" % (r, w))
