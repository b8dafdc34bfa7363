"""linux.netDevices (config-linux.md "Network Devices", spec 1.3; runc 1.1.5 lacks it: pyrunc only).

A veth pair made by the test has one end moved into the container (kept name, renamed, `%d`
template), with its permanent global addresses (IPv4 and IPv6) and up; other addresses stay
behind. Errors name the field and leave the device on the host; a create that fails after the move
gives it back. Deleting the container destroys its network namespace, the veth end in it and so
its peer: nothing named pyrt* is left on the host.
"""
import json
import os
import random
import subprocess
import time
import uuid

import pytest

from conftest import base_config


def ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and p.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr}")
    return p


def exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def wait_gone(*names, timeout=10):
    """The kernel destroys a dead namespace's devices from a workqueue: poll, don't sleep."""
    end = time.monotonic() + timeout
    while any(exists(n) for n in names):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


class Veth:
    def __init__(self):
        h = uuid.uuid4().hex[:8]
        self.name, self.peer = f"pyrt{h}", f"pyrt{h}p"
        n = random.randrange(1, 250)
        self.v4, self.v6 = f"198.18.{n}.1", f"fd00:{int(h[:4], 16):x}:{int(h[4:], 16):x}::1"
        self.tmp_v4, self.link_v4 = f"198.19.{n}.1", f"169.254.{n}.1"


@pytest.fixture
def veths():
    """make() -> a fresh veth pair with a permanent global IPv4 and IPv6 address on its first
    end, plus a non-permanent one and a link-scope one (neither of which may move along)."""
    made = []

    def make():
        v = Veth()
        made.append(v)
        ip("link", "add", v.name, "type", "veth", "peer", "name", v.peer)
        ip("addr", "add", f"{v.v4}/24", "dev", v.name)
        ip("addr", "add", f"{v.v6}/64", "dev", v.name, "nodad")
        ip("addr", "add", f"{v.tmp_v4}/24", "dev", v.name, "valid_lft", "300", "preferred_lft", "300")
        ip("addr", "add", f"{v.link_v4}/16", "dev", v.name, "scope", "link")
        return v

    yield make
    for v in made:  # deleting either end removes both
        for n in (v.peer, v.name):
            if exists(n):
                ip("link", "del", n, check=False)
    assert wait_gone(*[n for v in made for n in (v.name, v.peer)]), "veth left on the host"


def cfg_with(netdevs, script):
    cfg = base_config(["sh", "-c", script])
    cfg["linux"]["netDevices"] = netdevs
    return cfg


def show(name):
    return f"ip -o addr show dev {name}; echo flags=$(cat /sys/class/net/{name}/flags)"


def check_inside(out, v, name):
    assert f"inet {v.v4}/24" in out and f"inet6 {v.v6}/64" in out, out
    assert v.tmp_v4 not in out and v.link_v4 not in out, out  # not permanent / not global
    flags = out.split("flags=")[1].split()[0]
    assert int(flags, 16) & 1, out  # IFF_UP
    assert f": {name} " in out or f": {name}@" in out, out


@pytest.mark.parametrize("rename", [None, "eth7"])
def test_moved_with_addresses_and_up(pyrunc, veths, rename):
    v = veths()
    inside = rename or v.name
    p = pyrunc.run(cfg_with({v.name: {"name": rename} if rename else {}}, show(inside)))
    assert p.returncode == 0, p.stderr
    check_inside(p.stdout, v, inside)
    # the container is deleted: its namespace, the veth end in it and its peer are gone
    assert wait_gone(v.name, v.peer), "veth left on the host after delete"


def test_template_lets_the_kernel_pick_names(pyrunc, veths):
    a, b = veths(), veths()
    p = pyrunc.run(cfg_with({a.name: {"name": "net%d"}, b.name: {"name": "net%d"}},
                            "ls /sys/class/net; " + show("net0") + "; " + show("net1")))
    assert p.returncode == 0, p.stderr
    names = p.stdout.split()
    assert "net0" in names and "net1" in names, p.stdout
    assert f"inet {a.v4}/24" in p.stdout and f"inet {b.v4}/24" in p.stdout, p.stdout


def test_detached_container_keeps_it_until_delete(pyrunc, veths):
    v = veths()
    b = pyrunc.bundle(cfg_with({v.name: {"name": "eth1"}}, "sleep 1000"))
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "--bundle", b, cid, check=True)
    assert not exists(v.name) and exists(v.peer)
    p = pyrunc("exec", cid, "sh", "-c", show("eth1"), check=True)
    check_inside(p.stdout, v, "eth1")
    pyrunc("delete", "--force", cid, check=True)
    assert wait_gone(v.name, v.peer), "veth left on the host after delete"


def host_addrs(name):
    return ip("-o", "addr", "show", "dev", name).stdout


def assert_untouched(v):
    """Still on the host, under its name, with its addresses."""
    assert exists(v.name), f"{v.name} left the host"
    out = host_addrs(v.name)
    assert f"inet {v.v4}/24" in out and f"inet6 {v.v6}/64" in out, out


def one_line_error(p, field):
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], p.stderr


def test_missing_host_device(pyrunc):
    p = pyrunc.run(cfg_with({"pyrtnothere": {}}, "true"))
    one_line_error(p, "linux.netDevices.pyrtnothere")


@pytest.mark.parametrize("name", ["lo", "duplicate"])
def test_name_taken_in_the_container(pyrunc, veths, name):
    v = veths()
    if name == "duplicate":  # two devices asking for the same name
        w = veths()
        p = pyrunc.run(cfg_with({v.name: {"name": "eth3"}, w.name: {"name": "eth3"}}, "true"))
        one_line_error(p, f"linux.netDevices.{w.name}")
        assert_untouched(w)
    else:
        p = pyrunc.run(cfg_with({v.name: {"name": name}}, "true"))
        one_line_error(p, f"linux.netDevices.{v.name}")
    assert_untouched(v)


def test_host_network_namespace(pyrunc, veths):
    v = veths()
    cfg = cfg_with({v.name: {}}, "true")
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    one_line_error(pyrunc.run(cfg), "linux.netDevices")
    cfg["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{os.getpid()}/ns/net"})
    one_line_error(pyrunc.run(cfg), "linux.netDevices")
    assert_untouched(v)


@pytest.mark.parametrize("netdevs,field", [
    ([], "linux.netDevices"),
    ({"": {}}, "linux.netDevices"),
    ({"pyrtx": 3}, "linux.netDevices.pyrtx"),
    ({"pyrtx": {"name": 3}}, "linux.netDevices.pyrtx"),
    ({"pyrtx": {"name": "a/b"}}, "linux.netDevices.pyrtx.name"),
    ({"pyrtx": {"name": "x" * 16}}, "linux.netDevices.pyrtx.name"),
])
def test_bad_shape(pyrunc, netdevs, field):
    one_line_error(pyrunc.run(cfg_with(netdevs, "true")), field)


def test_failed_create_gives_the_device_back(pyrunc, veths, tmp_path):
    """A prestart hook fails after the move: the create is undone, the device is back."""
    v = veths()
    cfg = cfg_with({v.name: {"name": "eth5"}}, "true")
    cfg["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    p = pyrunc.run(cfg)
    assert p.returncode == 1, p.stderr
    assert_untouched(v)
    assert v.tmp_v4 not in host_addrs(v.name)  # only the permanent global ones are carried


def test_features_says_enabled(pyrunc):
    p = pyrunc("features", check=True)
    assert json.loads(p.stdout)["linux"]["netDevices"] == {"enabled": True}
