"""linux.resources translated to cgroup files and runc's update/events argument parsing
(runtime/cgroups/v1.py, v2.py, runtime/cgroupverbs.py): values only, no cgroup is touched."""
import pytest

from runtime import cgroupverbs
from runtime.cgroups import v1, v2
from runtime.errors import Error


@pytest.mark.parametrize("shares, weight", [(0, 0), (None, 0), (2, 1), (262144, 10000), (1024, 39)])
def test_shares_to_weight(shares, weight):
    assert v2.shares_to_weight(shares) == weight


@pytest.mark.parametrize("quota, period, text", [
    (None, None, ""), (50000, None, "50000 100000"), (50000, 200000, "50000 200000"),
    (-1, 100000, "max 100000"), (0, 250000, "max 250000"),
])
def test_cpu_max(quota, period, text):
    assert v2.cpu_max(quota, period) == text


@pytest.mark.parametrize("w, io", [(0, 0), (10, 1), (1000, 10000), (500, 4950)])
def test_blkio_weight(w, io):
    assert v2.blkio_weight_to_io_weight(w) == io


@pytest.mark.parametrize("swap, mem, out", [
    (None, None, 0), (-1, 1 << 20, -1), (0, 1 << 20, 0), (2 << 20, 1 << 20, 1 << 20),
    (1 << 20, 1 << 20, 0), (None, -1, -1),
])
def test_swap_to_v2(swap, mem, out):
    assert v2.swap_to_v2(swap, mem) == out


@pytest.mark.parametrize("swap, mem, msg", [
    (2 << 20, None, "without a memory limit"), (1 << 20, 2 << 20, "must be >= memory"),
])
def test_swap_to_v2_errors(swap, mem, msg):
    with pytest.raises(Error, match=msg):
        v2.swap_to_v2(swap, mem)


def test_mem_value():
    assert (v2.mem_value(-1), v2.mem_value(None), v2.mem_value(4096)) == ("max", "max", "4096")


def test_io_max_lines():
    lines = [line for line, _ in v2.io_max_lines({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                             "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]})]
    assert lines == ["8:0 rbps=1000", "8:16 wiops=max"]


def _files(r, **kw):
    """(controller, file, value) of each write, in order (the 4th item names the OCI field)."""
    return [f[:3] for f in v2.resources_to_files(r, **kw)]


def test_resources_to_files_order_and_values():
    files = _files({
        "memory": {"limit": 1 << 30, "swap": 2 << 30, "reservation": 1 << 29},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 0},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
        "unified": {"memory.high": "max", "cgroup.max.depth": "3"},
    })
    assert files[:3] == [("memory", "memory.swap.max", str(1 << 30)), ("memory", "memory.max", str(1 << 30)),
                         ("memory", "memory.low", str(1 << 29))]
    assert ("cpu", "cpu.weight", "39") in files
    assert ("cpu", "cpu.max", "50000 100000") in files
    assert ("cpuset", "cpuset.cpus", "0-1") in files
    assert ("pids", "pids.max", "max") in files
    assert ("hugetlb", "hugetlb.2MB.max", str(1 << 21)) in files
    assert ("memory", "memory.high", "max") in files and ("", "cgroup.max.depth", "3") in files


def test_resources_to_files_bfq_or_io_weight():
    r = {"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}}
    assert _files(r, have=lambda f: True) == [("io", "io.bfq.weight", "500"),
                                                             ("io", "io.bfq.weight", "8:0 10")]
    assert _files(r, have=lambda f: False) == [("io", "io.weight", "default 4950"),
                                                              ("io", "io.weight", "8:0 1")]


@pytest.mark.parametrize("r, msg", [
    ({"cpu": {"realtimeRuntime": 1}}, "realtime"),
    ({"network": {"classID": 1}}, "net_cls"),
    ({"unified": {"../x": "1"}}, "invalid key"),
    ({"unified": {"nodot": "1"}}, "invalid key"),
])
def test_resources_to_files_errors(r, msg):
    with pytest.raises(Error, match=msg):
        v2.resources_to_files(r)


@pytest.mark.parametrize("rule, line", [
    ({"allow": False, "access": "rwm"}, "a"),
    ({"type": "c", "major": 1, "minor": 3, "access": "rwm"}, "c 1:3 rwm"),
    ({"type": "b", "major": 8, "access": "r"}, "b 8:* r"),
    ({"type": "c", "major": -1, "minor": -1, "access": "m"}, "c *:* m"),
    ({"type": "a", "major": 1, "access": "rwm"}, "a 1:* rwm"),
])
def test_v1_rule_line(rule, line):
    assert v1.rule_line(rule) == line


@pytest.mark.parametrize("rule", [{"type": "x"}, {"type": "c", "access": "rwx"}])
def test_v1_rule_line_bad(rule):
    with pytest.raises(Error, match="linux.resources.devices"):
        v1.rule_line(rule)


def test_v1_device_rules_order():
    devices = [{"type": "u", "major": 4, "minor": 5}, {"type": "p"}]
    rules = v1.device_rules(devices, {"devices": [{"allow": False, "access": "rwm"}]})
    assert rules[0] == {"allow": False, "access": "rwm"}
    # linux.devices adds no rule, as in runc 1.1: the user's rules decide (issue 18)
    assert rules[1:] == v1.DEFAULT_DEVICE_RULES


# ---------------------------------------------------------------- update / events arguments
@pytest.mark.parametrize("text, want", [("-1", -1), ("1024", 1024), ("1k", 1024), ("1.5M", 3 << 19),
                                        ("2g", 2 << 30), ("10KiB", 10240)])
def test_parse_size(text, want):
    assert cgroupverbs.parse_size("--memory", text) == want


@pytest.mark.parametrize("text", ["", "abc", "1x", "-5", "99999999999T"])
def test_parse_size_bad(text):
    with pytest.raises(Error, match="--memory"):
        cgroupverbs.parse_size("--memory", text)


@pytest.mark.parametrize("text, want", [("5s", 5.0), ("300ms", 0.3), ("1.5m", 90.0), ("1h2m", 3720.0),
                                        ("0", 0.0), ("-2s", -2.0)])
def test_parse_duration(text, want):
    assert cgroupverbs.parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "1..5s"])
def test_parse_duration_bad(text):
    assert cgroupverbs.parse_duration(text) is None


def test_resources_from_flags():
    r = cgroupverbs.resources_from_flags({"memory": "1M", "cpu-quota": "-1", "cpu-share": "512",
                                          "pids-limit": 10, "cpuset-cpus": "0", "blkio-weight": 0})
    assert r == {"memory": {"limit": 1 << 20}, "cpu": {"quota": -1, "shares": 512, "cpus": "0"},
                 "blockIO": {}, "pids": {"limit": 10}}
    with pytest.raises(Error, match="cpu-share"):
        cgroupverbs.resources_from_flags({"cpu-share": "-1"})


def test_resources_from_json():
    r = cgroupverbs.resources_from_json('{"memory": {"limit": 4096, "swap": 0}, "cpu": {"cpus": "0"},'
                                        ' "unified": {"pids.max": "5"}, "other": 1}', "-r")
    assert r == {"memory": {"limit": 4096}, "cpu": {"cpus": "0"}, "blockIO": {}, "pids": {},
                 "unified": {"pids.max": "5"}}


@pytest.mark.parametrize("text, msg", [
    ("[", "invalid JSON"), ("[]", "expected a JSON object"), ('{"memory": 1}', "expected an object"),
    ('{"memory": {"limit": true}}', "memory.limit"), ('{"blockIO": {"weight": 70000}}', "out of range"),
    ('{"cpu": {"cpus": 1}}', "expected a string"), ('{"unified": {"a": 1}}', "unified"),
])
def test_resources_from_json_bad(text, msg):
    with pytest.raises(Error, match=msg):
        cgroupverbs.resources_from_json(text, "-r")
