"""Signal names as runc accepts them: KILL, SIGKILL, 9, 0 (and RTMIN+N, RTMAX-N).

Built on _signal, not signal (hot path: see runtime/hotpath.py).
"""
from .errors import Error
from .hotpath import sig as _signal

_BY_NAME = {k: v for k, v in vars(_signal).items()
            if k.startswith("SIG") and not k.startswith(("SIG_", "SIGRT")) and isinstance(v, int)}
RTMIN = _signal.SIGRTMIN
RTMAX = _signal.SIGRTMAX


def parse(text):
    s = text.strip()
    if s.isdigit():
        n = int(s)
        if 0 <= n <= RTMAX:  # 0: no signal, a check that the process is there (kill(2))
            return n
        raise Error(f"unknown signal {text!r}")
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in ("SIGRTMIN", "SIGRTMAX"):
        return RTMIN if name == "SIGRTMIN" else RTMAX
    if name.startswith(("SIGRTMIN+", "SIGRTMAX-")):
        off = name[9:]
        if off.isdigit():
            n = RTMIN + int(off) if name.startswith("SIGRTMIN") else RTMAX - int(off)
            if RTMIN <= n <= RTMAX:
                return n
        raise Error(f"unknown signal {text!r}")
    n = _BY_NAME.get(name)
    if n is None:
        raise Error(f"unknown signal {text!r}")
    return n


def forward_to(pid):
    """Foreground run/exec: every catchable signal we get goes on to PID."""
    import posix

    def fwd(signum, _frame):
        try:
            posix.kill(pid, signum)
        except ProcessLookupError:
            pass
    skip = (_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD)
    for s in _signal.valid_signals():
        if s not in skip and s < RTMIN:
            try:
                _signal.signal(s, fwd)
            except (OSError, ValueError):
                pass
    return fwd
