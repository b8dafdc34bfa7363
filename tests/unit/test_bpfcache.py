"""runtime/bpfcache.py: the cache of compiled seccomp filters under the state root is used only
when it is exactly what the runtime wrote (ours, private, regular, bounded, digest matching);
anything else is a miss, never trusted. No root needed."""
import os
import struct

import pytest

from runtime import bpfcache

PROG = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000) * 3  # three "ret ALLOW"


@pytest.fixture
def root(tmp_path):
    return str(tmp_path)


def _entry(root, name):
    return os.path.join(root, bpfcache.NAME, name)


def test_round_trip_and_modes(root):
    name = bpfcache.key({"defaultAction": "SCMP_ACT_ALLOW"}, (2, 5, 4), "6.18")
    assert bpfcache.get(root, name) is None
    bpfcache.put(root, name, PROG)
    assert bpfcache.get(root, name) == PROG
    assert os.stat(os.path.join(root, bpfcache.NAME)).st_mode & 0o777 == 0o700
    assert os.stat(_entry(root, name)).st_mode & 0o777 == 0o600
    assert os.listdir(os.path.join(root, bpfcache.NAME)) == [name]  # no temporary left


def test_key_depends_on_profile_and_context():
    a = bpfcache.key({"defaultAction": "SCMP_ACT_ALLOW"}, (2, 5, 4), "6.18")
    assert a == bpfcache.key({"defaultAction": "SCMP_ACT_ALLOW"}, (2, 5, 4), "6.18")
    assert a != bpfcache.key({"defaultAction": "SCMP_ACT_ERRNO"}, (2, 5, 4), "6.18")
    assert a != bpfcache.key({"defaultAction": "SCMP_ACT_ALLOW"}, (2, 5, 5), "6.18")
    assert a != bpfcache.key({"defaultAction": "SCMP_ACT_ALLOW"}, (2, 5, 4), "6.19")


def test_no_root_yet_is_a_quiet_miss(tmp_path):
    root = str(tmp_path / "not-made")
    bpfcache.put(root, "k", PROG)
    assert bpfcache.get(root, "k") is None and not os.path.exists(root)


@pytest.mark.parametrize("how", ["program", "digest", "magic", "truncated", "odd-length", "empty"])
def test_changed_entry_is_a_miss(root, how):
    bpfcache.put(root, "k", PROG)
    path = _entry(root, "k")
    with open(path, "rb") as f:
        data = f.read()
    head = len(bpfcache._MAGIC) + bpfcache._DIGEST
    if how == "program":  # another program under the old digest: e.g. one that allows all
        data = data[:head] + struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000) * 2 + data[head + 16:]
        data = data[:head] + bytes([data[head] ^ 1]) + data[head + 1:]
    elif how == "digest":
        data = data[:len(bpfcache._MAGIC)] + bytes(bpfcache._DIGEST) + data[head:]
    elif how == "magic":
        data = b"X" + data[1:]
    elif how == "truncated":
        data = data[:head + 8]
    elif how == "odd-length":
        data = data + b"\0"
    elif how == "empty":
        data = b""
    with open(path, "wb") as f:
        f.write(data)
    assert bpfcache.get(root, "k") is None


def test_entry_under_another_name_is_a_miss(root):
    """The digest covers the name: an entry copied to another key is not used for it."""
    bpfcache.put(root, "k", PROG)
    os.link(_entry(root, "k"), _entry(root, "other"))
    assert bpfcache.get(root, "other") is None


def test_symlinked_entry_not_followed(root, tmp_path):
    bpfcache.put(root, "k", PROG)
    os.rename(_entry(root, "k"), str(tmp_path / "elsewhere"))
    os.symlink(str(tmp_path / "elsewhere"), _entry(root, "k"))
    assert bpfcache.get(root, "k") is None


def test_symlinked_cache_dir_not_followed(root, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(str(real), os.path.join(root, bpfcache.NAME))
    bpfcache.put(root, "k", PROG)
    assert bpfcache.get(root, "k") is None and not os.listdir(str(real))


@pytest.mark.parametrize("mode", [0o620, 0o604, 0o640])
def test_entry_others_could_write_or_read_is_a_miss(root, mode):
    bpfcache.put(root, "k", PROG)
    os.chmod(_entry(root, "k"), mode)
    assert bpfcache.get(root, "k") is None


def test_open_cache_dir_is_not_used(root):
    bpfcache.put(root, "k", PROG)
    os.chmod(os.path.join(root, bpfcache.NAME), 0o777)
    assert bpfcache.get(root, "k") is None
    bpfcache.put(root, "k2", PROG)  # nor written
    assert not os.path.exists(_entry(root, "k2"))


def test_oversize_program_not_kept(root):
    bpfcache.put(root, "k", PROG * (bpfcache._MAX_PROG // len(PROG) + 1))
    assert bpfcache.get(root, "k") is None


def test_bounded_entries(root):
    for i in range(bpfcache._MAX_ENTRIES + 5):
        bpfcache.put(root, f"k{i}", PROG)
    assert len(os.listdir(os.path.join(root, bpfcache.NAME))) <= bpfcache._MAX_ENTRIES
    assert bpfcache.get(root, f"k{bpfcache._MAX_ENTRIES + 4}") == PROG
