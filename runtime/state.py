"""Per-container state under --root: ROOT/ID/state.json, the exec FIFO, and the lock.

state.json is written atomically (write to a temp file, rename). A command that changes a container
holds an exclusive flock on the container's directory for its whole run, so two commands on one id
never interleave. The status is computed from the kernel, never trusted from the file.

The --root directory is followed like any path (as runc does: it is the caller's choice), but
ROOT/ID itself is opened with O_NOFOLLOW | O_DIRECTORY and everything inside it (state.json and
its temp file, the exec FIFO, the removal at delete) is done relative to that descriptor, never
following a symlink. A symlink or non-directory at ROOT/ID is refused: with a shared or rootless
--root, whoever can write ROOT must not turn `delete` into an `rm` of another directory, or
`state` into a read of another file. state.json is read only when it is a regular file (opened
non-blocking: a FIFO there never hangs us), and at most MAX_STATE bytes of it.
"""
import _stat
import fcntl
import posix  # not os (hot path: see runtime/hotpath.py)

from . import hotpath
from .hotpath import join
from .errors import Error, NotExist, why

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
FIFO = "exec.fifo"
STATE = "state.json"
MAX_STATE = 256 << 20  # the annotations and process of a config.json (at most 128 MiB), and little else
_DIR = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC
_ELOOP, _ENOTDIR, _EEXIST = 40, 20, 17


def check_id(cid):
    if not cid:
        raise Error("container id cannot be empty")
    if not _ID_CHARS.issuperset(cid) or cid in (".", "..") or len(cid) > 1024:
        raise Error(f"invalid container id {cid!r}: only letters, digits, '_', '+', '-' and '.' are allowed")


def ensure_root(root):
    import os  # create and run only: loaded already
    try:
        os.makedirs(root, mode=0o711, exist_ok=True)
    except OSError as e:
        raise Error(f"cannot create state root {root}: {why(e)}{_no_root_hint(e)}") from None


def _no_root_hint(e):
    if isinstance(e, PermissionError) and posix.geteuid() != 0:
        return " (without root, pass --root DIR or set XDG_RUNTIME_DIR)"
    return ""


class Container:
    """A handle on ROOT/ID; `data` is the saved state.json contents. While locked, _lockfd is the
    state dir's descriptor, and every file operation inside it goes through that descriptor."""

    def __init__(self, root, cid):
        check_id(cid)
        self.root = root
        self.id = cid
        self.dir = join(root, cid)
        self.data = None
        self._lockfd = -1

    # ---- creation and locking ----
    def make(self):
        """Claim the id: the state dir appears already locked (made and flocked under a private
        name, then renamed into place without replacing), so of racing creators exactly one wins
        and no other command ever sees it unlocked before the creator holds it."""
        ensure_root(self.root)
        rootfd = _open_root(self.root)
        tmp = f".{self.id}.{posix.getpid()}.claim"
        try:
            try:
                posix.mkdir(tmp, 0o711, dir_fd=rootfd)
            except OSError as e:
                raise Error(f"cannot create state dir {self.dir}: {why(e)}{_no_root_hint(e)}") from None
            fd = posix.open(tmp, _DIR, dir_fd=rootfd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            err = _renameat_noreplace(rootfd, tmp, self.id)
            if err:
                posix.close(fd)
                posix.rmdir(tmp, dir_fd=rootfd)
                if err == _EEXIST:
                    raise Error(f"container with id {self.id} already exists")
                raise Error(f"cannot create state dir {self.dir}: {why(OSError(err, posix.strerror(err)))}")
        finally:
            posix.close(rootfd)
        self._lockfd = fd

    def lock(self, shared=False):
        """flock the state dir. ROOT/ID must be a directory: a symlink there is refused, never
        followed (O_NOFOLLOW fails with ELOOP on it)."""
        try:
            fd = posix.open(self.dir, _DIR)
        except FileNotFoundError:
            raise NotExist(self.id) from None
        except OSError as e:
            if e.errno in (_ELOOP, _ENOTDIR):
                raise Error(f"state directory {self.dir} is not a directory (a symlink or another "
                            f"file): refusing to use it") from None
            raise Error(f"cannot open state directory {self.dir}: {why(e)}") from None
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        self._lockfd = fd
        return self

    def open(self, shared=False):
        """Lock and load an existing container (NotExist when unknown or already deleted)."""
        self.lock(shared)
        if posix.fstat(self._lockfd).st_nlink == 0:
            self.unlock()  # a delete that won the lock first removed it
            raise NotExist(self.id)
        self.data = self.read()
        if self.data is None:
            # a creator that died before its first write, or a state.json that is not ours to
            # trust (not a regular file, too large, not JSON): shown as stopped, delete removes it
            self.data = {"id": self.id, "pid": 0, "status": "creating", "broken": True}
            try:
                posix.stat(STATE, dir_fd=self._lockfd, follow_symlinks=False)
            except OSError:
                return self  # never written: the creator died early (nothing else to clean)
            from . import log  # written atomically by us: someone else put this one there
            log.warning(f"container {self.id}: its state.json is not a regular file of JSON under "
                        f"{MAX_STATE >> 20} MiB: treated as stopped; what it named (processes, "
                        f"cgroups) is not cleaned up")
        return self

    def unlock(self):
        if self._lockfd >= 0:
            posix.close(self._lockfd)
            self._lockfd = -1

    # ---- state.json ----
    def read(self):
        """state.json as a dict; None when missing or not a bounded regular file of JSON."""
        try:
            fd = posix.open(STATE, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK | posix.O_CLOEXEC,
                         dir_fd=self._lockfd)
        except OSError:
            return None  # missing, or a symlink (ELOOP)
        try:
            st = posix.fstat(fd)
            if not _stat.S_ISREG(st.st_mode) or st.st_size > MAX_STATE:
                return None
            chunks, n = [], 0
            while n <= MAX_STATE:
                b = posix.read(fd, min(1 << 20, MAX_STATE + 1 - n))
                if not b:
                    break
                chunks.append(b)
                n += len(b)
            if n > MAX_STATE:
                return None
            data = hotpath.json_loads(b"".join(chunks))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError, RecursionError):
            return None
        finally:
            posix.close(fd)

    def write(self, data=None):
        if data is not None:
            self.data = data
        dfd = self._lockfd
        tmp = f".{STATE}.tmp"
        try:
            posix.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_NOFOLLOW | posix.O_CLOEXEC, 0o600,
                     dir_fd=dfd)
        try:
            b = hotpath.json_dumps(self.data).encode()
            if len(b) > MAX_STATE:  # it could never be read back: refuse it now, not at delete
                raise Error(f"state of container {self.id}: larger than {MAX_STATE >> 20} MiB")
            while b:
                b = b[posix.write(fd, b):]
        finally:
            posix.close(fd)
        posix.rename(tmp, STATE, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces a link, never follows it

    # ---- the exec FIFO (created, opened and removed inside the state dir) ----
    def make_fifo(self):
        posix.mkfifo(FIFO, 0o622, dir_fd=self._lockfd)

    def open_fifo(self, flags):
        """Open exec.fifo; OSError when it is missing or is not a FIFO (never follows a link)."""
        fd = posix.open(FIFO, flags | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=self._lockfd)
        if not _stat.S_ISFIFO(posix.fstat(fd).st_mode):
            posix.close(fd)
            raise OSError(6, "exec.fifo is not a FIFO")  # ENXIO, as a FIFO without reader
        return fd

    def unlink_fifo(self):
        try:
            posix.unlink(FIFO, dir_fd=self._lockfd)
        except FileNotFoundError:
            pass

    def has_fifo(self):
        """Whether exec.fifo (whatever it is) is there; looked at, never followed."""
        try:
            posix.stat(FIFO, dir_fd=self._lockfd, follow_symlinks=False)
            return True
        except OSError:
            return False

    @property
    def fifo(self):
        return join(self.dir, FIFO)  # for messages only: open it with open_fifo()

    def owner(self):
        """The uid owning the state dir (runc's `list` shows it: the rootless user)."""
        return posix.fstat(self._lockfd).st_uid

    def remove(self):
        """Remove the state dir (the last step of delete): its entries by name relative to the
        state dir's descriptor (a symlink inside goes, not what it points to), then ROOT/ID
        itself, only when it is still the directory we hold."""
        dfd = self._lockfd
        _empty_dir(dfd)
        rootfd = _open_root(self.root)
        try:
            here = posix.stat(self.id, dir_fd=rootfd, follow_symlinks=False)
            mine = posix.fstat(dfd)
            if (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
                posix.rmdir(self.id, dir_fd=rootfd)
        finally:
            posix.close(rootfd)
        self.unlock()

    # ---- status from the kernel ----
    def status(self):
        d = self.data
        pid = d.get("pid") or 0
        if not pid:
            creator = d.get("creator") or 0
            if d.get("status") == "creating" and creator and proc_alive(creator, d.get("creator_start")):
                return "creating"
            return "stopped"
        if not proc_alive(pid, d.get("pid_start")):
            return "stopped"
        if d.get("status") == "creating":
            creator = d.get("creator") or 0
            if creator and proc_alive(creator, d.get("creator_start")):
                return "creating"
            # the creator died after the init was ready: what the init does now is the truth
        # frozen first, as runc: a created container can be paused too
        if self.frozen():
            return "paused"
        if self.has_fifo():
            # a start killed between its fifo write and the unlink leaves the fifo: the init has
            # then left its waiting code (its comm is no longer the init's)
            if proc_comm(pid) == INIT_COMM:
                return "created"
            return "running"
        return "running"

    def frozen(self):
        """cgroups.Manager.frozen() on the saved paths, without importing runtime.cgroups (state,
        start and kill need nothing else of it; hot path: see runtime/hotpath.py): the v1 freezer,
        else the cgroup2 cgroup.freeze."""
        cg = self.data.get("cgroup")
        if not cg:
            return False
        paths = cg.get("paths") or {}
        d = None if cg.get("mode") == "v2" else paths.get("freezer")
        try:
            if d:
                with open(join(d, "freezer.state"), "rb") as f:
                    return f.read().strip() == b"FROZEN"
            d2 = paths.get("")
            if d2:
                with open(join(d2, "cgroup.freeze"), "rb") as f:
                    return f.read().strip() == b"1"
        except OSError:
            pass
        return False


def _open_root(root):
    """--root itself is followed like any path, as runc does (it is the caller's choice)."""
    try:
        # O_PATH: a dirfd for the *at calls needs no read permission (root's 0711 /run/pyrunc)
        return posix.open(root, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except FileNotFoundError:
        raise Error(f"state root {root} does not exist") from None
    except OSError as e:
        raise Error(f"cannot open state root {root}: {why(e)}{_no_root_hint(e)}") from None


def _renameat_noreplace(dfd, old, new):
    """renameat2(RENAME_NOREPLACE) of OLD to NEW, both in the directory DFD; 0 or the errno."""
    import ctypes
    from .linux import _libc  # create imports it anyway (ctypes)
    if _libc.renameat2(ctypes.c_int(dfd), old.encode(), ctypes.c_int(dfd), new.encode(), ctypes.c_uint(1)) < 0:
        return ctypes.get_errno()
    return 0


def _empty_dir(dfd, depth=0):
    """Remove every entry of the directory open at DFD, each by name relative to DFD; a
    subdirectory (none of ours: someone else made it) is emptied through its own O_NOFOLLOW fd."""
    for name in posix.listdir(dfd):
        try:
            posix.unlink(name, dir_fd=dfd)
        except IsADirectoryError:
            if depth >= 16:
                continue
            try:
                sub = posix.open(name, _DIR, dir_fd=dfd)
            except OSError:
                continue
            try:
                _empty_dir(sub, depth + 1)
            finally:
                posix.close(sub)
            try:
                posix.rmdir(name, dir_fd=dfd)
            except OSError:
                pass
        except FileNotFoundError:
            pass


def list_ids(root):
    """The ids under ROOT: real directories only; a symlink (or anything else) is skipped, never
    followed (as runc's list, which keeps only directory entries)."""
    try:
        it = posix.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the comm field may hold spaces and parentheses: split after the last ')'
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


INIT_COMM = b"pyrunc:init"  # set by runtime/chain/init.py until execve


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


def proc_alive(pid, start):
    st = proc_start_time(pid)
    return st is not None and (start is None or st == start)
