"""Planning in the runtime process, before any clone: mounts, process, ioPriority/scheduler/
personality, memoryPolicy, sysctl (runtime/rootfs.py, process.py, procattr.py, mempolicy.py,
sysctl.py). Pure: no mount, no namespace, no root."""
import os

import pytest

from runtime import linux as L
from runtime import mempolicy, procattr, process, rootfs, sysctl
from runtime.errors import Error


# ---------------------------------------------------------------- mounts
def _plan(mounts, bundle="/nonexistent-bundle", **linux):
    return rootfs.plan_mounts({"mounts": mounts, "linux": linux}, bundle)


def test_plan_example_mounts(cfg):
    plans = rootfs.plan_mounts(cfg, "/nonexistent-bundle")
    assert [p.dest for p in plans] == [m["destination"] for m in cfg["mounts"]]
    assert [p.index for p in plans] == list(range(len(plans)))


@pytest.mark.parametrize("opts, set_, clear", [
    (["ro"], L.MS_RDONLY, 0),
    (["ro", "rw"], 0, L.MS_RDONLY),
    (["nosuid", "nodev", "noexec"], L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, 0),
    (["noexec", "exec"], 0, L.MS_NOEXEC),
    (["defaults"], 0, 0),
])
def test_mount_flags(opts, set_, clear):
    (p,) = _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": opts}])
    assert p.flags & (L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC) == set_
    assert p.clear & clear == clear


@pytest.mark.parametrize("opt, prop", [
    ("private", L.MS_PRIVATE), ("rprivate", L.MS_PRIVATE | L.MS_REC), ("shared", L.MS_SHARED),
    ("rslave", L.MS_SLAVE | L.MS_REC), ("runbindable", L.MS_UNBINDABLE | L.MS_REC),
])
def test_mount_propagation(opt, prop):
    (p,) = _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": [opt]}])
    assert p.prop == prop


def test_mount_data_options_kept_in_order():
    (p,) = _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "mode=755", "size=64k", "nr_inodes=10"]}])
    assert p.data == "mode=755,size=64k,nr_inodes=10"


def test_mount_recursive_attrs():
    (p,) = _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["rro", "rnosuid"]}])
    assert p.rset & L.MOUNT_ATTR_RDONLY and p.rset & L.MOUNT_ATTR_NOSUID


def test_mount_destination_normalized():
    (p,) = _plan([{"destination": "/a/../b//c/", "type": "tmpfs", "source": "tmpfs"}])
    assert p.dest == "/b/c"


@pytest.mark.parametrize("opt", ["bad option", "x;y", "a b"])
def test_mount_unknown_option(opt):
    with pytest.raises(Error, match=r"mounts\[0\]\.options"):
        _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": [opt]}])


def test_bind_needs_source():
    with pytest.raises(Error, match=r"mounts\[0\]\.source"):
        _plan([{"destination": "/x", "type": "bind", "options": ["rbind"]}])


def test_bind_source_missing(tmp_path):
    with pytest.raises(Error, match="no such file"):
        _plan([{"destination": "/x", "type": "bind", "source": "nothere", "options": ["bind"]}],
              bundle=str(tmp_path))


def test_bind_relative_source_is_bundle_relative(tmp_path):
    (tmp_path / "data").mkdir()
    (p,) = _plan([{"destination": "/x", "source": "data", "options": ["rbind", "ro"]}], bundle=str(tmp_path))
    assert p.bind and p.source == os.path.join(str(tmp_path), "data")
    assert p.flags & L.MS_BIND and p.flags & L.MS_RDONLY


def test_non_bind_needs_type():
    with pytest.raises(Error, match=r"mounts\[0\]\.type"):
        _plan([{"destination": "/x", "source": "tmpfs"}])


def test_tmpcopyup_only_for_tmpfs(tmp_path):
    (a,) = _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}])
    assert a.copyup
    (b,) = _plan([{"destination": "/x", "type": "bind", "source": str(tmp_path), "options": ["tmpcopyup"]}])
    assert not b.copyup


def test_idmap_rules(tmp_path):
    m = {"destination": "/x", "type": "bind", "source": str(tmp_path), "options": ["idmap"]}
    with pytest.raises(Error, match="idmap needs uidMappings"):
        _plan([dict(m)])
    with pytest.raises(Error, match="go together"):
        _plan([dict(m, uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}])])
    with pytest.raises(Error, match="bind mounts only"):
        _plan([{"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}])
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    (p,) = _plan([dict(m, uidMappings=maps, gidMappings=maps)])
    assert p.idmap == "idmap"
    with pytest.raises(Error, match="without the idmap"):
        _plan([dict(m, options=["bind"], uidMappings=maps, gidMappings=maps)])


# ---------------------------------------------------------------- process
def test_plan_example_process(cfg):
    p = process.plan_process(cfg["process"])
    assert (p.uid, p.gid, p.cwd, p.nnp) == (0, 0, "/", True)
    assert list(p.args) == cfg["process"]["args"]
    assert p.rlimits == ((7, 1024, 1024),)  # RLIMIT_NOFILE
    assert p.caps["bounding"] == sum(1 << process.CAP_INDEX[c] for c in cfg["process"]["capabilities"]["bounding"])


def test_unknown_capability_is_a_warning(capsys):
    p = process.plan_process({"args": ["true"], "capabilities": {"bounding": ["CAP_KILL", "CAP_BOGUS"]}})
    assert p.caps["bounding"] == 1 << process.CAP_INDEX["CAP_KILL"]
    assert "CAP_BOGUS" in capsys.readouterr().err


@pytest.mark.parametrize("rl, msg", [
    ([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}], "unknown rlimit"),
    ([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2, "duplicate rlimit"),
    ([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}], "exceeds hard"),
])
def test_rlimit_errors(rl, msg):
    with pytest.raises(Error, match=msg) as e:
        process.plan_process({"args": ["true"], "rlimits": rl})
    assert "process.rlimits[" in str(e.value)


def test_rlimit_clamped_to_u64():
    p = process.plan_process({"args": ["true"], "rlimits": [{"type": "RLIMIT_CORE", "soft": 2**70, "hard": 2**70}]})
    assert p.rlimits[0][1:] == (2**64 - 1, 2**64 - 1)


def test_process_defaults():
    p = process.plan_process({"args": ["x"]})
    assert (p.uid, p.gid, p.groups, p.cwd, p.env, p.caps, p.nnp) == (0, 0, (), "/", (), None, False)


def test_exec_prefix_in_errors():
    with pytest.raises(Error, match=r"^config.json: exec\.rlimits\[0\]"):
        process.plan_process({"args": ["x"], "rlimits": [{"type": "X", "soft": 1, "hard": 1}]}, prefix="exec")


def test_env_dict():
    assert process.env_dict(["A=1", "B=x=y", "NOEQ", "C="]) == {"A": "1", "B": "x=y", "C": ""}


# ---------------------------------------------------------------- ioPriority, scheduler, personality
def test_procattr_none():
    assert procattr.plan({"args": ["x"]}, {}) is None


def test_ioprio():
    a = procattr.plan({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4}}, {})
    assert a.ioprio == (2 << 13) | 4


@pytest.mark.parametrize("io", [{"class": "IOPRIO_CLASS_NOPE"}, {"class": "IOPRIO_CLASS_BE", "priority": 8},
                                {"class": "IOPRIO_CLASS_BE", "priority": "1"}])
def test_ioprio_bad(io):
    with pytest.raises(Error, match="process.ioPriority"):
        procattr.plan({"ioPriority": io}, {})


def test_personality():
    a = procattr.plan({}, {"personality": {"domain": "LINUX32"}})
    assert a.personality is not None
    with pytest.raises(Error, match="linux.personality.domain"):
        procattr.plan({}, {"personality": {"domain": "BOGUS"}})
    with pytest.raises(Error, match="linux.personality.flags"):
        procattr.plan({}, {"personality": {"domain": "LINUX", "flags": ["X"]}})


# ---------------------------------------------------------------- memoryPolicy
@pytest.mark.parametrize("text, nodes", [("0", [0]), ("0-3,7", [0, 1, 2, 3, 7]), ("", []), (" 1 , 2 ", [1, 2])])
def test_parse_nodes(text, nodes):
    assert mempolicy.parse_nodes(text) == nodes


@pytest.mark.parametrize("text", ["a", "3-1", "1-", "-1", "1-x"])
def test_parse_nodes_bad(text):
    with pytest.raises(ValueError):
        mempolicy.parse_nodes(text)


def test_mempolicy_plan():
    mode, words, maxnode = mempolicy.plan({"mode": "MPOL_BIND", "nodes": "0,65"})
    assert words == [1, 2] and maxnode == 129
    with pytest.raises(Error, match="memoryPolicy.mode"):
        mempolicy.plan({"mode": "MPOL_NOPE"})
    with pytest.raises(Error, match="needs at least one node"):
        mempolicy.plan({"mode": "MPOL_BIND", "nodes": ""})
    with pytest.raises(Error, match="exclude each other"):
        mempolicy.plan({"mode": "MPOL_BIND", "nodes": "0",
                        "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]})


# ---------------------------------------------------------------- sysctl
@pytest.mark.parametrize("key, parts", [
    ("net.ipv4.ip_forward", ["net", "ipv4", "ip_forward"]),
    ("net/ipv4/conf/eth0.100/forwarding", ["net", "ipv4", "conf", "eth0.100", "forwarding"]),
    ("net.ipv4.conf.eth0/100.forwarding", ["net", "ipv4", "conf", "eth0.100", "forwarding"]),
    (" kernel.msgmax ", ["kernel", "msgmax"]),
])
def test_sysctl_split(key, parts):
    assert sysctl.split(key) == parts


@pytest.mark.parametrize("key, nss, ok", [
    ("net.ipv4.ip_forward", {"network": None}, True),
    ("net.ipv4.ip_forward", {}, False),
    ("kernel.msgmax", {"ipc": None}, True),
    ("fs.mqueue.queues_max", {"ipc": None}, True),
    ("kernel.shmmax", {"network": None}, False),
    ("kernel.domainname", {"uts": None}, True),
    ("kernel.hostname", {"uts": None}, False),
    ("vm.swappiness", {"network": None, "ipc": None, "uts": None}, False),
    ("net..x", {"network": None}, False),
    ("net.ipv4.../x", {"network": None}, False),
])
def test_sysctl_check(key, nss, ok):
    if ok:
        ((k, path, v),) = sysctl.check({key: "1"}, nss)
        assert path == "/proc/sys/" + "/".join(sysctl.split(key)) and v == "1"
    else:
        with pytest.raises(Error, match=r"linux\.sysctl\."):
            sysctl.check({key: "1"}, nss)


def test_sysctl_value_must_be_string():
    with pytest.raises(Error, match="must be a string"):
        sysctl.check({"net.ipv4.ip_forward": 1}, {"network": None})


def test_sysctl_host_netns_by_path():
    with pytest.raises(Error, match="host's network namespace"):
        sysctl.check({"net.ipv4.ip_forward": "1"}, {"network": "/proc/self/ns/net"})
