"""config.md#mounts: order, bind/rbind, every Linux mount option, propagation flags, default
filesystems (config-linux.md#default-filesystems), rootfsPropagation."""

import os

from ..harness import case, check, eq, Fail, Skip, MUST, SHOULD, MAY

M = "config.md#mounts"
MO = "config.md#linux-mount-options"


def mountinfo(t, script=""):
    out = t.sh((script + "; " if script else "") + "cat /proc/self/mountinfo")
    res = []
    for line in out.splitlines():
        x = line.split()
        if "-" not in x:
            continue
        sep = x.index("-")
        res.append({"mp": x[4], "opts": x[5].split(","), "opt": x[6:sep], "fstype": x[sep + 1],
                    "src": x[sep + 2], "super": x[sep + 3].split(","), "root": x[3]})
    return res


def at(mi, mp):
    m = [e for e in mi if e["mp"] == mp]
    if not m:
        raise Fail("%s is not a mount point in the container" % mp)
    return m[-1]


# ---- generic options on a tmpfs at /mnt -----------------------------------------------------

# option list -> (level, must be in per-mount opts, must not be, must be in super opts, must not be)
OPTS = {
    "ro": (MUST, ["ro"], [], [], []),
    "rw": (MUST, ["rw"], [], [], []),
    "nosuid": (MUST, ["nosuid"], [], [], []),
    "suid": (MUST, [], ["nosuid"], [], [], ["nosuid", "suid"]),
    "nodev": (MUST, ["nodev"], [], [], []),
    "dev": (MUST, [], ["nodev"], [], [], ["nodev", "dev"]),
    "noexec": (MUST, ["noexec"], [], [], []),
    "exec": (MUST, [], ["noexec"], [], [], ["noexec", "exec"]),
    "noatime": (MUST, ["noatime"], ["relatime"], [], []),
    "atime": (MUST, [], ["noatime"], [], [], ["noatime", "atime"]),
    "nodiratime": (MUST, ["nodiratime"], [], [], []),
    "diratime": (MUST, [], ["nodiratime"], [], [], ["nodiratime", "diratime"]),
    "relatime": (MUST, ["relatime"], ["noatime"], [], []),
    "norelatime": (MUST, [], [], [], []),
    "strictatime": (MUST, [], ["relatime", "noatime"], [], []),
    "nostrictatime": (MUST, ["relatime"], [], [], [], ["strictatime", "nostrictatime"]),
    "sync": (MUST, [], [], ["sync"], []),
    "async": (MUST, [], [], [], ["sync"], ["sync", "async"]),
    "dirsync": (MUST, [], [], ["dirsync"], []),
    "lazytime": (MUST, [], [], ["lazytime"], []),
    "nolazytime": (MUST, [], [], [], ["lazytime"], ["lazytime", "nolazytime"]),
    "defaults": (MUST, ["rw"], ["nosuid", "nodev", "noexec"], [], []),
    "silent": (MUST, [], [], [], []),
    "loud": (MUST, [], [], [], []),
    "iversion": (MUST, [], [], [], []),
    "noiversion": (MUST, [], [], [], []),
    "nosymfollow": (SHOULD, ["nosymfollow"], [], [], []),
    "symfollow": (SHOULD, [], ["nosymfollow"], [], [], ["nosymfollow", "symfollow"]),
    "nomand": (MAY, [], [], [], []),
    "fs-specific-data": (SHOULD, [], [], ["size=1024k", "mode=700"], [], ["size=1m", "mode=700"]),
}


def _opt_case(name, spec):
    level, inc, exc, sinc, sexc = spec[:5]
    opts = spec[5] if len(spec) > 5 else [name]

    def fn(t):
        t.add_mount("/mnt", "tmpfs", "tmpfs", list(opts))
        e = at(mountinfo(t), "/mnt")
        for o in inc:
            check(o in e["opts"], "%s missing from mount options %s" % (o, e["opts"]))
        for o in exc:
            check(o not in e["opts"], "%s present in mount options %s" % (o, e["opts"]))
        for o in sinc:
            check(o in e["super"], "%s missing from super options %s" % (o, e["super"]))
        for o in sexc:
            check(o not in e["super"], "%s present in super options %s" % (o, e["super"]))
    return fn, level


for _n, _s in OPTS.items():
    _fn, _lvl = _opt_case(_n, _s)
    case("mount-option-%s" % _n, MO, _lvl)(_fn)


@case("mount-option-nosuid-effect", MO)
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", ["noexec"])
    out = t.sh("cp /bin/busybox /mnt/bb && /mnt/bb true 2>/dev/null && echo ran || echo blocked")
    eq(out.strip(), "blocked", "exec from a noexec mount")


@case("mount-option-ro-effect", MO)
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", ["ro"])
    out = t.sh("touch /mnt/x 2>/dev/null && echo wrote || echo refused")
    eq(out.strip(), "refused", "write to a ro mount")


# ---- recursive options (kernel >= 5.12) on an rbind with a submount ---------------------------

ROPTS = {
    "rro": (["ro"], []), "rrw": ([], ["ro"]), "rnosuid": (["nosuid"], []),
    "rsuid": ([], ["nosuid"]), "rnodev": (["nodev"], []), "rdev": ([], ["nodev"]),
    "rnoexec": (["noexec"], []), "rexec": ([], ["noexec"]), "rnoatime": (["noatime"], []),
    "ratime": ([], ["noatime"]), "rnodiratime": (["nodiratime"], []),
    "rdiratime": ([], ["nodiratime"]), "rrelatime": (["relatime"], []),
    "rnorelatime": ([], []), "rstrictatime": ([], ["relatime", "noatime"]),
    "rnostrictatime": (["relatime"], []), "rnosymfollow": (["nosymfollow"], []),
    "rsymfollow": ([], ["nosymfollow"]),
}
# options the host submount is given so that the "clearing" variants have something to clear
_PRESET = {"rrw": "ro", "rsuid": "nosuid", "rdev": "nodev", "rexec": "noexec",
           "ratime": "noatime", "rdiratime": "nodiratime", "rnorelatime": "relatime",
           "rstrictatime": "relatime", "rnostrictatime": "noatime", "rsymfollow": "nosymfollow"}


def _ropt_case(name, inc, exc):
    def fn(t):
        import subprocess
        src = t.path("rsrc")
        os.makedirs(src)
        sub = t.host_tmpfs("rsrc/sub", content={"f": "x"})
        if name in _PRESET:
            subprocess.run(["mount", "-o", "remount,bind," + _PRESET[name], sub], check=True,
                           timeout=10)
        t.add_mount("/mnt", "bind", src, ["rbind", name])
        mi = mountinfo(t)
        for mp in ("/mnt", "/mnt/sub"):
            e = at(mi, mp)
            for o in inc:
                check(o in e["opts"], "%s: %s missing from %s" % (mp, o, e["opts"]))
            for o in exc:
                check(o not in e["opts"], "%s: %s present in %s" % (mp, o, e["opts"]))
    return fn


for _n, (_i, _e) in ROPTS.items():
    case("mount-option-%s" % _n, MO, SHOULD)(_ropt_case(_n, _i, _e))


# ---- bind mounts --------------------------------------------------------------------------------

@case("mount-bind-dir", M)
def _(t):
    src = t.path("bdir")
    os.makedirs(src)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("bound\n")
    t.add_mount("/mnt", "bind", src, ["bind"])
    eq(t.sh("cat /mnt/f"), "bound\n", "file through the bind mount")


@case("mount-bind-file", M)
def _(t):
    src = t.write("bfile", "single file\n")
    t.add_mount("/etc/hostname", "bind", src, ["bind"])
    eq(t.sh("cat /etc/hostname"), "single file\n", "bind-mounted file")


@case("mount-bind-write-through", M)
def _(t):
    d = t.share()
    t.sh("echo from-container > /run/w")
    eq(open(os.path.join(d, "w")).read(), "from-container\n", "file seen on the host")


@case("mount-bind-ro", M)
def _(t):
    src = t.path("bro")
    os.makedirs(src)
    t.add_mount("/mnt", "bind", src, ["bind", "ro"])
    out = t.sh("touch /mnt/x 2>/dev/null && echo wrote || echo refused")
    eq(out.strip(), "refused", "write to a ro bind mount")
    check(not os.path.exists(os.path.join(src, "x")), "file created in the ro bind source")


@case("mount-bind-relative-source", M)
def _(t):
    os.makedirs(os.path.join(t.bundle, "data"))
    with open(os.path.join(t.bundle, "data", "f"), "w") as f:
        f.write("relative\n")
    t.add_mount("/mnt", "bind", "data", ["bind"])
    eq(t.sh("cat /mnt/f"), "relative\n", "file through a bundle-relative bind source")


@case("mount-bind-type-none", M)
def _(t):
    src = t.path("bnone")
    os.makedirs(src)
    t.add_mount("/mnt", "none", src, ["bind"])
    e = at(mountinfo(t), "/mnt")
    check(e["fstype"] != "none", "bind with type none mounted as fstype none")


@case("mount-rbind-recursive", MO)
def _(t):
    src = t.path("rsrc")
    os.makedirs(src)
    t.host_tmpfs("rsrc/sub", content={"f": "in-submount\n"})
    t.add_mount("/mnt", "bind", src, ["rbind"])
    eq(t.sh("cat /mnt/sub/f"), "in-submount\n", "submount content through rbind")


@case("mount-bind-not-recursive", MO)
def _(t):
    src = t.path("rsrc")
    os.makedirs(src)
    t.host_tmpfs("rsrc/sub", content={"f": "in-submount\n"})
    t.add_mount("/mnt", "bind", src, ["bind"])
    eq(t.sh("ls -A /mnt/sub | wc -l").strip(), "0", "entries under /mnt/sub with plain bind")


@case("mount-order", M)
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", ["size=1m"])
    t.add_mount("/mnt", "tmpfs", "tmpfs", ["size=2m"])
    mi = [e for e in mountinfo(t) if e["mp"] == "/mnt"]
    check(len(mi) == 2, "expected two mounts on /mnt, got %d" % len(mi))
    check("size=1024k" in mi[0]["super"] and "size=2048k" in mi[1]["super"],
          "mounts not in listed order: %s" % [e["super"] for e in mi])


@case("mount-nested-order", M)
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    t.add_mount("/mnt/inner", "tmpfs", "tmpfs", ["size=1m"])
    out = t.sh("grep -c ' /mnt/inner ' /proc/self/mountinfo")
    eq(out.strip(), "1", "nested mount present")


@case("mount-destination-created", M)
def _(t):
    src = t.path("bd")
    os.makedirs(src)
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    t.add_mount("/mnt/a/b/c", "bind", src, ["bind"])
    mountinfo(t) and at(mountinfo(t), "/mnt/a/b/c")


@case("mount-destination-relative", M, MAY)
def _(t):
    t.add_mount("mnt", "tmpfs", "tmpfs", ["size=1m"])
    at(mountinfo(t), "/mnt")


@case("mount-type-tmpfs", "config.md#posix-platform-mounts")
def _(t):
    t.add_mount("/mnt", "tmpfs", "tmpfs", [])
    eq(at(mountinfo(t), "/mnt")["fstype"], "tmpfs", "fstype")


@case("mount-type-proc-extra", "config.md#posix-platform-mounts")
def _(t):
    t.add_mount("/mnt", "proc", "proc", [])
    eq(at(mountinfo(t), "/mnt")["fstype"], "proc", "fstype")


@case("mount-invalid-type-error", M)
def _(t):
    t.add_mount("/mnt", "conformance-no-such-fs", "x", [])
    t.run(["true"]).fails("run with an unknown filesystem type")


@case("mount-missing-bind-source-error", M)
def _(t):
    t.add_mount("/mnt", "bind", t.path("missing-src"), ["bind"])
    t.run(["true"]).fails("run with a missing bind source")


@case("mount-tmpcopyup", MO, MAY)
def _(t):
    t.add_mount("/etc", "tmpfs", "tmpfs", ["tmpcopyup"])
    out = t.sh("grep -c ' /etc ' /proc/self/mountinfo; cat /etc/passwd | head -1")
    check(out.startswith("1\nroot:"), "tmpcopyup did not copy /etc: %r" % out)


@case("mount-idmap", MO, SHOULD)
def _(t):
    src = t.path("idm")
    os.makedirs(src)
    open(os.path.join(src, "f"), "w").close()
    m = t.add_mount("/mnt", "bind", src, ["bind", "idmap"])
    # same format as user namespace mappings: the file's on-disk id is the containerID side and
    # is seen as the hostID side (crun, runc 1.2, the kernel's MOUNT_ATTR_IDMAP with that userns)
    m["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    m["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    eq(t.sh("stat -c '%u:%g' /mnt/f").strip(), "1000:1000", "owner through the idmapped mount")


@case("mount-idmap-without-mappings-error", MO)
def _(t):
    src = t.path("idm")
    os.makedirs(src)
    t.add_mount("/mnt", "bind", src, ["bind", "idmap"])
    t.run(["true"]).fails("idmap without mappings and without a user namespace")


# ---- propagation flags -------------------------------------------------------------------------

def _prop_case(opt, want, rec):
    def fn(t):
        if opt.endswith("slave"):
            src = t.host_tmpfs("shsrc", shared=True, content={"f": "x"})
            t.add_mount("/mnt", "bind", src, ["rbind" if rec else "bind", opt])
        elif rec:
            src = t.path("rsrc")
            os.makedirs(src)
            t.host_tmpfs("rsrc/sub")
            t.add_mount("/mnt", "bind", src, ["rbind", opt])
        else:
            t.add_mount("/mnt", "tmpfs", "tmpfs", [opt])
        mi = mountinfo(t)
        for mp in (("/mnt", "/mnt/sub") if rec and not opt.endswith("slave") else ("/mnt",)):
            e = at(mi, mp)
            tags = " ".join(e["opt"])
            if want:
                check(want in tags, "%s: propagation %r lacks %s" % (mp, tags, want))
            else:
                check("shared:" not in tags and "master:" not in tags,
                      "%s: propagation %r is not private" % (mp, tags))
    return fn


for _o, _w in (("shared", "shared:"), ("slave", "master:"), ("private", None),
               ("unbindable", "unbindable")):
    case("mount-option-%s" % _o, MO)(_prop_case(_o, _w, False))
    case("mount-option-r%s" % _o, MO)(_prop_case("r" + _o, _w, True))


# ---- rootfsPropagation ----------------------------------------------------------------------------

def _rootprop(val, want):
    def fn(t):
        t.linux["rootfsPropagation"] = val
        tags = " ".join(at(mountinfo(t), "/")["opt"])
        if want:
            check(want in tags, "/ propagation %r lacks %s" % (tags, want))
        else:
            check("shared:" not in tags, "/ propagation %r is shared" % tags)
    return fn


for _v, _w in (("shared", "shared:"), ("slave", None), ("private", None),
               ("unbindable", "unbindable")):
    case("rootfsPropagation-%s" % _v, "config-linux.md#rootfs-mount-propagation")(
        _rootprop(_v, _w))


# ---- default filesystems ----------------------------------------------------------------------------

for _p, _ty in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")):
    def _mk(p, ty):
        def fn(t):
            eq(at(mountinfo(t), p)["fstype"], ty, "fstype of %s" % p)
        return fn
    case("default-fs-%s" % _p.strip("/").replace("/", "-"),
         "config-linux.md#default-filesystems", SHOULD)(_mk(_p, _ty))
