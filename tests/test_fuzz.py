"""Bad input, property-based (hypothesis): mutated config.json and process.json (wrong types, huge
values, unicode, deep nesting, missing fields, paths with '..' and magic links) and random verb
arguments. pyrunc never prints a traceback, never hangs, and either runs the container or exits 1
with a one-line error, leaving nothing behind either way.

Bounded for `make test`; PYRUNC_STRESS=1 (make stress) runs many more examples. Mutations never
touch linux.namespaces or root.path (a config without a mount namespace would mount on the host;
that is the config author's choice, not bad input), and the rootfs is a private copy.
"""
import copy
import json
import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from conftest import PYRUNC, base_config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "security"))
from secutil import cgroup_leftovers, copy_rootfs, procs_mentioning  # noqa: E402

STRESS = bool(os.environ.get("PYRUNC_STRESS"))


def SETTINGS_N(n, shrink=True):
    phases = list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate]
    return settings(max_examples=600 if STRESS else n, deadline=None, derandomize=not STRESS,
                    suppress_health_check=list(HealthCheck), database=None, phases=phases)

TIMEOUT = 20

PATHS = st.sampled_from(["..", "../../..", "/../../etc", "/proc/self/fd/3", "/proc/self/root",
                         "a/../../b", "/dev/null", "/", "", ".", "/tmp/../..", "rootfs/../..",
                         "/proc/1/root", "\x00", "/sys/fs/cgroup/..", "x" * 5000])
WEIRD = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), PATHS,
              st.sampled_from([2**31, 2**63, -1, 0, 4294967295, 1e308, "true", "0", "RLIMIT_CPU",
                               "CAP_SYS_ADMIN", "tmpfs", "bind", "proc"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12)


def _nest(n):
    v = []
    for _ in range(n):
        v = [v]
    return v


DEEP = st.integers(min_value=50, max_value=400).map(_nest)  # json.dump's own recursion limit
NEW_KEYS = ["x-unknown", "hostname", "domainname", "annotations", "ociVersion", "cwd", "args",
            "options", "type", "uid", "rlimits", "env", "terminal", "consoleSize", "user"]
FORBIDDEN = [("linux",), ("linux", "namespaces"), ("root", "path")]


def _nodes(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, path + (i,))


def _allowed(path):
    return path and not any(path[:len(f)] == f for f in FORBIDDEN if len(path) >= len(f)) \
        and path not in [f[:i] for f in FORBIDDEN for i in range(1, len(f))]


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated(draw, base):
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _nodes(doc) if _allowed(p)]
        path = draw(st.sampled_from(paths))
        parent = _get(doc, path[:-1])
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "deep"]))
        if op == "replace":
            parent[path[-1]] = draw(WEIRD)
        elif op == "deep":
            parent[path[-1]] = draw(DEEP)
        elif op == "delete":
            del parent[path[-1]]
        else:
            target = _get(doc, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(NEW_KEYS))] = draw(WEIRD)
            elif isinstance(target, list):
                target.append(draw(WEIRD))
            else:
                parent[path[-1]] = [target, draw(WEIRD)]
    return doc


def _check_output(p):
    """0, the program's own status, or 1 with runc-style log lines of which one is the error."""
    err = p.stderr
    assert "Traceback" not in err, err
    if p.returncode == 1 and err.strip():
        lines = err.strip().splitlines()
        assert all(line.startswith("time=") or line.startswith("{") for line in lines), err
        errors = [line for line in lines if "level=error" in line or '"level":"error"' in line]
        assert len(errors) == 1, err


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.root = os.path.join(tmp, "state")

    def run(self, *args, timeout=TIMEOUT, cwd=None):
        """Output through files: a detached container would hold pipes open."""
        import tempfile
        cmd = [PYRUNC, "--root", self.root, *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   timeout=timeout, cwd=cwd or self.tmp)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"hang: {cmd}") from None
            out.seek(0)
            err.seek(0)
            p.stdout = out.read().decode(errors="replace")
            p.stderr = err.read().decode(errors="replace")
        return p

    def cleanup_and_check(self, cids):
        for cid in cids:
            self.run("delete", "--force", cid)
        left = [n for n in os.listdir(self.root)] if os.path.isdir(self.root) else []
        for n in left:
            self.run("delete", "--force", n)
        assert left == [], left
        for cid in cids:
            assert cgroup_leftovers(cid) == [], cid
            assert procs_mentioning(cid) == [], cid


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("fuzz"))
    env = Env(tmp)
    env.rootfs = copy_rootfs(tmp)
    yield env
    if os.path.isdir(env.root):
        for n in os.listdir(env.root):
            env.run("delete", "--force", n)


def _base_cfg(rootfs):
    cfg = base_config(["true"])
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    return cfg


def test_fuzz_config(fuzz_env):
    base = _base_cfg(fuzz_env.rootfs)

    @SETTINGS_N(40)
    @given(cfg=mutated(base))
    def prop(cfg):
        b = os.path.join(fuzz_env.tmp, "bundle")
        os.makedirs(b, exist_ok=True)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f)
        cid = "fz-" + uuid.uuid4().hex[:10]
        try:
            p = fuzz_env.run("run", "-b", b, cid)
            _check_output(p)
        finally:
            fuzz_env.cleanup_and_check([cid])

    prop()


def test_fuzz_config_bytes(fuzz_env):
    """Not JSON at all, or JSON of the wrong shape."""
    @SETTINGS_N(40)
    @given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                         WEIRD.map(lambda v: json.dumps(v).encode()),
                         st.integers(1000, 200000).map(lambda n: b'{"ociVersion":' + b"[" * n + b"]" * n + b"}")))
    def prop(raw):
        b = os.path.join(fuzz_env.tmp, "bundle-raw")
        os.makedirs(b, exist_ok=True)
        with open(os.path.join(b, "config.json"), "wb") as f:
            f.write(raw)
        cid = "fr-" + uuid.uuid4().hex[:10]
        try:
            p = fuzz_env.run("run", "-b", b, cid)
            assert p.returncode == 1, (p.returncode, p.stderr)
            _check_output(p)
        finally:
            fuzz_env.cleanup_and_check([cid])

    prop()


def test_fuzz_exec_process(fuzz_env):
    b = os.path.join(fuzz_env.tmp, "bundle-exec")
    os.makedirs(b, exist_ok=True)
    cfg = _base_cfg(fuzz_env.rootfs)
    cfg["process"]["args"] = ["sleep", "1000"]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    cid = "fe-" + uuid.uuid4().hex[:10]
    base = copy.deepcopy(cfg["process"])
    base["args"] = ["true"]
    try:
        fuzz_env.run("run", "-d", "-b", b, cid, timeout=TIMEOUT)
        init = json.loads(fuzz_env.run("state", cid).stdout)["pid"]

        # no shrinking: the container is shared, so the example that broke it is the one to report
        @SETTINGS_N(30, shrink=False)
        @given(proc=mutated(base))
        def prop(proc):
            path = os.path.join(fuzz_env.tmp, "process.json")
            with open(path, "w") as f:
                json.dump(proc, f)
            p = fuzz_env.run("exec", "--process", path, cid)
            _check_output(p)
            st_ = json.loads(fuzz_env.run("state", cid).stdout)
            assert st_["status"] == "running" and st_["pid"] == init
            # nothing of the exec stays: only the init (sleep) is left in the container
            assert procs_mentioning(cid) == [init] or procs_mentioning(cid) == [], procs_mentioning(cid)

        prop()
    finally:
        fuzz_env.run("delete", "--force", cid)
    fuzz_env.cleanup_and_check([cid])


def _verb_args():
    from runtime import cli
    verbs = sorted(cli.VERBS)
    tokens = st.one_of(
        st.sampled_from(["-a", "--all", "-f", "--force", "-b", "--bundle", "--pid-file", "-d",
                         "--detach", "--preserve-fds", "-1", "99999999999999999999", "--format",
                         "json", "table", "KILL", "SIGTERM", "0", "-9", "--", "-", "--cwd", "-e",
                         "--user", "a:b", "--process", "--keep", "--no-pivot", "--console-socket",
                         "--force=maybe", "--bogus", "..", "x" * 300, "\u00e9t\u00e9", "SIGRTMAX+9"]),
        st.text(max_size=12).filter(lambda s: not s.startswith("/") and "\x00" not in s))
    return st.tuples(st.sampled_from(verbs), st.lists(tokens, max_size=6))


def test_fuzz_verb_args(fuzz_env):
    @SETTINGS_N(50)
    @given(v=_verb_args())
    def prop(v):
        verb, args = v
        if verb in ("run", "create", "exec") and "-b" not in args and "--bundle" not in args:
            args = args + ["--bundle", "nonexistent"]
        work = os.path.join(fuzz_env.tmp, "cwd")
        os.makedirs(work, exist_ok=True)
        p = fuzz_env.run(verb, *args, cwd=work)
        # as runc: exec's failures before the process runs are 255, an unknown help topic 3
        allowed = {"exec": (0, 1, 255), "help": (0, 1, 3)}.get(verb, (0, 1))
        assert p.returncode in allowed, (verb, args, p.returncode, p.stderr)
        _check_output(p)
        fuzz_env.cleanup_and_check([])

    prop()
