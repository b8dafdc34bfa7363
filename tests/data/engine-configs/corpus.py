"""The engine config corpus (tests/data/engine-configs/): loading and making runnable. Shared by
tests/unit/test_engine_corpus_validate.py (no root) and tests/test_engine_corpus.py (as root)."""
import copy
import glob
import json
import os

CORPUS = os.path.dirname(os.path.abspath(__file__))
NSFILE = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid", "mount": "mnt",
          "cgroup": "cgroup", "user": "user", "time": "time"}


def entries():
    """[(id 'engine/scenario', path)] of every corpus config."""
    out = []
    for p in sorted(glob.glob(os.path.join(CORPUS, "*", "*.json"))):
        if os.path.basename(p).startswith("_"):
            continue
        out.append((os.path.relpath(p, CORPUS)[:-len(".json")], p))
    return out


def captures(engine):
    with open(os.path.join(CORPUS, engine, "_captures.json")) as f:
        return json.load(f)


def load(path):
    with open(path) as f:
        return json.load(f)


def _subst(x, table):
    if isinstance(x, str):
        for k, v in table.items():
            x = x.replace(k, v)
        return x
    if isinstance(x, list):
        return [_subst(i, table) for i in x]
    if isinstance(x, dict):
        return {_subst(k, table): _subst(v, table) for k, v in x.items()}
    return x


def for_validation(cfg):
    """The placeholders filled in with plausible host values (validation reads no files)."""
    return _subst(copy.deepcopy(cfg), {"@ROOTFS@": "/var/lib/engine/rootfs",
                                       "@ENGINE_ROOT@": "/var/lib/engine", "@PID@": "4242"})
