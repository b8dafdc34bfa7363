"""CVE-2024-21626 class: host file descriptors or a host working directory reaching the container.

The user program sees only stdio and the fds it was given (--preserve-fds), however many the
caller had open; process.cwd is resolved inside the rootfs, so /proc/self/fd/N of any descriptor
the runtime or its caller holds, or a run of '..', never lands on the host.
"""
import os
import subprocess

import pytest

from secutil import base_config

LIST_FDS = "cd /proc/self/fd && for f in *; do echo $f; done"


def _open_extra(tmp_path, n=4):
    fds = [os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY) for _ in range(n)]
    for fd in fds:
        os.set_inheritable(fd, True)
    return fds


@pytest.mark.parametrize("preserve", [0, 2])
def test_only_given_fds(anyrt, tmp_path, preserve):
    """The caller holds fds 3-6 (host directories); only --preserve-fds of them may arrive."""
    cfg = base_config(["sh", "-c", LIST_FDS])
    cid = anyrt.new_id()
    args = [anyrt.binary, "--root", anyrt.root, "run", "-b", anyrt.bundle(cfg)]
    if preserve:
        args += ["--preserve-fds", str(preserve)]
    p = subprocess.run(["/bin/sh", "-c", 'exec "$@" 3<"$D" 4<"$D" 5<"$D" 6<"$D"', "sh", *args, cid],
                       env=dict(os.environ, D=str(tmp_path)), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    seen = sorted(int(x) for x in p.stdout.split())
    # the last one is sh's own fd on /proc/self/fd (the listing), numbered after the others
    assert seen[:-1] == list(range(3 + preserve)), seen


ESCAPE = "test -e ../../../../../../../../../../work/main/Makefile && echo ESCAPED; pwd; true"


@pytest.mark.parametrize("cwd", ["/proc/self/fd/%d" % n for n in range(3, 11)] + ["/../../../../.."])
def test_cwd_stays_inside(anyrt, tmp_path, cwd):
    """The host's /work/main/Makefile is reachable through `..` only from a cwd on the host.
    (runc 1.1.5 passes here too: its leaked cgroup fd does not show in this hybrid setup.)"""
    fds = _open_extra(tmp_path, 3)  # caller fds 3..: host directories
    try:
        cfg = base_config(["sh", "-c", ESCAPE])
        cfg["process"]["cwd"] = cwd
        p = anyrt.run(cfg, pass_fds=fds)
        assert "ESCAPED" not in p.stdout, (p.stdout, p.stderr)
        assert p.returncode in (0, 1) and "Traceback" not in p.stderr, p.stderr
    finally:
        for fd in fds:
            os.close(fd)
