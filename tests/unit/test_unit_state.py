"""Container state without containers: ids, state.json, the claim, the status computed from the
kernel (our own processes stand in for an init), list (runtime/state.py)."""
import json
import os
import subprocess

import pytest

from runtime import state
from runtime.errors import Error, NotExist


@pytest.mark.parametrize("cid", ["a", "abc-DEF_1.2+3", "x" * 1024])
def test_check_id_ok(cid):
    state.check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x" * 1025, "é", "a\0b", "../etc"])
def test_check_id_bad(cid):
    with pytest.raises(Error):
        state.check_id(cid)


def _c(tmp_path, data, cid="c1"):
    c = state.Container(str(tmp_path), cid)
    c.data = data
    return c


def _me():
    return os.getpid(), state.proc_start_time(os.getpid())


def test_proc_start_time_and_alive():
    pid, start = _me()
    assert isinstance(start, int) and start > 0
    assert state.proc_alive(pid, start) and state.proc_alive(pid, None)
    assert not state.proc_alive(pid, start + 1)  # a recycled pid is not our process


def test_proc_start_time_of_a_zombie_is_none():
    p = subprocess.Popen(["true"])
    try:
        import time
        deadline = time.monotonic() + 10
        while state.proc_start_time(p.pid) is not None:  # exited, not yet reaped: a zombie
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        p.wait()
    assert state.proc_start_time(p.pid) is None


def test_status_no_pid_is_stopped(tmp_path):
    assert _c(tmp_path, {"pid": 0}).status() == "stopped"


def test_status_dead_pid_is_stopped(tmp_path):
    pid, start = _me()
    assert _c(tmp_path, {"pid": pid, "pid_start": start + 1}).status() == "stopped"


def test_status_running_without_fifo(tmp_path):
    pid, start = _me()
    os.makedirs(tmp_path / "c1")
    assert _c(tmp_path, {"pid": pid, "pid_start": start}).status() == "running"


def test_status_created_while_init_waits(tmp_path, monkeypatch):
    pid, start = _me()
    os.makedirs(tmp_path / "c1")
    os.mkfifo(tmp_path / "c1" / state.FIFO)
    c = _c(tmp_path, {"pid": pid, "pid_start": start}).lock(shared=True)  # the fifo is looked up in the held dir
    try:
        monkeypatch.setattr(state, "proc_comm", lambda p: state.INIT_COMM)
        assert c.status() == "created"
        # the fifo left by a start killed mid-way, the init already past its waiting code
        monkeypatch.setattr(state, "proc_comm", lambda p: b"sleep")
        assert c.status() == "running"
    finally:
        c.unlock()


def test_status_creating(tmp_path):
    pid, start = _me()
    d = {"pid": 0, "status": "creating", "creator": pid, "creator_start": start}
    assert _c(tmp_path, d).status() == "creating"
    d["creator_start"] = start + 1  # the creator died (its pid reused)
    assert _c(tmp_path, d).status() == "stopped"


def test_status_creating_init_ready_creator_dead(tmp_path):
    pid, start = _me()
    os.makedirs(tmp_path / "c1")
    d = {"pid": pid, "pid_start": start, "status": "creating", "creator": pid, "creator_start": start + 1}
    assert _c(tmp_path, d).status() == "running"


def test_status_paused_from_freezer_files(tmp_path):
    pid, start = _me()
    fz = tmp_path / "freezer"
    fz.mkdir()
    (fz / "freezer.state").write_text("FROZEN\n")
    os.makedirs(tmp_path / "c1")
    d = {"pid": pid, "pid_start": start, "cgroup": {"mode": "v1", "paths": {"freezer": str(fz)}}}
    assert _c(tmp_path, d).status() == "paused"
    (fz / "freezer.state").write_text("THAWED\n")
    assert _c(tmp_path, d).status() == "running"
    v2d = tmp_path / "v2"
    v2d.mkdir()
    (v2d / "cgroup.freeze").write_text("1\n")
    d["cgroup"] = {"mode": "v2", "paths": {"": str(v2d)}}
    assert _c(tmp_path, d).status() == "paused"


def test_frozen_unreadable_is_not_frozen(tmp_path):
    d = {"cgroup": {"mode": "v1", "paths": {"freezer": str(tmp_path / "gone")}}}
    assert _c(tmp_path, d).frozen() is False
    assert _c(tmp_path, {}).frozen() is False


def test_make_write_read_remove(tmp_path):
    root = str(tmp_path / "root")
    c = state.Container(root, "c1")
    c.make()
    c.write({"id": "c1", "pid": 0})
    assert c.read() == {"id": "c1", "pid": 0}
    c.unlock()
    c2 = state.Container(root, "c1").open(shared=True)
    assert c2.data == {"id": "c1", "pid": 0}
    c2.unlock()
    assert state.list_ids(root) == ["c1"]
    with pytest.raises(Error, match="already exists"):
        state.Container(root, "c1").make()
    state.Container(root, "c1").lock().remove()
    assert state.list_ids(root) == []
    assert os.listdir(root) == []


def test_open_unknown(tmp_path):
    with pytest.raises(NotExist):
        state.Container(str(tmp_path), "nope").open()


def test_open_without_state_json_is_broken(tmp_path):
    os.makedirs(tmp_path / "c1")
    c = state.Container(str(tmp_path), "c1").open(shared=True)
    assert c.data["broken"] and c.status() == "stopped"
    c.unlock()


def test_read_corrupt_is_none(tmp_path):
    os.makedirs(tmp_path / "c1")
    (tmp_path / "c1" / state.STATE).write_text("{corrupt")
    c = state.Container(str(tmp_path), "c1").lock(shared=True)
    assert c.read() is None
    c.unlock()


def test_list_ids_skips_hidden_and_files(tmp_path):
    for n in ("b", "a", ".a.123.claim"):
        os.makedirs(tmp_path / n)
    (tmp_path / "file").write_text("")
    assert state.list_ids(str(tmp_path)) == ["a", "b"]
    assert state.list_ids(str(tmp_path / "missing")) == []


def test_write_is_atomic_json(tmp_path):
    root = str(tmp_path)
    c = state.Container(root, "c1")
    c.make()
    c.write({"id": "c1", "nested": {"a": [1, "x"]}, "u": "é"})
    with open(os.path.join(root, "c1", state.STATE)) as f:
        assert json.load(f)["u"] == "é"
    assert not [n for n in os.listdir(os.path.join(root, "c1")) if n.endswith(".tmp")]
    c.unlock()
