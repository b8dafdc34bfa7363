"""linux.sysctl (config-linux.md "Sysctl"): only keys that a namespace of the container scopes.

A sysctl outside the container's own namespaces would change the host: those are refused at create,
as runc does (net.* needs a network namespace other than the runtime's; the System V IPC and
mqueue keys need an ipc namespace; kernel.domainname needs a uts namespace; kernel.hostname
conflicts with the "hostname" field).
"""
import os

from .errors import Error, why

_IPC_KEYS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
             "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def split(key):
    """The components of KEY. sysctl.d(5): a key whose first separator is '/' uses '/' throughout
    ('.' is then literal); in the dotted form a '/' stands for a literal '.' (eth0/100)."""
    k = key.strip()
    dot, slash = k.find("."), k.find("/")
    if slash >= 0 and (dot < 0 or slash < dot):
        return k.strip("/").split("/")
    return [p.replace("/", ".") for p in k.split(".")]


def _same_ns(path, mine):
    try:
        a, b = os.stat(path), os.stat(mine)
    except OSError as e:
        raise Error(f"config.json: linux.namespaces: {path}: {why(e)}") from None
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check(sysctl, nss):
    """Return [(key, proc path, value)]; raise Error naming linux.sysctl.KEY when it is not allowed.
    NSS is {type: path or None} of linux.namespaces."""
    out = []
    for key, value in sysctl.items():
        parts = split(key)
        k = ".".join(parts)
        field = f"config.json: linux.sysctl.{key}"
        if not all(parts) or any(p in (".", "..") or "\0" in p for p in parts):
            raise Error(f"{field}: invalid key")
        if not isinstance(value, str):
            raise Error(f"{field}: value must be a string")
        if k.startswith("net."):
            if "network" not in nss:
                raise Error(f"{field}: not allowed in the host's network namespace")
            p = nss["network"]
            if p and _same_ns(p, "/proc/self/ns/net"):
                raise Error(f"{field}: not allowed in the host's network namespace")
        elif k in _IPC_KEYS or k.startswith("fs.mqueue."):
            if "ipc" not in nss:
                raise Error(f"{field}: needs an ipc namespace")
            p = nss["ipc"]
            if p and _same_ns(p, "/proc/self/ns/ipc"):
                raise Error(f"{field}: not allowed in the host's ipc namespace")
        elif k == "kernel.domainname" and "uts" in nss:
            pass
        elif k == "kernel.hostname" and "uts" in nss:
            raise Error(f"{field}: conflicts with the hostname field; set that instead")
        else:
            raise Error(f"{field}: not in a separate kernel namespace of the container")
        out.append((key, "/proc/sys/" + "/".join(parts), value))
    return out


def apply(items):
    """In the init, after pivot_root and before readonlyPaths."""
    from . import procfs
    for key, path, value in items:
        try:
            # beneath a procfs root opened before pivot_root: no mount over /proc/sys, no
            # symlink in it, can redirect the write (runtime/procfs.py)
            procfs.write(path[len("/proc/"):], value)
        except OSError as e:
            raise Error(f"linux.sysctl.{key}: {why(e)}") from None
