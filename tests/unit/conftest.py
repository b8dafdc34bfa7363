"""The unit tier (make unit): pure logic, no root, no containers, no kernel feature probes.

Runs as an ordinary user (make unit runs it as nobody when started by root). The shared fixtures
of tests/conftest.py are only definitions (nothing there runs at collection), so they load here
too; no test in this directory may use them.
"""
import copy
import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as _f:
    _BASE = json.load(_f)


@pytest.fixture
def cfg():
    """A fresh copy of the example bundle's config.json (valid, Linux)."""
    return copy.deepcopy(_BASE)
