"""What podman (conmon) and containerd (runc v2 shim) rely on, checked without the engines.

engine-calls.txt is the list of runtime invocations both engines made while driving runc; every
line must get through pyrunc's parser. The behaviours after it are compared with runc's.
"""
import json
import os
import re
import subprocess
import uuid

import pytest

from e2efix import PYRUNC, REPO, ROOTFS, RUNTIMES, sh
from runtime import cli, SPEC_VERSION

CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine-calls.txt")
SCHEMAS = os.path.join(REPO, "oci-schemas")


def _engine_calls():
    calls, engine = [], None
    with open(CALLS) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("== "):
                engine = line[3:]
            elif line.strip() and not line.startswith("#"):
                count, _, args = line.strip().partition("  ")
                assert count.strip().isdigit(), line
                calls.append(pytest.param(engine, args.strip(), id=f"{engine}:{args.strip()[:90]}"))
    return calls


def _concrete(args):
    """Placeholders of engine-calls.txt -> concrete argv."""
    args = re.sub(r"<SIG:(\d+)>", r"\1", args)
    args = args.replace("<ID>", "c1").replace("<dir>", "/tmp/d").replace("<path>", "/tmp/p")
    args = args.replace("<n>", "1").replace("XXXXXX", "abc123")
    return ["1" if a == "N" else a for a in args.split()]


def test_engine_calls_file_is_complete():
    engines = {p.values[0] for p in _engine_calls()}
    assert engines == {"containerd", "podman(conmon)", "podman(podman)"}
    assert len(_engine_calls()) >= 39


@pytest.mark.parametrize("engine,args", _engine_calls())
def test_parser_accepts_engine_call(engine, args):
    argv = _concrete(args)
    g, rest = cli.parse_flags(argv, cli.GLOBAL)
    if g["version"]:
        assert rest == []
        return
    assert g["log-format"] in ("text", "json")
    name, vargs = rest[0], rest[1:]
    assert name in cli.VERBS, f"verb {name!r} unknown"
    verb = cli.VERBS[name]
    opts, pos = cli.parse_flags(vargs, verb[2] + [("help", "h", cli.B, "", False)])
    if opts["help"]:
        assert pos == []
        return
    lo, hi = verb[3], verb[4]
    assert lo <= len(pos) and (hi < 0 or len(pos) <= hi), (name, pos)
    assert pos[0] == "c1"


def test_version_like_runc():
    p = sh([PYRUNC, "--version"])
    lines = p.stdout.splitlines()
    assert re.fullmatch(r"pyrunc version \S+", lines[0]), lines
    assert f"spec: {SPEC_VERSION}" in lines
    assert p.stderr == ""


def test_checkpoint_help_says_unsupported():
    # podman probes `checkpoint --help` and takes exit status 0 as "can checkpoint"
    p = sh([PYRUNC, "checkpoint", "--help"], check=False)
    assert p.returncode != 0 and "not supported" in p.stderr
    p = sh([PYRUNC, "checkpoint", "--image-path", "/tmp/nope", "--work-path", "/tmp", "c1"], check=False)
    assert p.returncode == 1 and "not supported" in p.stderr and "Traceback" not in p.stderr


def test_entry_point_runs_in_an_empty_environment(tmp_path):
    # engines start pyrunc with a minimal environment (no PATH, no HOME), directly or through a
    # symlink on PATH: the command must find its own interpreter and package from where it is
    link = tmp_path / "pyrunc"
    link.symlink_to(PYRUNC)
    for cmd in (PYRUNC, str(link)):
        p = subprocess.run([cmd, "--version"], env={}, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("pyrunc version "), (cmd, p.stdout, p.stderr)


def _validator(schema_name):
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4
    res = []
    for name in os.listdir(SCHEMAS):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMAS, name)) as f:
                res.append((name, Resource.from_contents(json.load(f), default_specification=DRAFT4)))
    reg = Registry().with_resources(res)
    return jsonschema.Draft4Validator(reg.contents(schema_name), registry=reg)


def test_features_document():
    from runtime import config, process, rootfs, seccomp
    p = sh([PYRUNC, "features"])
    doc = json.loads(p.stdout)
    _validator("features-schema.json").validate(doc)
    assert doc["ociVersionMax"] == SPEC_VERSION
    assert set(doc["hooks"]) == {"prestart", "createRuntime", "createContainer", "startContainer",
                                 "poststart", "poststop"}
    lx = doc["linux"]
    assert lx["capabilities"] == list(process.CAPS)
    assert set(lx["namespaces"]) == set(config.NAMESPACES)
    assert set(lx["seccomp"]["actions"]) == set(seccomp._ACTIONS)
    assert set(lx["seccomp"]["operators"]) == set(seccomp._OPS)
    assert lx["cgroup"]["systemd"] is False
    # every advertised mount option is one the mount planner accepts
    for opt in doc["mountOptions"]:
        cfg = {"mounts": [{"destination": "/mnt", "type": "bind", "source": ROOTFS,
                           "options": ["rbind", opt], "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}],
                           "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}]}
        if opt not in ("idmap", "ridmap"):
            del cfg["mounts"][0]["uidMappings"], cfg["mounts"][0]["gidMappings"]
        rootfs.plan_mounts(cfg, "/")


@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_spec_writes_valid_config_and_never_overwrites(tmp_path, rootless):
    flags = ["--rootless"] if rootless else []
    sh([PYRUNC, "spec", "--bundle", str(tmp_path), *flags])
    path = tmp_path / "config.json"
    cfg = json.loads(path.read_text())
    _validator("config-schema.json").validate(cfg)
    assert cfg["ociVersion"] == SPEC_VERSION and cfg["root"]["path"] == "rootfs"
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert ("user" in types) == rootless and ("network" in types) != rootless
    path.write_text("mine")
    p = sh([PYRUNC, "spec", "--bundle", str(tmp_path)], check=False)
    assert p.returncode == 1 and "exists" in p.stderr
    assert path.read_text() == "mine"
    # without --bundle: the current directory, as runc
    sub = tmp_path / "cwd"
    sub.mkdir()
    subprocess.run([PYRUNC, "spec"], cwd=sub, check=True, timeout=20)
    assert json.loads((sub / "config.json").read_text())["process"]["args"] == ["sh"]


@pytest.fixture(params=sorted(RUNTIMES), ids=sorted(RUNTIMES))
def rt(request, tmp_path):
    """A runtime with its own --root and a busybox bundle; containers deleted afterwards."""
    binary = RUNTIMES[request.param]
    root = str(tmp_path / "root")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = ROOTFS
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "1000"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    ids = []

    def run(*args, check=False, **kw):
        return sh([binary, "--root", root, *args], check=check, **kw)
    run.bundle, run.ids, run.tmp, run.name = str(bundle), ids, tmp_path, request.param
    yield run
    for cid in ids:
        run("delete", "--force", cid)
    assert not os.path.exists(root) or os.listdir(root) == []


def test_pid_file_bare_digits(rt):
    cid = f"pf-{uuid.uuid4().hex[:8]}"
    rt.ids.append(cid)
    pidfile = rt.tmp / "init.pid"
    rt("create", "--bundle", rt.bundle, "--pid-file", str(pidfile), cid, check=True)
    data = pidfile.read_text()
    assert re.fullmatch(r"[0-9]+", data), repr(data)
    assert json.loads(rt("state", cid, check=True).stdout)["pid"] == int(data)


def test_json_log_and_gone_messages(rt):
    """containerd: kill errors with "container not running"/"does not exist" mean gone; delete
    errors with "does not exist" are ignored; delete --force of an unknown id succeeds."""
    log = rt.tmp / "log.json"
    p = rt("--log", str(log), "--log-format", "json", "kill", "nope", "9")
    assert p.returncode == 1 and "does not exist" in p.stderr  # errors reach stderr too
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines and lines[-1]["level"] == "error" and "does not exist" in lines[-1]["msg"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", lines[-1]["time"])
    p = rt("--log", str(log), "--log-format=json", "delete", "nope")
    assert p.returncode == 1 and "does not exist" in p.stderr
    assert rt("--log", str(log), "--log-format", "json", "delete", "--force", "nope").returncode == 0

    cid = f"gone-{uuid.uuid4().hex[:8]}"
    rt.ids.append(cid)
    rt("create", "--bundle", rt.bundle, cid, check=True)
    rt("start", cid, check=True)
    rt("kill", cid, "9", check=True)
    from e2efix import wait_for
    wait_for(lambda: json.loads(rt("state", cid, check=True).stdout)["status"] == "stopped",
             what="container to stop")
    p = rt("kill", cid, "9")
    assert p.returncode == 1 and "container not running" in p.stderr
    assert rt("kill", "--all", cid, "9").returncode == 0  # the shim's cleanup kill
    assert rt("delete", cid).returncode == 0
    rt.ids.remove(cid)


def test_default_root_is_run_pyrunc(tmp_path):
    # podman calls start/kill/delete/state without --root (and sets XDG_RUNTIME_DIR, even as root)
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = ROOTFS
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "1000"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    cid = f"defroot-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    try:
        sh([PYRUNC, "create", "--bundle", str(tmp_path), cid], env=env)
        assert os.path.isdir(f"/run/pyrunc/{cid}")
        assert json.loads(sh([PYRUNC, "state", cid], env=env).stdout)["status"] == "created"
    finally:
        sh([PYRUNC, "delete", "--force", cid], check=False, env=env)
    assert not os.path.exists(f"/run/pyrunc/{cid}")
