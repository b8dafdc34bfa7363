"""pyrunc's command line: runc's global flags, verbs and flag names, parsed from one table.

Flags come before positional arguments, as in runc (everything after the first positional argument,
or after "--", is positional). Errors become one runc-style line on stderr and exit status 1.
"""
import os
import sys

from . import __version__, SPEC_VERSION
from .errors import Error

B, S, I, L = "bool", "str", "int", "list"  # flag kinds

GLOBAL = [
    ("root", None, S, "root directory for storage of container state", "/run/pyrunc"),
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
    "state": ("print the state of a container as JSON", "ID", [], 1, 1),
    "kill": ("send a signal to the container's init (default SIGTERM)", "[flags] ID [SIGNAL]",
             [("all", "a", B, "send the signal to every process of the container", False)], 1, 2),
    "delete": ("delete a container and everything it made", "[flags] ID",
               [("force", "f", B, "kill the container first if it is not stopped", False)], 1, 1),
    "list": ("list containers", "[flags]",
             [("format", "f", S, "table or json", "table"),
              ("quiet", "q", B, "print only the ids", False)], 0, 0),
}


class Usage(Error):
    pass


def _find(flags, name):
    for f in flags:
        if f[0] == name or (f[1] and f[1] == name):
            return f
    return None


def parse_flags(argv, flags, stop_at_positional=True):
    """Parse runc-style flags; returns (values by long name, remaining args)."""
    vals = {f[0]: (list(f[4]) if f[2] == L and f[4] else ([] if f[2] == L else f[4])) for f in flags}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return vals, argv[i + 1:]
        if not a.startswith("-") or a == "-":
            if stop_at_positional:
                return vals, argv[i:]
            break
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
    return vals, argv[i:]


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
    return f"pyrunc version {__version__}\nspec: {SPEC_VERSION}\npython: {sys.version.split()[0]}\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
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
    except OSError as e:
        from . import log
        log.error(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        if debug:
            import traceback
            traceback.print_exc()
        return 1


def dispatch(argv):
    g, rest = parse_flags(argv, GLOBAL)
    from . import log
    if g["log-format"] not in ("text", "json"):
        raise Usage(f"invalid log format {g['log-format']!r}: use text or json")
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
    if g["systemd-cgroup"]:
        raise Error("--systemd-cgroup: systemd is not available on this host; use the cgroupfs driver")
    name, args = rest[0], rest[1:]
    verb = VERBS.get(name)
    if verb is None:
        raise Usage(f"No help topic for '{name}'")
    if "-h" in args[:1] or "--help" in args:
        sys.stdout.write(verb_help(name))
        return 0
    opts, pos = parse_flags(args, verb[2] + [("help", "h", B, "show help", False)])
    lo, hi = verb[3], verb[4]
    if not (lo <= len(pos) <= hi) and hi >= 0:
        what = "container id" if lo == 1 else "arguments"
        raise Usage(f"{name}: {'missing ' + what if len(pos) < lo else 'too many arguments'}; "
                    f"usage: pyrunc {name} {verb[1]}")
    return globals()["cmd_" + name.replace("-", "_")](g, opts, pos)


# ------------------------------------------------------------------ verbs
def cmd_create(g, o, pos):
    from . import container
    if o["console-socket"]:
        raise Error("--console-socket: terminals are not supported yet")
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"])


def cmd_run(g, o, pos):
    from . import container
    if o["console-socket"]:
        raise Error("--console-socket: terminals are not supported yet")
    return container.create(g["root"], pos[0], o["bundle"], o["pid-file"], o["no-pivot"], o["preserve-fds"],
                            start_now=True, foreground=not o["detach"], keep=o["keep"])


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
        import json
        sys.stdout.write((json.dumps(states, separators=(",", ":")) if states else "null") + "\n")
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


if __name__ == "__main__":
    sys.exit(main())
