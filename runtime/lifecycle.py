"""What the verbs share below them: the OCI state JSON, the pid file, kill-and-reap of a child.
A leaf of the verb layer: container (create/start/run/state/kill/delete/list), exec and the cgroup
verbs import it; it imports none of them."""
import posix  # not os (hot path: see runtime/hotpath.py)

from . import hotpath


def oci_state(c, status=None, pid=None):
    """The state JSON of runtime.md (state-schema.json) plus runc's extra fields."""
    d = c.data
    status = status or c.status()
    out = {"ociVersion": d.get("ociVersion", "1.0.2"), "id": c.id}
    p = pid if pid is not None else d.get("pid", 0)
    if status != "stopped" and p:
        out["pid"] = p
    out["status"] = status
    out["bundle"] = d.get("bundle", "")
    out["rootfs"] = d.get("rootfs", "")
    out["created"] = d.get("created", "")
    out["owner"] = d.get("owner", "")
    if d.get("annotations"):
        out["annotations"] = d["annotations"]
    return hotpath.json_dumps_indent(out)


def write_pid_file(path, pid):
    """Bare digits, no newline, written atomically (containerd parses it strictly)."""
    import os  # create, run and exec: loaded already
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.pyrunc-tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def kill_reap(pid):
    """SIGKILL a child of ours and reap it (gone already: nothing to do)."""
    try:
        posix.kill(pid, hotpath.SIGKILL)
    except ProcessLookupError:
        return
    try:
        posix.waitpid(pid, 0)
    except ChildProcessError:
        pass


def exit_code(status):
    """A wait status as a shell's exit code: the program's own, or 128+N when signal N killed it."""
    if posix.WIFSIGNALED(status):
        return 128 + posix.WTERMSIG(status)
    return posix.WEXITSTATUS(status)


def passed_fds(n):
    """The fds of 3..3+N-1 that the caller really passed: checked before the runtime opens any of
    its own (the state lock, a pidfd) that could take a free number in the range and reach the
    container's program."""
    out = []
    for fd in range(3, 3 + n):
        try:
            posix.fstat(fd)
            out.append(fd)
        except OSError:
            pass
    return tuple(out)
