"""The program a container process runs: found and opened inside the container's root, then
executed by descriptor, never by path (the CVE-2019-5736 family).

Until execve a pyrunc process is the host's Python interpreter, and execve(2) resolves its path
at the moment of the call, as that process. `/proc/self/exe` — or a symlink to it, `/proc/PID/exe`,
`/proc/self/fd/N`, `/dev/fd/N`, a `#!/proc/self/exe` line, an ELF whose program interpreter is such
a link — then names the interpreter itself: the host's Python would run inside the container,
dumpable after execve, and a container process could reopen it for writing through
/proc/PID/exe once it exits. So, in the current root (the container's: we are past pivot_root or
chroot):
  - every path is opened with openat2(RESOLVE_NO_MAGICLINKS, and RESOLVE_IN_ROOT for absolute
    ones) and must be a regular file with an execute bit;
  - a `#!` line is read and followed here, as binfmt_script would, with its interpreter opened
    the same way (the kernel would open it by path, as us);
  - an ELF's program interpreter (PT_INTERP) is opened the same way first, so that one naming a
    magic link is refused (the kernel opens it by path too, before the new image replaces us);
  - the file is run with execveat(fd, "", AT_EMPTY_PATH): nothing is resolved again. The fd is
    O_CLOEXEC, and that matters: a container process may rewrite the file between our check and
    execve, but the kernel refuses (ENOENT) to run a `#!` script from a close-on-exec descriptor,
    so a `#!/proc/self/exe` written in meanwhile cannot make the kernel open a path as us.
The kernel (6.14 and later) names the process after the file run (`busybox` for a /bin/sleep
symlink to it; runc, which execs the path, gives `sleep`); older kernels after the descriptor.
Everything here runs between fork and execve: no imports, bounded reads, no blocking opens.
"""
import errno
import os
import stat

from . import linux as L
from .errors import Error, why

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_NESTING = 5  # nested #! interpreters the kernel follows
_BUF = 256  # BINPRM_BUF_SIZE: what the kernel reads of a #! line
_O_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # never blocks, even on a FIFO


class Program:
    """What execve will run: the open file, and argv as the kernel would have built it."""
    __slots__ = ("fd", "argv", "path")

    def __init__(self, fd, argv, path):
        self.fd, self.argv, self.path = fd, argv, path


def open_in_root(path, flags):
    """Open PATH in the current root without magic links: an absolute path resolves as if the
    root were / (RESOLVE_IN_ROOT), a relative one from the cwd, as execve would."""
    if path.startswith("/"):
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return L.openat2(root, path.lstrip("/") or ".", flags,
                             0, L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS)
        finally:
            os.close(root)
    return L.openat2(-100, path, flags, 0, L.RESOLVE_NO_MAGICLINKS)  # AT_FDCWD: as execve would


def _executable(st):
    if os.geteuid() == 0:
        return bool(st.st_mode & 0o111)
    if st.st_uid == os.geteuid():
        return bool(st.st_mode & 0o100)
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def open_exec(path):
    """(fd, readable) of the regular, executable file PATH names in the current root; OSError
    (ELOOP for a magic link on the way) otherwise."""
    pfd = open_in_root(path, os.O_PATH | os.O_CLOEXEC)
    try:
        st = os.fstat(pfd)
        # a file on a noexec mount is refused as execve refuses it (path_noexec): a #! script
        # there is followed by us, not the kernel, and would otherwise run
        if not stat.S_ISREG(st.st_mode) or not _executable(st) or os.fstatvfs(pfd).f_flag & os.ST_NOEXEC:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), path)
        try:
            # readable: for its #! line or ELF header. Opened again by path (an O_PATH fd cannot
            # be read, and reopening it would need /proc): it must be the same file.
            fd = open_in_root(path, _O_READ)
        except PermissionError:
            fd, pfd = pfd, -1  # execute-only for us: run as is, the kernel reads it
            return fd, False
        st2 = os.fstat(fd)
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise OSError(errno.EAGAIN, "changed while it was opened", path)
        return fd, True
    finally:
        if pfd >= 0:
            os.close(pfd)


def _shebang(head):
    """(interpreter, optional argument) of a #! line, as fs/binfmt_script.c splits it; None if
    there is no interpreter (ENOEXEC)."""
    line = head[2:]
    nl = line.find(b"\n")
    if nl >= 0:
        line = line[:nl]
    elif len(head) >= _BUF:
        # no newline in the buffer: the name must end inside it, and then there is no argument
        line = line.lstrip(b" \t")
        ends = [i for i in (line.find(b" "), line.find(b"\t"), line.find(b"\0")) if i >= 0]
        if not ends:
            return None
        line = line[:min(ends)]
    line = line.strip(b" \t")
    i = 0
    while i < len(line) and line[i:i + 1] not in (b" ", b"\t", b"\0"):
        i += 1
    name, rest = line[:i], line[i:]
    if not name:
        return None
    arg = None
    if rest and rest[:1] != b"\0":
        arg = rest.lstrip(b" \t").split(b"\0")[0] or None
    return os.fsdecode(name), (os.fsdecode(arg) if arg is not None else None)


def _elf_interp(fd, head):
    """PT_INTERP of the ELF file FD (its first bytes HEAD), or None."""
    if len(head) < 64 or head[4] not in (1, 2):
        return None
    bo = "little" if head[5] == 1 else "big"
    n = lambda a, b: int.from_bytes(head[a:b], bo)  # noqa: E731
    if head[4] == 2:
        phoff, entsize, num, min_size = n(32, 40), n(54, 56), n(56, 58), 56
    else:
        phoff, entsize, num, min_size = n(28, 32), n(42, 44), n(44, 46), 32
    if not 0 < num <= 256 or not min_size <= entsize <= 512:
        return None  # the kernel refuses it
    ph = os.pread(fd, num * entsize, phoff)
    for i in range(0, len(ph) - entsize + 1, entsize):
        e = ph[i:i + entsize]
        if int.from_bytes(e[0:4], bo) != 3:  # PT_INTERP
            continue
        if head[4] == 2:
            off, size = int.from_bytes(e[8:16], bo), int.from_bytes(e[32:40], bo)
        else:
            off, size = int.from_bytes(e[4:8], bo), int.from_bytes(e[16:20], bo)
        if not 2 <= size <= 4096:
            return None
        return os.fsdecode(os.pread(fd, size, off).split(b"\0")[0]) or None
    return None


def _refused(what, e):
    if e.errno == errno.ELOOP:
        return Error(f"{what}: not executed: it resolves through a magic link (such as "
                     "/proc/self/exe or /proc/PID/fd/N) or a symlink loop")
    return Error(f"{what}: {why(e)}")


def _follow(fd, readable, path, argv, what):
    """The Program for FD (opened from PATH): #! lines followed, the ELF interpreter checked."""
    for _ in range(_MAX_NESTING):
        if not readable:
            return Program(fd, argv, path)
        head = os.pread(fd, _BUF, 0)
        if head[:2] == b"#!":
            parsed = _shebang(head)
            os.close(fd)
            if parsed is None:
                raise Error(f"{what}: exec format error")
            interp, arg = parsed
            argv = [interp] + ([arg] if arg is not None else []) + [path] + list(argv[1:])
            path = interp
            try:
                fd, readable = open_exec(interp)
            except OSError as e:
                raise _refused(f"{what}: interpreter {interp!r}", e) from None
            continue
        if head[:4] == b"\x7fELF":
            interp = _elf_interp(fd, head)
            if interp is not None:
                try:
                    os.close(open_in_root(interp, os.O_PATH | os.O_CLOEXEC))
                except OSError as e:
                    if e.errno == errno.ELOOP:
                        os.close(fd)
                        raise _refused(f"{what}: ELF interpreter {interp!r}", e) from None
                    # a missing one: execve says so, as it would for runc
        return Program(fd, argv, path)
    os.close(fd)
    raise Error(f"{what}: too many levels of #! interpreters")


def resolve_path(path, argv, what):
    """The Program for the file PATH (no PATH lookup) run with ARGV: for hooks whose path
    resolves in the container (startContainer)."""
    try:
        fd, readable = open_exec(path)
    except OSError as e:
        raise _refused(f"{what}: {path!r}", e) from None
    return _follow(fd, readable, path, list(argv), f"{what}: {path!r}")


def resolve(argv, env, what="exec"):
    """The Program for ARGV (a path, or a name looked up in env's PATH as execvp does); raises
    Error with runc's wording when there is none."""
    name = argv[0]
    if "/" in name:
        try:
            fd, readable = open_exec(name)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                raise Error(f"{what}: {name!r}: no such file or directory") from None
            if e.errno == errno.EACCES:
                raise Error(f"{what}: {name!r}: permission denied") from None
            raise _refused(f"{what}: {name!r}", e) from None
        return _follow(fd, readable, name, list(argv), f"{what}: {name!r}")
    for d in env.get("PATH", DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", name)
        try:
            fd, readable = open_exec(cand)
        except OSError:
            continue  # missing, not executable, or through a magic link: the next one
        return _follow(fd, readable, cand, list(argv), f"{what}: {name!r}")
    raise Error(f'{what}: "{name}": executable file not found in $PATH')


def execute(prog, env):
    """execveat the Program with ENV (a dict); returns only by raising Error."""
    envp = [f"{k}={v}" for k, v in env.items()]
    try:
        L.execveat(prog.fd, prog.argv, envp)
    except ValueError as e:
        raise Error(f"exec {prog.argv[0]!r}: {e}") from None
    except OSError as e:
        err = e
    if err.errno in (errno.ENOSYS, errno.EPERM):
        # a seccomp profile that allows execve but not execveat (runc execs by path): execve our
        # own descriptor's /proc/self/fd link, which names the file we checked and nothing else
        # (the container's /proc is a procfs we mounted, with nothing mounted inside it; without
        # one there is no magic link to reach at all). Nothing else may run here: the filter is in.
        try:
            os.execve(f"/proc/self/fd/{prog.fd}", prog.argv, env)
        except OSError as e3:
            err = e3
    raise Error(f"exec {prog.argv[0]}: {why(err)}")


def chdir_in_root(cwd):
    """chdir to a process cwd resolved inside the current root: neither '..' nor a magic link such
    as /proc/self/fd/N of a descriptor leaked from the host can lead outside (CVE-2024-21626)."""
    fd = open_in_root("/" + cwd.lstrip("/"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)


PASSWD_MAX = 4 << 20  # read of the container's /etc/passwd, at most


def home_dir(uid):
    """HOME of UID from the container's /etc/passwd, else "/" (what runc does). The file is the
    container's: opened in the root without magic links, never blocking (a FIFO there), a
    regular file only, and read up to a bound (/dev/zero there). Parsed as runc parses it: the
    first entry with that uid wins (a uid written "+7" or "007" is 7), blank lines and the
    spaces around a line are skipped, and the entry's home field is taken even when empty or
    missing (HOME is then empty). Unlike runc, a comment line ("#...") or an entry whose uid is
    not a number is no entry: runc reads those as uid 0 (root's HOME would then be empty)."""
    try:
        fd = open_in_root("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        data = os.pread(fd, PASSWD_MAX, 0)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    for line in data.split(b"\n"):
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        parts = line.decode(errors="surrogateescape").split(":")
        if len(parts) >= 3 and _passwd_uid(parts[2]) == uid:
            return parts[5] if len(parts) > 5 else ""
    return "/"


def _passwd_uid(field):
    """The uid a passwd field holds (a decimal number, with an optional sign), or None."""
    digits = field[1:] if field[:1] in ("+", "-") else field
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    n = int(digits)
    return -n if field[:1] == "-" else n
