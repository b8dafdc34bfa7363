"""config-linux.md "Namespaces": each kind created (checked from inside) or joined by path."""
import json
import os
import subprocess
import time

import pytest

from conftest import base_config

KINDS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
         "cgroup": "cgroup", "user": "user", "time": "time"}


def inside(rt, cfg, script):
    cfg["process"]["args"] = ["sh", "-c", script]
    p = rt.run(cfg)
    assert p.returncode == 0, p.stderr
    return p.stdout


def userns(cfg, host=100000, size=65536):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
    return cfg


def test_every_namespace_differs_from_host(anyrt):
    cfg = base_config()
    for extra in ("cgroup",):
        cfg["linux"]["namespaces"].append({"type": extra})
    if anyrt.name == "pyrunc":  # runc 1.1.5 knows no time namespace
        cfg["linux"]["namespaces"].append({"type": "time"})
    userns(cfg)
    names = [KINDS[n["type"]] for n in cfg["linux"]["namespaces"]]
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in names)
    out = inside(anyrt, cfg, script).split()
    for n, link in zip(names, out):
        assert link != os.readlink(f"/proc/self/ns/{n}"), n


def test_shared_when_not_listed(pyrunc):
    cfg = base_config()
    cfg["linux"]["namespaces"] = [{"type": "mount"}]
    del cfg["hostname"]  # a hostname needs a uts namespace (runc refuses too)
    out = inside(pyrunc, cfg, "for n in net uts ipc; do readlink /proc/self/ns/$n; done").split()
    assert out == [os.readlink(f"/proc/self/ns/{n}") for n in ("net", "uts", "ipc")]


def test_pid_namespace_init_is_pid1(anyrt):
    assert inside(anyrt, base_config(), "echo $$").strip() == "1"


def test_uts_hostname_domainname(anyrt):
    if anyrt.name == "runc":
        pytest.skip("runc 1.1.5 does not know domainname")
    cfg = base_config()
    cfg["hostname"] = "box-a"
    cfg["domainname"] = "example.org"
    out = inside(anyrt, cfg, "hostname; cat /proc/sys/kernel/domainname").split()
    assert out == ["box-a", "example.org"]


def test_network_namespace_has_loopback_up(anyrt):
    out = inside(anyrt, base_config(), "ls /sys/class/net; ip -o link show lo")
    names = out.split("\n")[0].split()
    assert "lo" in out and "UP" in out.split("lo", 1)[1]


def test_user_namespace_mapping(anyrt):
    cfg = userns(base_config())
    out = inside(anyrt, cfg, "cat /proc/self/uid_map /proc/self/gid_map; id -u").split()
    assert out[:3] == ["0", "100000", "65536"] and out[3:6] == ["0", "100000", "65536"]
    assert out[6] == "0"


def test_user_namespace_process_uid_seen_from_host(pyrunc):
    cfg = userns(base_config(["sleep", "100"]))
    b = pyrunc.bundle(cfg)
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "-b", b, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uids = [ln for ln in f if ln.startswith("Uid:")][0].split()[1:]
    assert uids == ["100000"] * 4


def test_cgroup_namespace_root(anyrt):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    out = inside(anyrt, cfg, "cat /proc/self/cgroup")
    for line in out.split():
        assert line.endswith(":/"), out


def test_time_namespace_offsets(pyrunc):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                   "monotonic": {"secs": 1000, "nanosecs": 0}}
    out = inside(pyrunc, cfg, "cat /proc/uptime; cat /proc/self/timens_offsets")
    up = float(out.split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert up - host > 86400 * 364
    assert "monotonic" in out and "1000" in out


def test_ipc_namespace_isolated(anyrt):
    cfg = base_config()
    out = inside(anyrt, cfg, "readlink /proc/self/ns/ipc; ls /dev/mqueue | wc -l")
    assert out.split()[0] != os.readlink("/proc/self/ns/ipc")


def test_join_namespaces_by_path(anyrt):
    """A second container joins the first one's network, uts and pid namespaces."""
    cfg = base_config(["sleep", "100"])
    cfg["hostname"] = "first"
    b = anyrt.bundle(cfg)
    first = anyrt.new_id()
    anyrt("run", "-d", "-b", b, first, check=True)
    pid = anyrt.state(first)["pid"]
    cfg2 = base_config()
    del cfg2["hostname"]  # else it would rename the joined uts namespace
    for ns in cfg2["linux"]["namespaces"]:
        if ns["type"] in ("network", "uts", "pid"):
            ns["path"] = f"/proc/{pid}/ns/{KINDS[ns['type']]}"
    out = inside(anyrt, cfg2, "hostname; readlink /proc/self/ns/net; ps -o pid,args | grep -c 'sleep 100'")
    host, net, n = out.split()
    assert host == "first"
    assert net == os.readlink(f"/proc/{pid}/ns/net")
    assert int(n) >= 1


def test_join_wrong_type_is_refused(pyrunc):
    cfg = base_config()
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/uts"
    p = pyrunc.run(cfg)
    assert p.returncode == 1
    assert "linux.namespaces" in p.stderr and "not a network namespace" in p.stderr
    assert not os.path.exists(pyrunc.root) or not os.listdir(pyrunc.root)


def test_join_missing_path_is_refused(pyrunc):
    cfg = base_config()
    cfg["linux"]["namespaces"][0]["path"] = "/proc/999999999/ns/pid"
    p = pyrunc.run(cfg)
    assert p.returncode == 1 and "linux.namespaces" in p.stderr
    assert not os.path.exists(pyrunc.root) or not os.listdir(pyrunc.root)
