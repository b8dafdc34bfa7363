"""The container's filesystem view, built inside its mount namespace (config.md "Mounts",
config-linux.md "Mounts", "Devices", "maskedPaths", "readonlyPaths"; runtime-linux.md "Default Devices").

Parsing happens in the runtime process (plan_mounts) so that a bad option is reported before any
process exists; the child only executes the plan. Mount destinations are opened with
openat2(RESOLVE_IN_ROOT) and mounted through their /proc/self/fd link, so a symlink in the rootfs,
even one swapped in during setup, can never redirect a mount outside the rootfs.
"""
import errno
import os
import stat

from . import linux as L
from . import log  # debug lines from the init: runtime/log.py's contract for forked children
from .errors import Error, why
from .plan import Record

# option word -> (flags to set, flags to clear)
_FLAGS = {
    "defaults": (0, 0), "ro": (L.MS_RDONLY, 0), "rw": (0, L.MS_RDONLY),
    "suid": (0, L.MS_NOSUID), "nosuid": (L.MS_NOSUID, 0), "dev": (0, L.MS_NODEV),
    "nodev": (L.MS_NODEV, 0), "exec": (0, L.MS_NOEXEC), "noexec": (L.MS_NOEXEC, 0),
    "sync": (L.MS_SYNCHRONOUS, 0), "async": (0, L.MS_SYNCHRONOUS), "dirsync": (L.MS_DIRSYNC, 0),
    "remount": (L.MS_REMOUNT, 0), "mand": (L.MS_MANDLOCK, 0), "nomand": (0, L.MS_MANDLOCK),
    "atime": (0, L.MS_NOATIME), "noatime": (L.MS_NOATIME, 0), "diratime": (0, L.MS_NODIRATIME),
    "nodiratime": (L.MS_NODIRATIME, 0), "relatime": (L.MS_RELATIME, 0),
    "norelatime": (0, L.MS_RELATIME), "strictatime": (L.MS_STRICTATIME, 0),
    "nostrictatime": (0, L.MS_STRICTATIME), "lazytime": (L.MS_LAZYTIME, 0),
    "nolazytime": (0, L.MS_LAZYTIME), "bind": (L.MS_BIND, 0), "rbind": (L.MS_BIND | L.MS_REC, 0),
    "silent": (L.MS_SILENT, 0), "loud": (0, L.MS_SILENT), "nosymfollow": (L.MS_NOSYMFOLLOW, 0),
    "symfollow": (0, L.MS_NOSYMFOLLOW),
    "iversion": (L.MS_I_VERSION, 0), "noiversion": (0, L.MS_I_VERSION),
}
_PROPAGATION = {
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC, "shared": L.MS_SHARED,
    "rshared": L.MS_SHARED | L.MS_REC, "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE, "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}
# recursive attributes applied with mount_setattr(AT_RECURSIVE): word -> (set, clear)
_RATTR = {
    "rro": (L.MOUNT_ATTR_RDONLY, 0), "rrw": (0, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (L.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, L.MOUNT_ATTR_NOSUID),
    "rnodev": (L.MOUNT_ATTR_NODEV, 0), "rdev": (0, L.MOUNT_ATTR_NODEV),
    "rnoexec": (L.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, L.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (L.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, L.MOUNT_ATTR_NODIRATIME),
    "rnoatime": (L.MOUNT_ATTR_NOATIME, L.MOUNT_ATTR__ATIME),
    "rstrictatime": (L.MOUNT_ATTR_STRICTATIME, L.MOUNT_ATTR__ATIME),
    "rrelatime": (L.MOUNT_ATTR_RELATIME, L.MOUNT_ATTR__ATIME),
    "rnosymfollow": (L.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, L.MOUNT_ATTR_NOSYMFOLLOW),
    # atime is an enum in mount_setattr: leaving noatime/strictatime means relatime
    "ratime": (L.MOUNT_ATTR_RELATIME, L.MOUNT_ATTR__ATIME),
    "rnostrictatime": (L.MOUNT_ATTR_RELATIME, L.MOUNT_ATTR__ATIME),
    "rnorelatime": (0, 0),
}
ROOT_PROPAGATION = {k: v for k, v in _PROPAGATION.items()}
MOVE_MOUNT_T_EMPTY_PATH = 0x40
AT_FDCWD = -100

DEFAULT_DEVICES = (  # runtime-linux.md "Default Devices": name, major, minor
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
    ("tty", 5, 0),
)
# The only mount destinations inside /proc: single files that lxcfs-style tools emulate (the list
# runc allows). Anything else there could redirect a write the runtime makes to /proc (sysctl, LSM
# labels, oom_score_adj): a directory inside /proc is never a destination. /proc itself takes a
# procfs only.
PROC_FILE_MOUNTS = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                    "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled")


def check_proc_dest(dest, p, field):
    """Raise Error when mount plan P may not go to DEST (container view, normalized)."""
    if dest == "/proc":
        if p.type == "proc" and not p.bind:
            return
        if p.bind and _is_procfs(p.source):
            return
        raise Error(f"{field}: {dest}: only a proc filesystem may be mounted on /proc")
    if dest.startswith("/proc/") and dest not in PROC_FILE_MOUNTS:
        raise Error(f"{field}: {dest}: mounts inside /proc are refused (except the files "
                    "lxcfs emulates, such as /proc/meminfo)")


def _is_procfs(path):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return L.fstatfs_type(fd) == L.PROC_SUPER_MAGIC
    finally:
        os.close(fd)


DEV_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"))


class Mount(Record):
    """One entry of the mount plan (config.json mounts[index]), checked."""
    __slots__ = ("source", "dest", "type", "flags", "clear", "prop", "data", "rset", "rclr",
                 "bind", "index", "idmap", "uid_mappings", "gid_mappings", "copyup")


def plan_mounts(cfg, bundle):
    """Turn config mounts into Mount plans; raises Error naming mounts[i] on a bad option."""
    plans = []
    linux = cfg.get("linux") or {}
    has_userns = any(ns.get("type") == "user" for ns in linux.get("namespaces") or [])
    for i, m in enumerate(cfg.get("mounts") or []):
        dest = "/" + os.path.normpath(m["destination"]).lstrip("/")
        mtype = m.get("type") or ""
        src = m.get("source") or ""
        flags = clear = prop = rset = rclr = 0
        data = []
        idmap = None
        copyup = False
        for opt in m.get("options") or []:
            if opt in _FLAGS:
                s, c = _FLAGS[opt]
                flags = (flags | s) & ~c
                clear |= c
            elif opt in _PROPAGATION:
                prop = _PROPAGATION[opt]
            elif opt in _RATTR:
                s, c = _RATTR[opt]
                if c & L.MOUNT_ATTR__ATIME:
                    rset &= ~L.MOUNT_ATTR__ATIME  # one atime setting: the last one given
                rset |= s
                rclr |= c
            elif opt in ("idmap", "ridmap"):
                idmap = opt
            elif opt == "tmpcopyup":
                copyup = True  # done for tmpfs only, as runc does; ignored on other types
            elif opt == "copy-symlink":
                pass  # runc extension for bind mounts of symlinks: accepted, not done
            elif "=" in opt or opt.isidentifier() or opt.replace("_", "").replace("-", "").isalnum():
                data.append(opt)  # filesystem-specific data, e.g. mode=755, size=64k
            else:
                raise Error(f"config.json: mounts[{i}].options: unknown option {opt!r}")
        bind = bool(flags & L.MS_BIND) or mtype == "bind"
        if bind:
            flags |= L.MS_BIND
            if not src:
                raise Error(f"config.json: mounts[{i}].source: a bind mount needs a source")
            if not os.path.isabs(src):
                src = os.path.join(bundle, src)
            if not os.path.exists(src):
                raise Error(f"config.json: mounts[{i}].source: {src}: no such file or directory")
        elif not mtype:
            raise Error(f"config.json: mounts[{i}].type: needed for a non-bind mount")
        uids, gids = m.get("uidMappings"), m.get("gidMappings")
        p = Mount(source=src, dest=dest, type=mtype, flags=flags, clear=clear, prop=prop,
                  data=",".join(data), rset=rset, rclr=rclr, bind=bind, index=i, idmap=idmap,
                  uid_mappings=uids, gid_mappings=gids, copyup=copyup and mtype == "tmpfs" and not bind)
        check_proc_dest(dest, p, f"config.json: mounts[{i}].destination")
        if bool(uids) != bool(gids):
            raise Error(f"config.json: mounts[{i}]: uidMappings and gidMappings go together")
        if uids and not idmap:
            raise Error(f"config.json: mounts[{i}].uidMappings: given without the idmap or ridmap option")
        if idmap:
            if not bind:
                raise Error(f"config.json: mounts[{i}].options: {idmap} is supported on bind mounts only")
            if not uids and not (has_userns and linux.get("uidMappings")):
                raise Error(f"config.json: mounts[{i}].options: {idmap} needs uidMappings and gidMappings "
                            "or a user namespace with mappings")
        plans.append(p)
    return tuple(plans)


# ---------------------------------------------------------------- child side: safe paths
def _clean(path):
    """Components of PATH, lexically normalized with '..' stopping at the root."""
    out = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


def open_in_root(rootfd, path, flags=os.O_PATH, mkdir=True, isfile=False):
    """Open PATH (absolute, container view) under ROOTFD, never escaping it; create it when
    missing (a dir, or a file when ISFILE). Returns an O_CLOEXEC fd (O_PATH by default).

    Symlinks resolve as if ROOTFD were / (openat2 RESOLVE_IN_ROOT); a dangling one on the way
    is followed the same way, so the missing part is created where the link points inside the
    rootfs, as runc's SecureJoin does."""
    res = L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS
    try:
        return L.openat2(rootfd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, 0, res)
    except FileNotFoundError:
        if not mkdir:
            raise
    rootpath = os.readlink(fdpath(rootfd)).rstrip("/")
    todo = _clean(path)
    cur = []  # an existing path inside the root, with no symlink left in it
    links = 0
    while todo:
        part = todo.pop(0)
        cand = cur + [part]
        try:
            fd = L.openat2(rootfd, "/".join(cand), os.O_PATH | os.O_CLOEXEC, 0, res)
        except FileNotFoundError:
            pass
        else:
            real = os.readlink(fdpath(fd))
            os.close(fd)
            if real == rootpath or rootpath == "":
                cur = _clean(real) if rootpath == "" else []
            elif real.startswith(rootpath + "/"):
                cur = _clean(real[len(rootpath):])
            else:  # a mount moved under us: refuse rather than guess
                raise OSError(errno.EXDEV, "resolves outside the root", path)
            continue
        pfd = L.openat2(rootfd, "/".join(cur) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, res)
        try:
            try:
                target = os.readlink(part, dir_fd=pfd)  # a dangling symlink
            except OSError:
                target = None
            if target is not None:
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                base = "" if target.startswith("/") else "/".join(cur)
                todo = _clean(base + "/" + target) + todo
                cur = []
                continue
            if not todo and isfile:
                os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                                 0o644, dir_fd=pfd))
            else:
                try:
                    os.mkdir(part, 0o755, dir_fd=pfd)
                except FileExistsError:
                    pass  # made by someone else meanwhile: the next lookup checks it
        finally:
            os.close(pfd)
        cur = cand
    return L.openat2(rootfd, "/".join(cur) or ".", flags | os.O_CLOEXEC, 0, res)


def fdpath(fd):
    return f"/proc/self/fd/{fd}"


def _mount_at(rootfd, p, target_is_file, launch=None, source=None):
    if p.copyup:
        return _mount_copyup(rootfd, p)
    data = p.data
    if p.type in ORDINARY_DIR_TYPES and not p.bind:
        fd = _open_ordinary_dir(rootfd, p)
    elif p.type == "tmpfs" and not p.bind:
        fd, data = _open_tmpfs_dest(rootfd, p)
    else:
        fd = open_in_root(rootfd, p.dest, isfile=target_is_file)
    try:
        tgt = fdpath(fd)
        # again on the resolved destination: a symlink in the rootfs (/x -> /proc/sys) must not
        # lead a mount into /proc either
        real = os.readlink(tgt)
        rootpath = os.readlink(fdpath(rootfd)).rstrip("/")
        if real.startswith(rootpath + "/"):
            check_proc_dest("/" + real[len(rootpath):].lstrip("/"), p, f"mounts[{p.index}].destination")
        tree = launch.trees.get(p.index) if p.idmap else None
        if p.idmap and tree is None:  # in a user namespace: see runtime/idmap.py
            from . import idmap
            tree = launch.trees[p.index] = idmap.request(launch.sync, p, source or p.source)
        if p.bind:
            # A bind mount gets its flags (ro, nosuid, ...) and recursive attributes while it is
            # still a detached tree, then is attached onto the checked fd. Mounting first and
            # remounting after would look the destination up again by path: a process of another
            # container sharing a volume with this one can swap the destination for a symlink to
            # another mount (/vol/x <-> /vol/l -> /vol) in between, so the remount lands there
            # and the "ro" bind of a host directory stays writable.
            own = -1
            if tree is None:
                own = tree = L.open_tree(AT_FDCWD, source or p.source, L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC
                                         | (L.AT_RECURSIVE if p.flags & L.MS_REC else 0))
            try:
                _bind_attrs(tree, p)
                L.move_mount(tree, "", fd, "", L.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
            finally:
                if own >= 0:
                    os.close(own)
        else:
            L.mount(source or p.source, tgt, p.type, _first_flags(p), data or None)
        if p.prop or (not p.bind and (p.rset or p.rclr)):
            nfd = open_in_root(rootfd, p.dest, mkdir=False)
            try:
                if p.bind:
                    L.mount(None, fdpath(nfd), None, p.prop, None)  # its attributes are set
                else:
                    _propagation_and_attrs(nfd, p)
            finally:
                os.close(nfd)
    finally:
        os.close(fd)


# Filesystems that must be mounted on a real directory of the rootfs, never through a symlink:
# a rootfs whose /proc is a symlink would get procfs wherever it points, and every later write the
# runtime makes below /proc (LSM labels, sysctls, oom_score_adj) would follow it too (the
# CVE-2023-28642 hardening; runc refuses with "must be mounted on ordinary directory"). Symlinks in
# the parent directories still resolve inside the root, as for every other mount.
ORDINARY_DIR_TYPES = ("proc", "sysfs")


def _open_ordinary_dir(rootfd, p):
    """O_PATH fd of P's destination, a directory that is no symlink (made when missing)."""
    parent = open_in_root(rootfd, os.path.dirname(p.dest))
    name = os.path.basename(p.dest) or "."
    try:
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            pass
        try:
            # no symlink at all from the parent on: what was checked is what gets the mount
            return L.openat2(parent, name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, 0,
                             L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            try:
                link = stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
            except OSError:
                link = False
            what = "a symlink" if link or e.errno == errno.ELOOP else "not a directory"
            raise Error(f"mounts[{p.index}]: mount {p.type} to {p.dest}: filesystem {p.type!r} must be "
                        f"mounted on ordinary directory ({p.dest} in the rootfs is {what})") from None
    finally:
        os.close(parent)


def _open_tmpfs_dest(rootfd, p):
    """(fd, data) for a tmpfs: over an existing directory the tmpfs takes that directory's mode,
    unless the options give a mode= (runc since 1.1.8; crun does the same): the directory's
    mode goes first in the data, so a later mode= wins."""
    try:
        fd = open_in_root(rootfd, p.dest, mkdir=False)
    except FileNotFoundError:
        return open_in_root(rootfd, p.dest), p.data  # made now: the tmpfs default (1777)
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        return fd, p.data  # the mount says what is wrong
    mode = f"mode={stat.S_IMODE(st.st_mode):04o}"
    return fd, f"{mode},{p.data}" if p.data else mode


def _deferred_ro(p):
    """A tmpfs, or whatever is mounted on /dev, is mounted read-write first and made read-only by
    finish_rootfs (runc's order): what goes below it (its sub-mounts' directories, /dev's device
    nodes and links, the console, the process's cwd, the hooks' changes) is made meanwhile. A
    bind mount is made read-only at once: what goes below it would otherwise be written into
    its source."""
    return not p.bind and p.flags & L.MS_RDONLY and (p.type == "tmpfs" or p.dest == "/dev")


def _first_flags(p):
    return p.flags & ~L.MS_RDONLY if _deferred_ro(p) else p.flags


# a bind mount's per-mount flags and their mount_setattr attributes; the flags of the
# superblock (sync, dirsync, ...) are not the bind's to change, as with MS_BIND|MS_REMOUNT
_BIND_ATTRS = ((L.MS_RDONLY, L.MOUNT_ATTR_RDONLY), (L.MS_NOSUID, L.MOUNT_ATTR_NOSUID),
               (L.MS_NODEV, L.MOUNT_ATTR_NODEV), (L.MS_NOEXEC, L.MOUNT_ATTR_NOEXEC),
               (L.MS_NODIRATIME, L.MOUNT_ATTR_NODIRATIME), (L.MS_NOSYMFOLLOW, L.MOUNT_ATTR_NOSYMFOLLOW))


def _bind_attrs(tree, p):
    """Bind plan P's flags, then its recursive attributes, on the detached TREE. Flags are set,
    never cleared (what the remount with the source's locked flags kept did); the atime mode
    changes only when an option names one."""
    aset = aclr = 0
    for mf, af in _BIND_ATTRS:
        if p.flags & mf:
            aset |= af
    for mf, af in ((L.MS_NOATIME, L.MOUNT_ATTR_NOATIME), (L.MS_STRICTATIME, L.MOUNT_ATTR_STRICTATIME),
                   (L.MS_RELATIME, L.MOUNT_ATTR_RELATIME)):
        if p.flags & mf:
            aset, aclr = aset | af, L.MOUNT_ATTR__ATIME
            break
    if aset or aclr:
        L.mount_setattr(tree, "", L.AT_EMPTY_PATH, aset, aclr)
    if p.rset or p.rclr:
        L.mount_setattr(tree, "", L.AT_EMPTY_PATH | L.AT_RECURSIVE, p.rset, p.rclr)


def _propagation_and_attrs(fd, p):
    """The mount's propagation word, then its recursive attributes (mount_setattr)."""
    if p.prop:
        L.mount(None, fdpath(fd), None, p.prop, None)
    if p.rset or p.rclr:
        L.mount_setattr(fd, "", L.AT_EMPTY_PATH | L.AT_RECURSIVE, p.rset, p.rclr)


def _mount_copyup(rootfd, p):
    """tmpfs with tmpcopyup: what the rootfs has at the destination is copied into the new tmpfs.
    The old directory stays readable through an fd taken before the mount hides it; every copy
    step is relative to a directory fd and never follows a symlink, so nothing outside the
    rootfs is read or written."""
    old = open_in_root(rootfd, p.dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        L.mount(p.source, fdpath(old), p.type, (p.flags & ~(L.MS_RDONLY | L.MS_REMOUNT)), p.data or None)
        new = open_in_root(rootfd, p.dest, os.O_RDONLY | os.O_DIRECTORY, mkdir=False)  # the tmpfs
        try:
            _copy_tree(old, new)
            st = os.fstat(old)
            os.fchown(new, st.st_uid, st.st_gid)
            if not any(d.startswith("mode=") for d in p.data.split(",")):
                os.fchmod(new, stat.S_IMODE(st.st_mode))
            os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
            _propagation_and_attrs(new, p)  # ro comes later: see _deferred_ro
        finally:
            os.close(new)
    finally:
        os.close(old)


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_tree(src, dst):
    """Copy the entries of directory fd SRC into directory fd DST: files, directories, symlinks,
    device nodes, fifos and sockets, with owner, mode and times (hard links become copies)."""
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
            continue
        if fmt == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=src)
            d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dst)
            try:
                _copy_tree(s, d)
                _copy_meta(d, st)
            finally:
                os.close(s)
                os.close(d)
        elif fmt == stat.S_IFREG:
            s = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=src)
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dst)
            try:
                left = st.st_size
                while left > 0:
                    n = os.sendfile(d, s, None, min(left, 1 << 30))
                    if n == 0:
                        break  # the file shrank meanwhile
                    left -= n
                _copy_meta(d, st)
            finally:
                os.close(s)
                os.close(d)
        else:  # device, fifo, socket: made anew in the fresh tmpfs (nobody else can see it yet)
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_meta(fd, st):
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _locked_flags(path):
    """The per-mount flags a remount must keep (the kernel refuses to clear locked ones)."""
    st = os.statvfs(path)
    f = 0
    for vf, mf in ((os.ST_NOSUID, L.MS_NOSUID), (os.ST_NODEV, L.MS_NODEV), (os.ST_NOEXEC, L.MS_NOEXEC),
                   (os.ST_NOATIME, L.MS_NOATIME), (os.ST_NODIRATIME, L.MS_NODIRATIME),
                   (os.ST_RELATIME, L.MS_RELATIME)):
        if st.f_flag & vf:
            f |= mf
    return f


def setup_rootfs(plan, launch):
    """Executed in the child, in its new mount namespace, before pivot_root. A container that
    inherits the runtime's mount namespace is built in a scratch one (enter_scratch_ns)."""
    rootfs = plan.rootfs
    scratch = inherits_mounts(plan)
    if scratch:
        enter_scratch_ns()
    # 1. nothing we mount may propagate back to the host
    prop = plan.root_propagation or (L.MS_SLAVE | L.MS_REC)
    if prop & L.MS_UNBINDABLE:
        prop = L.MS_SLAVE | L.MS_REC  # the rootfs bind below needs a bindable source; see finish_rootfs
    if scratch:
        # the scratch namespace's copies of shared mounts are peers of the caller's: rshared
        # here would send the container's mounts into the caller's namespace
        prop = L.MS_SLAVE | L.MS_REC
    try:
        L.mount(None, "/", None, prop, None)
    except OSError as e:
        raise Error(f"{_prop_field(plan)}: making / {_prop_name(prop)}: {why(e)}") from None
    # pivot_root needs the rootfs to be a mount point whose parent is not shared; made private
    # first, the bind of the rootfs is not shared either
    try:
        _make_parent_private(rootfs)
        L.mount(rootfs, rootfs, None, L.MS_BIND | L.MS_REC, None)
    except OSError as e:
        raise Error(f"root.path: bind mount {rootfs} to itself: {why(e)}") from None
    sources = bind_sources(plan, launch)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for p in plan.mounts:
            try:
                if log.DEBUG:
                    log.debug(f"init: mounts[{p.index}]: {p.type or 'bind'} {p.source} on {p.dest}")
                if p.type == "cgroup":
                    _mount_cgroup(plan, launch, rootfd, p)
                    continue
                src = fdpath(sources[p.index]) if p.index in sources else None
                isfile = p.bind and not os.path.isdir(src or p.source)
                _mount_at(rootfd, p, isfile, launch, src)
            except OSError as e:
                hint = ""
                if plan.rootless:
                    from . import rootless
                    hint = rootless.mount_hint(p, e.errno)
                raise Error(f"mounts[{p.index}]: mount {p.source or p.type} to {p.dest}: {why(e)}{hint}") from None
        dev_is_tmpfs = any(p.dest == "/dev" for p in plan.mounts)
        create_devices(plan, rootfd, defaults=dev_is_tmpfs)
        if dev_is_tmpfs:
            for target, name in DEV_SYMLINKS:
                _symlink(rootfd, target, f"/dev/{name}")
            _symlink(rootfd, "pts/ptmx", "/dev/ptmx")
    finally:
        os.close(rootfd)
        while sources:  # none may reach the user program
            os.close(sources.popitem()[1])


def _make_parent_private(path):
    """pivot_root refuses a shared parent: make the mount holding PATH private when it is shared,
    and only then (a slave one must stay a slave, or binds from it lose their master). When PATH
    is itself a mount point (containerd's overlay rootfs), that is the mount: it is the parent of
    the rootfs bind made next, and the bind's source, so a shared one (rootfsPropagation rshared
    makes every mount shared) would make pivot_root fail with EINVAL."""
    parent = path.rstrip("/") or "/"
    best, best_len, shared = "/", 0, False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            mp = fields[4].replace("\\040", " ")
            if (parent == mp or parent.startswith(mp.rstrip("/") + "/")) and len(mp) >= best_len:
                best, best_len = mp, len(mp)
                shared = any(o.startswith("shared:") for o in fields[6:fields.index("-")])
    if shared:
        L.mount(None, best, None, L.MS_PRIVATE, None)


def _mount_cgroup(plan, launch, rootfd, p):
    from . import cgroups
    fd = open_in_root(rootfd, p.dest)
    try:
        # the tmpfs it mounts first hides what fd points at: hand over the checked real path
        real = os.readlink(fdpath(fd))
        if not (real + "/").startswith(plan.rootfs.rstrip("/") + "/"):
            raise Error(f"mounts[{p.index}]: destination {p.dest} resolves outside the rootfs")
        try:
            cgroups.mount_cgroupfs(real, launch.cgroup_manager, bool(p.flags & L.MS_RDONLY), plan.cgroupns)
        except Error as e:  # one of the mounts that make up the cgroup view
            raise Error(f"mounts[{p.index}]: {e}") from None
    finally:
        os.close(fd)


def _symlink(rootfd, target, path):
    dfd = _dirfd(rootfd, os.path.dirname(path))
    try:
        os.symlink(target, os.path.basename(path), dir_fd=dfd)
    except FileExistsError:
        pass
    finally:
        os.close(dfd)


def _dirfd(rootfd, path):
    pfd = open_in_root(rootfd, path)
    try:
        return os.open(fdpath(pfd), os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(pfd)


def create_devices(plan, rootfd, defaults):
    """linux.devices, plus the default devices when /dev is a fresh tmpfs. mknod where the kernel
    allows it; a bind of the host's node inside a user namespace, where it does not."""
    devs = []
    if defaults:
        given = {os.path.normpath(d["path"]) for d in plan.devices}
        for name, major, minor in DEFAULT_DEVICES:
            if f"/dev/{name}" in given:
                continue  # linux.devices says how this one is made
            devs.append({"path": f"/dev/{name}", "type": "c", "major": major, "minor": minor,
                         "fileMode": 0o666, "uid": 0, "gid": 0})
    devs.extend(plan.devices)
    for d in devs:
        _create_device(plan, rootfd, d)


def _create_device(plan, rootfd, d):
    path = os.path.normpath(d["path"])
    dfd = _dirfd(rootfd, os.path.dirname(path))
    name = os.path.basename(path)
    try:
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d["type"]]
        mode = d.get("fileMode", 0o666) & 0o7777
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            # config-linux.md: an existing file that is not the requested device is an error
            # (never replace what the image has there)
            same = stat.S_IFMT(st.st_mode) == kind and (
                kind == stat.S_IFIFO or st.st_rdev == os.makedev(d.get("major", 0), d.get("minor", 0)))
            if not same:
                raise Error(f"linux.devices: {path}: a file that is not this device already exists there")
            return
        if plan.userns and d["type"] != "p":  # mknod of a device needs init-userns CAP_MKNOD
            _bind_device(dfd, name, path, kind, d)
            return
        try:
            os.mknod(name, kind | mode, os.makedev(d.get("major", 0), d.get("minor", 0)), dir_fd=dfd)
        except PermissionError:
            if d["type"] == "p":
                raise
            # the runtime itself is root of a user namespace (rootless podman: none in
            # config.json), without CAP_MKNOD where it counts: a bind, as runc falls back to
            _bind_device(dfd, name, path, kind, d)
            return
        os.chmod(name, mode, dir_fd=dfd)  # mknod's mode passes through the umask
        os.chown(name, d.get("uid", 0), d.get("gid", 0), dir_fd=dfd)
    except OSError as e:
        raise Error(f"linux.devices: {path}: {why(e)}") from None
    finally:
        os.close(dfd)


def _bind_device(dfd, name, path, kind, d):
    """Bind the host's node of the same path, checked to be that very device."""
    try:
        src = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        raise Error(f"linux.devices: {path}: no such device on the host to bind into the user "
                    "namespace (mknod is not allowed there)") from None
    try:
        st = os.fstat(src)
        if stat.S_IFMT(st.st_mode) != kind or st.st_rdev != os.makedev(d.get("major", 0), d.get("minor", 0)):
            raise Error(f"linux.devices: {path}: the host's node is not {d['type']} "
                        f"{d.get('major', 0)}:{d.get('minor', 0)}; cannot bind it into the user namespace")
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o000, dir_fd=dfd))
        fd = os.open(name, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dfd)
        try:
            L.mount(fdpath(src), fdpath(fd), None, L.MS_BIND, None)
        finally:
            os.close(fd)
    finally:
        os.close(src)


# ------------------------------------------------- child side: mount sources from the runtime
def bind_sources(plan, launch):
    """In a user namespace: {mount index: O_PATH fd} of every bind mount's source, opened for us
    by the runtime (runtime/idmap.py serve_sources) in our mount namespace with its own
    privilege. The namespace's root may not even be able to look the path up (a source under a
    0700 directory of the host's root); a bind from the fd's /proc/self/fd link needs no lookup,
    and it is still made by us, from our namespace's copy of the source mount, so the kernel's
    locks on it (a read-only host mount stays read-only) are kept. Our sync channel receives them
    close-on-exec; setup_rootfs closes them after the mounts. {} without a user namespace (we are
    the host's root then) or rootless (the runtime cannot see more than we do)."""
    if not plan.userns or plan.rootless:
        return {}
    want = [p.index for p in plan.mounts if p.bind]
    if not want:
        return {}
    import sys
    from . import sync
    from .hotpath import csocket
    _socket = csocket()
    ch = launch.sync
    ch.send(sync.SOURCES, ",".join(map(str, want)))
    msg, anc, flags, _ = ch.sock.recvmsg(sync.FRAME, _socket.CMSG_SPACE(4 * len(want)),
                                         _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(data[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(data) - len(data) % 4, 4)]
    kind, _, payload = msg.partition(b":")
    got = [int(i) for i in payload.split(b",") if i] if kind == sync.OK else []
    if kind != sync.OK or len(got) != len(fds) or flags & _socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        if not msg:
            sync.exit_now()  # the runtime is gone
        if kind == sync.ERR:
            raise Error(payload.decode(errors="replace"))
        raise Error("sync: a bad answer with the bind mount sources")
    return dict(zip(got, fds))


# ------------------------------------- child side: a container in the runtime's mount namespace
# config-linux.md: a namespace type not in linux.namespaces is the runtime's. For the mount
# namespace, mounting the container's /proc, /dev, /sys ... onto the bundle in the caller's
# namespace (what runc does) leaves them there after delete, and on a shared mount they propagate
# to every peer. Instead the init builds its root in a scratch namespace of its own (whose shared
# mounts are made slaves first), pivots there as usual, then clones the finished root as a
# detached tree (open_tree), goes back to the caller's namespace and chroots into the tree. The
# caller's namespace never holds one of the container's mounts: nothing propagates, nothing is
# left behind by delete, a failed create or a killed runtime, and the tree goes when the last
# process using it does. A detached tree has no parent: no chroot escape climbs out of it. Its
# mounts are not in the namespace's list, so the container's /proc/self/mountinfo is empty.
_caller_mntns = -1


def inherits_mounts(plan):
    """True when the container has neither a new nor a joined mount namespace."""
    return not plan.new_flags & L.CLONE_NEWNS and "mount" not in plan.ns_paths


def enter_scratch_ns():
    global _caller_mntns
    from . import procfs  # verified while /proc is still the host's (chain/init.py _enter)
    _caller_mntns = os.open("self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC, dir_fd=procfs.root())
    try:
        L.unshare(L.CLONE_NEWNS)
    except OSError as e:
        raise Error(f"linux.namespaces: a scratch mount namespace for the root filesystem: {why(e)}") from None


def leave_scratch_ns(plan):
    """After finish_rootfs, when enter_scratch_ns was used: our root, with every mount in it,
    becomes a detached tree; we go back to the caller's mount namespace and chroot into it.
    Either way our root is the container's from now on: the host's procfs root is dropped
    before anything of the container can see us (runtime/procfs.py release)."""
    try:
        _leave_scratch_ns(plan)
    finally:
        from . import procfs
        procfs.release()


def _leave_scratch_ns(plan):
    global _caller_mntns
    if _caller_mntns < 0:
        return
    unbindable = plan.root_propagation & L.MS_UNBINDABLE
    tree = -1
    try:
        if unbindable:  # open_tree leaves unbindable mounts out of its copy
            L.mount(None, "/", None, L.MS_PRIVATE | L.MS_REC, None)
        tree = L.open_tree(AT_FDCWD, "/", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | L.AT_RECURSIVE)
        if unbindable:
            L.mount_setattr(tree, "", L.AT_EMPTY_PATH | L.AT_RECURSIVE, 0, 0, L.MS_UNBINDABLE)
        L.setns(_caller_mntns, L.CLONE_NEWNS)  # root and cwd become that namespace's: fchdir now
        os.fchdir(tree)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise Error(f"root.path: {plan.rootfs}: moving the root into the runtime's mount namespace: "
                    f"{why(e)}") from None
    finally:
        if tree >= 0:
            os.close(tree)
        os.close(_caller_mntns)
        _caller_mntns = -1


# ------------------------------------------------------------- child side: the root switch
def pivot(rootfs, no_pivot):
    """Make ROOTFS the root: pivot_root (the old root detached), or MS_MOVE + chroot (--no-pivot)."""
    try:
        _pivot(rootfs, no_pivot)
    except OSError as e:
        how = "moving it to / (--no-pivot)" if no_pivot else "pivot_root"
        raise Error(f"root.path: {rootfs}: {how}: {why(e)}") from None


def _pivot(rootfs, no_pivot):
    os.chdir(rootfs)
    if no_pivot:
        hide_outside_mounts(rootfs)
        # runc issue 1961: with rootfsPropagation rshared, our "/" is a peer of the caller's, and
        # the rootfs moved onto it would be mounted on top of the caller's "/" too (for good).
        # The old root is out of reach once covered: it needs no propagation of any kind.
        L.mount(None, "/", None, L.MS_PRIVATE, None)
        L.mount(rootfs, "/", None, L.MS_MOVE, None)
        os.chroot(".")
    else:
        # pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only ours.
        # The kernel does not promise where cwd is afterwards: go to the old root by fd, so
        # the slave-making below touches it and never the container's own mounts.
        oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        newroot = os.open(".", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            L.pivot_root(".", ".")
            os.fchdir(oldroot)
            L.mount(None, ".", None, L.MS_SLAVE | L.MS_REC, None)  # no umount event reaches the host
            L.umount2(".", L.MNT_DETACH)
            os.fchdir(newroot)
        finally:
            os.close(oldroot)
            os.close(newroot)
    os.chdir("/")


def hide_outside_mounts(rootfs):
    """--no-pivot: MS_MOVE and chroot leave the rest of our mount namespace (copies of all the
    host's mounts) under the new root, out of sight but there. The kernel lets a user namespace
    mount a fresh procfs or sysfs only when one is already fully visible in its mount namespace
    (mount_too_revealing): the host's /proc and /sys, uncovered, would let any process of the
    container mount an unmasked procfs (unshare -mrpf ... mount -t proc). pivot_root detaches
    the old root; here every mount outside the rootfs that is not one of its ancestors goes
    (lazily, as a slave first so that no umount reaches the host), or, where the kernel refuses
    (mounts locked in a user namespace), is covered with an empty read-only tmpfs. A mount
    point the caller cannot reach (rootless: below a host directory only root may search, e.g.
    another program's 0700 temp dir) is out of the container's reach too, and is left, unless
    a full procfs or sysfs is mounted there or below: then we fail, naming it."""
    root = rootfs.rstrip("/") or "/"
    mounts = _mountinfo()
    outside = {}
    for mid, parent, mp, fsroot, fstype in mounts:
        if mp == root or mp.startswith(root + "/") or mp == "/" or root.startswith(mp + "/"):
            continue
        outside[mid] = (parent, mp, fsroot, fstype)
    # the top of each subtree outside: its whole subtree goes with it
    tops = {mp for parent, mp, _, _ in outside.values() if parent not in outside}
    for mp in sorted(tops, key=len):
        count = sum(1 for _, m, _, _ in outside.values() if m == mp)  # mounts stacked there
        for n in range(count):
            try:
                L.mount(None, mp, None, L.MS_SLAVE | L.MS_REC, None)
                L.umount2(mp, L.MNT_DETACH)
            except OSError as e:
                if e.errno == errno.ENOENT or n:
                    break  # gone with a parent, or nothing more stacked there
                if e.errno == errno.EACCES:
                    for _, m, fsroot, fstype in outside.values():
                        if (m == mp or m.startswith(mp + "/")) and fstype in ("proc", "sysfs") and fsroot == "/":
                            raise Error(f"--no-pivot: the {fstype} mounted on {m} cannot be hidden from "
                                        f"the container: {why(e)}") from None
                    break  # nothing there a container could use (mount_too_revealing)
                if e.errno not in (errno.EINVAL, errno.EPERM):
                    raise
                L.mount("tmpfs", mp, "tmpfs", L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC,
                        "size=4k,mode=0")
                break


def _unescape(field):
    """A mountinfo path field: octal escapes (\\040 is a space) undone."""
    if "\\" not in field:
        return field
    out, i = bytearray(), 0
    b = field.encode(errors="surrogateescape")
    while i < len(b):
        if b[i] == 0x5C and i + 3 < len(b) and b[i + 1:i + 4].isdigit():
            out.append(int(b[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(b[i])
            i += 1
    return out.decode(errors="surrogateescape")


def _mountinfo():
    """[(mount id, parent id, mount point, root in its filesystem, filesystem type)] of our mount
    namespace, read beneath the verified procfs, bounded."""
    from . import procfs
    fd = procfs.open("self/mountinfo", os.O_RDONLY)
    try:
        chunks, size = [], 0
        while size < (64 << 20):
            b = os.read(fd, 1 << 16)
            if not b:
                break
            chunks.append(b)
            size += len(b)
    finally:
        os.close(fd)
    out = []
    for line in b"".join(chunks).decode(errors="surrogateescape").splitlines():
        f = line.split(" ")
        if len(f) > 4:
            fstype = f[f.index("-", 6) + 1] if "-" in f[6:-1] else ""  # after the optional fields
            out.append((int(f[0]), int(f[1]), _unescape(f[4]), _unescape(f[3]), fstype))
    return out


def _open_existing(rootfd, path, field):
    """O_PATH fd of PATH resolved in the (new) root, or None when it does not exist."""
    try:
        return open_in_root(rootfd, path, mkdir=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise Error(f"{field}: {path}: {why(e)}") from None


def _dev_null(rootfd):
    """An O_PATH fd of the container's /dev/null, checked to really be the 1:3 character device:
    a container that replaced it (a symlink, a file, another device) must not get that bound
    over the masked paths (the CVE-2025-31133 class)."""
    try:
        fd = L.openat2(rootfd, "dev/null", os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW, 0,
                       L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        raise Error(f"linux.maskedPaths: /dev/null: {why(e)}") from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise Error("linux.maskedPaths: /dev/null is not the null character device (1:3)")
    return fd


def _make_cwd(rootfd, cwd):
    """process.cwd is made when the rootfs lacks it, as runc's init makes it: as the container's
    root, mode 0755 (less the umask), before anything is made read-only. Each component is looked
    up in the root (openat2 RESOLVE_IN_ROOT, no magic links: a cwd through /proc/self/fd/N or
    /proc/PID/root is refused) and made in the directory found for the components before it. A
    dangling symlink on the way fails, as with runc. No /proc is needed. `exec` makes no cwd: a
    missing --cwd fails there, as with runc."""
    res = L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS
    parts = [c for c in cwd.split("/") if c]
    try:
        for i in range(len(parts)):
            try:
                os.close(L.openat2(rootfd, "/".join(parts[:i + 1]), os.O_PATH | os.O_CLOEXEC, 0, res))
                continue
            except FileNotFoundError:
                pass
            parent = L.openat2(rootfd, "/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, res)
            try:
                os.mkdir(parts[i], 0o755, dir_fd=parent)
            except FileExistsError:
                pass  # made meanwhile, or a dangling symlink: the next lookup tells
            finally:
                os.close(parent)
        os.close(L.openat2(rootfd, "/".join(parts) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, res))
    except OSError as e:
        raise Error(f"process.cwd: {cwd}: making it in the container: {why(e)}") from None


def _readonly_now(rootfd, plan):
    """The read-only tmpfs mounts (and /dev), mounted read-write until now (see _deferred_ro):
    the mount at each destination is made read-only, as runc's finalizeRootfs does."""
    for p in plan.mounts:
        if not _deferred_ro(p):
            continue
        fd = _open_existing(rootfd, p.dest, f"mounts[{p.index}].destination")
        if fd is None:
            continue  # hidden by a later mount over a parent: nothing reaches it
        try:
            try:
                L.mount_setattr(fd, "", L.AT_EMPTY_PATH, L.MOUNT_ATTR_RDONLY, 0)
            except OSError as e:
                if e.errno != errno.ENOSYS:
                    raise
                t = fdpath(fd)  # kernels before 5.12
                L.mount(None, t, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | _locked_flags(t), None)
        except OSError as e:
            raise Error(f"mounts[{p.index}]: remount {p.dest} read-only: {why(e)}") from None
        finally:
            os.close(fd)


def finish_rootfs(plan):
    """After pivot_root: the process's cwd when missing, the read-only tmpfs mounts, readonly and
    masked paths, then a read-only root. Every path is opened in the root (no symlink leads out)
    and mounted on through its fd."""
    rp = plan.root_propagation
    if rp and not rp & L.MS_PRIVATE:
        # linux.rootfsPropagation is about the container's root: only now is it "/" (private
        # is already so: its parent was made private before the rootfs bind)
        try:
            L.mount(None, "/", None, rp, None)
        except OSError as e:
            raise Error(f"linux.rootfsPropagation: making / {_prop_name(rp)}: {why(e)}") from None
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _make_cwd(rootfd, plan.proc.cwd)
        _readonly_now(rootfd, plan)
        for path in plan.readonly_paths:
            fd = _open_existing(rootfd, path, "linux.readonlyPaths")
            if fd is None:
                continue
            try:
                # a read-only clone attached onto the fd: no second lookup of PATH, which a
                # process sharing a volume with us could have made lead elsewhere meanwhile
                # (see _mount_at)
                tree = L.open_tree(fd, "", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | L.AT_RECURSIVE | L.AT_EMPTY_PATH)
                try:
                    L.mount_setattr(tree, "", L.AT_EMPTY_PATH, L.MOUNT_ATTR_RDONLY, 0)
                    L.move_mount(tree, "", fd, "", L.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                finally:
                    os.close(tree)
            except OSError as e:
                raise Error(f"linux.readonlyPaths: {path}: {why(e)}") from None
            finally:
                os.close(fd)
        null = -1
        try:
            for path in plan.masked_paths:
                fd = _open_existing(rootfd, path, "linux.maskedPaths")
                if fd is None:
                    continue
                try:
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        L.mount("tmpfs", fdpath(fd), "tmpfs", L.MS_RDONLY, None)
                    else:
                        if null < 0:
                            null = _dev_null(rootfd)
                        # the checked null device, cloned and attached onto the checked fd
                        tree = L.open_tree(null, "", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | L.AT_EMPTY_PATH)
                        try:
                            L.move_mount(tree, "", fd, "", L.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                        finally:
                            os.close(tree)
                except OSError as e:
                    raise Error(f"linux.maskedPaths: {path}: {why(e)}") from None
                finally:
                    os.close(fd)
        finally:
            if null >= 0:
                os.close(null)
    finally:
        os.close(rootfd)
    if plan.root_readonly:
        try:
            L.mount(None, "/", None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | _locked_flags("/"), None)
        except OSError as e:
            raise Error(f"root.readonly: remount / read-only: {why(e)}") from None


def _prop_field(plan):
    return "linux.rootfsPropagation" if plan.root_propagation else "root.path"


def _prop_name(prop):
    """The mount(8) word for propagation flags PROP (rslave, private, ...)."""
    for flag, name in ((L.MS_SHARED, "shared"), (L.MS_SLAVE, "slave"), (L.MS_PRIVATE, "private"),
                       (L.MS_UNBINDABLE, "unbindable")):
        if prop & flag:
            return ("r" if prop & L.MS_REC else "") + name
    return hex(prop)
