"""linux.memoryPolicy (config-linux.md "Memory policy", spec 1.3; runc 1.1.5 lacks it): the
NUMA policy set with set_mempolicy(2) shows in /proc/self/numa_maps of the container's program,
of its children and of exec'd processes; bad values are one-line errors naming the field."""
import os

import pytest

from conftest import base_config

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/numa_maps"), reason="kernel without NUMA")


def cfg_with(policy, args=("head", "-1", "/proc/self/numa_maps")):
    cfg = base_config(args)
    cfg["root"]["readonly"] = True
    cfg["linux"]["memoryPolicy"] = policy
    return cfg


def policy_of(numa_maps_line):
    return numa_maps_line.split()[1]


@pytest.mark.parametrize("policy,want", [
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "interleave=static:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]}, "prefer=relative:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, "bind=balancing:0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
    ({"mode": "MPOL_DEFAULT"}, "default"),
])
def test_policy_applied(pyrunc, policy, want):
    p = pyrunc.run(cfg_with(policy))
    assert p.returncode == 0, p.stderr
    assert policy_of(p.stdout) == want, p.stdout


def test_exec_gets_the_policy(pyrunc):
    b = pyrunc.bundle(cfg_with({"mode": "MPOL_BIND", "nodes": "0"}, args=("sleep", "1000")))
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "--bundle", b, cid, check=True)
    p = pyrunc("exec", cid, "sh", "-c", "head -1 /proc/self/numa_maps", check=True)
    assert policy_of(p.stdout) == "bind:0", p.stdout


@pytest.mark.parametrize("policy,field", [
    ({"mode": "MPOL_BIND"}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": ""}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_LOCAL", "nodes": "0"}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_DEFAULT", "nodes": "0-1"}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_BIND", "nodes": "0-x"}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_BIND", "nodes": "3-1"}, "linux.memoryPolicy.nodes"),
    ({"mode": "MPOL_NOPE", "nodes": "0"}, "linux.memoryPolicy.mode"),
    ({"nodes": "0"}, "linux.memoryPolicy"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}, "linux.memoryPolicy.flags[0]"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     "linux.memoryPolicy.flags"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, "linux.memoryPolicy.flags"),
    ({"mode": "MPOL_LOCAL", "flags": ["MPOL_F_STATIC_NODES"]}, "linux.memoryPolicy.flags"),
])
def test_bad_policy(pyrunc, policy, field):
    p = pyrunc.run(cfg_with(policy))
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], p.stderr


def test_node_not_on_this_host_is_an_error(pyrunc):
    with open("/sys/devices/system/node/possible") as f:
        last = int(f.read().strip().replace(",", "-").split("-")[-1])
    p = pyrunc.run(cfg_with({"mode": "MPOL_BIND", "nodes": str(last + 1)}))
    assert p.returncode == 1 and "linux.memoryPolicy" in p.stderr, p.stderr
