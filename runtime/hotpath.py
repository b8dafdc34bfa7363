"""The hot path: what keeps pyrunc's short verbs fast, in one place.

Every pyrunc command is a fresh CPython: `state`, `kill`, `start`, `delete`, `list`, `pause`,
`resume`, `ps`, `events --stats`, `--version`, `features`, `help` and the runtime side of `exec`
pay the interpreter's start-up and every import on their path, and engines call them in loops
(containerd's shim polls `state`; podman runs `state`, `kill`, `delete` per container). runc does
a whole `state` in ~5 ms; CPython alone takes ~10 ms to start and stop, so on these verbs each
millisecond of imports is a tenth of the verb. The tricks, and what each one saves:

| trick | why | measured here: ms |
|---|---|---|
| bin/pyrunc runs `python -I -S` | site scans .pth files and imports more | 4.5 (site) |
| `_signal`, not `signal` (`sig`, `SIGKILL` here) | signal makes enums of its constants | 4.7 (signal) |
| `_socket`, not `socket` (`csocket()`, `seqpacket_pair()`) | socket imports enum, selectors | 7.6 (socket) |
| `json_loads`, `json_dumps`, `json_dumps_indent`: _json's C scanner and encoder | json imports re, enum | 8.4 (json) vs 0.4 (_json) |
| no re on a short verb (str methods; fastcheck's own pattern matchers) | re imports enum and its compiler | 6.5 (re) |
| ctypes only where os lacks the call (create, run, exec, --version, features) | _ctypes, libffi | 2.2 (ctypes) |
| jsonschema only when fastcheck cannot decide (runtime/config.py) | | 103 (jsonschema) |
| pyroute2 only for a config with netDevices (runtime/netdev.py) | | 181 (pyroute2) |
| `module_available()`, not importlib.util.find_spec | importlib.util imports contextlib, functools, collections | 5.8 (importlib.util) |
| os.uname(), not platform (runtime/linux) | platform imports re | 13.0 (platform) |
| plan records by hand (runtime/plan.Record), not @dataclass(frozen, slots) | dataclasses imports inspect, tokenize, re | 29 (dataclasses) |
| the schemas by path, not importlib.resources (runtime/schemas.py) | | 28.9 (importlib.resources) |
| subprocess only for ps's table and hooks | it imports signal, selectors, threading | 16.4 (subprocess) |
| compiled seccomp filters kept by profile (runtime/bpfcache.py): the init and exec load the program with one seccomp(2), no libseccomp | engines send one profile for every container | 20 (run, Docker's profile: 46 vs 67 ms; runc 49) |
| annotations' and sysctl's key pattern `.{1,}` without re (fastcheck._KNOWN) | every engine's config has one | 5-9 (re) |
| exec --process through json_document, not json | every engine's exec passes --process | 8-30 (json) |
| state, kill, start read the freezer state themselves (state.Container.frozen) | no runtime.cgroups | - |
| runtime.log only for --log, --log-format json, --debug or a first message (cli.dispatch) | podman's calls pass none | one module |
| no os on the short verbs' modules: posix (the C module os re-exports) and the path helpers here (`join`, `isdir`, `walk_dirs`, ...) | os runs _collections_abc's ABCs (for os.environ), posixpath imports os | 4.4M of a 28M-instruction `kill` (1.5 ms) |
| `exit_now()`: flush, then os._exit | skips the interpreter's teardown (module and object freeing) | 3.1 of an 18.0 ms `state` |
| `command_start()`: gen0 threshold GC_THRESHOLD | a verb's import-time objects hold no cycles worth a collection | 5 collections, 0.55 ms, on create's imports |

How measured (2 cores, kernel 6.18, Debian's statically linked python3.11, load ~2.2 from other
work): `python -m benchmarks.hotpath --reps 31`. Imports: `python -I -S -X importtime -c "import os;
import M"`, M's cumulative time, median of 31 fresh interpreters; site: `python -I -c pass` vs
`python -I -S -c pass`; exit: `state` of a stopped container ended by sys.exit vs os._exit, 31
interleaved spawns each; GC: gc.callbacks while importing the modules create imports. Read them as
±20 %. Where a whole verb's time goes: benchmarks/PROFILE.md.

What each short verb may import is asserted, per verb, by tests/unit/test_verb_imports.py: a new
import on one of these paths fails there with the module's name. Elsewhere in the package a
comment `# hot path: see runtime/hotpath.py` marks a lazy import or a shim kept for these reasons.

The modules a short verb imports (the list is in tests/unit/test_verb_imports.py: cli, errors,
state, lifecycle, testpoint, container, signals, log, cgroups, cgroupverbs, and this one) use
posix, never os or os.path: create, run and exec import os anyway, so a lazy `import os` in a
function only they call costs nothing. Instructions are counted with `valgrind --tool=callgrind`
(userspace only, repeatable whatever the load): `python -I -S -c "import posix; posix._exit(0)"`
is 15.7M, with `import os` 20.1M; a whole `kill` was 28.1M before.

This module imports nothing of its own but _json (a shared object, for the JSON helpers; _signal is
loaded at start-up). Lazy imports happen in the runtime process only: a process that will see the
container's files (the init, exec's child) must have imported everything it needs before, or it
would load the image's files as code (runtime/chain/__init__.py,
tests/security/test_sec_imports.py). csocket() and seqpacket_pair() import _socket (built in on
Debian's python, an extension module elsewhere): call them in the runtime process.
"""
import _json
import _signal as sig  # re-exported: the C signal module (no enum): sig.SIGKILL, sig.pidfd_send_signal, ...
import _stat
import posix
import sys

SIGKILL = sig.SIGKILL
GC_THRESHOLD = (100000, 50, 50)


# ------------------------------------------------------------------ the command's start and end
_COMMAND = False


def command_start():
    """For the pyrunc command only (not for Python code calling runtime.cli.main with argv): no
    gen0 collection while a verb imports, unless a long verb (events, a foreground run) piles up
    a hundred thousand objects."""
    global _COMMAND
    _COMMAND = True
    import gc
    gc.set_threshold(*GC_THRESHOLD)


def is_command():
    """Whether this process is the pyrunc command (command_start() ran), not Python code calling
    runtime.cli.main: only the command may end or replace the process (exit_now, selfexe)."""
    return _COMMAND


def exit_now(code):
    """End the pyrunc command with CODE without the interpreter's teardown: flush stdout and
    stderr, then os._exit. Returns CODE only when a flush failed (e.g. a closed pipe): the caller
    then exits normally and the interpreter reports it as before."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return code
    posix._exit(code)


# ------------------------------------------------------------------ paths without os.path
def join(a, *parts):
    """os.path.join for str paths (an absolute part starts over)."""
    for b in parts:
        if b.startswith("/"):
            a = b
        elif not a or a.endswith("/"):
            a += b
        else:
            a += "/" + b
    return a


def dirname(p):
    """os.path.dirname."""
    head = p[:p.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def normpath(p):
    """os.path.normpath for str paths."""
    if not p:
        return "."
    lead = 2 if p.startswith("//") and not p.startswith("///") else 1 if p.startswith("/") else 0
    out = []
    for c in p.split("/"):
        if c in ("", "."):
            continue
        if c != ".." or (not lead and not out) or (out and out[-1] == ".."):
            out.append(c)
        elif out:
            out.pop()
    p = "/" * lead + "/".join(out)
    return p or "."


def _mode(p, follow=True):
    try:
        return posix.stat(p, follow_symlinks=follow).st_mode
    except (OSError, ValueError):
        return None


def exists(p):
    """os.path.exists."""
    return _mode(p) is not None


def isdir(p):
    """os.path.isdir."""
    m = _mode(p)
    return m is not None and _stat.S_ISDIR(m)


def ismount(p):
    """os.path.ismount: another device than its parent's, or the same inode as it (/)."""
    try:
        st = posix.lstat(p)
        if _stat.S_ISLNK(st.st_mode):
            return False
        up = posix.lstat(join(p, ".."))
    except (OSError, ValueError):
        return False
    return st.st_dev != up.st_dev or st.st_ino == up.st_ino


def walk_dirs(top, topdown=True):
    """The directories of the tree at TOP (TOP first when TOPDOWN, else last), never through a
    symlink: os.walk's directory paths, for cgroup trees. A directory that cannot be listed (gone
    meanwhile) is skipped, as os.walk does."""
    try:
        with posix.scandir(top) as it:
            subs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    if topdown:
        yield top
    for s in subs:
        yield from walk_dirs(s, topdown)
    if not topdown:
        yield top


def fsdecode(name):
    """os.fsdecode of bytes (str unchanged)."""
    if isinstance(name, bytes):
        return name.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
    return name


# ------------------------------------------------------------------ shims
def csocket():
    """The C socket module (_socket, built in): sockets without socket.py's enum and selectors."""
    import _socket
    return _socket


def seqpacket_pair():
    """A close-on-exec AF_UNIX SOCK_SEQPACKET socketpair of _socket.socket objects."""
    import _socket
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)


def module_available(name):
    """importlib.util.find_spec(name) is not None, without importing importlib.util: asks the
    import system's finders (sys.meta_path) directly; a dotted name looks in its parent's path
    (the parent is imported, as find_spec does)."""
    if name in sys.modules:
        return True
    path = None
    if "." in name:
        parent = name.rpartition(".")[0]
        try:
            __import__(parent)
            path = sys.modules[parent].__path__
        except (ImportError, KeyError, AttributeError):
            return False
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None and find(name, path) is not None:
            return True
    return False


# ------------------------------------------------------------------ JSON without json
# The C scanner and encoder of _json (a shared object, imported above: never lazily, so it is
# never first looked for after a process sees the container's files), plus an indenting writer
# for the small documents runc prints.
class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity: as json.loads does
    memo = {}


_scan = _json.make_scanner(_Ctx())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_encode_utf8 = _json.make_encoder(None, None, _json.encode_basestring, None, ":", ",", False, False, True)
_WS = " \t\n\r"


def json_loads(text):
    """json.loads for str or bytes; ValueError when TEXT is not one JSON document."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    i = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, i)
    except (StopIteration, SystemError):
        # _json raises json.decoder.JSONDecodeError only when json.decoder is already imported;
        # otherwise its error path fails with SystemError
        raise ValueError("not a JSON document") from None
    finally:
        _Ctx.memo.clear()
    if text[end:].strip(_WS):
        raise ValueError(f"extra data at {end}")
    return obj


def json_document(raw):
    """RAW (bytes from a file) as one JSON document, json.loads' verdict and words: the C scanner
    first; json itself only to word an error (it also reads UTF-16/32 and a BOM). ValueError
    with json's message when RAW is not one document, nested too deeply included."""
    try:
        return json_loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        import json
        try:
            return json.loads(raw)
        except RecursionError:
            raise ValueError("nested too deeply") from None


def json_dumps(obj, ensure_ascii=True):
    """Compact JSON (no spaces) like json.dumps(separators=(",", ":")): ASCII-escaped, or with
    ensure_ascii=False, non-ASCII characters as they are (as Go's encoder)."""
    return "".join((_encode if ensure_ascii else _encode_utf8)(obj, 0))


def json_dumps_indent(obj, indent="  ", _level=0):
    """json.dumps(obj, indent=INDENT) for dicts and lists of plain values."""
    if isinstance(obj, dict) and obj:
        pad = "\n" + indent * (_level + 1)
        items = [pad + _json.encode_basestring_ascii(str(k)) + ": " + json_dumps_indent(v, indent, _level + 1)
                 for k, v in obj.items()]
        return "{" + ",".join(items) + "\n" + indent * _level + "}"
    if isinstance(obj, list) and obj:
        pad = "\n" + indent * (_level + 1)
        items = [pad + json_dumps_indent(v, indent, _level + 1) for v in obj]
        return "[" + ",".join(items) + "\n" + indent * _level + "]"
    return json_dumps(obj)
