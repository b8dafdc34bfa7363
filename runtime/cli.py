"""pyrunc's command line: runc's global flags, verbs and flag names, parsed from one table.

Flags come before positional arguments, as in runc (everything after the first positional argument,
or after "--", is positional). Errors become one runc-style line on stderr and exit status 1.
"""
import posix  # not os (hot path: see runtime/hotpath.py)
import sys

from . import __version__, SPEC_VERSION, hotpath
from .errors import Error, describe, unexpected, why

B, S, I, L = "bool", "str", "int", "list"  # flag kinds

GLOBAL = [
    ("debug", None, B, "enable debug logging (to --log FILE, else stderr), with tracebacks", False),
    ("log", None, S, "log file for errors, warnings and debug lines (default: stderr)", None),
    ("log-format", None, S, "log format: text or json", "text"),
    ("root", None, S, "root directory for storage of container state "
     "(default: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc without root)", None),
    ("criu", None, S, "path to criu (checkpoint is not supported)", "criu"),
    ("systemd-cgroup", None, B, "use systemd for cgroups (cgroupsPath \"slice:prefix:name\"); "
     "not available: create and run refuse it", False),
    ("rootless", None, S, "rootless mode: true, false or auto", "auto"),
    ("help", "h", B, "show help", False),
    ("version", "v", B, "print the version", False),
]

PID_FILE = ("pid-file", None, S, "file to write the container's init pid to", None)
BUNDLE = ("bundle", "b", S, "path to the bundle (default: current directory)", None)
NO_PIVOT = ("no-pivot", None, B, "do not use pivot_root (MS_MOVE + chroot instead)", False)
PRESERVE = ("preserve-fds", None, I, "pass N extra fds (3..3+N-1) to the container", 0)
CONSOLE = ("console-socket", None, S, "unix socket to send the pty master to", None)
NO_NEW_KEYRING = ("no-new-keyring", None, B, "do not create a new session keyring", False)
NO_SUBREAPER = ("no-subreaper", None, B, "do not make pyrunc a child subreaper (orphans of the container "
                "then go to the host's reaper)", False)
COMMON_CREATE = [BUNDLE, CONSOLE, PID_FILE, NO_PIVOT, NO_NEW_KEYRING, PRESERVE]
ID = "<container-id>"

# verb: (summary, usage after the verb name, flags, least and most positional arguments (-1: any))
VERBS = {
    "create": ("create a container (it waits for start)", f"[command options] {ID}", COMMON_CREATE, 1, 1),
    "start": ("start a created container", ID, [], 1, 1),
    "run": ("create and start a container", f"[command options] {ID}",
            COMMON_CREATE[:3] + [("detach", "d", B, "detach from the container", False),
                                 ("keep", None, B, "keep the container's state after it exits", False),
                                 NO_SUBREAPER] + COMMON_CREATE[3:], 1, 1),
    "exec": ("execute a new process inside the container",
             f"[command options] {ID} <command> [args...]  ||  -p process.json {ID}",
             [CONSOLE, ("cwd", None, S, "current working directory in the container", None),
              ("env", "e", L, "set an environment variable (K=V)", None),
              ("tty", "t", B, "allocate a pseudo-TTY", False),
              ("user", "u", S, "UID[:GID]", None),
              ("additional-gids", "g", L, "additional gids", None),
              ("process", "p", S, "path to the process.json", None),
              ("detach", "d", B, "detach from the process", False),
              ("pid-file", None, S, "file to write the new process's pid to", None),
              ("process-label", None, S, "set the SELinux label of the process", None),
              ("apparmor", None, S, "set the apparmor profile of the process", None),
              ("no-new-privs", None, B, "set no_new_privs for the process", False),
              ("cap", "c", L, "add a capability to the process", None),
              PRESERVE,
              ("ignore-paused", None, B, "allow exec in a paused container", False),
              ("cgroup", None, L, "run the process in an (existing) sub-cgroup: [CONTROLLER:]PATH", None)], 1, -1),
    "state": ("print the state of a container as JSON", ID, [], 1, 1),
    "kill": ("send a signal to the container's init (default SIGTERM)", f"[command options] {ID} [signal]",
             [("all", "a", B, "send the signal to every process of the container", False)], 1, 2),
    "delete": ("delete a container and everything it made", f"[command options] {ID}",
               [("force", "f", B, "kill the container first if it is not stopped", False)], 1, 1),
    "list": ("list containers", "[command options]",
             [("format", "f", S, "table or json", "table"),
              ("quiet", "q", B, "print only the ids", False)], 0, 0),
}

# Engine-facing verbs beyond the lifecycle. checkpoint/restore parse runc's flags (podman passes
# them) but fail: pyrunc has no CRIU support. podman probes exactly `checkpoint --help` and reads
# exit status 0 as "this runtime can checkpoint": that one form prints the help and exits 1
# (dispatch); `checkpoint -h` and `help checkpoint` exit 0 like every other verb's help.
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
    "spec": ("create a new specification file (config.json)", "[command options]",
             [BUNDLE, ("rootless", None, B, "generate a configuration for a rootless container", False)], 0, 0),
    "features": ("show the enabled features (runtime-spec features.json)", "", [], 0, 0),
    "checkpoint": ("checkpoint a running container (not supported)", f"[command options] {ID}", _CRIU_FLAGS, 1, 1),
    "restore": ("restore a container from a checkpoint (not supported)", f"[command options] {ID}",
                _CRIU_FLAGS + [CONSOLE, BUNDLE, PID_FILE, NO_PIVOT,
                               ("detach", "d", B, "detach from the container's process", False),
                               NO_SUBREAPER,
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
    "pause": ("pause all processes of the container", ID, [], 1, 1),
    "resume": ("resume the processes of a paused container", ID, [], 1, 1),
    "ps": ("list the processes of the container", f"[command options] {ID} [ps options]",
           [("format", "f", S, "table or json", "table")], 1, -1),
    "events": ("show the container's stats and OOM events", f"[command options] {ID}",
               [("interval", None, S, "stats collection interval", "5s"),
                ("stats", None, B, "print the stats once and exit", False)], 1, 1),
    "update": ("update the container's resource limits", f"[command options] {ID}", _UPDATE_FLAGS, 1, 1),
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


# the longer text of a verb's help (DESCRIPTION), where its summary is not enough
DESCRIPTIONS = {
    "create": "Creates the container of the bundle (a directory holding config.json and the root\n"
              "filesystem it names): its namespaces, cgroups and mounts, with the init waiting\n"
              "for `pyrunc start` to run process.args.",
    "run": "Creates the container of the bundle and starts it at once. In the foreground\n"
           "(without --detach) pyrunc waits for the container's process and exits with its\n"
           "status, then deletes the container (unless --keep).",
    "start": "Runs process.args in a container made by `pyrunc create`.",
    "exec": "Runs a new process in a running container: the command and its arguments after\n"
            "the id, or a whole process.json with -p.",
    "state": "Prints the state of the container (runtime-spec state.json) on stdout.",
    "kill": "Sends SIGNAL (a name, with or without SIG, or a number; 0 only checks that the\n"
            "container is alive) to the container's init, or with --all to all its processes.",
    "delete": "Removes a stopped container: its cgroups, its state, and runs its poststop hooks.\n"
              "With --force a container still running is killed first.",
    "list": "Lists the containers under --root.",
    "spec": "Writes a starter config.json (process.terminal true, \"sh\", a read-only rootfs\n"
            "directory) into the bundle; an existing config.json is never overwritten.",
    "features": "Prints what this runtime supports, as the runtime-spec features document (JSON).",
    "checkpoint": "Not supported: pyrunc has no CRIU support.",
    "restore": "Not supported: pyrunc has no CRIU support.",
    "pause": "Freezes every process of the container (cgroup freezer).",
    "resume": "Thaws the processes of a paused container.",
    "events": "Prints the container's resource usage (--stats: once) and OOM events as JSON lines.",
    "update": "Changes the cgroup limits of a running container.",
}
_HELP_VERB = ("help, h", "show the list of commands, or the help of one command")


def _flag_help(flags):
    def lhs(name, short, kind):
        v = "" if kind == B else " value"
        return f"--{name}{v}" + (f", -{short}{v}" if short else "")
    w = max(len(lhs(*f[:3])) for f in flags) + 2
    lines = []
    for name, short, kind, text, default in flags:
        dflt = f" (default: {default})" if default not in (None, False, 0, []) else ""
        lines.append(f"   {lhs(name, short, kind):<{w}}{text}{dflt}")
    return "\n".join(lines) + "\n"


def help_text():
    """The global help, in urfave/cli's layout as runc prints it (NAME, USAGE, COMMANDS, GLOBAL
    OPTIONS); no VERSION section (its libseccomp line would cost ctypes: `pyrunc --version`)."""
    rows = [(n, VERBS[n][0]) for n in sorted(VERBS)] + [_HELP_VERB]
    w = max(len(n) for n, _ in rows) + 2
    verbs = "\n".join(f"   {n:<{w}}{t}" for n, t in rows)
    return ("NAME:\n   pyrunc - Open Container Initiative runtime, in Python (a drop-in for runc)\n\n"
            "pyrunc makes and runs containers from OCI bundles: a directory with a config.json\n"
            "(runtime-spec " + SPEC_VERSION + ") and the root filesystem it names. Engines (podman,\n"
            "containerd, docker) call it as they call runc; by hand:\n\n"
            "    # pyrunc run [ -b bundle ] <container-id>\n\n"
            "USAGE:\n   pyrunc [global options] command [command options] [arguments...]\n\n"
            f"COMMANDS:\n{verbs}\n\nGLOBAL OPTIONS:\n{_flag_help(GLOBAL)}")


def verb_help(name):
    v = VERBS[name]
    out = f"NAME:\n   pyrunc {name} - {v[0]}\n\nUSAGE:\n   pyrunc {name}" + (f" {v[1]}" if v[1] else "") + "\n"
    if name in DESCRIPTIONS:
        out += "\nDESCRIPTION:\n   " + DESCRIPTIONS[name].replace("\n", "\n   ") + "\n"
    if v[2]:
        out += f"\nOPTIONS:\n{_flag_help(v[2])}"
    return out


def version_text():
    """runc's lines: `pyrunc version X`, `commit: C`, `spec: V` (what engines and runc's
    version.bats read: docker takes the word after "version" and the commit line), then the
    toolchain and libseccomp lines, as runc 1.1.5 adds its go and libseccomp ones."""
    from .features import _libseccomp_version
    lsc = _libseccomp_version()
    return (f"pyrunc version {__version__}\ncommit: {COMMIT}\nspec: {SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}\n" + (f"libseccomp: {lsc}\n" if lsc else ""))


COMMIT = "unknown"  # no build step stamps a git commit into the package


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
    except UnknownCommand as e:
        _fatal(str(e))
        return 3  # urfave/cli's status for an unknown command, as runc's
    except Usage as e:
        _fatal(str(e))
        return 1
    except Error as e:
        _fatal(str(e), debug)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # before Exception: it is one
        _fatal(describe(e), debug)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug of ours: still one line, traceback with --debug
        _fatal(f"internal error: {unexpected(e)}", debug)
        return 1


def _fatal(msg, traceback=False):
    from . import log
    log.fatal(msg)
    if traceback:
        import traceback as tb
        tb.print_exc()


class UnknownCommand(Usage):
    pass


_HELP = ("help", "h")  # urfave/cli's help command and its alias


def dispatch(argv):
    g, rest = parse_flags(argv, GLOBAL)
    if g["log-format"] not in ("text", "json"):
        raise Usage(f"invalid log format {g['log-format']!r}: use text or json")
    if g["log"] or g["log-format"] != "text" or g["debug"] or __package__ + ".log" in sys.modules:
        from . import log  # else the first message imports it, configured so (hot path)
        try:
            log.configure(g["log"], g["log-format"], g["debug"])
        except OSError as e:  # an unusable --log target fails the command, as runc's
            raise Error(f"open {g['log']}: {why(e)}") from None
    if g["version"]:
        sys.stdout.write(version_text())
        return 0
    if not rest or g["help"] or rest[0] in _HELP:
        topic = rest[1] if rest and rest[0] in _HELP and len(rest) > 1 else None
        if topic is None:
            sys.stdout.write(help_text())
        elif topic in VERBS:
            sys.stdout.write(verb_help(topic))
        elif topic in _HELP:
            sys.stdout.write(f"NAME:\n   pyrunc help - {_HELP_VERB[1]}\n\nUSAGE:\n   pyrunc help [command]\n")
        else:
            raise UnknownCommand(f"No help topic for '{topic}'")
        return 0
    if g["root"] is None:
        # hot path: root never imports runtime/rootless.py, unless $XDG_RUNTIME_DIR may apply
        # (root of a user namespace, as rootless podman runs the runtime: runc's rule)
        env = posix.environ
        if posix.geteuid() == 0 and g["rootless"] == "auto" and (
                not env.get(b"XDG_RUNTIME_DIR") or env.get(b"USER") == b"root"):
            g["root"] = "/run/pyrunc"
        else:
            from . import rootless
            g["root"] = rootless.default_root()
    name, args = rest[0], rest[1:]
    verb = VERBS.get(name)
    if verb is None:
        raise UnknownCommand(f"No help topic for '{name}'")
    helpflags = [("help", "h", B, "show help", False)]
    if name in UNSUPPORTED:
        # before the flags: podman's `restore --lsm-mount-context` probe must not read "flag
        # needs an argument" (its sign of a runtime that restores into pods)
        if "-h" in args or "--help" in args:
            sys.stdout.write(verb_help(name))
            if "--help" in args and name == "checkpoint":
                raise Error(UNSUPPORTED[name])  # podman's probe (see _CRIU_FLAGS)
            return 0
        raise Error(UNSUPPORTED[name])
    opts, pos = parse_flags(args, verb[2] + helpflags,
                            stop_at_positional=name in ("exec", "ps"))  # their args follow the id
    if opts["help"]:
        sys.stdout.write(verb_help(name))
        return 0
    lo, hi = verb[3], verb[4]
    if g["debug"]:
        from . import log  # the verb and the id only: an exec's arguments or -e values may be secrets
        log.debug(f"pyrunc {__version__}: {name}" + (f" {pos[0]}" if pos and lo else ""))
    if not (lo <= len(pos) <= hi) and hi >= 0:
        what = "container id" if lo == 1 else "arguments"
        raise Usage(f"{name}: {'missing ' + what if len(pos) < lo else 'too many arguments'}; "
                    f"usage: pyrunc {name} {verb[1]}")
    if g["systemd-cgroup"] and name in ("create", "run"):
        # the verbs that would make cgroups: every other verb uses the saved ones, as runc's do
        raise Error(_no_systemd())
    if opts.get("preserve-fds") and __package__ + ".log" in sys.modules:
        from . import log
        log.keep_above(3 + opts["preserve-fds"])
    return globals()["cmd_" + name.replace("-", "_")](g, opts, pos)


def _no_systemd():
    if not hotpath.isdir("/run/systemd/system"):
        return "systemd is not running on this host: --systemd-cgroup cannot be used (use the cgroupfs driver)"
    return "--systemd-cgroup: pyrunc has no systemd cgroup driver (use the cgroupfs driver)"


# ------------------------------------------------------------------ verbs
def cmd_create(g, o, pos):
    from . import container
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"],
                            console_socket=o["console-socket"], rootless=g["rootless"])


def cmd_run(g, o, pos):
    from . import container
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"],
                            start_now=True, foreground=not o["detach"], keep=o["keep"],
                            console_socket=o["console-socket"], rootless=g["rootless"],
                            subreaper=not o["no-subreaper"])


def cmd_exec(g, o, pos):
    from . import exec as ex
    if not pos:
        raise Usage(f"exec: missing container id; usage: pyrunc exec {VERBS['exec'][1]}")
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
        raise Usage(f"ps: missing container id; usage: pyrunc ps {VERBS['ps'][1]}")
    return cgroupverbs.ps(g["root"], pos[0], o["format"], pos[1:])


def cmd_events(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.events(g["root"], pos[0], o["stats"], o["interval"])


def cmd_update(g, o, pos):
    from . import cgroupverbs
    return cgroupverbs.update(g["root"], pos[0], o)

if __name__ == "__main__":
    sys.exit(main())
