"""linux.seccomp validation (runtime/seccomp.py _parse, no libseccomp needed): every error it
raises, word for word, the first bad field in the order of the checks, and the plan it builds."""
import copy

import pytest

from runtime import seccomp
from runtime.errors import Error

P = "linux.seccomp"
BASE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
                  {"index": 1, "value": 5, "op": "SCMP_CMP_NE"}]},
    ],
}
NOTIFY = {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}


def _with(**changes):
    s = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            del s[k]
        else:
            s[k] = v
    return s


def _entry(i, **changes):
    s = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            del s["syscalls"][i][k]
        else:
            s["syscalls"][i][k] = v
    return s


CASES = [
    ([], f"{P}: must be an object"),
    (_with(defaultAction=None), f"{P}.defaultAction: required"),
    (_with(defaultAction="SCMP_ACT_NOPE"), f"{P}.defaultAction: unknown action SCMP_ACT_NOPE"),
    (_with(defaultAction="SCMP_ACT_ALLOW", defaultErrnoRet=1),
     f"{P}.defaultErrnoRet: not supported with action SCMP_ACT_ALLOW"),
    (_with(defaultErrnoRet=65536),
     f"{P}.defaultErrnoRet: must be an integer between 0 and 65535, got 65536"),
    (_with(defaultErrnoRet=True),
     f"{P}.defaultErrnoRet: must be an integer between 0 and 65535, got True"),
    (_with(defaultAction="SCMP_ACT_NOTIFY"),
     f"{P}.defaultAction: SCMP_ACT_NOTIFY cannot be used as the default action"),
    (_with(architectures="SCMP_ARCH_X86"), f"{P}.architectures: must be an array"),
    (_with(architectures=["SCMP_ARCH_X86", "x86"]), f"{P}.architectures[1]: unknown architecture x86"),
    (_with(flags={"a": 1}), f"{P}.flags: must be an array"),
    (_with(flags=["SECCOMP_FILTER_FLAG_NOPE"]), f"{P}.flags[0]: unknown flag SECCOMP_FILTER_FLAG_NOPE"),
    (_with(listenerPath=1), f"{P}.listenerPath: must be a string"),
    (_with(listenerPath="/x", listenerMetadata=1), f"{P}.listenerMetadata: must be a string"),
    # runc's: an empty listenerPath is none (and a NOTIFY rule then has no listener)
    (_with(listenerPath="", syscalls=BASE["syscalls"] + [NOTIFY]),
     f"{P}.listenerPath: required when SCMP_ACT_NOTIFY is used"),
    (_with(syscalls={"a": 1}), f"{P}.syscalls: must be an array"),
    (_with(syscalls=[BASE["syscalls"][0], "read"]), f"{P}.syscalls[1]: must be an object"),
    (_entry(0, names=[]), f"{P}.syscalls[0].names: must contain at least one syscall name"),
    (_entry(0, names=["read", ""]), f"{P}.syscalls[0].names[1]: must be a non-empty string"),
    (_entry(0, action=None), f"{P}.syscalls[0].action: required"),
    (_entry(0, action="ALLOW"), f"{P}.syscalls[0].action: unknown action ALLOW"),
    (_entry(0, errnoRet=1), f"{P}.syscalls[0].errnoRet: not supported with action SCMP_ACT_ALLOW"),
    (_entry(0, action="SCMP_ACT_NOTIFY"),
     f"{P}.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (_entry(0, args={"a": 1}), f"{P}.syscalls[0].args: must be an array"),
    (_entry(1, args=[{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, 7]),
     f"{P}.syscalls[1].args[1]: must be an object"),
    (_entry(1, args=[{"index": 0, "value": 0, "op": "EQ"}]),
     f"{P}.syscalls[1].args[0].op: unknown operator EQ"),
    (_entry(1, args=[{"value": 0, "op": "SCMP_CMP_EQ"}]), f"{P}.syscalls[1].args[0].index: required"),
    (_entry(1, args=[{"index": 0, "op": "SCMP_CMP_EQ"}]), f"{P}.syscalls[1].args[0].value: required"),
    (_entry(1, args=[{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]),
     f"{P}.syscalls[1].args[0].index: must be an integer between 0 and 5, got 6"),
    (_entry(1, args=[{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]),
     f"{P}.syscalls[1].args[0].value: must be an integer between 0 and 18446744073709551615, got -1"),
    (_entry(1, args=[{"index": 0, "value": 0, "valueTwo": 1.0, "op": "SCMP_CMP_EQ"}]),
     f"{P}.syscalls[1].args[0].valueTwo: must be an integer between 0 and 18446744073709551615, got 1.0"),
    (_with(syscalls=BASE["syscalls"] + [NOTIFY]), f"{P}.listenerPath: required when SCMP_ACT_NOTIFY is used"),
    # the first bad field in check order is the one named
    (_with(defaultAction=None, architectures=1, flags=1, listenerPath=1, syscalls=1),
     f"{P}.defaultAction: required"),
    (_with(architectures=1, flags=1, listenerPath=1, syscalls=1), f"{P}.architectures: must be an array"),
    (_with(flags=1, listenerPath=1, syscalls=1), f"{P}.flags: must be an array"),
    (_with(listenerPath=1, syscalls=1), f"{P}.listenerPath: must be a string"),
    (_with(syscalls=[{"names": [1], "action": "x", "args": 1}]),
     f"{P}.syscalls[0].names[0]: must be a non-empty string"),
    (_with(syscalls=[{"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1, "args": 1}]),
     f"{P}.syscalls[0].errnoRet: must be an integer between 0 and 65535, got -1"),
    (_with(syscalls=[NOTIFY, {"names": ["a"], "action": "x"}]), f"{P}.syscalls[1].action: unknown action x"),
]


@pytest.mark.parametrize("profile, message", CASES, ids=[m[len(P):] for _, m in CASES])
def test_error_names_the_first_bad_field(profile, message):
    with pytest.raises(Error) as e:
        seccomp._parse(profile)
    assert str(e.value) == message


def test_plan():
    plan = seccomp._parse(BASE)
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    assert plan == {
        "default": eperm,
        "default_name": BASE["defaultAction"],
        "arches": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "rules": [
            (f"{P}.syscalls[0]", ["read", "write"], 0x7FFF0000, [[]]),
            # the same argument twice: one rule per comparison (ORed)
            (f"{P}.syscalls[1]", ["personality"], 0x7FFF0000, [[(0, 4, 0, 0)], [(0, 4, 8, 0)]]),
            # distinct arguments: one rule with both comparisons (ANDed)
            (f"{P}.syscalls[2]", ["clone"], enosys, [[(0, 7, 2114060288, 0), (1, 1, 5, 0)]]),
        ],
        "notify": False,
    }
    plan = seccomp._parse(_with(listenerPath="/run/agent.sock", syscalls=[NOTIFY]))
    assert plan["notify"] is True
    assert plan["rules"] == [(f"{P}.syscalls[0]", ["mkdir"], 0x7FC00000, [[]])]
    assert seccomp._parse({"defaultAction": "SCMP_ACT_ALLOW"}) == {
        "default": 0x7FFF0000, "default_name": "SCMP_ACT_ALLOW", "arches": [], "flags": [], "rules": [],
        "notify": False}
