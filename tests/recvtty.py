"""A small console-socket receiver for tests, in the spirit of runc's recvtty.

It listens on a unix stream socket; the runtime connects to it and sends one message whose data
is the pty's name and whose SCM_RIGHTS control message carries the pty master.

    with Receiver(path) as r:
        run(["pyrunc", "create", "--console-socket", path, ...])
        name, master = r.receive(timeout=5)

Run as a script (`python tests/recvtty.py PATH`) it prints the name it received and then copies
the pty's output to stdout until the pty closes.
"""
import array
import os
import select
import socket
import sys
import time


class Receiver:
    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.srv.bind(path)
        self.srv.listen(4)

    def receive(self, timeout=5.0):
        """Accept one connection; returns (name, master fd, raw data bytes)."""
        self.srv.settimeout(timeout)
        conn, _ = self.srv.accept()
        try:
            conn.settimeout(timeout)
            fds = array.array("i")
            data, anc, _flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            if not fds:
                raise RuntimeError(f"no fd received (data {data!r})")
            for extra in fds[1:]:
                os.close(extra)
            return data.decode(errors="replace"), fds[0], data
        finally:
            conn.close()

    def close(self):
        self.srv.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def read_until(fd, needle, timeout=5.0):
    """Read from a pty master until NEEDLE shows up (bytes); returns everything read."""
    out = b""
    end = time.monotonic() + timeout
    while needle not in out:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{needle!r} not seen; got {out!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            b = os.read(fd, 4096)
        except OSError:  # EIO: every slave end is closed
            break
        if not b:
            break
        out += b
    if needle not in out:
        raise EOFError(f"{needle!r} not seen before the pty closed; got {out!r}")
    return out


def read_all(fd, timeout=5.0):
    """Read from a pty master until every slave end is closed (EIO)."""
    out = b""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"pty still open; got {out!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            b = os.read(fd, 4096)
        except OSError:
            return out
        if not b:
            return out
        out += b


if __name__ == "__main__":
    with Receiver(sys.argv[1]) as rcv:
        name, master, _ = rcv.receive(timeout=60)
        print(f"name={name}", flush=True)
        sys.stdout.buffer.write(read_all(master, timeout=60))
