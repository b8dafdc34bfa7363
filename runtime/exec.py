"""runc exec: start one more process inside a running container.

The verb checks the process (a JSON file, or the container's own changed by the flags) and the
container's status, plans the process, and hands it to the process chain: chain/parent.start_exec
forks it inside the container, chain/execproc.py takes it to execve through the finalize steps the
init takes too. Foreground, the verb then waits for it (or proxies its terminal).
"""
import os

from . import state
from .errors import Error, why
from .hotpath import json_document, json_loads
from .lifecycle import exit_code



MAX_PROCESS = 128 << 20  # --process: bounded as config.json is


def _load_json(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PROCESS + 1)
    except OSError as e:
        raise Error(f"open {path}: {why(e).lower()}") from None
    if len(data) > MAX_PROCESS:
        raise Error(f"{path}: larger than {MAX_PROCESS >> 20} MiB")
    try:
        # no json (and its re, enum): every engine's exec passes --process (hot path)
        p = json_document(data)
    except ValueError as e:
        raise Error(f"{path}: invalid JSON: {e}") from None
    if not isinstance(p, dict):
        raise Error(f"{path}: the process must be a JSON object")
    return p


def _validate(p, where):
    """runc's validateProcessSpec, plus types the plan relies on."""
    cwd = p.get("cwd")
    if not cwd:
        raise Error("Cwd property must not be empty")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise Error("Cwd must be an absolute path")
    args = p.get("args")
    if not args:
        raise Error("args must not be empty")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise Error(f"{where}.args: must be a list of strings")
    env = p.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise Error(f"{where}.env: must be a list of strings")
    user = p.get("user") or {}
    if not isinstance(user, dict):
        raise Error(f"{where}.user: must be an object")
    for k in ("uid", "gid"):
        v = user.get(k, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise Error(f"{where}.user.{k}: must be an unsigned 32-bit integer, got {v!r}")
    size = p.get("consoleSize")
    if size is not None and not (isinstance(size, dict) and all(
            isinstance(size.get(k, 0), int) and 0 <= size.get(k, 0) < 65536 for k in ("height", "width"))):
        raise Error(f"{where}.consoleSize: height and width must be integers 0..65535")


def process_from_flags(base, o, args):
    """runc's exec without -p: the container's process, overridden by the flags."""
    p = dict(base or {})  # state.json's copy, read for this exec only: nested changes are harmless
    p["args"] = list(args)
    if o["cwd"]:
        p["cwd"] = o["cwd"]
    if o["apparmor"]:
        p["apparmorProfile"] = o["apparmor"]
    if o["process-label"]:
        p["selinuxLabel"] = o["process-label"]
    if o["cap"]:
        caps = p.setdefault("capabilities", {})
        for c in o["cap"]:
            for kind in ("bounding", "effective", "permitted", "ambient"):
                caps.setdefault(kind, [])
                caps[kind] = list(caps[kind] or []) + [c]
    p["env"] = list(p.get("env") or []) + list(o["env"])
    p["terminal"] = bool(o["tty"])
    if o["no-new-privs"]:
        p["noNewPrivileges"] = True
    user = dict(p.get("user") or {})
    if o["user"]:
        uid, sep, gid = o["user"].partition(":")
        try:
            user["uid"] = int(uid)
        except ValueError:
            raise Error(f"parsing {uid} as int for uid failed: invalid syntax") from None
        if sep:
            try:
                user["gid"] = int(gid)
            except ValueError:
                raise Error(f"parsing {gid} as int for gid failed: invalid syntax") from None
    for g in o["additional-gids"]:
        try:
            n = int(g)
        except ValueError:
            raise Error(f"invalid value {g!r} for flag -additional-gids: parse error") from None
        if n < 0:
            raise Error(f"additional-gids must be a positive number {n}")
        user.setdefault("additionalGids", [])
        user["additionalGids"] = list(user["additionalGids"] or []) + [n]
    p["user"] = user
    return p


FAILED = 255  # runc's exit status for an exec that failed before the process ran


def run(root, cid, o, args):
    """The exec verb; returns the exit status (foreground) or 0 (detached), or FAILED (255, as
    runc) with the error on stderr when the process could not be started."""
    if not o["process"] and not args:
        raise Error("process args cannot be empty")
    try:
        return _run(root, cid, o, args)
    except Error as e:
        from . import log
        log.error(str(e))
        return FAILED


def _run(root, cid, o, args):
    from .lifecycle import passed_fds
    preserved = passed_fds(o["preserve-fds"])  # before we open any fd of our own
    c = state.Container(root, cid).open(shared=True)
    try:
        st = c.status()
        if st == "stopped":
            raise Error("cannot exec in a stopped container")
        if st == "paused" and not o["ignore-paused"]:
            raise Error("cannot exec in a paused container (use --ignore-paused to override)")
        if st == "creating":
            raise Error("cannot exec in a container that is being created")
        if o["process"]:
            proc = _load_json(o["process"])  # as in runc, the JSON alone decides (--tty is for flags)
        else:
            proc = process_from_flags((c.data.get("config") or {}).get("process"), o, args)
        _validate(proc, "process")
        _protect_binary(c, proc)
        terminal = bool(proc.get("terminal"))
        if terminal or o["console-socket"]:
            from . import tty
            tty.check_flags(terminal, o["console-socket"], bool(o["detach"]))
        return _exec(c, proc, o, preserved, st == "paused")
    finally:
        c.unlock()


def _protect_binary(c, proc):
    """Our process lives in the container until its execve: when a process there may hold
    CAP_SYS_PTRACE, first run from a read-only view of our binary (runtime/selfexe.py). The lock
    goes with the re-execution; the new command takes it again."""
    from . import selfexe
    selfexe.ensure(selfexe.needed_by_exec(c.data, proc), release=c.unlock)


def _exec(c, proc, o, preserved, paused=False):
    from . import process
    from .chain import parent, preload_exec
    from .linux import NS_FLAGS
    d = c.data
    linux = (d.get("config") or {}).get("linux") or {}
    plan = process.plan_process(proc)
    seccomp = linux.get("seccomp")
    flags = 0
    for ns in linux.get("namespaces") or []:
        flags |= NS_FLAGS.get(ns.get("type"), 0)
    detach = bool(o["detach"])
    console = None
    if proc.get("terminal"):
        from . import tty
        console = tty.Console(o["console-socket"])
    try:
        try:
            tail = _tail(c, plan, proc, linux, seccomp, preserved, o["preserve-fds"])
            preload_exec(tail.attrs, tail.mempolicy, seccomp, console is not None)
            placement = None
            if d.get("cgroup"):
                from . import cgroups
                mgr = cgroups.load_manager(d["cgroup"])
                if o.get("cgroup"):
                    mgr = mgr.sub(o["cgroup"])  # exec --cgroup: sub-cgroups of the container's
                # as root, the process is born in its cgroup2 dir and joins its v1 cgroups
                # itself; never into a frozen cgroup (it would stop there, before it could say
                # it is ready): then we move it once it is (parent.start_exec)
                paused = paused or mgr.frozen_now()
                placement = mgr.place(self_join=os.geteuid() == 0 and not paused)
            elif o.get("cgroup"):
                raise Error("--cgroup: the container has no cgroup")
            child, execve = parent.start_exec(c, tail, flags, console, proc.get("consoleSize"), placement,
                                              detach, paused)
        finally:
            if seccomp is not None:
                from . import seccomp as sc
                sc.close_listener()  # only the process may hold it, or the agent never sees EOF
        if o["pid-file"]:
            from .lifecycle import write_pid_file
            write_pid_file(o["pid-file"], child)
    except BaseException:
        if console is not None:
            console.close()
        raise
    c.unlock()  # the process runs: never block delete/kill while we wait for it
    if detach:
        if console is not None:
            console.close()
        return 0
    if execve is not None:  # --ignore-paused: it execs once the container is resumed
        try:
            execve()
        except BaseException:
            if console is not None:
                console.close()
            raise
    if console is not None:
        from . import tty
        try:
            console.receive()
            return exit_code(tty.proxy(console.master, child))
        finally:
            console.close()
    return exit_code(_wait(child))


def _tail(c, plan, proc, linux, seccomp, preserved, preserve_fds):
    """The finalize plan of the new process (chain/finalize.py), computed before the fork."""
    from .chain import finalize
    attrs = mpol = prepared = notify = None
    if proc.get("ioPriority") or proc.get("scheduler"):
        from . import procattr
        attrs = procattr.plan(proc, {})
    if linux.get("memoryPolicy") is not None:  # the container's NUMA policy: we do not descend from its init
        from . import mempolicy
        mpol = mempolicy.plan(linux["memoryPolicy"])
    if seccomp is not None:
        from . import seccomp as sc
        prepared = sc.prepare(seccomp, c.root)  # compiled (or cached) here: loaded after the chroot
        sc.connect_listener(seccomp)
        if seccomp.get("listenerPath"):
            from .lifecycle import oci_state
            st = json_loads(oci_state(c, "running"))
            notify = lambda: st  # noqa: E731
    return finalize.Tail(plan, preserved, 3 + preserve_fds, attrs, mpol, seccomp, prepared, notify)


def _wait(pid):
    """Foreground: the wait status of the process (signals are forwarded to it meanwhile)."""
    while True:
        try:
            p, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255 << 8
        if p == pid:
            return status

