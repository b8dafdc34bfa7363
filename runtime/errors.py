"""The one exception type users see: its message is printed as a one-line runc-style error."""
import posix  # not os (hot path: see runtime/hotpath.py)


class Error(Exception):
    """A failure with a message the user can act on (names the field, object or id)."""


class NotExist(Error):
    """The container id is unknown."""

    def __init__(self, cid):
        super().__init__(f"container {cid} does not exist")


def why(e):
    """The reason an exception gives, for the end of a one-line message whose caller names the
    field and the object itself: an OSError's kernel message (its strerror, which runtime/linux
    keeps free of context) with a lowercase first letter, as runc prints an errno ("no such
    device"); str(e) for anything else."""
    s = getattr(e, "strerror", None)
    if not s:
        return str(e)
    if e.errno and s == posix.strerror(e.errno):
        return s[:1].lower() + s[1:]
    return s


def describe(e):
    """An OSError as one runc-style line when nobody added context: "PATH: message", or
    "SOURCE to TARGET: message" for a two-path call (mount, rename, move_mount); the syscall's
    name stands in for the path of an fd-only call (runtime/linux). Anything else: why(e)."""
    name = getattr(e, "filename", None)
    if name is None:
        return why(e)
    where = _text(name)
    if getattr(e, "filename2", None) is not None:
        where += f" to {_text(e.filename2)}"
    return f"{where}: {why(e)}"


def _text(name):
    if isinstance(name, bytes):
        from .hotpath import fsdecode
        return fsdecode(name)
    return str(name)


def unexpected(e):
    """An exception nobody turned into an Error (a bug of ours, or a case not foreseen) as the
    end of a one-line message: what it says, never its Python class name (issue 18). An OSError
    is described as describe() does; a message-less one says so."""
    if isinstance(e, OSError):
        return describe(e)
    if isinstance(e, KeyError) and e.args:
        return f"missing key {e.args[0]}"
    if isinstance(e, MemoryError):
        return "out of memory"
    text = " ".join(str(e).split())
    return text or "unexpected failure"
