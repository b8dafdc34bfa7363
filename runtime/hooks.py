"""Running OCI hooks (config.md "POSIX-platform Hooks").

A hook gets the container state JSON on stdin, its own args and env, and an optional timeout.
Its stdout and stderr go to memfds so a hook can never block on a pipe, and are quoted in the error.
"""
import os
import select
import signal
import time

from .errors import Error

# hooks whose failure aborts the operation; the rest only warn (config.md)
FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")


def run_hook(hook, state_json, phase, index):
    """Run one hook to completion; raises Error on a non-zero exit, a signal or a timeout."""
    path = hook["path"]
    args = hook.get("args") or [path]
    env = hook.get("env") or []
    timeout = hook.get("timeout")
    rfd, wfd = os.pipe()
    out = os.memfd_create("hook-out", os.MFD_CLOEXEC)
    err = os.memfd_create("hook-err", os.MFD_CLOEXEC)
    data = state_json.encode() if isinstance(state_json, str) else state_json
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe work until execve
        try:
            os.dup2(rfd, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            envd = dict(e.split("=", 1) for e in env if "=" in e)
            os.execve(path, args, envd)
        except BaseException:
            os._exit(127)
    os.close(rfd)
    try:
        os.write(wfd, data)  # state JSON is far below the pipe buffer: never blocks
    except OSError:
        pass  # the hook closed stdin: its business
    os.close(wfd)
    status = _wait(pid, timeout)
    what = f"{phase} hook #{index} ({path})"
    try:
        if status is None:
            raise Error(f"{what}: timed out after {timeout}s")
        if os.WIFSIGNALED(status):
            raise Error(f"{what}: killed by signal {os.WTERMSIG(status)}{_output(out, err)}")
        code = os.WEXITSTATUS(status)
        if code == 127 and not os.access(path, os.X_OK):
            raise Error(f"{what}: cannot execute {path}")
        if code:
            raise Error(f"{what}: exit status {code}{_output(out, err)}")
    finally:
        os.close(out)
        os.close(err)


def _wait(pid, timeout):
    """waitpid with an optional timeout (a pidfd to poll); None when the hook was killed for it."""
    if not timeout:
        return os.waitpid(pid, 0)[1]
    pidfd = os.pidfd_open(pid)
    try:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pidfd], [], [], left)[0]:
                if time.monotonic() >= deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    return None
                continue
            return os.waitpid(pid, 0)[1]
    finally:
        os.close(pidfd)


def _output(out, err):
    parts = []
    for name, fd in (("stdout", out), ("stderr", err)):
        os.lseek(fd, 0, 0)
        text = os.read(fd, 4096).decode(errors="replace").strip()
        if text:
            parts.append(f"{name}: {' '.join(text.split())}")
    return (", " + ", ".join(parts)) if parts else ""


def run_hooks(hooks_cfg, phase, state_json, warn=None):
    """Run every hook of PHASE in order. Fatal phases raise; the others report through warn()."""
    for i, hook in enumerate((hooks_cfg or {}).get(phase) or []):
        try:
            run_hook(hook, state_json, phase, i)
        except Error as e:
            if phase in FATAL or warn is None:
                raise
            warn(str(e))
