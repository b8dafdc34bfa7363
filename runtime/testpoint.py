"""Test-only crash points: PYRUNC_TEST_CRASH_AT=<phase> makes pyrunc SIGKILL itself when it
reaches that phase, so tests can check that a runtime killed mid-operation leaves a state that
`state` reports truthfully and `delete --force` cleans up (tests/test_crash.py).

The environment is read once at import; with the variable unset, point() is a no-op.
"""
import posix  # not os (hot path: see runtime/hotpath.py)

_AT = posix.environ.get(b"PYRUNC_TEST_CRASH_AT")
_AT = None if _AT is None else _AT.decode(errors="surrogateescape")


def point(name):
    if _AT is not None and _AT == name:
        posix.kill(posix.getpid(), 9)  # SIGKILL
