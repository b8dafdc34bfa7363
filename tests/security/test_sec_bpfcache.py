"""The cache of compiled seccomp filters (runtime/bpfcache.py) must never weaken a container's
filter: an entry changed after the runtime wrote it (here: an allow-all program put in place of
the real one under its old digest, as a disk error, a bug or someone with the state root's rights
might leave it) is ignored and the profile compiled again. The detector is seen to fail against a
pyrunc that trusts its cache without the digest check."""
import os
import struct

from runtime import bpfcache
from secutil import base_config
from weaken import weakened

ALLOW_ALL = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)  # ret SECCOMP_RET_ALLOW


def _config():
    cfg = base_config(["sh", "-c", "mkdir /dev/shm/d 2>&1 && echo MADE"])
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    return cfg


def _run(rt, b):
    p = rt("run", "--bundle", b, rt.new_id())
    return p.stdout.strip()


def _poison(rt):
    """Every entry of RT's cache: its program replaced by allow-all, the digest kept."""
    d = os.path.join(rt.root, bpfcache.NAME)
    names = os.listdir(d)
    assert names, "the runtime kept no compiled filter"
    head = len(bpfcache._MAGIC) + bpfcache._DIGEST
    for n in names:
        with open(os.path.join(d, n), "r+b") as f:
            data = f.read()
            f.seek(0)
            f.truncate()
            f.write(data[:head] + ALLOW_ALL)


def _poisoned_cache_bypasses(rt):
    b = rt.bundle(_config())
    os.makedirs(rt.root, exist_ok=True)  # the cache lives in an existing state root
    assert "not permitted" in _run(rt, b)  # compiled, kept
    assert "not permitted" in _run(rt, b)  # from the cache
    _poison(rt)
    return _run(rt, b) == "MADE"


def test_poisoned_cache_entry_is_not_loaded(pyrunc):
    assert not _poisoned_cache_bypasses(pyrunc)


def test_weakened_trusting_cache_is_caught(tmp_path):
    weak = weakened(tmp_path, {"bpfcache.py": [
        ("or digest != _digest(name, prog):", ":")]}, name="trusting-cache")
    try:
        assert _poisoned_cache_bypasses(weak)
    finally:
        weak.cleanup()
