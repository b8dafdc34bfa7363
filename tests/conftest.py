"""Shared fixtures: a runtime runner with its own --root, and bundles made from the busybox one.

Every container a test makes is deleted with --force when the test ends, and the state root must
then be empty: a leak fails the test.
"""
import copy
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
ROOTFS = os.path.join(REPO, "bundles", "busybox", "rootfs")
BASE_CONFIG = os.path.join(REPO, "bundles", "busybox", "config.json")
RUNTIMES = {"pyrunc": PYRUNC, "runc": shutil.which("runc") or "runc"}


def base_config(args=("true",)):
    with open(BASE_CONFIG) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = ROOTFS
    cfg["process"]["args"] = list(args)
    return cfg


class Runtime:
    """Runs one runtime binary with a private --root; remembers ids to clean up."""

    def __init__(self, name, binary, tmp):
        self.name = name
        self.binary = binary
        self.tmp = tmp
        self.root = os.path.join(tmp, f"root-{name}")
        self.ids = set()
        self.n = 0

    def new_id(self, prefix="t"):
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def bundle(self, cfg=None, args=None, **changes):
        """Write a bundle dir holding CFG (default: busybox config with ARGS)."""
        cfg = copy.deepcopy(cfg) if cfg is not None else base_config(args or ("true",))
        if args is not None:
            cfg["process"]["args"] = list(args)
        for k, v in changes.items():
            cfg[k] = v
        self.n += 1
        d = os.path.join(self.tmp, f"bundle-{self.name}-{self.n}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return d

    def __call__(self, *args, check=False, timeout=20, input=None, **kw):
        """Run the runtime. Output goes through files, not pipes: a detached container inherits
        the runtime's stdio and would hold a pipe open forever."""
        cmd = [self.binary, "--root", self.root, *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(cmd, stdout=out, stderr=err, text=True, timeout=timeout,
                               input=input, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} failed ({p.returncode}): {p.stderr}")
        return p

    def state(self, cid):
        p = self(("state"), cid, check=True)
        return json.loads(p.stdout)

    def run(self, cfg=None, args=None, timeout=20, **kw):
        """Foreground run of a fresh container; returns the CompletedProcess."""
        b = self.bundle(cfg, args)
        cid = self.new_id()
        return self("run", "--bundle", b, cid, timeout=timeout, **kw)

    def cleanup(self):
        for cid in self.ids:
            subprocess.run([self.binary, "--root", self.root, "delete", "--force", cid],
                           capture_output=True, timeout=20)
        left = os.listdir(self.root) if os.path.isdir(self.root) else []
        return left


@pytest.fixture
def pyrunc(tmp_path):
    rt = Runtime("pyrunc", PYRUNC, str(tmp_path))
    yield rt
    left = rt.cleanup()
    assert not left, f"state left behind: {left}"


@pytest.fixture(params=["pyrunc", "runc"])
def anyrt(request, tmp_path):
    """The same test against pyrunc and runc (runc's result shows what the machine allows)."""
    name = request.param
    if name == "runc" and not shutil.which("runc"):
        pytest.skip("runc not installed")
    rt = Runtime(name, RUNTIMES[name], str(tmp_path))
    yield rt
    left = rt.cleanup()
    assert not left, f"state left behind: {left}"
