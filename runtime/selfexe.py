"""The runtime's own binary behind a read-only mount (CVE-2019-5736 with CAP_SYS_PTRACE).

The container's init, and exec's process until its execve, are forks of the runtime: their
/proc/PID/exe is the host's Python interpreter. They are non-dumpable (chain/init.py,
chain/execproc.py), which keeps the container's processes from opening that link, except a process
holding CAP_SYS_PTRACE in the host's user namespace: a non-dumpable process's memory still belongs
to the user namespace it was forked in until execve, and ptrace access checks the capability
there. Such a process could open the interpreter (O_PATH) and, once no process runs it (ETXTBSY
until then), reopen it for writing and replace it on the host. runc runs from a sealed or
read-only copy of itself for the same reason.

So when a process that can see ours may hold that capability — no user namespace, and
CAP_SYS_PTRACE in a bounding set of the container (the init's, the exec's, any running process's)
or a pid namespace joined by path (other containers' processes share it) — create, run and exec
first execute the interpreter again through a detached, read-only bind mount of it (open_tree +
mount_setattr, nothing mounted anywhere, no copy): /proc/PID/exe then names a file on a read-only
mount that no one can remount (it is in no namespace). Where that mount cannot be made (no mount
API, no CAP_SYS_ADMIN), through a sealed memfd copy instead, as runc does. The cost is one more interpreter start
(~10 ms), paid by those containers only: no engine's default config grants CAP_SYS_PTRACE.
Without a user namespace a process that holds CAP_SYS_ADMIN as well can do worse anyway.

A container that joins another's pid namespace by path with the capability marks that one, when
it is under the same --root, so that its later execs are protected too (container.py,
_mark_ptrace_peer). Not covered: such a joiner under another --root (telling would mean scanning
every process of the host at each exec), and an init still waiting at `created` when it is
joined (engines start what they share first).
"""
import os
import sys

CAP_SYS_PTRACE = 19
_MARK = "_PYRUNC_EXE_RO"  # set across our own re-exec only: a failed protection never loops


def protected():
    """Whether our binary is on a read-only mount already (after the re-exec, or on a host whose
    interpreter lives on a read-only filesystem), or a sealed copy."""
    try:
        return (bool(os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY)
                or os.readlink("/proc/self/exe").startswith("/memfd:pyrunc"))
    except OSError:
        return False


def may_ptrace(process):
    """Whether a process of config PROCESS can hold CAP_SYS_PTRACE: in its bounding set, or no
    capabilities given (it keeps ours, all of them)."""
    caps = (process or {}).get("capabilities")
    return caps is None or "CAP_SYS_PTRACE" in (caps.get("bounding") or ())


def shares_view(linux):
    """(no user namespace, pid namespace joined by path) of a config's linux section."""
    nss = (linux or {}).get("namespaces") or []
    return (not any(ns.get("type") == "user" for ns in nss),
            any(ns.get("type") == "pid" and ns.get("path") for ns in nss))


def host_root():
    """Root of the initial user namespace: only then can the container's root write our binary
    (root of a user namespace, as rootless podman runs us, does not own it)."""
    if os.geteuid() != 0:
        return False
    try:  # one bounded read (not runtime.rootless: it imports subprocess and shutil)
        with open("/proc/self/uid_map", "rb") as f:
            return f.read(4096).split() == [b"0", b"0", b"4294967295"]
    except OSError:
        return False


def needed_by_config(cfg):
    """For create and run: whether the container's processes may reach our binary."""
    no_userns, pid_joined = shares_view(cfg.get("linux"))
    return no_userns and (pid_joined or may_ptrace(cfg.get("process"))) and host_root()


def needed_by_exec(data, proc):
    """For exec: whether the container whose saved state is DATA may reach our binary while its
    new process PROC is ours: its own or the init's capabilities, a pid namespace joined by path
    or marked by a peer that joined it (container._mark_ptrace_peer), or any process running in
    its cgroup (an earlier exec may have been given the capability)."""
    config = data.get("config") or {}
    no_userns, pid_joined = shares_view(config.get("linux"))
    if not no_userns or not host_root() or protected():
        return False
    if pid_joined or data.get("ptrace_peer") or may_ptrace(proc) or may_ptrace(config.get("process")):
        return True
    if not data.get("cgroup"):
        return False
    from . import cgroups
    try:
        return any_may_ptrace(cgroups.load_manager(data["cgroup"]).pids())
    except OSError:
        return True


def any_may_ptrace(pids):
    """Whether a process of PIDS has CAP_SYS_PTRACE in its bounding set (it can get it back)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                status = f.read(1 << 16)
        except OSError:
            continue  # gone
        for line in status.split(b"\n"):
            if line.startswith(b"CapBnd:"):
                if int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1:
                    return True
                break
    return False


def ensure(needed, release=None):
    """Re-execute this command's interpreter read-only when NEEDED and not done yet (RELEASE() is
    called first: what must not outlive us, a lock); returns when nothing is to be done. Only the
    pyrunc command itself re-executes (Python code calling runtime.cli.main is not ours to
    replace)."""
    if not needed or os.environ.get(_MARK) or protected():
        return
    from .hotpath import is_command
    if not is_command():
        return
    from . import linux as L
    from .errors import Error, why
    try:
        fd = _read_only_view(L)
    except OSError:
        try:  # no mount API here (an older kernel, no CAP_SYS_ADMIN): a sealed copy, as runc's
            fd = _sealed_copy()
        except OSError as e:
            raise Error(f"cannot protect the runtime's binary from the container (CAP_SYS_PTRACE without a "
                        f"user namespace): {why(e)}") from None
    if release is not None:
        release()
    sys.stdout.flush()
    sys.stderr.flush()
    env = [f"{k}={v}" for k, v in os.environ.items()] + [f"{_MARK}=1"]
    try:
        L.execveat(fd, sys.orig_argv, env)
    except OSError as e:
        raise Error(f"cannot protect the runtime's binary from the container: re-executing it: {why(e)}") from None


def _read_only_view(L):
    """A detached read-only bind mount of our binary (an O_PATH fd of it)."""
    fd = L.open_tree(L.AT_FDCWD, "/proc/self/exe", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC)
    try:
        L.mount_setattr(fd, "", L.AT_EMPTY_PATH,
                        attr_set=L.MOUNT_ATTR_RDONLY | L.MOUNT_ATTR_NOSUID | L.MOUNT_ATTR_NODEV)
    except OSError:
        os.close(fd)
        raise
    return fd


def _sealed_copy():
    """A copy of our binary in a memfd sealed against writes and resizing."""
    import fcntl
    src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    fd = -1
    try:
        fd = os.memfd_create("pyrunc", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        size, off = os.fstat(src).st_size, 0
        while off < size:
            n = os.sendfile(fd, src, off, size - off)
            if n <= 0:
                raise OSError(5, "short copy of /proc/self/exe")  # EIO
            off += n
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_WRITE)
    except OSError:
        if fd >= 0:
            os.close(fd)
        raise
    finally:
        os.close(src)
    return fd
