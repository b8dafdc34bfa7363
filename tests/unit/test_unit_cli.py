"""runc's command line as pyrunc parses it (runtime/cli.py, runtime/signals.py): flags, help,
usage errors, and the verbs that need no container (list, state of an unknown id, spec, features)
against a private --root."""
import json
import os

import pytest

from runtime import cli, signals
from runtime.errors import Error

S, B, I, L = cli.S, cli.B, cli.I, cli.L
FLAGS = [("bundle", "b", S, "", None), ("detach", "d", B, "", False), ("preserve-fds", None, I, "", 0),
         ("env", "e", L, "", None)]


@pytest.mark.parametrize("argv, vals, pos", [
    (["-b", "x", "id"], {"bundle": "x"}, ["id"]),
    (["--bundle=x", "id"], {"bundle": "x"}, ["id"]),
    (["-d", "id"], {"detach": True}, ["id"]),
    (["--detach=false", "id"], {"detach": False}, ["id"]),
    (["--preserve-fds", "3", "id"], {"preserve-fds": 3}, ["id"]),
    (["-e", "A=1", "--env", "B=2", "id"], {"env": ["A=1", "B=2"]}, ["id"]),
    (["--", "-d"], {"detach": False}, ["-d"]),
    (["id", "-d"], {"detach": False}, ["id", "-d"]),
    (["-", "x"], {}, ["-", "x"]),
])
def test_parse_flags(argv, vals, pos):
    v, p = cli.parse_flags(argv, FLAGS)
    for k, want in vals.items():
        assert v[k] == want
    assert p == pos


def test_parse_flags_after_positional():
    v, p = cli.parse_flags(["id", "--detach", "x"], FLAGS, stop_at_positional=False)
    assert v["detach"] is True and p == ["id", "x"]


@pytest.mark.parametrize("argv, msg", [
    (["--nope"], "not defined"), (["-b"], "needs an argument"), (["--preserve-fds", "x"], "not an integer"),
    (["--detach=maybe"], "invalid boolean"),
])
def test_parse_flags_errors(argv, msg):
    with pytest.raises(cli.Usage, match=msg):
        cli.parse_flags(argv, FLAGS)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("pyrunc version ") and "spec: 1.3.0" in out


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "COMMANDS:" in out and "create" in out
    code, out, _ = run(capsys, "help", "kill")
    assert code == 0 and "pyrunc kill" in out


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_verb_help(capsys, verb, tmp_path):
    code, out, _ = run(capsys, "--root", str(tmp_path), verb, "--help")
    # urfave/cli's layout, as runc's: NAME, then "   pyrunc VERB - summary"
    assert out.startswith(f"NAME:\n   pyrunc {verb} - "), out
    # podman's probe: `checkpoint --help` exiting 0 would mean "can checkpoint" (runtime/cli.py)
    assert code == (1 if verb == "checkpoint" else 0)
    code, out2, _ = run(capsys, "--root", str(tmp_path), verb, "-h")
    assert code == 0 and out2 == out


@pytest.mark.parametrize("argv, msg", [
    (["start"], "missing container id"),
    (["state", "a", "b"], "too many arguments"),
    (["--log-format", "xml", "list"], "invalid log format"),
    (["--systemd-cgroup", "create", "x"], "systemd"),
    (["checkpoint", "x"], "not supported"),
    (["list", "--format", "yaml"], "invalid format"),
    (["state", "bad/id"], "invalid container id"),
    (["kill", "x", "SIGNOPE"], ""),
])
def test_usage_errors_are_one_line(capsys, tmp_path, argv, msg):
    code, out, err = run(capsys, "--root", str(tmp_path), *argv)
    assert code == 1, (out, err)
    assert err.count("\n") == 1 and "level=error" in err and msg in err, err
    assert "Traceback" not in err


def test_unknown_command_exits_3(capsys, tmp_path):
    """urfave/cli's status for an unknown command or help topic, as runc's."""
    for argv in (["nosuchverb"], ["help", "nosuchverb"], ["h", "nosuchverb"], ["nosuchverb", "-h"]):
        code, out, err = run(capsys, "--root", str(tmp_path), *argv)
        assert code == 3 and "No help topic for 'nosuchverb'" in err and err.count("\n") == 1, (argv, err)


def test_list_empty_root(capsys, tmp_path):
    assert run(capsys, "--root", str(tmp_path), "list")[1].split() == ["ID", "PID", "STATUS", "BUNDLE",
                                                                      "CREATED", "OWNER"]
    assert run(capsys, "--root", str(tmp_path), "list", "-q")[1] == ""
    assert run(capsys, "--root", str(tmp_path), "list", "--format", "json")[1] == "null\n"
    assert run(capsys, "--root", str(tmp_path / "none"), "list")[0] == 0


def test_state_unknown(capsys, tmp_path):
    code, _, err = run(capsys, "--root", str(tmp_path), "state", "nope")
    assert code == 1 and "nope" in err and "does not exist" in err


def test_delete_force_unknown_is_ok(capsys, tmp_path):
    assert run(capsys, "--root", str(tmp_path), "delete", "--force", "nope")[0] == 0


def test_spec_writes_a_valid_config(capsys, tmp_path):
    code, _, err = run(capsys, "spec", "--bundle", str(tmp_path))
    assert code == 0, err
    with open(tmp_path / "config.json") as f:
        cfg = json.load(f)
    from runtime import config
    config.validate(cfg)
    code, _, err = run(capsys, "spec", "--bundle", str(tmp_path))
    assert code == 1 and "exists" in err


def test_features_json(capsys):
    code, out, _ = run(capsys, "features")
    f = json.loads(out)
    assert code == 0 and f["ociVersionMax"] == "1.3.0" and "linux" in f


@pytest.mark.parametrize("text, sig", [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15), ("SIGUSR1", 10),
                                       ("RTMIN", signals.RTMIN), ("RTMIN+1", signals.RTMIN + 1),
                                       ("SIGRTMAX-2", signals.RTMAX - 2), (" HUP ", 1),
                                       ("0", 0)])  # 0: kill's liveness check, as runc
def test_signal_parse(text, sig):
    assert signals.parse(text) == sig


@pytest.mark.parametrize("text", ["99", "NOPE", "RTMIN+99", "RTMAX-x", "", "-9"])
def test_signal_parse_bad(text):
    with pytest.raises(Error, match="unknown signal"):
        signals.parse(text)
