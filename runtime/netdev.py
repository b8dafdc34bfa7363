"""linux.netDevices (config-linux.md "Network Devices"): host network devices moved into the
container's network namespace at create, between the clone of the init and "go".

check() runs in prepare (before anything exists): the field's shape, a network namespace of the
container's own (a device can't be moved into the host's), and each device present on the host.
move() runs in the runtime after the clone: it reads each device's permanent global-scope
addresses (the kernel drops them on a namespace move), moves it (renamed when `name` says so; a
`%d` template lets the kernel pick a free name), adds the addresses back inside and sets it up.

The runtime never moves a device out again once the container exists (the spec forbids it): when
the network namespace dies, the kernel moves physical devices back to the host's and destroys
virtual ones, so a veth end given to a container is gone, with its peer, once the container is
deleted. Only a create that fails after a move gives the devices back (Moved.restore), under their
host names with their addresses: it is the create's own undo, the container never existed.
"""
import os

from .errors import Error, why

CLONE_NEWNET = 0x40000000
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
IFF_UP = 0x1
# address flags a user can set (ip addr add ... nodad/noprefixroute/...): carried over as they were
_SETTABLE_IFA = 0x02 | 0x10 | 0x100 | 0x200 | 0x400  # NODAD HOMEADDRESS MANAGETEMPADDR NOPREFIXROUTE MCAUTOJOIN


def _valid_ifname(s):
    """The kernel's dev_valid_name, so a bad name fails at prepare and not half-way."""
    return (isinstance(s, str) and 0 < len(s.encode()) < 16 and s not in (".", "..")
            and not any(c == "/" or c == ":" or c.isspace() for c in s))


def check(netdevs, nss, ns_paths):
    """[(host name, name in the container or None)] of linux.netDevices, checked."""
    where = "config.json: linux.netDevices"
    if not isinstance(netdevs, dict):
        raise Error(f"{where}: must be an object")
    if "network" not in nss:
        raise Error(f"{where}: the container has no network namespace of its own (its devices "
                    "would be the host's): add a network namespace")
    path = ns_paths.get("network")
    if path:
        st, host = os.stat(path), os.stat("/proc/self/ns/net")
        if (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino):
            raise Error(f"{where}: the network namespace {path} is the host's: a device can't be "
                        "moved into it")
    import _socket
    devs, targets = [], {}
    for host_name, v in netdevs.items():
        f = f"{where}.{host_name}"
        if not isinstance(host_name, str) or not host_name:
            raise Error(f"{where}: device names (the keys) must be non-empty strings")
        if not isinstance(v, dict):
            raise Error(f"{f}: must be an object")
        name = v.get("name")
        if name is not None and not isinstance(name, str):
            raise Error(f"{f}.name: must be a string")
        if name is not None and not _valid_ifname(name.replace("%d", "0")):
            raise Error(f"{f}.name: {name!r} is not a valid network device name")
        if not _valid_ifname(host_name):
            raise Error(f"{f}: {host_name!r} is not a valid network device name")
        try:
            _socket.if_nametoindex(host_name)
        except OSError:
            raise Error(f"{f}: no such network device on the host") from None
        target = name or host_name
        if "%d" not in target:
            if target in targets:
                raise Error(f"{f}: the name {target!r} is also the one of "
                            f"linux.netDevices.{targets[target]} in the container")
            targets[target] = host_name
        devs.append((host_name, name or None))
    return devs


def _why(code):
    """A netlink error code as runc prints an errno."""
    return why(OSError(code, os.strerror(code)))


def _netlink_in(nsfd):
    """A NETLINK_ROUTE socket of the network namespace nsfd: a socket belongs to the namespace it
    was made in, so the runtime steps in for the socket() call and out again (no thread, no fork)."""
    import _socket
    from . import linux as L
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            L.setns(nsfd, CLONE_NEWNET)
        except OSError as e:
            raise Error(f"linux.netDevices: joining the container's network namespace: {why(e)}") from None
        try:
            s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC, 0)
        finally:
            L.setns(home, CLONE_NEWNET)
    finally:
        os.close(home)
    return s.detach()


def _addrs(ipr, index):
    """The addresses to keep: permanent (IFA_F_PERMANENT) and global scope, any family."""
    keep = []
    for a in ipr.get_addr(index=index):
        flags = a.get("IFA_FLAGS") or a["flags"]
        if flags & IFA_F_PERMANENT and a["scope"] == RT_SCOPE_UNIVERSE:
            kw = {"family": a["family"], "prefixlen": a["prefixlen"], "address": a.get("IFA_ADDRESS")}
            for attr, key in (("IFA_LOCAL", "local"), ("IFA_BROADCAST", "broadcast")):
                if a.get(attr):
                    kw[key] = a.get(attr)
            if flags & _SETTABLE_IFA:
                kw["flags"] = flags & _SETTABLE_IFA
            keep.append(kw)
    return keep


def _add_addrs(ipr, index, addrs):
    for kw in addrs:
        ipr.addr("add", index=index, **kw)


class Moved:
    """The devices moved so far, to give back if the create fails after all."""

    def __init__(self):
        self.devs = []  # (host name, index in the container, host addresses, was up)

    def restore(self, pid):
        if not self.devs:
            return
        from pyroute2 import IPRoute
        try:
            nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # the namespace is gone, and with it the devices (see the module docstring)
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with IPRoute() as host, IPRoute(fileno=_netlink_in(nsfd)) as cont:
                for host_name, index, addrs, up in self.devs:
                    try:
                        cont.link("set", index=index, net_ns_fd=home, ifname=host_name)
                        idx = host.link_lookup(ifname=host_name)[0]
                        _add_addrs(host, idx, addrs)
                        if up:
                            host.link("set", index=idx, state="up")
                    except Exception:
                        pass  # best effort: what stays inside dies with the namespace
        finally:
            os.close(nsfd)
            os.close(home)
        self.devs = []


def move(devs, pid, moved):
    """Move devs ([(host name, name)] from check) into the network namespace of pid, recording
    each in moved (a Moved) as soon as it has left the host."""
    # only here, for a config that has netDevices (hot path: see runtime/hotpath.py)
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as host, IPRoute(fileno=_netlink_in(nsfd)) as cont:
            inside = {ln.get("IFLA_IFNAME") for ln in cont.get_links()}
            plan = []
            for host_name, name in devs:  # everything checked before the first move
                f = f"linux.netDevices.{host_name}"
                found = host.link_lookup(ifname=host_name)
                if not found:
                    raise Error(f"{f}: no such network device on the host")
                target = name or host_name
                if "%d" not in target and target in inside:
                    raise Error(f"{f}: a network device named {target!r} already exists in the "
                                "container's network namespace")
                link = host.get_links(found[0])[0]
                plan.append((f, host_name, name, found[0], _addrs(host, found[0]),
                             bool(link["flags"] & IFF_UP)))
            for f, host_name, name, index, addrs, up in plan:
                before = {ln["index"] for ln in cont.get_links()}
                err = None
                try:
                    kw = {"ifname": name} if name else {}
                    host.link("set", index=index, net_ns_fd=nsfd, **kw)
                except NetlinkError as e:
                    err = e  # the kernel may have moved it and then failed the rename
                new = [ln["index"] for ln in cont.get_links() if ln["index"] not in before]
                if new:
                    moved.devs.append((host_name, new[0], addrs, up))
                if err is not None or not new:
                    reason = _why(err.code) if err is not None else "not found after the move"
                    raise Error(f"{f}: moving it into the container's network namespace: {reason}")
                try:
                    _add_addrs(cont, new[0], addrs)
                    cont.link("set", index=new[0], state="up")
                except NetlinkError as e:
                    raise Error(f"{f}: setting it up in the container: {_why(e.code)}") from None
    except NetlinkError as e:
        raise Error(f"linux.netDevices: {_why(e.code)}") from None
    finally:
        os.close(nsfd)
