"""Idmapped bind mounts (config.md "Mounts": `idmap`/`ridmap` with `uidMappings`/`gidMappings`).

Built in the runtime process, on the host, before the init exists: the source tree is cloned
detached (open_tree OPEN_TREE_CLONE), given the mapping of a user namespace made for the purpose
(mount_setattr MOUNT_ATTR_IDMAP), and the init later attaches it with move_mount. The init
inherits the tree fds through clone; they are O_CLOEXEC so none reaches the user program.

In a container with its own user namespace the kernel refuses to attach a tree made in the host's
mount namespace (EINVAL), so there the init clones the tree itself, in its own mount namespace,
asks the runtime over the sync socket ("idmap:<mount index>:<fd>"), and the runtime, which has
the privilege over the source filesystem that the init lacks, fetches that fd (pidfd_getfd) and
idmaps it; the init then attaches it.

Also here, the same concern for plain bind mounts in a user namespace (serve_sources): the
runtime opens their sources for the init, which may not be allowed to look them up. Not as trees
made on the host: a tree attached in the container's namespace carries none of the locks the
kernel puts on the mounts a less privileged namespace inherits (a read-only host mount could be
remounted read-write from the container); the init binds from an O_PATH fd of its own
namespace's copy instead.
"""
import os
import signal

from . import linux as L
from .errors import Error, why

AT_FDCWD = -100


def _userns(uid_maps, gid_maps, field):
    """An fd of a fresh user namespace with those mappings, held by a short-lived helper."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = L.clone(L.CLONE_NEWUSER)
    except OSError as e:
        os.close(r)
        os.close(w)
        raise Error(f"config.json: {field}: cannot make a user namespace for the idmapped mount: "
                    f"{why(e)}") from None
    if pid == 0:  # helper: exists only to own the namespace until the parent has its fd
        os.close(w)
        try:
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    try:
        from . import idmaps
        idmaps.write_maps(pid, uid_maps, gid_maps, field)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(w)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def prepare(plan):
    """The detached, idmapped tree of every idmap/ridmap mount of PLAN: {mount index: fd}."""
    nsfds, trees = {}, {}
    try:
        for p in plan.mounts:
            if not p.idmap:
                continue
            field = f"mounts[{p.index}]"
            uids = p.uid_mappings or plan.uid_mappings
            gids = p.gid_mappings or plan.gid_mappings
            key = (repr(uids), repr(gids))
            if key not in nsfds:
                nsfds[key] = _userns(uids, gids, field)
            rec = L.AT_RECURSIVE if p.flags & L.MS_REC else 0
            try:
                fd = L.open_tree(AT_FDCWD, p.source, L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | rec)
            except OSError as e:
                raise Error(f"config.json: {field}.source: {p.source}: {why(e)}") from None
            trees[p.index] = fd
            try:
                L.mount_setattr(fd, "", L.AT_EMPTY_PATH | (L.AT_RECURSIVE if p.idmap == "ridmap" else 0),
                                L.MOUNT_ATTR_IDMAP, 0, 0, nsfds[key])
            except OSError as e:
                raise Error(f"config.json: {field}.options: {p.idmap}: {p.source}: the kernel refused an "
                            f"idmapped mount here: {why(e)}") from None
    except BaseException:
        close(trees)
        raise
    finally:
        for fd in nsfds.values():
            os.close(fd)
    return trees


def request(ch, p, source):
    """Init side, user namespace case: a detached clone of P's SOURCE (its path, or the
    /proc/self/fd link of the fd the runtime opened for us: serve_sources), idmapped by the
    runtime."""
    from . import sync
    rec = L.AT_RECURSIVE if p.flags & L.MS_REC else 0
    fd = L.open_tree(AT_FDCWD, source, L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | rec)
    ch.send(sync.IDMAP, b"%d:%d" % (p.index, fd))
    if ch.recv()[0] != sync.OK:
        os._exit(1)  # the runtime failed (it reports why) or died
    return fd


def serve(plan, pid, msg):
    """Runtime side of request()."""
    index, childfd = msg.split(b":")
    p = plan.mounts[int(index)]
    field = f"mounts[{p.index}]"
    try:
        pidfd = L.pidfd_open(pid)
        try:
            fd = L.pidfd_getfd(pidfd, int(childfd))
        finally:
            os.close(pidfd)
    except OSError as e:
        raise Error(f"{field}: getting the mount fd of the init: {why(e)}") from None
    nsfd = -1
    try:
        nsfd = _userns(p.uid_mappings or plan.uid_mappings, p.gid_mappings or plan.gid_mappings, field)
        L.mount_setattr(fd, "", L.AT_EMPTY_PATH | (L.AT_RECURSIVE if p.idmap == "ridmap" else 0),
                        L.MOUNT_ATTR_IDMAP, 0, 0, nsfd)
    except OSError as e:
        raise Error(f"config.json: {field}.options: {p.idmap}: {p.source}: the kernel refused an "
                    f"idmapped mount here: {why(e)}") from None
    finally:
        os.close(fd)
        if nsfd >= 0:
            os.close(nsfd)


def serve_sources(plan, ch, pid, msg):
    """Runtime side of rootfs.bind_sources: the init, in its user namespace, may not be able to
    look up a bind mount's source (a 0700 directory of the host's root on the way). A short-lived
    child of ours joins the init's mount namespace (so the fds are of that namespace's mounts,
    which the init may bind from), opens each requested source O_PATH with our privilege, as
    runc's runtime side does, and sends the fds on the init's channel (SCM_RIGHTS) with the list
    of the mounts they are for. A source that does not open is left out: the init then mounts
    it by path and reports the kernel's error for it. We wait for the child: only then is the
    channel ours again."""
    want = [int(i) for i in msg.split(b",") if i]
    if any(i < 0 or i >= len(plan.mounts) or not plan.mounts[i].bind for i in want):
        raise Error("sync: a request for a mount that is not a bind mount")
    try:
        nsfd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise Error(f"mounts: the mount namespace of the init: {why(e)}") from None
    try:
        child = os.fork()
        if child == 0:
            _send_sources(plan, ch, nsfd, want)  # never returns
    finally:
        os.close(nsfd)
    status = _wait(child, SOURCES_TIMEOUT)
    if status is None:
        raise Error(f"mounts: opening the bind mount sources for the user namespace took longer than "
                    f"{SOURCES_TIMEOUT:g} s (a hung filesystem?)")
    if status != 0:
        raise Error("mounts: opening the bind mount sources for the user namespace failed")


SOURCES_TIMEOUT = 60.0


def _wait(pid, timeout):
    """The wait status of our child PID, waited for up to TIMEOUT seconds (its pidfd polled: no
    sleeping loop); None when it was late (it is killed and reaped then)."""
    import select
    pidfd = L.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        late = not p.poll(int(timeout * 1000))
    finally:
        os.close(pidfd)
    if late:
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    return None if late else status


def _send_sources(plan, ch, nsfd, want):
    code = 1
    try:
        import array
        from . import sync
        from .hotpath import csocket
        _socket = csocket()
        L.setns(nsfd, L.CLONE_NEWNS)
        got, fds = [], []
        for i in want:
            try:
                fds.append(os.open(plan.mounts[i].source, os.O_PATH | os.O_CLOEXEC))
            except OSError:
                continue  # the init's own mount(2) by path says why
            got.append(i)
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        ch.sock.sendmsg([sync.OK + b":" + b",".join(b"%d" % i for i in got)], anc)
        code = 0
    except BaseException:  # noqa: BLE001 - a forked child never unwinds into the runtime
        pass
    os._exit(code)


def close(trees):
    """The runtime's copies of the tree fds, once the init has its own."""
    while trees:
        os.close(trees.popitem()[1])
