"""Where the runtime-spec JSON schemas are.

The top-level oci-schemas/ of the source tree is the one copy kept in git; a built wheel carries it
as the package data runtime/oci_schemas/ (pyproject.toml maps the directory in at build time). So:
the package's own copy when installed, else the source tree's (a clone, or an editable install).
One stat at import; no importlib.resources (hot path: see runtime/hotpath.py).
"""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def schema_dir():
    installed = os.path.join(_HERE, "oci_schemas")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(_HERE), "oci-schemas")


SCHEMA_DIR = schema_dir()
