"""Terminals as runc makes them: a pty opened inside the container, its master handed out.

With process.terminal the container's process gets a new pty from the container's own devpts
(/dev/ptmx after pivot_root): the slave becomes its controlling terminal and stdio, /dev/console
is bound to it (init only), and the master goes out over the console socket as ONE message whose
data is the master's name ("/dev/ptmx") and whose SCM_RIGHTS carries the fd -- what conmon,
containerd's shim and runc's recvtty expect. A foreground run/exec without a console socket gets
the master over an internal socketpair and proxies it to pyrunc's own stdio in raw mode.
"""
import array
import fcntl
import os
import socket
import struct
import termios

from .errors import Error, why

PTY_NAME = b"/dev/ptmx"  # what runc sends: the name of the master's file
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441  # the slave as an fd, from the master: no path to swap (CVE-2025-52565)


def check_flags(terminal, console_socket, detach):
    """runc's rules for --console-socket / process.terminal / detaching, said with their cause."""
    if detach and terminal and not console_socket:
        raise Error("process.terminal is true (exec: --tty) but no --console-socket was given: a "
                    "container pyrunc detaches from needs one to receive its pty")
    if not terminal and console_socket:
        raise Error("--console-socket was given but process.terminal is false (exec: no --tty): "
                    "pyrunc sends a pty only for a terminal")
    if not detach and console_socket:
        raise Error("--console-socket was given but pyrunc does not detach (run or exec without -d): "
                    "the pty stays with pyrunc")


def connect(path):
    """Connect to the console socket in the runtime, so a bad path fails before any process."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise Error(f"dial unix {path}: connect: {why(e).lower()}") from None
    return s


class Console:
    """The runtime's side of a terminal: `child` is the socket end the container's process sends
    the master on; for a foreground proxy, `parent` is where the runtime receives it."""

    def __init__(self, console_socket=None):
        self.master = -1
        if console_socket:
            self.child = connect(console_socket)
            self.parent = None
        else:
            self.parent, self.child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            # runc fails here when it has no terminal to proxy to (message kept as runc's)
            try:
                os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
            except OSError as e:
                self.close()
                raise Error(f"open /dev/tty: {why(e).lower()}") from None

    def close_child(self):
        if self.child is not None:
            self.child.close()
            self.child = None

    def receive(self, timeout=10.0):
        """Foreground: take the master the process sent over the internal socketpair."""
        self.parent.settimeout(timeout)
        try:
            self.master = recv_fd(self.parent)
        except (OSError, ValueError) as e:
            raise Error(f"receiving the pty master: {why(e)}") from None

    def close(self):
        self.close_child()
        if getattr(self, "parent", None) is not None:
            self.parent.close()
            self.parent = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def recv_fd(sock):
    fds = array.array("i")
    data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % 4])
    if not fds:
        raise ValueError(f"no fd in the message {data[:40]!r}")
    for fd in fds[1:]:
        os.close(fd)
    os.set_inheritable(fds[0], False)
    return fds[0]


# ---------------------------------------------------------------- in the container's process
def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def setup(sock, size=None, uid=None, mount_console=False):
    """In the process, inside the container's root: new pty, send its master, take the slave as
    controlling terminal and stdio. Closes SOCK."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if not sock.getpeername():
            # the runtime's own socketpair (unnamed), not a --console-socket (a path): a foreground
            # run or exec, whose pty pyrunc proxies to its stdout. Cleared here, before the
            # program can write, not once the runtime has the master (exec gets it after execve)
            clear_onlcr(slave)
        if size and size.get("height") and size.get("width"):
            set_winsize(master, size["height"], size["width"])
        if mount_console:
            _mount_console(slave)
        try:
            sock.sendmsg([PTY_NAME], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]).tobytes())])
        except OSError as e:
            raise Error(f"sending the pty master over the console socket: {why(e)}") from None
    finally:
        os.close(master)
        sock.close()
    # a session of our own, then the slave as its controlling terminal on 0, 1, 2
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    for i in (0, 1, 2):
        os.dup2(slave, i, inheritable=True)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if uid:
        # the user must own its terminal (what runc's fixStdioPermissions does)
        os.fchown(0, uid, -1)


def clear_onlcr(fd):
    """No "\n" -> "\r\n" on the pty's output: what the container writes reaches pyrunc's stdout
    (a pipe, a file) byte for byte. runc does this to the pty it proxies in the foreground; a pty
    sent over --console-socket keeps the kernel's default (ONLCR): its receiver decides, as with
    runc."""
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR  # oflag
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _mount_console(slave):
    """Bind the pty slave on /dev/console, as runc does for the init. Source and target are fds:
    an image whose /dev/pts/N or /dev/console is a symlink (to a /proc/sys file, say) gets no
    bind of, or onto, anything else (the CVE-2025-52565 class)."""
    import stat
    from . import linux as L
    res = L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS
    rootfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    old = os.umask(0)
    try:
        try:
            tfd = L.openat2(rootfd, "dev/console", os.O_PATH | os.O_CLOEXEC, 0, res)
        except FileNotFoundError:
            dfd = L.openat2(rootfd, "dev", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0, res)
            try:
                os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_RDONLY | os.O_CLOEXEC,
                                 0o666, dir_fd=dfd))
            finally:
                os.close(dfd)
            tfd = L.openat2(rootfd, "dev/console", os.O_PATH | os.O_CLOEXEC, 0, res)
    except OSError as e:
        raise Error(f"creating /dev/console: {why(e)}") from None
    finally:
        os.umask(old)
        os.close(rootfd)
    try:
        mode = os.fstat(tfd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise Error("/dev/console: not a file or character device")
        try:
            # fd to fd (a clone of the pty's mount attached onto the checked target): no path,
            # no /proc/self/fd magic link of the container's procfs is looked up
            tree = L.open_tree(slave, "", L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | L.AT_EMPTY_PATH)
            try:
                L.move_mount(tree, "", tfd, "", L.MOVE_MOUNT_F_EMPTY_PATH | L.MOVE_MOUNT_T_EMPTY_PATH)
            finally:
                os.close(tree)
        except OSError as e:
            raise Error(f"process.terminal: bind mount of the pty to /dev/console: {why(e)}") from None
    finally:
        os.close(tfd)


# ---------------------------------------------------------------- the runtime's foreground proxy
def proxy(master, pid, on_signal=None):
    """Copy stdin -> master and master -> stdout until PID exits; raw mode on our terminal while
    it runs, window size changes passed on. Returns PID's wait status."""
    import signal

    stdin = 0
    saved = _raw_mode(stdin)
    rpipe, wpipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wpipe)
    pending = []
    old = _catch_signals(pending)
    status = None
    try:
        status = _pump(master, pid, rpipe, pending)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        _restore_signals(old_wakeup, old)
        os.close(rpipe)
        os.close(wpipe)
    if status is None:
        status = os.waitpid(pid, 0)[1]
    return status


def _raw_mode(fd):
    """Put our terminal FD in raw mode; returns its attributes to restore (None: not a tty)."""
    import tty as ttymod

    if not os.isatty(fd):
        return None
    saved = termios.tcgetattr(fd)
    ttymod.setraw(fd, termios.TCSANOW)
    return saved


def _catch_signals(pending):
    """Catch every signal we may (not the real-time ones) into PENDING, for the loop to pass on.
    Returns the handlers replaced."""
    import signal

    def handler(signum, _frame):
        pending.append(signum)

    skip = {signal.SIGKILL, signal.SIGSTOP}
    old = {}
    for s in signal.valid_signals():
        if s in skip or s >= signal.SIGRTMIN:
            continue
        try:
            old[s] = signal.signal(s, handler)
        except (OSError, ValueError):
            pass
    return old


def _restore_signals(old_wakeup, old):
    import signal

    signal.set_wakeup_fd(old_wakeup)
    for s, h in old.items():
        try:
            signal.signal(s, h)
        except (OSError, ValueError, TypeError):
            pass


def _resize(stdin, master):
    try:
        ws = fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


def _pump(master, pid, rpipe, pending):
    """The loop: until PID exited and the master is drained. Returns PID's wait status."""
    stdin, stdout = 0, 1
    _resize(stdin, master)
    poll, stdin_open = _poller(master, rpipe, stdin)
    # a pending SIGCHLD from before the handler was set would be lost: check once
    status = _reap(pid)
    master_open = True
    while True:
        events = poll.poll(-1 if status is None else 0)
        if not events and status is not None:
            break  # exited and everything it wrote is out
        # signals first: a resize must reach the pty before the input typed after it
        _pass_signals(pending, master, pid, status)
        for fd, ev in events:
            if fd == rpipe:
                try:
                    os.read(rpipe, 512)
                except BlockingIOError:
                    pass
            elif fd == master:
                data = _read(master)  # b"" on EIO too: no slave end left open
                if not data:
                    poll.unregister(master)
                    master_open = False
                    continue
                _write_all(stdout, data)
            elif fd == stdin and stdin_open:
                data = _read(stdin)
                if not data:
                    poll.unregister(stdin)
                    stdin_open = False
                    continue
                try:
                    _write_all(master, data)
                except OSError:
                    pass
        if status is None:
            status = _reap(pid)
        if status is not None and not master_open:
            break
    return status


def _poller(master, rpipe, stdin):
    """A poll on the master, the signal wake-up pipe and, if it can be polled, our stdin.
    Returns it and whether stdin is in it."""
    import select

    poll = select.poll()
    poll.register(master, select.POLLIN)
    poll.register(rpipe, select.POLLIN)
    stdin_open = True
    try:
        poll.register(stdin, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    return poll, stdin_open


def _pass_signals(pending, master, pid, status):
    """The signals caught since the last round: a window size change goes to the pty, the others
    to PID while it runs (SIGCHLD is the proxy's own)."""
    import signal

    while pending:
        s = pending.pop(0)
        if s == signal.SIGWINCH:
            _resize(0, master)
        elif s != signal.SIGCHLD and status is None:
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                pass


def _read(fd):
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _reap(pid):
    try:
        p, st = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 255 << 8
    return st if p else None


def _write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]
