"""The package's layers (README "How it works"): no import circle, no import from a lower layer
to a higher one, and no verb module importing another verb. Read from the source with ast (every
import, function-level lazy ones included), so no module is executed."""
import ast
import os

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "runtime")

LAYERS = {
    0: {"errors", "linux", "testpoint", "log", "signals", "schemas", "hotpath", "bpfcache"},
    1: {"procfs", "sync", "plan", "idmaps"},
    2: {"rootfs", "program", "process", "procattr", "sysctl", "mempolicy", "seccomp", "netdev", "hooks",
        "tty", "idmap", "rootless", "state", "config", "fastcheck", "cgroups", "selfexe"},
    3: {"prepare", "lifecycle"},
    4: {"chain"},
    5: {"container", "exec", "cgroupverbs", "features", "spec"},
    6: {"cli", "__main__"},
}
VERBS = LAYERS[5]


def _modules():
    mods = {}
    for root, dirs, files in os.walk(PKG):
        dirs[:] = [d for d in dirs if d != "__pycache__" and os.path.exists(os.path.join(root, d, "__init__.py"))]
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), PKG)[:-3].replace(os.sep, ".")
                name = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
                if name != "__init__":
                    mods[name] = os.path.join(root, f)
    return mods


def _top(name):
    return name.split(".")[0]


def _edges():
    mods = _modules()
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.endswith("__init__.py") else (m.rsplit(".", 1)[0] if "." in m else "")
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0] if "." in base else ""
                stem = ".".join(p for p in (base, node.module or "") if p)
                targets = [f"{stem}.{a.name}" if stem else a.name for a in node.names] + [stem]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("runtime."):
                targets = [node.module[len("runtime."):]]
            elif isinstance(node, ast.Import):
                targets = [a.name[len("runtime."):] for a in node.names if a.name.startswith("runtime.")]
            for t in targets:
                # a submodule's import of its own package is no edge: Python loads the package
                # before any of its submodules
                if t in mods and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def _layer(name):
    for n, names in LAYERS.items():
        if _top(name) in names:
            return n
    raise AssertionError(f"runtime.{name} is in no layer: add it to LAYERS and the README")


def test_every_module_has_a_layer():
    for m in _modules():
        _layer(m)


def test_no_import_circle():
    edges = _edges()
    state = {}

    def visit(n, stack):
        state[n] = 1
        for t in edges[n]:
            if state.get(t) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if not state.get(t):
                visit(t, stack + [t])
        state[n] = 2

    for m in edges:
        if not state.get(m):
            visit(m, [m])


def test_no_import_upwards_and_verbs_side_by_side():
    bad = []
    for m, ts in _edges().items():
        for t in ts:
            if _top(t) == _top(m):
                continue  # inside one package (cgroups, linux)
            if _layer(t) > _layer(m):
                bad.append(f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})")
            if _top(m) in VERBS and _top(t) in VERBS:
                bad.append(f"verb {m} imports verb {t}")
    assert not bad, "\n".join(bad)


def test_every_subpackage_is_packaged():
    """pip install builds from pyproject's package list: a sub-package missing there installs a
    pyrunc that fails at its first import of it."""
    import tomllib
    with open(os.path.join(os.path.dirname(PKG), "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    for root, dirs, files in os.walk(PKG):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if "__init__.py" in files:
            name = os.path.relpath(root, os.path.dirname(PKG)).replace(os.sep, ".")
            assert name in listed, f"{name} is not in pyproject.toml's packages"
