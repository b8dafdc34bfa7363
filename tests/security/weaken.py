"""Deliberately weakened copies of pyrunc, to prove that an attack test's detector can fail.

weakened(tmp_path, patches, name) copies the `runtime` package into TMP_PATH, applies PATCHES
({relative file: [(old, new), ...]}; every `old` must occur, so a patch that no longer matches
the code fails loudly instead of testing an unweakened copy) and returns a Runtime (conftest) whose
binary is a launcher for that copy. The copy shares nothing with the real package but the
interpreter and the venv's site-packages.
"""
import os
import shutil
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from conftest import PYRUNC, REPO, Runtime  # noqa: E402


def _venv_python():
    # the interpreter bin/pyrunc runs: the venv's own, beside the installed command
    py = os.path.join(os.path.dirname(PYRUNC), "python3")
    return py if os.access(py, os.X_OK) else sys.executable


def weakened(tmp_path, patches, name="weak"):
    base = os.path.join(str(tmp_path), f"weak-{name}")
    pkg = os.path.join(base, "runtime")
    shutil.copytree(os.path.join(REPO, "runtime"), pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    schemas = os.path.join(REPO, "oci-schemas")
    if os.path.isdir(schemas) and not os.path.exists(os.path.join(base, "oci-schemas")):
        os.symlink(schemas, os.path.join(base, "oci-schemas"))
    for rel, pairs in patches.items():
        path = os.path.join(pkg, rel)
        with open(path) as f:
            src = f.read()
        for old, new in pairs:
            assert old in src, f"weakening patch for {rel} no longer matches: {old!r}"
            src = src.replace(old, new)
        with open(path, "w") as f:
            f.write(src)
    purelib = sysconfig.get_paths()["purelib"]
    py = _venv_python()
    launcher = os.path.join(base, "pyrunc-weak")
    with open(launcher, "w") as f:
        f.write(f"#!{py} -IS\nimport sys\nsys.path[:0] = [{base!r}, {purelib!r}]\n"
                "from runtime.cli import main\nsys.exit(main())\n")
    os.chmod(launcher, 0o755)
    return Runtime(f"weak-{name}", launcher, str(tmp_path))
