"""The plans are declared and frozen (runtime/plan.py): the init's plan is built in one place
(runtime/prepare.py) from a config, in-process, with no root and nothing made on the host."""
import json
import os

import pytest

from runtime import plan as planmod
from runtime import prepare, process, rootfs
from runtime.errors import Error


def _cfg(tmp_path, **extra):
    os.makedirs(tmp_path / "rootfs", exist_ok=True)
    cfg = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
           "process": {"args": ["sh"], "cwd": "/", "env": ["A=1"]},
           "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                      {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}],
           "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}],
                     "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}}
    cfg.update(extra)
    return json.loads(json.dumps(cfg))


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(prepare.os, "geteuid", lambda: 0)


def test_init_plan_is_built_whole_and_frozen(tmp_path, as_root):
    p = prepare.init_plan(_cfg(tmp_path), str(tmp_path))
    assert isinstance(p, planmod.InitPlan)
    assert p.rootfs == os.path.realpath(tmp_path / "rootfs")
    assert [m.dest for m in p.mounts] == ["/proc", "/tmp"]
    assert p.new_flags == prepare.NS_FLAGS["pid"] | prepare.NS_FLAGS["mount"] | prepare.NS_FLAGS["network"]
    assert p.ns_joins == () and not p.userns and not p.rootless
    assert p.proc.args == ("sh",) and p.proc.env == ("A=1",)
    assert p.masked_paths == ["/proc/kcore"] and p.readonly_paths == ["/proc/sys"]
    for rec, field in ((p, "rootfs"), (p.proc, "uid"), (p.mounts[0], "dest")):
        with pytest.raises(AttributeError, match="frozen"):
            setattr(rec, field, None)
    with pytest.raises(AttributeError):
        p.not_a_field = 1  # slotted: no attribute appears from nowhere


def test_every_field_is_given(tmp_path, as_root):
    p = prepare.init_plan(_cfg(tmp_path), str(tmp_path))
    fields = {n: getattr(p, n) for n in planmod.InitPlan.__slots__}
    del fields["hooks"]
    with pytest.raises(TypeError, match="missing \\['hooks'\\]"):
        planmod.InitPlan(**fields)
    with pytest.raises(TypeError, match="unknown \\['bogus'\\]"):
        planmod.InitPlan(**dict(fields, hooks={}, bogus=1))


def test_replace_makes_a_changed_copy():
    p = process.plan_process({"args": ["x"], "env": ["A=1"]})
    q = p.replace(env=p.env + ("B=2",))
    assert p.env == ("A=1",) and q.env == ("A=1", "B=2") and q.args == p.args
    assert q != p and q.replace(env=("A=1",)) == p


def test_listen_fds_become_the_containers(tmp_path, as_root, monkeypatch):
    """Socket activation: LISTEN_FDS meant for us goes to the init as LISTEN_FDS=N, LISTEN_PID=1."""
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    p = prepare.init_plan(_cfg(tmp_path), str(tmp_path), preserve_fds=1)
    assert p.preserve_fds == 3
    assert p.proc.env[-2:] == ("LISTEN_FDS=2", "LISTEN_PID=1")
    assert isinstance(p.preserved, tuple)


@pytest.mark.parametrize("change, field", [
    ({"root": {"path": "nope"}}, "root.path"),
    ({"process": None}, "process"),
    ({"linux": {"rootfsPropagation": "bogus"}}, "linux.rootfsPropagation"),
    ({"linux": {"devices": [{"type": "x", "path": "/dev/x"}]}}, "linux.devices[0].type"),
    ({"mounts": [{"destination": "/proc/sys/x", "type": "tmpfs", "source": "t"}]}, "mounts[0].destination"),
])
def test_bad_config_names_the_field(tmp_path, as_root, change, field):
    cfg = _cfg(tmp_path, **change)
    if cfg.get("process") is None:
        del cfg["process"]
    with pytest.raises(Error, match=f"config.json: {field.replace('[', '.').replace(']', '.')}"):
        prepare.init_plan(cfg, str(tmp_path))


def test_mount_plan_is_a_tuple_of_records():
    ms = rootfs.plan_mounts({"mounts": [{"destination": "/x", "type": "tmpfs", "source": "t"}]}, "/b")
    assert isinstance(ms, tuple) and isinstance(ms[0], planmod.Record)
