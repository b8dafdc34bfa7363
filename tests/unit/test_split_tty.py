"""runtime.tty.proxy without a container: a process on a pty of its own, proxied to the stdio of a
separate python (the proxy installs signal handlers and changes fds 0 and 1, so never in pytest's
own process)."""
import contextlib
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# argv[1:]: the command to run on the pty. Prints the wait status, and whether our terminal's
# attributes came back, on stderr.
SCRIPT = r"""
import fcntl, os, sys, termios
from runtime import tty
before = termios.tcgetattr(0) if os.isatty(0) else None
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    for i in (0, 1, 2):
        os.dup2(slave, i)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(slave)
st = tty.proxy(master, pid)
restored = before is None or termios.tcgetattr(0) == before
sys.stderr.write(f"status={st} restored={restored}\n")
"""
TIMEOUT = 60


def _start(cmd, **kw):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *cmd], cwd=REPO, env=env, **kw)


def _read_until(fd, want, deadline, done=None):
    out = b""
    while not (done(out) if done else want in out):
        left = deadline - time.monotonic()
        assert left > 0, f"no {want!r} in {out!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the pty's other end is closed
                chunk = b""
            assert chunk, f"EOF before {want!r} in {out!r}"
            out += chunk
    return out


@contextlib.contextmanager
def _reaped(p):
    """P is killed and reaped on the way out, whatever the test did."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_copies_both_ways_and_returns_the_status():
    p = _start(["sh", "-c", "read x; echo got:$x; exit 3"],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"hello\n", timeout=TIMEOUT)
    assert p.returncode == 0, err
    assert b"got:hello" in out
    assert f"status={3 << 8} restored=True".encode() in err


def test_signals_are_passed_on():
    p = _start(["sh", "-c", "echo ready; exec sleep 60"],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with _reaped(p):
        # "ready" has come through the proxy loop: its handlers are in place
        _read_until(p.stdout.fileno(), b"ready", time.monotonic() + TIMEOUT)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, err
    assert f"status={int(signal.SIGTERM)} restored=True".encode() in err


def test_terminal_raw_while_proxying_then_restored_and_size_passed_on():
    outer, outer_slave = os.openpty()
    try:
        fcntl.ioctl(outer_slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))
        # the child may run before the proxy has copied the size: it waits for a size (the
        # proxy's first step), bounded by the test's deadline
        p = _start(["sh", "-c", 'while [ "$(stty size)" = "0 0" ]; do :; done; stty size; exit 0'],
                   stdin=outer_slave, stdout=outer_slave, stderr=subprocess.PIPE)
        os.close(outer_slave)
        outer_slave = -1
        with _reaped(p):
            # up to the end of the line of `stty size`
            out = _read_until(outer, b"33 77", time.monotonic() + TIMEOUT,
                              lambda o: b"33 77" in o and b"\n" in o.split(b"33 77", 1)[1])
            _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err
        assert b"status=0 restored=True" in err, (out, err)
        # raw mode on our side: the inner pty's "\r\n" went out as is, not as "\r\r\n"
        assert b"33 77\r\n" in out and b"\r\r\n" not in out, out
    finally:
        if outer_slave >= 0:
            os.close(outer_slave)
        os.close(outer)
