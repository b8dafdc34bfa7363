"""Terminals as runc makes them: the pty master over --console-socket (create, run -d, exec -d),
the pty inside the container's devpts as controlling terminal and stdio, /dev/console bound to it,
consoleSize; a foreground run/exec proxied through a real pty (raw mode, resizes, restored);
runc's errors. Every test runs against pyrunc and runc."""
import fcntl
import json
import os
import select
import struct
import subprocess
import termios
import time

import pytest

from conftest import base_config
from recvtty import Receiver, read_all, read_until


def tty_config(args=("sh",), size=None):
    cfg = base_config(list(args))
    cfg["process"]["terminal"] = True
    if size:
        cfg["process"]["consoleSize"] = size
    return cfg


def winsize(fd):
    return struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def wait_stopped(rt, cid, timeout=5):
    deadline = time.monotonic() + timeout
    while rt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.01)


def one_line_error(p):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "level=error" in lines[0] and "Traceback" not in p.stderr, p.stderr
    return lines[0]


# ------------------------------------------------------------------ console socket
def test_create_console_socket(anyrt, tmp_path):
    b = anyrt.bundle(tty_config(size={"height": 33, "width": 111}))
    cid = anyrt.new_id()
    with Receiver(str(tmp_path / "console.sock")) as r:
        anyrt("create", "--bundle", b, "--console-socket", r.path, cid, check=True)
        name, master, data = r.receive()
    try:
        assert data == b"/dev/ptmx"  # one message: the master's name + SCM_RIGHTS
        assert os.readlink(f"/proc/self/fd/{master}") == "/dev/pts/ptmx"  # the container's devpts
        assert winsize(master) == (33, 111)
        anyrt("start", cid, check=True)
        os.write(master, b"echo T=$(tty); echo S=$(cut -d' ' -f6,7 /proc/$$/stat); stty size; "
                         b"grep -c ' /dev/console ' /proc/self/mountinfo; "
                         b"test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo done; exit 3\n")
        out = read_all(master).decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)
    lines = out.splitlines()
    assert "T=/dev/pts/0" in lines
    assert "S=1 34816" in lines  # pid 1 leads its session; tty_nr = pts/0 (136, 0)
    assert "33 111" in lines
    assert "all-tty" in lines and "done" in lines
    i = lines.index("done") - 2
    assert lines[i] == "1", out  # /dev/console is a bind of the slave
    wait_stopped(anyrt, cid)


def test_run_detached_console_socket(anyrt, tmp_path):
    b = anyrt.bundle(tty_config(["sh", "-c", "read x; echo got:$x"]))
    cid = anyrt.new_id()
    with Receiver(str(tmp_path / "c.sock")) as r:
        anyrt("run", "-d", "--bundle", b, "--console-socket", r.path, cid, check=True)
        _, master, _ = r.receive()
    try:
        os.write(master, b"hello\n")
        out = read_all(master)
    finally:
        os.close(master)
    assert b"got:hello" in out
    wait_stopped(anyrt, cid)


def test_exec_console_socket(anyrt, tmp_path):
    b = anyrt.bundle(args=["sleep", "1000"])
    cid = anyrt.new_id()
    anyrt("run", "-d", "--bundle", b, cid, check=True)
    init = anyrt.state(cid)["pid"]
    pj = tmp_path / "p.json"
    pj.write_text(json.dumps({"terminal": True, "args": ["sh"], "cwd": "/", "env": ["PATH=/bin"],
                              "consoleSize": {"height": 20, "width": 70}, "user": {"uid": 0, "gid": 0}}))
    pf = tmp_path / "e.pid"
    with Receiver(str(tmp_path / "c.sock")) as r:
        anyrt("exec", "-p", str(pj), "--detach", "--tty", "--console-socket", r.path,
              "--pid-file", str(pf), cid, check=True)
        _, master, data = r.receive()
    try:
        assert data == b"/dev/ptmx"
        assert winsize(master) == (20, 70)
        epid = int(pf.read_text())
        assert os.readlink(f"/proc/{epid}/ns/mnt") == os.readlink(f"/proc/{init}/ns/mnt")
        os.write(master, b"echo T=$(tty); echo S=$(cut -d' ' -f6,7 /proc/$$/stat | tr ' ' ,); "
                         b"echo P=$$; exit\n")
        out = read_all(master).decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)
    lines = out.splitlines()
    tline = [x for x in lines if x.startswith("T=/dev/pts/")]
    assert tline, out
    n = int(tline[0].rsplit("/", 1)[1])
    pline = [x for x in lines if x.startswith("P=")][0]
    assert f"S={pline[2:]},{136 << 8 | n}" in lines  # session leader with the pty as ctty


# ------------------------------------------------------------------ foreground through a real pty
class Pty:
    """Run a command with a fresh pty as its controlling terminal and stdio."""

    def __init__(self, cmd, rows=24, cols=80):
        self.master, self.slave = os.openpty()
        set_winsize(self.master, rows, cols)
        self.saved = termios.tcgetattr(self.slave)

        def ctty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True, preexec_fn=ctty)
        self.out = b""

    def expect(self, needle, timeout=10):
        self.out += read_until(self.master, needle, timeout)
        return self.out

    def send(self, data):
        os.write(self.master, data)

    def drain(self):
        while select.select([self.master], [], [], 0)[0]:
            try:
                b = os.read(self.master, 4096)
            except OSError:
                break
            if not b:
                break
            self.out += b

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)
        os.close(self.slave)


def _interactive(p):
    """Typed input answered, resizes passed on, exit code, terminal restored."""
    p.expect(b"# ")
    p.send(b"echo $((6*7))x\n")
    p.expect(b"42x")
    p.send(b"stty size\n")
    p.expect(b"24 80")
    assert termios.tcgetattr(p.slave)[3] & termios.ICANON == 0  # raw while the container runs
    set_winsize(p.master, 30, 100)
    deadline = time.monotonic() + 10
    while b"30 100" not in p.out:  # SIGWINCH is asynchronous: ask until the new size shows
        assert time.monotonic() < deadline, p.out
        p.send(b"stty size\n")
        try:
            p.expect(b"30 100", timeout=0.5)
        except TimeoutError:
            pass
    p.send(b"exit 3\n")
    assert p.proc.wait(10) == 3
    p.drain()
    assert termios.tcgetattr(p.slave) == p.saved  # the terminal is restored


def test_interactive_run(anyrt):
    b = anyrt.bundle(tty_config())
    cid = anyrt.new_id()
    p = Pty([anyrt.binary, "--root", anyrt.root, "run", "--bundle", b, cid])
    try:
        _interactive(p)
    finally:
        p.close()


def test_interactive_exec(anyrt):
    b = anyrt.bundle(args=["sleep", "1000"])
    cid = anyrt.new_id()
    anyrt("run", "-d", "--bundle", b, cid, check=True)
    p = Pty([anyrt.binary, "--root", anyrt.root, "exec", "-t", cid, "sh"])
    try:
        _interactive(p)
    finally:
        p.close()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("case", ["tty-no-socket", "socket-no-tty", "socket-missing", "socket-refuses",
                                  "run-socket-foreground", "run-tty-no-terminal"])
def test_terminal_errors(anyrt, tmp_path, case):
    sock = str(tmp_path / "c.sock")
    cfg = tty_config() if case not in ("socket-no-tty",) else base_config(["sh"])
    b = anyrt.bundle(cfg)
    cid = anyrt.new_id()
    verb = ["create"]
    extra = []
    if case == "socket-missing":
        extra = ["--console-socket", str(tmp_path / "missing.sock")]
    elif case == "socket-refuses":
        (tmp_path / "file").write_text("")
        extra = ["--console-socket", str(tmp_path / "file")]
    elif case == "socket-no-tty":
        extra = ["--console-socket", sock]
    elif case == "run-socket-foreground":
        verb, extra = ["run"], ["--console-socket", sock]
    elif case == "run-tty-no-terminal":
        verb = ["run"]
    rcv = Receiver(sock) if case in ("socket-no-tty", "run-socket-foreground") else None
    try:
        p = anyrt(*verb, "--bundle", b, *extra, cid, stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if rcv:
            rcv.close()
    line = one_line_error(p)
    runc = anyrt.name == "runc"  # pyrunc names the cause (tests/test_parity_cli.py)
    want = {
        "tty-no-socket": "cannot allocate tty if runc will detach without setting console socket" if runc
        else "process.terminal is true (exec: --tty) but no --console-socket was given",
        "socket-no-tty": "cannot use console socket if runc will not detach or allocate tty" if runc
        else "--console-socket was given but process.terminal is false",
        "run-socket-foreground": "cannot use console socket if runc will not detach or allocate tty" if runc
        else "--console-socket was given but pyrunc does not detach",
        "socket-missing": f"dial unix {tmp_path}/missing.sock: connect: no such file or directory",
        "socket-refuses": f"dial unix {tmp_path}/file: connect: connection refused",
        "run-tty-no-terminal": "open /dev/tty: no such device or address",
    }[case]
    assert want in line, line
    assert not os.path.exists(os.path.join(anyrt.root, cid))  # nothing left behind


def test_init_leads_its_own_session_without_terminal(anyrt):
    """runc's init is a session (and process group) leader even without a terminal."""
    p = anyrt.run(args=["sh", "-c", "cut -d' ' -f5,6,7 /proc/1/stat"], stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1", "1", "0"]  # pgrp 1, session 1, no controlling tty
