"""pyrunc's command line: runc's global flags, verbs and flag names, parsed from one table.

Flags come before positional arguments, as in runc (everything after the first positional argument,
or after "--", is positional). Errors become one runc-style line on stderr and exit status 1.
"""
import os
import sys

from . import __version__, SPEC_VERSION, hotpath
from .errors import Error, describe

B, S, I, L = "bool", "str", "int", "list"  # flag kinds

GLOBAL = [
    ("root", None, S, "root directory for storage of container state "
     "(default: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc without root)", None),
    ("log", None, S, "log file for errors and warnings (default: stderr only)", None),
    ("log-format", None, S, "log format: text or json", "text"),
    ("debug", None, B, "enable debug output, with tracebacks", False),
    ("systemd-cgroup", None, B, "use systemd for cgroups (not available: no systemd)", False),
    ("rootless", None, S, "rootless mode: true, false or auto", "auto"),
    ("criu", None, S, "path to criu (checkpoint is not supported)", "criu"),
    ("version", "v", B, "print the version", False),
    ("help", "h", B, "show help", False),
]

PID_FILE = ("pid-file", None, S, "file to write the container's init pid to", None)
BUNDLE = ("bundle", "b", S, "path to the bundle (default: current directory)", None)
NO_PIVOT = ("no-pivot", None, B, "do not use pivot_root (MS_MOVE + chroot instead)", False)
PRESERVE = ("preserve-fds", None, I, "pass N extra fds (3..3+N-1) to the container", 0)
CONSOLE = ("console-socket", None, S, "unix socket to send the pty master to", None)
NO_NEW_KEYRING = ("no-new-keyring", None, B, "do not create a new session keyring", False)
COMMON_CREATE = [BUNDLE, CONSOLE, PID_FILE, NO_PIVOT, NO_NEW_KEYRING, PRESERVE]

VERBS = {
    "create": ("create a container (it waits for start)", "[flags] ID", COMMON_CREATE, 1, 1),
    "start": ("start a created container", "ID", [], 1, 1),
    "run": ("create and start a container", "[flags] ID",
            COMMON_CREATE + [("detach", "d", B, "detach from the container", False),
                             ("keep", None, B, "keep the container's state after it exits", False)], 1, 1),
    "exec": ("execute a new process inside the container", "[flags] ID [COMMAND [ARGS...]]",
             [CONSOLE, ("cwd", None, S, "current working directory in the container", None),
              ("env", "e", L, "set an environment variable (K=V)", None),
              ("tty", "t", B, "allocate a pseudo-TTY", False),
              ("user", "u", S, "UID[:GID]", None),
              ("additional-gids", "g", L, "additional gids", None),
              ("process", "p", S, "path to the process.json", None),
              ("detach", "d", B, "detach from the process", False),
              PID_FILE,
              ("process-label", None, S, "set the SELinux label of the process", None),
              ("apparmor", None, S, "set the apparmor profile of the process", None),
              ("no-new-privs", None, B, "set no_new_privs for the process", False),
              ("cap", "c", L, "add a capability to the process", None),
              PRESERVE,
              ("ignore-paused", None, B, "allow exec in a paused container", False)], 1, -1),
    "state": ("print the state of a container as JSON", "ID", [], 1, 1),
    "kill": ("send a signal to the container's init (default SIGTERM)", "[flags] ID [SIGNAL]",
             [("all", "a", B, "send the signal to every process of the container", False)], 1, 2),
    "delete": ("delete a container and everything it made", "[flags] ID",
               [("force", "f", B, "kill the container first if it is not stopped", False)], 1, 1),
    "list": ("list containers", "[flags]",
             [("format", "f", S, "table or json", "table"),
              ("quiet", "q", B, "print only the ids", False)], 0, 0),
}

# Engine-facing verbs beyond the lifecycle. checkpoint/restore parse runc's flags (podman passes
# them) but fail: pyrunc has no CRIU support, and podman reads a failing `checkpoint --help` as
# "this runtime cannot checkpoint".
_CRIU_FLAGS = [("image-path", None, S, "path for saving criu image files", None),
               ("work-path", None, S, "path for saving work files and logs", None),
               ("parent-path", None, S, "path for previous criu image files in pre-dump", None),
               ("leave-running", None, B, "leave the process running after checkpointing", False),
               ("tcp-established", None, B, "allow open tcp connections", False),
               ("ext-unix-sk", None, B, "allow external unix sockets", False),
               ("shell-job", None, B, "allow shell jobs", False),
               ("lazy-pages", None, B, "use userfaultfd to lazily restore memory pages", False),
               ("status-fd", None, S, "criu writes \\0 to this FD once lazy-pages is ready", None),
               ("page-server", None, S, "ADDRESS:PORT of the page server", None),
               ("file-locks", None, B, "handle file locks", False),
               ("pre-dump", None, B, "dump container's memory information only", False),
               ("manage-cgroups-mode", None, S, "cgroups mode: soft, full, strict or ignore", None),
               ("empty-ns", None, L, "create a namespace, but don't restore its properties", None),
               ("auto-dedup", None, B, "enable auto deduplication of memory images", False)]
UNSUPPORTED = {"checkpoint": "checkpoint is not supported by pyrunc (no CRIU support)",
               "restore": "restore is not supported by pyrunc (no CRIU support)"}
VERBS.update({
    "spec": ("create a new specification file (config.json)", "[flags]",
             [BUNDLE, ("rootless", None, B, "generate a configuration for a rootless container", False)], 0, 0),
    "features": ("show the enabled features (runtime-spec features.json)", "", [], 0, 0),
    "checkpoint": ("checkpoint a running container (not supported)", "[flags] ID", _CRIU_FLAGS, 1, 1),
    "restore": ("restore a container from a checkpoint (not supported)", "[flags] ID",
                _CRIU_FLAGS + [CONSOLE, BUNDLE, PID_FILE, NO_PIVOT,
                               ("detach", "d", B, "detach from the container's process", False),
                               ("no-subreaper", None, B, "disable the use of the subreaper", False),
                               ("lsm-profile", None, S, "LSM profile to restore with", None),
                               ("lsm-mount-context", None, S, "LSM mount context to restore with", None)], 1, 1),
})

# cgroup verbs (runtime/cgroupverbs.py); update's flags are runc's (sizes take units: 100m, 1g)
_UPDATE_FLAGS = [
    ("resources", "r", S, "path to a LinuxResources JSON file, or '-' for stdin (other flags are then ignored)",
     None),
    ("blkio-weight", None, I, "per cgroup block IO weight, 10 to 1000", 0),
    ("cpu-period", None, S, "CPU CFS period (usecs)", None),
    ("cpu-quota", None, S, "CPU CFS quota (usecs) per period", None),
    ("cpu-share", None, S, "CPU shares (relative weight)", None),
    ("cpu-rt-period", None, S, "CPU realtime period (usecs)", None),
    ("cpu-rt-runtime", None, S, "CPU realtime runtime (usecs) per period", None),
    ("cpuset-cpus", None, S, "CPUs to use", None),
    ("cpuset-mems", None, S, "memory nodes to use", None),
    ("kernel-memory", None, S, "kernel memory limit (ignored, as in runc)", None),
    ("kernel-memory-tcp", None, S, "kernel TCP memory limit (ignored, as in runc)", None),
    ("memory", None, S, "memory limit (bytes, or with a unit: 100m, 1g)", None),
    ("memory-reservation", None, S, "memory soft limit", None),
    ("memory-swap", None, S, "memory + swap limit; -1 for unlimited swap", None),
    ("pids-limit", None, I, "maximum number of pids", 0),
    ("l3-cache-schema", None, S, "Intel RDT/CAT L3 cache schema (not available)", None),
    ("mem-bw-schema", None, S, "Intel RDT/MBA memory bandwidth schema (not available)", None),
]
VERBS.update({
    "pause": ("pause all processes of the container", "ID", [], 1, 1),
    "resume": ("resume the processes of a paused container", "ID", [], 1, 1),
    "ps": ("list the processes of the container", "[flags] ID [ps options]",
           [("format", "f", S, "table or json", "table")], 1, -1),
    "events": ("show the container's stats and OOM events", "[flags] ID",
               [("interval", None, S, "stats collection interval", "5s"),
                ("stats", None, B, "print the stats once and exit", False)], 1, 1),
    "update": ("update the container's resource limits", "[flags] ID", _UPDATE_FLAGS, 1, 1),
})


class Usage(Error):
    pass


def _find(flags, name):
    for f in flags:
        if f[0] == name or (f[1] and f[1] == name):
            return f
    return None


def parse_flags(argv, flags, stop_at_positional=True):
    """Parse runc-style flags; returns (values by long name, positional args).

    With stop_at_positional, everything from the first positional argument on is positional (the
    global flags; exec, whose command follows the id). Otherwise flags may also follow positional
    arguments, as runc's flag reordering allows (`delete ID --force`); "--" ends the flags."""
    vals = {f[0]: (list(f[4]) if f[2] == L and f[4] else ([] if f[2] == L else f[4])) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return vals, pos + argv[i + 1:]
        if not a.startswith("-") or a == "-":
            if stop_at_positional:
                return vals, pos + argv[i:]
            pos.append(a)
            i += 1
            continue
        name, eq, val = a.lstrip("-").partition("=")
        f = _find(flags, name)
        if f is None:
            raise Usage(f"flag provided but not defined: {a}")
        if f[2] == B:
            if eq:
                if val not in ("true", "false", "1", "0"):
                    raise Usage(f"invalid boolean value {val!r} for flag {a}")
                vals[f[0]] = val in ("true", "1")
            else:
                vals[f[0]] = True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise Usage(f"flag needs an argument: {a}")
                val = argv[i]
            if f[2] == I:
                try:
                    val = int(val)
                except ValueError:
                    raise Usage(f"invalid value {val!r} for flag {a}: not an integer") from None
            if f[2] == L:
                vals[f[0]].append(val)
            else:
                vals[f[0]] = val
        i += 1
    return vals, pos


def _flag_help(flags):
    lines = []
    for name, short, kind, text, default in flags:
        lhs = f"--{name}" + (f", -{short}" if short else "") + ("" if kind == B else " value")
        dflt = f" (default: {default})" if default not in (None, False, 0, []) else ""
        lines.append(f"   {lhs:<28} {text}{dflt}")
    return "\n".join(lines)


def help_text():
    verbs = "\n".join(f"   {n:<10} {v[0]}" for n, v in VERBS.items())
    return (f"pyrunc {__version__} - an OCI container runtime (runc-compatible)\n\n"
            f"USAGE:\n   pyrunc [global options] command [command options] [arguments...]\n\n"
            f"COMMANDS:\n{verbs}\n\nGLOBAL OPTIONS:\n{_flag_help(GLOBAL)}\n")


def verb_help(name):
    v = VERBS[name]
    return f"pyrunc {name} - {v[0]}\n\nUSAGE:\n   pyrunc {name} {v[1]}\n\nOPTIONS:\n{_flag_help(v[2])}\n"


def version_text():
    """Like runc's: `pyrunc version X`, `spec: V`, then the toolchain and libseccomp lines."""
    from .features import _libseccomp_version
    lsc = _libseccomp_version()
    return (f"pyrunc version {__version__}\nspec: {SPEC_VERSION}\npython: {sys.version.split()[0]}\n"
            + (f"libseccomp: {lsc}\n" if lsc else ""))


_FROM_COMMAND_LINE = False  # main() called by the pyrunc command, not from Python code


def main(argv=None):
    global _FROM_COMMAND_LINE
    _FROM_COMMAND_LINE = argv is None
    if _FROM_COMMAND_LINE:
        hotpath.command_start()  # hot path: see runtime/hotpath.py (GC threshold)
    code = _main(sys.argv[1:] if argv is None else argv)
    if _FROM_COMMAND_LINE and type(code) is int:
        return hotpath.exit_now(code)  # hot path: see runtime/hotpath.py (returns if a flush failed)
    return code


def _main(argv):
    debug = "--debug" in argv
    try:
        return dispatch(argv)
    except Usage as e:
        from . import log
        log.error(str(e))
        return 1
    except Error as e:
        from . import log
        log.error(str(e))
        if debug:
            import traceback
            traceback.print_exc()
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # before Exception: it is one
        from . import log
        log.error(describe(e))
        if debug:
            import traceback
            traceback.print_exc()
        return 1
    except Exception as e:  # noqa: BLE001 - a bug of ours: still one line, traceback with --debug
        from . import log
        log.error(f"internal error: {type(e).__name__}: {e}")
        if debug:
            import traceback
            traceback.print_exc()
        return 1


def dispatch(argv):
    g, rest = parse_flags(argv, GLOBAL)
    if g["log-format"] not in ("text", "json"):
        raise Usage(f"invalid log format {g['log-format']!r}: use text or json")
    if g["log"] or g["log-format"] != "text" or g["debug"] or __package__ + ".log" in sys.modules:
        from . import log  # else the first message imports it, configured so (hot path)
        log.configure(g["log"], g["log-format"], g["debug"])
    if g["version"]:
        sys.stdout.write(version_text())
        return 0
    if not rest or g["help"] or rest[0] == "help":
        if len(rest) > 1 and rest[1] in VERBS:
            sys.stdout.write(verb_help(rest[1]))
        else:
            sys.stdout.write(help_text())
        return 0
    if g["root"] is None:
        if os.geteuid() == 0 and g["rootless"] == "auto":
            g["root"] = "/run/pyrunc"  # hot path: root never imports runtime/rootless.py
        else:
            from . import rootless
            g["root"] = rootless.default_root()
    if g["systemd-cgroup"]:
        raise Error("--systemd-cgroup: systemd is not available on this host; use the cgroupfs driver")
    name, args = rest[0], rest[1:]
    verb = VERBS.get(name)
    if verb is None:
        raise Usage(f"No help topic for '{name}'")
    if name in UNSUPPORTED:
        raise Error(UNSUPPORTED[name])
    if "-h" in args[:1] or "--help" in args:
        sys.stdout.write(verb_help(name))
        return 0
    opts, pos = parse_flags(args, verb[2] + [("help", "h", B, "show help", False)],
                            stop_at_positional=name in ("exec", "ps"))  # their args follow the id
    lo, hi = verb[3], verb[4]
    if not (lo <= len(pos) <= hi) and hi >= 0:
        what = "container id" if lo == 1 else "arguments"
        raise Usage(f"{name}: {'missing ' + what if len(pos) < lo else 'too many arguments'}; "
                    f"usage: pyrunc {name} {verb[1]}")
    return globals()["cmd_" + name.replace("-", "_")](g, opts, pos)


# ------------------------------------------------------------------ verbs
def cmd_create(g, o, pos):
    from . import container
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"],
                            console_socket=o["console-socket"], rootless=g["rootless"])


def cmd_run(g, o, pos):
    from . import container
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"],
                            start_now=True, foreground=not o["detach"], keep=o["keep"],
                            console_socket=o["console-socket"], rootless=g["rootless"])


def cmd_exec(g, o, pos):
    from . import exec as ex
    if not pos:
        raise Usage("exec: missing container id; usage: pyrunc exec [flags] ID [COMMAND [ARGS...]]")
    code = ex.run(g["root"], pos[0], o, pos[1:])
    if _FROM_COMMAND_LINE:
        return hotpath.exit_now(code)  # hot path: see runtime/hotpath.py (exit_now)
    return code


def cmd_start(g, o, pos):
    from . import container
    return container.start(g["root"], pos[0])


def cmd_state(g, o, pos):
    from . import container
    sys.stdout.write(container.state_json(g["root"], pos[0]) + "\n")
    return 0


def cmd_kill(g, o, pos):
    from . import container, signals
    sig = signals.parse(pos[1] if len(pos) > 1 else "SIGTERM")
    return container.kill(g["root"], pos[0], sig, o["all"])


def cmd_delete(g, o, pos):
    from . import container
    return container.delete(g["root"], pos[0], o["force"])


def cmd_list(g, o, pos):
    from . import container
    states = container.list_states(g["root"])
    if o["format"] == "json":
        sys.stdout.write((hotpath.json_dumps(states) if states else "null") + "\n")
    elif o["format"] == "table":
        if o["quiet"]:
            sys.stdout.write("".join(s["id"] + "\n" for s in states))
            return 0
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        for s in states:
            rows.append((s["id"], str(s.get("pid", 0)), s["status"], s["bundle"], s["created"],
                         s.get("owner") or "root"))
        widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(6)]
        for r in rows:
            sys.stdout.write("".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + r[-1] + "\n")
    else:
        raise Usage(f"invalid format option {o['format']!r}: use table or json")
    return 0


def cmd_spec(g, o, pos):
    from . import spec
    return spec.write_spec(o["bundle"], o["rootless"])


def cmd_features(g, o, pos):
    from . import features
    sys.stdout.write(features.features_json() + "\n")
    return 0


def cmd_pause(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.pause(g["root"], pos[0])


def cmd_resume(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.resume(g["root"], pos[0])


def cmd_ps(g, o, pos):
    from . import cgroupverbs
    if not pos:
        raise Usage("ps: missing container id; usage: pyrunc ps [flags] ID [ps options]")
    return cgroupverbs.ps(g["root"], pos[0], o["format"], pos[1:])


def cmd_events(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.events(g["root"], pos[0], o["stats"], o["interval"])


def cmd_update(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.update(g["root"], pos[0], o)

if __name__ == "__main__":
    sys.exit(main())
