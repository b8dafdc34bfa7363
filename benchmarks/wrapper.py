"""The tracing wrapper: a tiny script an engine is pointed at instead of the runtime.

Each call of the real runtime is timed (bash's $EPOCHREALTIME around it, so the wrapper's own
start-up is not counted) and one line is appended to DIR/calls.log: start, end, exit code, the
captured config's file name (config.json of a create/run, the --process file of an exec, copied
into DIR/cfg before the call) and the shell-quoted argv. The script's basename is the real
runtime's (`pyrunc`, `runc`): podman decides by a runtime's basename whether it takes
`--log-format=json`, so a wrapper gets the same flags as what it wraps.

DIR/mode (read at each call) switches a pyrunc wrapper to a profiling run of the same call:
`cprofile`, `importtime` or `strace` (output in DIR/prof/<pid>.<verb>.*; strace runs detached, -D, so
that a create returns while strace follows the init up to its execve after start); anything else, or no
file, just times. The profiling modes run pyrunc's Python directly (`python -I -S`), as bin/pyrunc
would after its shell prologue.
"""

from __future__ import annotations

import os
import shlex
import stat

PKG_DIR = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""#!/bin/bash
# pyrunc benchmarks: times one call of @REAL@ (see benchmarks/wrapper.py)
dir=@DIR@
mode=time
[ -f "$dir/mode" ] && read -r mode < "$dir/mode"
verb= bundle=. process= prev=
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle=$a ;;
    --process|-p) process=$a ;;
  esac
  case "$a" in
    --bundle=*) bundle=${a#--bundle=} ;;
    --process=*) process=${a#--process=} ;;
  esac
  if [ -z "$verb" ]; then
    case "$prev" in
      --root|--log|--log-format|--criu|--rootless) ;;
      *) case "$a" in -*|'') ;; *) verb=$a ;; esac ;;
    esac
  fi
  prev=$a
done
cfg=-
case "$verb" in
  create|run) [ -f "$bundle/config.json" ] && cfg=$$.$verb.json && cp "$bundle/config.json" "$dir/cfg/$cfg" ;;
  exec) [ -n "$process" ] && [ -f "$process" ] && cfg=$$.exec.json && cp "$process" "$dir/cfg/$cfg" ;;
esac
out=$dir/prof/$$.$verb
case "$mode" in
  cprofile) t0=$EPOCHREALTIME; @PY@ -I -S @PROFRUN@ "$out.prof" @REAL@ "$@"; rc=$?; t1=$EPOCHREALTIME ;;
  importtime) t0=$EPOCHREALTIME; @PY@ -I -S -X importtime @REAL@ "$@" 2>>"$out.imports"; rc=$?; t1=$EPOCHREALTIME ;;
  strace) t0=$EPOCHREALTIME; strace -D -f -b execve -qq -c -o "$out.strace" @PY@ -I -S @REAL@ "$@"; rc=$?; t1=$EPOCHREALTIME ;;
  *) t0=$EPOCHREALTIME; @REAL@ "$@"; rc=$?; t1=$EPOCHREALTIME ;;
esac
printf -v line '%q ' "$@"
printf '%s\t%s\t%s\t%s\t%s\n' "$t0" "$t1" "$rc" "$cfg" "$line" >> "$dir/calls.log"
exit $rc
"""


class Wrapper:
    """DIR/<basename of real>: the script; DIR/calls.log, DIR/cfg/, DIR/prof/."""

    def __init__(self, directory: str, real: str, python: str | None = None):
        self.dir = directory
        self.real = real
        os.makedirs(os.path.join(directory, "cfg"), exist_ok=True)
        os.makedirs(os.path.join(directory, "prof"), exist_ok=True)
        self.path = os.path.join(directory, os.path.basename(real))
        py = python or os.path.join(os.path.dirname(real), "python3")
        text = (SCRIPT.replace("@REAL@", shlex.quote(real)).replace("@DIR@", shlex.quote(directory))
                .replace("@PY@", shlex.quote(py))
                .replace("@PROFRUN@", shlex.quote(os.path.join(PKG_DIR, "profrun.py"))))
        with open(self.path, "w") as f:
            f.write(text)
        os.chmod(self.path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)

    @property
    def log(self) -> str:
        return os.path.join(self.dir, "calls.log")

    def set_mode(self, mode: str) -> None:
        with open(os.path.join(self.dir, "mode"), "w") as f:
            f.write(mode + "\n")

    def take(self) -> list[dict]:
        """The calls logged since the last take (the log is emptied)."""
        try:
            tmp = self.log + ".taken"
            os.replace(self.log, tmp)
        except FileNotFoundError:
            return []
        with open(tmp, errors="replace") as f:
            lines = f.read().splitlines()
        os.unlink(tmp)
        return [c for c in (parse_line(line) for line in lines) if c]


GLOBAL_VALUE_FLAGS = ("--root", "--log", "--log-format", "--criu", "--rootless")


def parse_line(line: str) -> dict | None:
    parts = line.split("\t", 4)
    if len(parts) != 5:
        return None
    t0, t1, rc, cfg, argv = parts
    try:
        args = shlex.split(argv)
        ms = (float(t1) - float(t0)) * 1000.0
    except ValueError:
        return None
    verb, shape = split_argv(args)
    return {"ms": ms, "rc": int(rc) if rc.lstrip("-").isdigit() else None, "cfg": None if cfg == "-" else cfg,
            "verb": verb, "shape": shape, "argv": args}


def split_argv(args: list[str]) -> tuple[str, str]:
    """(verb, the call's form: its flags without their values, the id and signal as placeholders),
    e.g. ('create', '--log --log-format=json create --bundle --pid-file --console-socket <ID>')."""
    out = []
    verb = ""
    i = 0
    value_flags = {"--bundle", "-b", "--pid-file", "--console-socket", "--process", "-p", "--preserve-fds",
                   "--format", "-f", "--image-path", "--work-path", "--resources", "-r", "--log", "--root",
                   "--criu", "--rootless", "--cwd", "--env", "-e", "--user", "-u", "--cap", "-c",
                   "--process-label", "--apparmor", "--additional-gids", "-g", "--cgroup"}
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            if a.startswith("--log-format"):
                out.append(a if "=" in a else f"{a}={args[i + 1] if i + 1 < len(args) else ''}")
                i += 1 if "=" in a else 2
                continue
            out.append(name)
            if name in value_flags and "=" not in a:
                i += 1
        elif not verb:
            verb = a
            out.append(a)
        else:
            out.append("<SIG>" if a.isdigit() or a.startswith("SIG") or a.isupper() else "<ID>")
        i += 1
    return verb, " ".join(out)
