"""Launching a runtime binary and timing it.

Each call spawns the binary directly (posix_spawn, no shell), waits for it with
a pidfd (so a timeout needs no polling) and reaps it with os.wait4 to get its
rusage: ru_maxrss is the peak RSS of the runtime process (and of any helper it
reaped itself).  Output goes to anonymous temp files, not pipes: a detached
container inherits the runtime's stdio and would keep a pipe open forever.
"""

from __future__ import annotations

import os
import select
import signal
import tempfile
import time
from dataclasses import dataclass, field

DEVNULL = "/dev/null"


@dataclass
class Result:
    argv: list
    rc: int | None = None          # exit code, or -signal; None if not run / timed out
    ns: int = 0                     # wall time from spawn to reap
    maxrss_kb: int = 0
    out: str = ""
    err: str = ""
    timed_out: bool = False
    spawn_error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out and self.spawn_error is None

    @property
    def ms(self) -> float:
        return self.ns / 1e6

    def describe(self) -> str:
        """One line saying why it failed."""
        if self.spawn_error:
            return f"spawn failed: {self.spawn_error}"
        if self.timed_out:
            return f"timed out after {self.ms:.0f} ms"
        msg = (self.err.strip() or self.out.strip()).splitlines()
        tail = msg[-1] if msg else ""
        return f"exit {self.rc}: {tail[:200]}"


def _read(f) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")


def run(argv: list, timeout: float = 30.0, env: dict | None = None,
        rss_probe: "RssProbe | None" = None) -> Result:
    """Run argv[0] (an absolute path) with argv, stdin=/dev/null.
    With rss_probe, run it under the probe instead (see RssProbe): the
    peak RSS is then exact, the time is not comparable."""
    res = Result(argv=list(argv))
    if rss_probe is not None:
        argv = rss_probe.prefix + list(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, DEVNULL, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ]
        t0 = time.perf_counter_ns()
        try:
            pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env,
                                 file_actions=actions)
        except OSError as e:
            res.spawn_error = f"{argv[0]}: {e.strerror or e}"
            return res
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        try:
            if pidfd is not None:
                p = select.poll()
                p.register(pidfd, select.POLLIN)
                if not p.poll(max(1, int(timeout * 1000))):
                    res.timed_out = True
                    # our direct child, still unreaped: the pid cannot be reused
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter_ns()
        finally:
            if pidfd is not None:
                os.close(pidfd)
        res.ns = t1 - t0
        res.rc = None if res.timed_out else os.waitstatus_to_exitcode(status)
        res.maxrss_kb = ru.ru_maxrss
        res.out = _read(out)
        res.err = _read(err)
    if rss_probe is not None:
        rss_probe.parse(res)
    return res


def own_hwm_kb() -> int:
    """This process's peak RSS: a child spawned from it reports at least
    this much as ru_maxrss (see RssProbe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssProbe:
    """Exact peak RSS of a runtime process.

    ru_maxrss of a child includes the peak RSS of the memory image it had
    before execve: a child forked/vforked from this Python harness reports at
    least the harness's own peak (~17 MiB), hiding anything smaller (crun,
    runc).  So the verb is also run under a tiny static parent, `busybox time`
    (or GNU time), which forks, execs the runtime and reports ru_maxrss from
    its own wait4 of that direct child.  busybox <= 1.36 reports the value
    multiplied by pagesize/1024; the factor is calibrated once against a
    VmHWM the child prints about itself.
    """

    def __init__(self, prefix: list, factor: float, tool: str):
        self.prefix = prefix
        self.factor = factor
        self.tool = tool

    @classmethod
    def find(cls, extra_busybox: list[str] = ()) -> "RssProbe | None":
        import shutil
        cands = []
        if os.path.exists("/usr/bin/time"):
            cands.append((["/usr/bin/time", "-f", "%M"], "GNU time"))
        for bb in [shutil.which("busybox"), *extra_busybox]:
            if bb and os.path.exists(bb):
                cands.append(([bb, "time", "-f", "%M"], f"{bb} time"))
        bb_sh = next((b for b in [shutil.which("busybox"), *extra_busybox] if b and os.path.exists(b)), None)
        if not bb_sh:
            return None
        for prefix, tool in cands:
            r = run(prefix + [bb_sh, "sh", "-c", "grep VmHWM /proc/$$/status"], timeout=10)
            try:
                hwm = int(r.out.split()[1])
                reported = int(r.err.strip().splitlines()[-1])
            except (ValueError, IndexError):
                continue
            if r.rc != 0 or hwm <= 0:
                continue
            ratio = reported / hwm
            factor = min((1.0, os.sysconf("SC_PAGE_SIZE") / 1024), key=lambda f: abs(f - ratio))
            if abs(ratio - factor) / factor < 0.5:
                return cls(prefix, factor, f"{tool} (x{factor:g} unit correction)" if factor != 1 else tool)
        return None

    def parse(self, res: Result) -> None:
        lines = res.err.rstrip("\n").splitlines()
        if lines and lines[-1].strip().isdigit():
            res.maxrss_kb = int(int(lines[-1].strip()) / self.factor)
            lines.pop()
            if lines and lines[-1].startswith("Command exited with non-zero status"):
                lines.pop()
            res.err = "\n".join(lines)
        else:
            res.maxrss_kb = 0


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to exit (pidfd poll)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(max(1, int(timeout * 1000))))
    finally:
        os.close(fd)


def vm_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
