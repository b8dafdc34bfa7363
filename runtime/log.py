"""runc-style log lines: text (time="..." level=error msg="...") or JSON ({"level","msg","time"}).

Written to --log FILE when given (engines read it back on failure) and, for errors and warnings,
to stderr as well. No logging module: nothing here may take a lock a forked child could inherit.
"""
import os
import sys
import time

from .hotpath import json_dumps  # hot path: see runtime/hotpath.py

_log_path = None
_json = False
_debug = False


def configure(path=None, fmt="text", debug=False):
    global _log_path, _json, _debug
    _log_path = path
    _json = fmt == "json"
    _debug = debug


def _ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _line(level, msg, as_json):
    if as_json:
        return json_dumps({"level": level, "msg": msg, "time": _ts()}) + "\n"
    esc = msg.replace("\\", "\\\\").replace('"', '\\"')
    return f'time="{_ts()}" level={level} msg="{esc}"\n'


def _emit(level, msg):
    if _log_path:
        try:
            fd = os.open(_log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, _line(level, msg, _json).encode())
            finally:
                os.close(fd)
        except OSError:
            pass
    if level in ("error", "warning", "fatal") or _debug:
        sys.stderr.write(_line(level, msg, False))
        sys.stderr.flush()


def error(msg):
    _emit("error", msg)


def warning(msg):
    _emit("warning", msg)

