"""runc-style log lines: text (time="..." level=error msg="...") or JSON ({"level","msg","time"}).

Where lines go, as runc sends them:
  - with --log FILE: to FILE only (opened once, O_APPEND, created at start even when nothing is
    logged; a FILE that cannot be opened fails the command, as runc's "open FILE: ..."). The
    command's own failure (fatal()) also prints its bare message on stderr, where a person looks.
  - without --log: to stderr, in the --log-format chosen (text or JSON).
Levels: error and warning always; debug only with --debug.

No logging module: nothing here may take a lock a forked child could inherit.

Debug lines cost nothing when --debug is off: debug() is one test of a module flag (callers whose
message is costly to build test `log.DEBUG` first).

The contract for the processes the runtime forks (the intermediate, the container's init, exec's
process), so that their debug lines reach the same sink as the runtime's:
  1. configure() runs in the runtime, before any fork. The sink is then a descriptor of its own:
     the --log file, or, with --debug and no --log, a dup of the runtime's stderr (so it stays the
     runtime's stderr after the init dup2()s the container's stdio or pty onto 0, 1, 2). Either
     is O_CLOEXEC: the container's program never inherits it, execve() closes it.
  2. A child writes to it with debug() only, and only before its execve(): one write(2) per
     line (the message cut to _MSG_MAX characters), appended whole to the file, not interleaved
     with another process's line on a pipe. The child's errors go to the runtime over the sync
     channel, never through error()/warning() (those use sys.stderr, which in the child may be
     the container's).
  3. The child imports nothing after it stops seeing the host's files: a module of the chain that
     logs imports runtime.log at its top (chain/* is imported before the fork: chain.preload_init).
  4. The descriptor is in the child while it runs the container's setup, but the container cannot
     reach it: the init and exec's process are non-dumpable before they touch the container
     (no ptrace, no /proc/PID/fd), and the message text is escaped (a newline, a quote from a
     container-named path cannot forge a line).
  5. The descriptor is kept above the --preserve-fds range (keep_above(), called by the command
     line before the verb runs): it must never be taken for a descriptor the caller passed.
"""
import posix  # not os (hot path: see runtime/hotpath.py)
import sys
import time

from .hotpath import json_dumps  # hot path: see runtime/hotpath.py

_MSG_MAX = 3000  # characters of a debug message kept: a line fits one atomic pipe write (4096)
DEBUG = False    # --debug: whether debug() writes

_fd = -1          # the sink's descriptor: the --log file, or (--debug only) a dup of stderr
_to_file = False  # --log FILE given: error and warning lines go there, not to stderr
_json = False


def configure(path=None, fmt="text", debug=False):
    """Set the sink up (see the module's doc). Raises OSError when PATH cannot be opened."""
    global _fd, _to_file, _json, DEBUG
    if _fd >= 0:  # a second configure (Python code calling cli.main again): the old sink goes
        try:
            posix.close(_fd)
        except OSError:
            pass
    _fd, _to_file, _json, DEBUG = -1, False, fmt == "json", False
    if path:
        _fd = posix.open(path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o644)
        _to_file = True
    elif debug:
        try:
            _fd = posix.dup(2)  # non-inheritable (O_CLOEXEC), as every fd Python makes
        except OSError:
            _fd = -1
    DEBUG = bool(debug)


def keep_above(n):
    """Move the sink's descriptor to N or above (N: 3 + --preserve-fds), so that a descriptor
    number the caller left free in the passed range is never our log file."""
    global _fd
    if 0 <= _fd < n:
        import fcntl
        new = fcntl.fcntl(_fd, fcntl.F_DUPFD_CLOEXEC, n)
        posix.close(_fd)
        _fd = new


def _ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _line(level, msg, as_json):
    if as_json:
        return json_dumps({"level": level, "msg": msg, "time": _ts()}) + "\n"
    esc = msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'time="{_ts()}" level={level} msg="{esc}"\n'


def _write(fd, data):
    try:
        posix.write(fd, data)
    except OSError:
        pass  # a log that cannot be written never fails the command


def _emit(level, msg):
    line = _line(level, msg, _json)
    if _to_file:
        _write(_fd, line.encode(errors="replace"))
        return
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def error(msg):
    _emit("error", msg)


def warning(msg):
    _emit("warning", msg)


def fatal(msg):
    """The command's own failure: an error line, and with --log the bare message on stderr too."""
    _emit("error", msg)
    if _to_file:
        try:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def debug(msg):
    """A debug line, with --debug only; safe in a forked child before its execve (the contract
    above): one write(2) to the sink's own descriptor, no buffer, no lock."""
    if DEBUG and _fd >= 0:
        _write(_fd, _line("debug", msg[:_MSG_MAX], _json).encode(errors="replace"))
