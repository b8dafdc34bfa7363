"""Bad input gets one line naming the field or object, exit 1, and leaves nothing behind."""
import json
import os

import pytest

from conftest import base_config
from test_lifecycle import cgroup_dirs


def one_error_line(p):
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def nothing_left(rt, cid):
    assert not os.path.exists(rt.root) or not os.listdir(rt.root)
    assert not cgroup_dirs(cid)


def create_raw(rt, text):
    b = rt.bundle()
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write(text)
    cid = rt.new_id()
    return rt("create", "-b", b, cid), cid


def test_invalid_json(pyrunc):
    p, cid = create_raw(pyrunc, '{"ociVersion": "1.0.2", ')
    assert "config.json" in one_error_line(p) and "JSON" in p.stderr
    nothing_left(pyrunc, cid)


def test_missing_config(pyrunc, tmp_path):
    cid = pyrunc.new_id()
    p = pyrunc("create", "-b", str(tmp_path), cid)
    assert "config.json" in one_error_line(p)
    nothing_left(pyrunc, cid)


def test_missing_bundle(pyrunc, tmp_path):
    cid = pyrunc.new_id()
    p = pyrunc("create", "-b", str(tmp_path / "nope"), cid)
    assert "nope" in one_error_line(p)
    nothing_left(pyrunc, cid)


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c["process"].__setitem__("args", "sh"), "process.args"),
    (lambda c: c["process"]["user"].__setitem__("uid", -1), "process.user.uid"),
    (lambda c: c["process"].__setitem__("cwd", 5), "process.cwd"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces"),
    (lambda c: c["mounts"][0].__setitem__("destination", 7), "mounts[0].destination"),
    (lambda c: c.__setitem__("hostname", ["a"]), "hostname"),
    (lambda c: c["process"]["rlimits"][0].__setitem__("soft", "x"), "process.rlimits[0].soft"),
    (lambda c: c.__delitem__("ociVersion"), "ociVersion"),
])
def test_schema_violation_names_field(pyrunc, mutate, field):
    cfg = base_config()
    mutate(cfg)
    p, cid = create_raw(pyrunc, json.dumps(cfg))
    line = one_error_line(p)
    assert field.split("[")[0].split(".")[0] in line, line
    nothing_left(pyrunc, cid)


@pytest.mark.parametrize("mutate,words", [
    (lambda c: c["root"].__setitem__("path", "/no/such/rootfs"), "root.path"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "duplicate"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "uidMappings"),
    (lambda c: c["process"]["rlimits"][0].__setitem__("type", "RLIMIT_NOPE"), "rlimits[0].type"),
    (lambda c: c["process"].__setitem__("args", ["/no/such/binary"]), "/no/such/binary"),
    (lambda c: c["process"].__setitem__("cwd", "relative"), "process.cwd"),
    (lambda c: c["linux"].__setitem__("rootfsPropagation", "sideways"), "rootfsPropagation"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/src"}), "mounts[7]"),
])
def test_semantic_errors(pyrunc, mutate, words):
    cfg = base_config()
    mutate(cfg)
    p, cid = create_raw(pyrunc, json.dumps(cfg))
    assert words in one_error_line(p)
    nothing_left(pyrunc, cid)


def test_bad_mapping_refused_by_kernel(pyrunc):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "user"})
    # overlapping ranges: the kernel refuses the uid_map write
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10},
                                   {"containerID": 5, "hostID": 200000, "size": 10}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    p, cid = create_raw(pyrunc, json.dumps(cfg))
    assert "uidMappings" in one_error_line(p)
    nothing_left(pyrunc, cid)


def test_unknown_ids(pyrunc):
    for verb in (["start"], ["state"], ["kill"], ["delete"]):
        p = pyrunc(*verb, "no-such-id")
        assert "does not exist" in one_error_line(p)


def test_usage_errors(pyrunc):
    for args in (["create"], ["kill"], ["state", "a", "b"], ["create", "--nope", "x"],
                 ["list", "--format", "yaml"], ["--log-format", "xml", "list"]):
        one_error_line(pyrunc(*args))


def test_unknown_capability_is_a_warning(anyrt):
    """config.md: logged as a warning; runtimes SHOULD NOT fail."""
    cfg = base_config(["true"])
    cfg["process"]["capabilities"]["bounding"].append("CAP_NOPE")
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert "CAP_NOPE" in p.stderr and "warn" in p.stderr
