"""A user namespace's id maps (/proc/PID/{uid,gid}_map, setgroups), written by the runtime
process through runtime/procfs.py. A leaf: create, rootless and the idmapped-mount helper use it."""
from . import procfs
from .errors import Error, why


def write(pid, name, maps, field):
    """Write /proc/PID/NAME (uid_map or gid_map) from OCI MAPS; FIELD names them in an error."""
    text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
    try:
        procfs.write(f"{pid}/{name}", text)  # one write(2): the kernel takes a map once
    except OSError as e:
        raise Error(f"config.json: {field}: the kernel refused the mapping: {why(e)}") from None


def write_maps(pid, uid_maps, gid_maps, field):
    """Both maps of PID; FIELD ("linux", "mounts[i]") names them in an error."""
    write(pid, "uid_map", uid_maps, f"{field}.uidMappings")
    write(pid, "gid_map", gid_maps, f"{field}.gidMappings")


def deny_setgroups(pid):
    try:
        procfs.write(f"{pid}/setgroups", "deny")
    except OSError as e:
        raise Error(f"config.json: linux.gidMappings: cannot deny setgroups for the init: {why(e)}") from None
