"""runtime.fastcheck must give jsonschema's Draft4Validator verdict on every config: never True for
an invalid one (soundness), True for valid ones (so the fast path is taken)."""
import copy
import glob
import json
import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runtime import config, fastcheck

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUNDLE = os.path.join(REPO, "bundles", "busybox")
ROOTFS = os.path.join(BUNDLE, "rootfs")
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
FIXTURES = "/work/shared/runtime-spec/schema/test/config"
SCHEMAS = os.path.join(REPO, "oci-schemas")


def slow_valid(cfg):
    """jsonschema's verdict; an exception (e.g. the unresolvable '#definitions/uint32' in
    defs.json's ArrayOfUint32) counts as not valid: fastcheck must not say True then."""
    try:
        return not list(config.schema_validator().iter_errors(cfg))
    except Exception:
        return False


def agree(cfg):
    fast = fastcheck.ok(copy.deepcopy(cfg))
    slow = slow_valid(cfg)
    assert fast is slow, f"fastcheck {fast}, jsonschema {slow} on {json.dumps(cfg)[:2000]}"
    return fast


def load(path):
    with open(path) as f:
        return json.load(f)


def fixture_paths(kind):
    paths = sorted(glob.glob(os.path.join(FIXTURES, kind, "*.json")))
    return [p for p in paths if _parses(p)]


def _parses(p):
    try:
        load(p)
        return True
    except ValueError:
        return False


def busybox():
    return load(os.path.join(BUNDLE, "config.json"))


@pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="runtime-spec schema fixtures absent")
@pytest.mark.parametrize("path", fixture_paths("good"), ids=os.path.basename)
def test_good_fixtures(path):
    assert agree(load(path)) is True


@pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="runtime-spec schema fixtures absent")
@pytest.mark.parametrize("path", fixture_paths("bad"), ids=os.path.basename)
def test_bad_fixtures(path):
    assert agree(load(path)) is False


def test_busybox_takes_the_fast_path():
    assert agree(busybox()) is True


@pytest.mark.parametrize("cfg", [
    {"ociVersion": "1.0.0"},
    {},
    {"ociVersion": 1},
    {"ociVersion": "1", "process": {"cwd": "/", "oomScoreAdj": True}},
    {"ociVersion": "1", "process": {"cwd": "/", "oomScoreAdj": 1.0}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": 2 ** 32}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": 2 ** 32 - 1}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": -1}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": True}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"gid": False}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"gid": 0.0}}},
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"additionalGids": [0, True]}}},
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_X", "soft": 0, "hard": 2 ** 64 - 1}]}},
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_X", "soft": 0, "hard": 2 ** 64}]}},
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_x", "soft": 0, "hard": 0}]}},
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [{"type": "RLIMIT_X\n", "soft": 0, "hard": 0}]}},
    {"ociVersion": "1", "process": {"cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_BE"}}},
    {"ociVersion": "1", "process": {"cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_XX"}}},
    {"ociVersion": "1", "annotations": {"": 1}},
    {"ociVersion": "1", "annotations": {"a": 1}},
    {"ociVersion": "1", "annotations": {"a\n": "x", "\u00e9": "\u2603"}},
    {"ociVersion": "1", "linux": {"netDevices": {"eth0": {"name": 3}}}},
    {"ociVersion": "1", "linux": {"netDevices": {"eth0": {"name": "x"}}}},
    {"ociVersion": "1", "linux": {"intelRdt": {"memBwSchema": "MB:0=10\n"}}},
    {"ociVersion": "1", "linux": {"intelRdt": {"memBwSchema": "MB:0=10\nx"}}},
    {"ociVersion": "1", "linux": {"namespaces": [{"type": "pid"}, {"type": "bogus"}]}},
    {"ociVersion": "1", "linux": {"resources": {"blockIO": {"weightDevice": [{"major": 1, "minor": 2, "weight": 10}]}}}},
    {"ociVersion": "1", "linux": {"resources": {"blockIO": {"weightDevice": [{"major": 1, "weight": 10}]}}}},
    {"ociVersion": "1", "linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 1, "minor": 2}]}}}},
    {"ociVersion": "1", "linux": {"resources": {"hugepageLimits": [{"pageSize": "0MB", "limit": 1}]}}},
    {"ociVersion": "1", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}}},
    {"ociVersion": "1", "vm": {"hypervisor": {"path": "/h"}, "kernel": {"path": "/k"}, "hwConfig": {"irqs": []}}},
    {"ociVersion": "1", "vm": {"hypervisor": {"path": "/h"}, "kernel": {"path": "/k"}, "hwConfig": {"irqs": [1]}}},
    {"ociVersion": "1", "windows": {"layerFolders": []}},
    {"ociVersion": "1", "hostname": float("nan")},
    {"ociVersion": "1", "process": {"cwd": "/", "consoleSize": {"height": float("nan"), "width": 1}}},
], ids=lambda c: json.dumps(c)[:60])
def test_edge_cases(cfg):
    agree(cfg)


# -- hypothesis: mutations of valid configs

def _collect(node, keys, enums):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("properties", "patternProperties"):
                keys.update(v)
            if k == "enum":
                enums.update(e for e in v if isinstance(e, str))
            _collect(v, keys, enums)
    elif isinstance(node, list):
        for v in node:
            _collect(v, keys, enums)


_KEYS, _ENUMS = set(), set()
for _name in os.listdir(SCHEMAS):
    if _name.startswith(("config", "defs")):
        _collect(load(os.path.join(SCHEMAS, _name)), _KEYS, _ENUMS)
_KEYS, _ENUMS = sorted(_KEYS), sorted(_ENUMS)

_SEEDS = [busybox()] + [load(p) for p in fixture_paths("good")]
_EXAMPLE = os.path.join(FIXTURES, "good", "spec-example.json")
_RICH = load(_EXAMPLE) if os.path.exists(_EXAMPLE) else _SEEDS[0]

_INTS = [0, 1, -1, 127, 128, 255, 256, 511, 512, 2 ** 31 - 1, 2 ** 31, -2 ** 31, -2 ** 31 - 1,
         2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1, 2 ** 64 - 1, 2 ** 64,
         10 ** 30, -10 ** 30]
_STRINGS = ["", "/", "x", "RLIMIT_NOFILE", "RLIMIT_nofile", "c", "b", "u", "p", "cb", "2MB", "0MB",
            "1GB\n", "MB:0=1", "MB:\n", "0-3,5", "a b", "\u2603", "\x00", "tmpfs", "1.0.0"]
_scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(_INTS), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, -1.0, 1.5, 2.0 ** 64]),
    st.sampled_from(_STRINGS), st.sampled_from(_ENUMS), st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=4)), inner, max_size=3),
    ),
    max_leaves=6,
)


def _confusable(v):
    """Values a hand-written check might confuse with V: bools for ints, 1.0 for 1, bounds."""
    if isinstance(v, bool):
        return [int(v), not v, str(v).lower(), None]
    if isinstance(v, int):
        return [True, False, float(v), str(v), v - 1, v + 1, -v - 1, 2 ** 64, -2 ** 63 - 1, None]
    if isinstance(v, str):
        return ["", v + "\n", v.lower(), v.upper(), "\u00e9" + v, 0, None, [v]]
    return [None, True, 0, ""]


def _leaves(node, out):
    """(container, key) of every scalar inside NODE."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        if isinstance(v, (dict, list)):
            _leaves(v, out)
        else:
            out.append((node, k))
    return out


def _containers(node, out):
    """All dicts and lists inside NODE (NODE included)."""
    if isinstance(node, (dict, list)):
        out.append(node)
        for v in (node.values() if isinstance(node, dict) else node):
            _containers(v, out)
    return out


@st.composite
def mutated(draw):
    cfg = copy.deepcopy(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            leaves = _leaves(cfg, [])
            if leaves:
                node, k = draw(st.sampled_from(leaves))
                node[k] = draw(st.sampled_from(_confusable(node[k])))
                continue
        nodes = _containers(cfg, [])
        node = draw(st.sampled_from(nodes))
        op = draw(st.sampled_from(["replace", "delete", "add_known", "add_other", "append"]))
        if isinstance(node, dict):
            if op == "replace" and node:
                node[draw(st.sampled_from(sorted(node)))] = draw(_values)
            elif op == "delete" and node:
                del node[draw(st.sampled_from(sorted(node)))]
            elif op == "add_other":
                node[draw(st.text(max_size=6))] = draw(_values)
            else:
                node[draw(st.sampled_from(_KEYS))] = draw(_values)
        else:
            if op == "replace" and node:
                node[draw(st.integers(0, len(node) - 1))] = draw(_values)
            elif op == "delete" and node:
                del node[draw(st.integers(0, len(node) - 1))]
            else:
                node.append(draw(_values))
    return cfg


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_agree_with_jsonschema(cfg):
    if isinstance(cfg, dict):
        agree(cfg)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KEYS), _values)
def test_known_keys_with_random_values_at_every_object(key, value):
    """Set KEY to VALUE in every object of the spec example: reaches schema parts the seeds lack."""
    cfg = copy.deepcopy(_RICH)
    for node in _containers(cfg, []):
        if isinstance(node, dict) and key in node:
            node[key] = copy.deepcopy(value)
    agree(cfg)


# -- on the real path

def test_valid_config_does_not_import_jsonschema():
    code = ("import sys; from runtime import config; config.load(sys.argv[1]); "
            "print('jsonschema' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, BUNDLE], capture_output=True, text=True,
                       timeout=30, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")
@pytest.mark.parametrize("mutate, field", [
    (lambda c: c["process"].__setitem__("rlimits", [{"type": "nofile", "soft": 1, "hard": 1}]),
     "process.rlimits[0].type"),
    (lambda c: c["process"]["user"].__setitem__("uid", True), "process.user.uid"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type"),
])
def test_create_error_names_the_field(tmp_path, mutate, field):
    cfg = busybox()
    cfg["root"] = {"path": ROOTFS, "readonly": True}
    mutate(cfg)
    b = tmp_path / "bundle"
    b.mkdir()
    (b / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "root"
    cid = f"fc-{uuid.uuid4().hex[:10]}"
    try:
        r = subprocess.run([PYRUNC, "--root", str(root), "create", "-b", str(b), cid],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert "Traceback" not in r.stderr
        assert field in r.stderr, r.stderr
        assert not (root / cid).exists()
    finally:
        subprocess.run([PYRUNC, "--root", str(root), "delete", "--force", cid],
                       capture_output=True, timeout=30)
