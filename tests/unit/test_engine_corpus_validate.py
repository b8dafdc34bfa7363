"""Every config of the engine corpus (tests/data/engine-configs/, captured from podman, Docker and
ctr on the project's machine, plus CRI-shaped ones) passes pyrunc's validation: pure validation,
no root, no containers. And the engine leniencies are exactly what makes the difference: without
them the configs that use one are refused, with the error the schema gives."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "engine-configs"))
import corpus as enginecorpus  # noqa: E402

from runtime import config, fastcheck, log, seccomp  # noqa: E402
from runtime.errors import Error  # noqa: E402

ENTRIES = enginecorpus.entries()
IDS = [i for i, _ in ENTRIES]


def test_corpus_present():
    engines = {i.split("/")[0] for i in IDS}
    assert {"podman", "docker", "ctr", "cri"} <= engines, engines
    assert len(IDS) >= 150, len(IDS)


@pytest.mark.parametrize("path", [p for _, p in ENTRIES], ids=IDS)
def test_validates(path):
    cfg = enginecorpus.for_validation(enginecorpus.load(path))
    view, expected, drops = config.lenient_view(cfg)
    assert fastcheck.ok(view), "the spec form of a leniency must take the fast path"
    notes = []
    config.validate(cfg, warn=notes.append)
    assert notes == expected
    # validation judges a copy: the engine's own values reach the runtime unchanged, but for
    # those runc ignores
    before = enginecorpus.for_validation(enginecorpus.load(path))
    for parts in drops:
        node = before
        for k in parts[:-1]:
            node = node[k]
        del node[parts[-1]]
    assert cfg == before
    sc = (cfg.get("linux") or {}).get("seccomp")
    if sc is not None:
        seccomp._parse(sc)  # what create does with it (no libseccomp needed)


def _needs_leniency(schema):
    out = []
    for i, p in ENTRIES:
        cfg = enginecorpus.for_validation(enginecorpus.load(p))
        view, notes, drops = config.lenient_view(cfg)
        if notes and bool(drops) != schema:
            out.append((i, p))
    return out


NEEDS = _needs_leniency(schema=True)  # refused by the schemas without a leniency
NEEDS_SECCOMP = _needs_leniency(schema=False)  # refused by the seccomp compiler


def test_leniencies_are_exercised():
    ids = {i for i, _ in NEEDS}
    # the two failures of issue 14, from the engines themselves
    assert {"podman/device-fuse", "podman/device-rename", "podman/privileged"} <= ids, ids
    assert {"cri/volume-bidirectional", "cri/volume-hosttocontainer", "podman/volume-rslave",
            "docker/volume-rslave", "ctr/rootfs-propagation-rshared"} <= ids, ids
    assert {"podman/seccomp-custom", "ctr/seccomp-custom"} <= {i for i, _ in NEEDS_SECCOMP}


@pytest.mark.parametrize("path", [p for _, p in NEEDS], ids=[i for i, _ in NEEDS])
def test_refused_without_the_leniencies(path, monkeypatch):
    monkeypatch.setattr(config, "ENGINE_LENIENCIES", ())
    cfg = enginecorpus.for_validation(enginecorpus.load(path))
    with pytest.raises(Error) as e:
        config.validate(cfg, warn=lambda m: None)
    msg = str(e.value)
    assert ("fileMode" in msg and "greater than the maximum of 511" in msg) or \
        ("rootfsPropagation" in msg and "is not one of" in msg), msg


@pytest.mark.parametrize("path", [p for _, p in NEEDS_SECCOMP], ids=[i for i, _ in NEEDS_SECCOMP])
def test_seccomp_refused_without_the_leniency(path, monkeypatch):
    monkeypatch.setattr(config, "ENGINE_LENIENCIES", ())
    cfg = enginecorpus.for_validation(enginecorpus.load(path))
    config.validate(cfg, warn=lambda m: None)
    with pytest.raises(Error, match="[eE]rrnoRet: not supported with action"):
        seccomp._parse(cfg["linux"]["seccomp"])


def test_warning_goes_to_the_log(tmp_path):
    cfg = enginecorpus.for_validation(enginecorpus.load(os.path.join(enginecorpus.CORPUS, "podman", "device-fuse.json")))
    logf = tmp_path / "log.json"
    log.configure(str(logf), "json")
    try:
        config.validate(cfg)
    finally:
        log.configure(None)
    text = logf.read_text()
    assert '"level": "warning"' in text or '"level":"warning"' in text, text
    assert "linux.devices[0].fileMode" in text and "0o600" in text, text


# -- what stays refused: no engine sends these, and each would make something other than asked

def _podman_device():
    return enginecorpus.for_validation(enginecorpus.load(os.path.join(enginecorpus.CORPUS, "podman", "device-rename.json")))


@pytest.mark.parametrize("mode, why", [
    (0o60666, "block type bits on a character device"),
    (0o24666, "setuid with the type bits"),
    (0o1020666, "bits above st_mode"),
    (0o10666, "fifo type bits on a character device"),
])
def test_filemode_other_bits_refused(mode, why):
    cfg = _podman_device()
    cfg["linux"]["devices"][0]["fileMode"] = mode
    with pytest.raises(Error, match=r"linux\.devices\[0\]\.fileMode"):
        config.validate(cfg, warn=lambda m: None)


def test_filemode_type_bits_matching_block_and_fifo():
    cfg = _podman_device()
    cfg["linux"]["devices"][0].update(type="b", fileMode=0o60660)
    cfg["linux"]["devices"].append({"path": "/dev/myfifo", "type": "p", "fileMode": 0o10644})
    notes = []
    config.validate(cfg, warn=notes.append)
    assert len(notes) == 1 and "(and 1 more)" in notes[0], notes


@pytest.mark.parametrize("value", ["rfoo", "Rshared", "rshared ", "", "recursive"])
def test_rootfs_propagation_unknown_refused(value):
    cfg = _podman_device()
    cfg["linux"]["rootfsPropagation"] = value
    with pytest.raises(Error, match=r"linux\.rootfsPropagation"):
        config.validate(cfg, warn=lambda m: None)


def test_leniency_does_not_hide_another_error():
    cfg = _podman_device()
    cfg["linux"]["rootfsPropagation"] = "rshared"
    cfg["process"]["user"]["uid"] = -1
    with pytest.raises(Error, match=r"process\.user\.uid"):
        config.validate(cfg, warn=lambda m: None)


def test_each_leniency_is_documented():
    assert len(config.ENGINE_LENIENCIES) == 3
    for entry in config.ENGINE_LENIENCIES:
        name, engines, runc, find, says = entry
        assert name and engines and runc and callable(find) and says
