"""Signal names as runc accepts them: KILL, SIGKILL, 9 (and RTMIN+N)."""
import signal

from .errors import Error


def parse(text):
    s = text.strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.SIGRTMAX + 1:
            return n
        raise Error(f"unknown signal {text!r}")
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name[3:].partition("+" if "+" in name else "-")
        if off.isdigit():
            n = signal.SIGRTMIN + int(off) if base == "RTMIN" else signal.SIGRTMAX - int(off)
            if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                return n
        raise Error(f"unknown signal {text!r}")
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise Error(f"unknown signal {text!r}") from None
