"""Per-container state under --root: ROOT/ID/state.json, the exec FIFO, and the lock.

state.json is written atomically (write to a temp file, rename). A command that changes a container
holds an exclusive flock on the container's directory for its whole run, so two commands on one id
never interleave. The status is computed from the kernel, never trusted from the file.
"""
import fcntl
import os

from . import fastjson
from .errors import Error, NotExist

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
FIFO = "exec.fifo"
STATE = "state.json"


def check_id(cid):
    if not cid:
        raise Error("container id cannot be empty")
    if not _ID_CHARS.issuperset(cid) or cid in (".", "..") or len(cid) > 1024:
        raise Error(f"invalid container id {cid!r}: only letters, digits, '_', '+', '-' and '.' are allowed")


def ensure_root(root):
    try:
        os.makedirs(root, mode=0o711, exist_ok=True)
    except OSError as e:
        raise Error(f"cannot create state root {root}: {e.strerror}{_no_root_hint(e)}") from None


def _no_root_hint(e):
    if isinstance(e, PermissionError) and os.geteuid() != 0:
        return " (without root, pass --root DIR or set XDG_RUNTIME_DIR)"
    return ""


class Container:
    """A handle on ROOT/ID; `data` is the saved state.json contents."""

    def __init__(self, root, cid):
        check_id(cid)
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.data = None
        self._lockfd = -1

    # ---- creation and locking ----
    def make(self):
        """Claim the id: the state dir appears already locked (made and flocked under a private
        name, then renamed into place without replacing), so of racing creators exactly one wins
        and no other command ever sees it unlocked before the creator holds it."""
        ensure_root(self.root)
        tmp = os.path.join(self.root, f".{self.id}.{os.getpid()}.claim")
        try:
            os.mkdir(tmp, 0o711)
        except OSError as e:
            raise Error(f"cannot create state dir {self.dir}: {e.strerror}{_no_root_hint(e)}") from None
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        from . import linux
        try:
            linux.rename_noreplace(tmp, self.dir)
        except OSError as e:
            os.close(fd)
            os.rmdir(tmp)
            if isinstance(e, FileExistsError):
                raise Error(f"container with id {self.id} already exists") from None
            raise Error(f"cannot create state dir {self.dir}: {e.strerror}") from None
        self._lockfd = fd

    def lock(self, shared=False):
        """flock the state dir; for an existing container, load state.json after the lock is held."""
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotExist(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        self._lockfd = fd
        return self

    def open(self, shared=False):
        """Lock and load an existing container (NotExist when unknown or already deleted)."""
        self.lock(shared)
        self.data = self.read()
        if self.data is None:
            # a creator that died before its first write, or a delete that won the lock first
            if not os.path.isdir(self.dir):
                raise NotExist(self.id)
            self.data = {"id": self.id, "pid": 0, "status": "creating", "broken": True}
        return self

    def unlock(self):
        if self._lockfd >= 0:
            os.close(self._lockfd)
            self._lockfd = -1

    # ---- state.json ----
    def read(self):
        try:
            with open(os.path.join(self.dir, STATE), "rb") as f:
                return fastjson.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            return None

    def write(self, data=None):
        if data is not None:
            self.data = data
        tmp = os.path.join(self.dir, f".{STATE}.tmp")
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(self.data))
        os.rename(tmp, os.path.join(self.dir, STATE))

    @property
    def fifo(self):
        return os.path.join(self.dir, FIFO)

    def remove(self):
        """Remove the state dir (the last step of delete)."""
        for name in os.listdir(self.dir):
            try:
                os.unlink(os.path.join(self.dir, name))
            except IsADirectoryError:
                pass
        os.rmdir(self.dir)
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
        if d.get("paused_check", True) and self.frozen():
            return "paused"
        if os.path.exists(self.fifo):
            # a start killed between its fifo write and the unlink leaves the fifo: the init has
            # then left its waiting code (its comm is no longer the init's)
            if proc_comm(pid) == INIT_COMM:
                return "created"
            return "running"
        return "running"

    def frozen(self):
        """cgroups.Manager.frozen() on the saved paths, without importing runtime.cgroups (state,
        start and kill need nothing else of it): the v1 freezer, else the cgroup2 cgroup.freeze."""
        cg = self.data.get("cgroup")
        if not cg:
            return False
        paths = cg.get("paths") or {}
        d = None if cg.get("mode") == "v2" else paths.get("freezer")
        try:
            if d:
                with open(os.path.join(d, "freezer.state"), "rb") as f:
                    return f.read().strip() == b"FROZEN"
            d2 = paths.get("")
            if d2:
                with open(os.path.join(d2, "cgroup.freeze"), "rb") as f:
                    return f.read().strip() == b"1"
        except OSError:
            pass
        return False


def list_ids(root):
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))


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


INIT_COMM = b"pyrunc:init"  # set by runtime/init.py until execve


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


def proc_alive(pid, start):
    st = proc_start_time(pid)
    return st is not None and (start is None or st == start)
