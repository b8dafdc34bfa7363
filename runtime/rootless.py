"""Rootless containers: pyrunc run by an ordinary user, through a user namespace (as runc does).

What changes when the runtime is not root (or `--rootless true`):
- state root: $XDG_RUNTIME_DIR/pyrunc when XDG_RUNTIME_DIR is set (runc: $XDG_RUNTIME_DIR/runc);
  else /run/user/<uid>/pyrunc when that dir is the user's own; else /run/pyrunc, which an
  ordinary user cannot create: the error says to set XDG_RUNTIME_DIR or --root.
  (runc 1.1.5 has no other fallback; a /tmp one would let anyone pre-create the state dir.)
- a user namespace with mappings is required (the kernel gives an ordinary user no other way
  to be root of the container's namespaces);
- id maps: a single-line map of the user's own euid/egid is written by the runtime itself
  (gid_map after "deny" to setgroups, which the kernel requires of an unprivileged writer);
  anything wider goes through newuidmap/newgidmap (setuid helpers that check /etc/subuid and
  /etc/subgid), run by the runtime with the init's pid;
- devices are bind-mounted from the host (rootfs.create_devices does so in a user namespace);
- mounts the kernel refuses in a user namespace fail with an error naming them and the reason;
- cgroups are used only where delegated (every hierarchy writable by the user, e.g. cgroup v2
  with a delegated subtree); otherwise skipped with a warning when no resources are requested,
  and an error when they are. The container then lives in the cgroups of its caller.
"""
import os
import shutil
import subprocess

from .errors import Error, why


def in_user_namespace():
    """True when this process is in a user namespace other than the initial one."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def resolve(flag):
    """--rootless true|false|auto -> bool, as runc decides whether to tolerate cgroup errors."""
    if flag in ("1", "t", "T", "TRUE", "true", "True"):  # Go's strconv.ParseBool, as runc
        return True
    if flag in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    if flag != "auto":
        raise Error(f"--rootless: invalid value {flag!r}: use true, false or auto")
    if os.geteuid() != 0:
        return True
    # root in a user namespace set up by someone else: rootless unless we are the real root's USER
    return in_user_namespace() and os.environ.get("USER") != "root"


def default_root():
    """The state root when --root is not given (see the module docstring)."""
    if os.geteuid() == 0 and not in_user_namespace():
        return "/run/pyrunc"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and (os.geteuid() != 0 or os.environ.get("USER") != "root"):
        root = os.path.join(xdg, "pyrunc")
        _make_xdg_root(root)
        return root
    run_user = f"/run/user/{os.getuid()}"
    try:
        if os.stat(run_user).st_uid == os.getuid():
            return os.path.join(run_user, "pyrunc")
    except OSError:
        pass
    return "/run/pyrunc"


def _make_xdg_root(root):
    """Create ROOT 0700 with the sticky bit, as runc does: XDG_RUNTIME_DIR cleaners (systemd) skip
    sticky entries, so the state of a long-running container is not removed under it."""
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        st = os.stat(root)
        if st.st_uid == os.geteuid() and not st.st_mode & 0o1000:
            os.chmod(root, (st.st_mode & 0o7777) | 0o1000)
    except OSError:
        pass  # state.ensure_root reports it with the path


# ------------------------------------------------------------------ config checks (runtime process)
def check(plan, cfg):
    """What a container needs when the runtime has no root: a user namespace with mappings."""
    if not plan.userns:
        raise Error("config.json: linux.namespaces: a rootless container requires a user namespace")
    if plan.ns_paths.get("user"):
        return  # joined: its maps are already written by whoever made it
    if not plan.uid_mappings:
        raise Error("config.json: linux.uidMappings: a rootless container requires at least one UID mapping")
    if not plan.gid_mappings:
        raise Error("config.json: linux.gidMappings: a rootless container requires at least one GID mapping")
    if plan.proc.groups and _own_only(plan.gid_mappings, os.getegid()):
        # a single-id gid map means setgroups is denied in the container (the kernel's rule)
        raise Error("config.json: process.user.additionalGids: cannot set additional groups in a rootless "
                    "container whose gidMappings map only the user's own gid (setgroups is denied); "
                    "map a /etc/subgid range with gidMappings")


def _own_only(maps, own):
    return len(maps) == 1 and maps[0].get("hostID") == own and maps[0].get("size") == 1


# ------------------------------------------------------------------ id maps (runtime process)
def write_id_maps(pid, plan):
    """Write the init's uid_map/gid_map without privileges: the user's own id directly, wider
    maps through newuidmap/newgidmap (the init must still be dumpable: see init._init)."""
    uid, gid = os.geteuid(), os.getegid()
    if _own_only(plan.uid_mappings, uid):
        _write(pid, "uid_map", plan.uid_mappings, "uidMappings")
    else:
        _helper("newuidmap", pid, plan.uid_mappings, "uidMappings", "/etc/subuid")
    if _own_only(plan.gid_mappings, gid):
        from . import idmaps
        idmaps.deny_setgroups(pid)
        _write(pid, "gid_map", plan.gid_mappings, "gidMappings")
    else:
        _helper("newgidmap", pid, plan.gid_mappings, "gidMappings", "/etc/subgid")


def _write(pid, name, maps, field):
    from . import idmaps
    idmaps.write(pid, name, maps, f"linux.{field}")


def _helper(prog, pid, maps, field, subfile):
    path = shutil.which(prog) or (f"/usr/bin/{prog}" if os.path.exists(f"/usr/bin/{prog}") else None)
    if path is None:
        raise Error(f"config.json: linux.{field}: mapping more than your own id needs {prog} "
                    f"(package uidmap), which is not installed")
    args = [path, str(pid)]
    for m in maps:
        args += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    try:
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30, close_fds=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Error(f"config.json: linux.{field}: {prog}: {why(e)}") from None
    if r.returncode != 0:
        out = r.stdout.decode(errors="replace").strip().replace("\n", "; ")
        raise Error(f"config.json: linux.{field}: {prog} refused the mapping ({out}); "
                    f"the ranges beyond your own id must be granted to you in {subfile}")


# ------------------------------------------------------------------ mounts (init, on failure)
def mount_hint(p, errno_):
    """Why the kernel refused mount plan P in a user namespace, when we can tell."""
    import errno
    if errno_ not in (errno.EPERM, errno.EACCES, errno.EINVAL):
        return ""
    t = p.type
    if t == "sysfs":
        return (" (a rootless container can mount sysfs only in its own network namespace: "
                "bind-mount /sys instead, as `spec --rootless` does)")
    if t == "cgroup2":
        return " (a rootless container can mount cgroup2 only in its own cgroup namespace)"
    if t == "mqueue":
        return " (a rootless container can mount mqueue only in its own ipc namespace)"
    if t == "proc":
        return " (a rootless container can mount proc only in its own pid namespace)"
    if errno_ == errno.EINVAL and any(o.startswith(("uid=", "gid=")) for o in (p.data or "").split(",")):
        return " (a uid= or gid= option names an id that is not mapped in the container's user namespace)"
    if not p.bind and t not in ("tmpfs", "devpts", "overlay", "fuse", "ramfs"):
        return f" (mounting {t} needs real root: a rootless container can only bind-mount it from the host)"
    return " (not permitted in a rootless container's user namespace)"


# ------------------------------------------------------------------ cgroups (runtime process)
def cgroup_manager(cid, linux):
    """The container's cgroup manager in rootless mode (runtime/cgroups/rootless.py): its own
    where delegated, else the caller's cgroups (a warning), or an error when resources were asked for."""
    from .cgroups import rootless
    return rootless.manager(cid, linux)
