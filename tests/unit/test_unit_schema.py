"""config.json validation without a kernel: the schema fast path, jsonschema's wording of an error,
and the semantic rules (runtime/config.py, runtime/fastcheck.py, runtime/schemas.py)."""
import os

import pytest

from runtime import config, fastcheck, schemas
from runtime.errors import Error


def test_schema_dir_found():
    d = schemas.SCHEMA_DIR
    assert os.path.isfile(os.path.join(d, "config-schema.json")), d
    assert os.path.isfile(os.path.join(d, "defs-linux.json")), d
    assert config.SCHEMA_DIR == fastcheck.SCHEMA_DIR == d


def test_example_config_valid(cfg):
    assert fastcheck.ok(cfg)
    config.validate(cfg)


@pytest.mark.parametrize("path, value", [
    (("ociVersion",), 1),
    (("process", "args"), "sh"),
    (("process", "user", "uid"), -1),
    (("process", "user", "uid"), "0"),
    (("process", "terminal"), "yes"),
    (("process", "rlimits", 0, "hard"), -5),
    (("root", "path"), 7),
    (("root", "readonly"), "true"),
    (("mounts", 0, "destination"), 3),
    (("hostname",), ["a"]),
    (("linux", "namespaces", 0, "type"), 5),
    (("process", "capabilities", "bounding"), "CAP_KILL"),
])
def test_schema_type_errors_name_the_field(cfg, path, value):
    d = cfg
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value
    assert not fastcheck.ok(cfg)
    with pytest.raises(Error) as e:
        config.validate(cfg)
    msg = str(e.value)
    assert msg.startswith("config.json:"), msg
    assert "\n" not in msg


def test_fastcheck_accepts_unknown_fields(cfg):
    cfg["x-vendor-extension"] = {"anything": [1, 2]}
    cfg["process"]["x-other"] = True
    assert fastcheck.ok(cfg)
    config.validate(cfg)


def test_bool_is_not_an_integer(cfg):
    cfg["process"]["user"]["uid"] = True
    assert not fastcheck.ok(cfg)
    with pytest.raises(Error):
        config.validate(cfg)


def test_not_an_object():
    with pytest.raises(Error, match=r"\(root\)"):
        config.validate([])


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c["root"].pop("path"), "root"),
    (lambda c: c["process"].__setitem__("args", []), "process.args"),
    (lambda c: c["process"].__setitem__("cwd", "relative"), "process.cwd"),
    (lambda c: c.__setitem__("annotations", {"": "x"}), "annotations"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces"),
    # no mount namespace is the runtime's (the spec's inherit rule), but not under a new user one
    (lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"] if n["type"] != "mount"]
                                 + [{"type": "user"}],
                                 uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                                 gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.namespaces"),
    (lambda c: c["linux"].__setitem__("namespaces", [n for n in c["linux"]["namespaces"]
                                                     if n["type"] != "uts"]), "hostname"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "linux.uidMappings"),
    (lambda c: c["linux"].__setitem__("uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings"),
    (lambda c: c["linux"].__setitem__("timeOffsets", {"monotonic": {"secs": 1}}), "linux.timeOffsets"),
])
def test_semantic_errors(cfg, mutate, field):
    mutate(cfg)
    with pytest.raises(Error) as e:
        config.validate(cfg)
    assert field in str(e.value), str(e.value)


def test_namespace_path_must_be_absolute(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    cfg["linux"]["namespaces"].append({"type": "network", "path": "proc/1/ns/net"})
    with pytest.raises(Error, match="must be absolute"):
        config.validate(cfg)


def test_relative_mount_destination_is_made_absolute(cfg):
    cfg["mounts"].append({"destination": "data", "type": "tmpfs", "source": "tmpfs"})
    config.validate(cfg)
    assert cfg["mounts"][-1]["destination"] == "/data"


def test_json_path():
    assert config.json_path(["linux", "namespaces", 0, "type"]) == "linux.namespaces[0].type"
    assert config.json_path([]) == "(root)"
    assert config.json_path([3]) == "[3]"


def test_namespaces_map(cfg):
    cfg["linux"]["namespaces"] = [{"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}]
    assert config.namespaces(cfg) == {"mount": None, "network": "/proc/1/ns/net"}


def test_load_bad_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(Error, match="invalid JSON"):
        config.load(str(tmp_path))


def test_load_missing(tmp_path):
    with pytest.raises(Error, match="no such file"):
        config.load(str(tmp_path))


def test_load_valid(tmp_path, cfg):
    import json
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert config.load(str(tmp_path))["hostname"] == cfg["hostname"]


def test_spec_default_is_valid():
    from runtime import spec
    for rootless in (False, True):
        c = spec.default_spec(rootless=rootless)
        assert fastcheck.ok(c)
        config.validate(c)
