"""The runtime <-> init protocol: its message kinds and the one channel that carries them.

The channel is one end of a SOCK_SEQPACKET socketpair (one send is one message, and the runtime's
end reads EOF once the init's end closes at execve). A message is `kind` or `kind:payload`; a
payload larger than one frame (the state JSON with megabytes of annotations) goes as
`kind*<length>` followed by raw frames. An `err:<text>` from the other side becomes an Error.

The runtime side of both is chain/parent.py; the other ends chain/intermediate.py, chain/init.py,
chain/execproc.py, and the idmap helper (runtime/idmap.py: IDMAP).

create/run (runtime -> init, and back):
  init    -> USERNS            slow path only: write the id maps now
  runtime -> MAPPED
  init    -> PID <n>           slow path only: the init's pid, from the intermediate process
  runtime -> GO <state json>   id maps written, cgroups joined, network devices moved
  init    -> SOURCES <i>,<j>   userns: O_PATH fds of the bind sources of mounts[i], [j]...;
                               reply OK <indexes opened> carrying the fds (SCM_RIGHTS)
  init    -> IDMAP <i>:<fd>    userns: idmap the detached tree fd of mounts[i]; reply OK
  init    -> HOOKS             mounts done: run prestart + createRuntime; reply OK
  init    -> READY             waiting for start
  runtime -> START             run only (create's `start` uses the exec FIFO)
  either  -> ERR <message>     a failure, then the sender exits or gives up

exec (runtime -> the new process, and back):
  process -> READY             namespaces joined, root and cwd taken, settings checked
  runtime -> GO                it is in the container's cgroups
  process -> ERR <message>     a failure; else EOF at its execve
"""
import os

from .errors import Error

USERNS = b"userns"
MAPPED = b"mapped"
PID = b"pid"
GO = b"go"
IDMAP = b"idmap"
SOURCES = b"sources"
HOOKS = b"hooks"
OK = b"ok"
READY = b"ready"
START = b"start"
ERR = b"err"

FRAME = 1 << 15  # well under the socket's buffer: a frame never waits for more room than one


class Channel:
    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    def send(self, kind, payload=b""):
        if isinstance(payload, str):
            payload = payload.encode()
        if len(payload) + len(kind) < FRAME:
            self.sock.send(kind + b":" + payload if payload else kind)
            return
        self.sock.send(kind + b"*%d" % len(payload))
        view = memoryview(payload)
        for i in range(0, len(payload), FRAME):
            self.sock.send(view[i:i + FRAME])

    def recv(self):
        """(kind, payload); (b"", b"") at EOF."""
        msg = self.sock.recv(FRAME + 64)
        if not msg:
            return b"", b""
        for i, ch in enumerate(msg):
            if ch == 0x3A:  # ':'
                return msg[:i], msg[i + 1:]
            if ch == 0x2A:  # '*': a framed payload follows
                size, parts, got = int(msg[i + 1:]), [], 0
                while got < size:
                    part = self.sock.recv(FRAME)
                    if not part:
                        return b"", b""
                    parts.append(part)
                    got += len(part)
                return msg[:i], b"".join(parts)
        return msg, b""

    def expect(self, kind, eof=None):
        """The payload of the next message, which must be KIND; an ERR becomes an Error. At EOF,
        EOF() when given (the init exits: its runtime is gone), else an Error."""
        k, payload = self.recv()
        if k == kind:
            return payload
        if k == ERR:
            raise Error(payload.decode(errors="replace"))
        if not k:
            if eof is not None:
                eof()
            raise Error("sync: the other side exited")
        raise Error(f"sync: expected {kind.decode()}, got {k[:40]!r}")

    def error(self, text):
        """Report TEXT as ERR; never raises (the peer may be gone)."""
        try:
            self.send(ERR, text.encode(errors="replace")[:FRAME - 8])
        except OSError:
            pass

    def pending_error(self):
        """An ERR already waiting, without blocking (the init's own report when it failed first)."""
        try:
            self.sock.setblocking(False)
            k, payload = self.recv()
        except (OSError, ValueError):
            return None
        finally:
            try:
                self.sock.setblocking(True)
            except OSError:
                pass
        return payload.decode(errors="replace") if k == ERR else None

    def close(self):
        self.sock.close()


def unexpected(kind):
    """The Error for a message of the wrong kind at this point of the protocol."""
    return Error(f"sync: unexpected message {kind[:40]!r}")


def exit_now():
    os._exit(1)  # the runtime died: never run a half-made container
