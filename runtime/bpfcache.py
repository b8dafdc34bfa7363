"""Compiled seccomp filters, kept by the runtime between containers.

Engines send the same profile for every container (Docker's and podman's defaults: 357 and 434
syscall names), and turning a profile into a BPF program through libseccomp costs 20-25 ms each
time (adding the rules, then generating the program): more than runc's whole `start`. The
program depends only on the profile and on the libseccomp and kernel that made it, so the runtime
process keeps it under the state root, by a hash of those, and the next container with that
profile loads it without libseccomp at all. (runc and crun compile every time.)

The cache is written and read by the runtime process only (never the container's init, which
may have pivoted into the container's files): ROOT/.seccomp:cache (a name no container id can
have: ':' is not allowed in ids, and list skips dot names), mode 0700, each entry a file named by
the key, written to a private name and renamed into place. An entry is used only when the
directory and the file are ours and private, the file is a regular one (no symlink followed), not
larger than a filter can be, and its digest matches: otherwise it counts as a miss and is
replaced, never trusted.
"""
import os

from .hotpath import json_dumps

NAME = ".seccomp:cache"
_MAGIC = b"pyrunc-bpf-1\n"
_MAX_PROG = 8 * 4096  # BPF_MAXINSNS instructions of 8 bytes
_DIGEST = 32
_MAX_ENTRIES = 64  # distinct profiles kept; past that the cache starts afresh (engines use a few)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def key(seccomp, *context):
    """The entry's name: sha256 of CONTEXT (what else made the program: libseccomp's version,
    the kernel) and the profile as the config has it."""
    import _sha256
    h = _sha256.sha256(repr(context).encode())
    h.update(b"\0")
    h.update(json_dumps(seccomp).encode())
    return h.hexdigest()


def _digest(name, prog):
    import _sha256
    return _sha256.sha256(name.encode() + b"\0" + prog).digest()


def _private(st, kind):
    return (st.st_mode & 0o170000) == kind and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _open_dir(root, create):
    path = os.path.join(root, NAME)
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    fd = os.open(path, _DIR)
    if not _private(os.fstat(fd), 0o040000):
        os.close(fd)
        raise PermissionError(f"{path}: not a private directory of ours")
    return fd


def get(root, name):
    """The cached program NAME under ROOT, or None."""
    try:
        dfd = _open_dir(root, create=False)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        if not _private(os.fstat(fd), 0o100000):
            return None
        data = os.read(fd, len(_MAGIC) + _DIGEST + _MAX_PROG + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head, digest, prog = data[:len(_MAGIC)], data[len(_MAGIC):len(_MAGIC) + _DIGEST], data[len(_MAGIC) + _DIGEST:]
    if head != _MAGIC or not prog or len(prog) > _MAX_PROG or len(prog) % 8 or digest != _digest(name, prog):
        return None
    return prog


def put(root, name, prog):
    """Keep PROG as NAME under ROOT; quietly nothing when that cannot be done (no ROOT yet: the
    first create there makes it after this; read-only; a directory that is not ours): the cache
    only saves time."""
    if not prog or len(prog) > _MAX_PROG:
        return
    try:
        dfd = _open_dir(root, create=True)
    except OSError:
        return
    tmp = f".{name}.{os.getpid()}"
    try:
        names = os.listdir(dfd)
        if len(names) >= _MAX_ENTRIES:
            for n in names:
                os.unlink(n, dir_fd=dfd)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dfd)
        try:
            os.write(fd, _MAGIC + _digest(name, prog) + prog)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)
