"""CVE-2019-5736 and its family: a container-controlled path must never make a pyrunc process
execute a host file (runtime/program.py).

The attacker's image ships what the host's Python needs to start (the dynamic loader and the libc
the interpreter links against), then names /proc/self/exe — directly, through a symlink, through a
PATH entry, through a `#!` line, or as an ELF's program interpreter — with `--version` as the
argument. If the runtime's own interpreter ran, it prints "Python 3.x": that is the detector. runc
runs its sealed memfd copy there (it prints runc's version or fails to load libseccomp), which the
detector accepts: what must never run is a writable host file.

Every attack is tried as the container's process (create/start) and through `exec`, against
pyrunc and runc, and once against a copy of pyrunc that execs by path as it used to
(tests/security/weaken.py), where the detector must fire.
"""
import os
import shutil
import subprocess

import pytest

from secutil import base_config, copy_rootfs
from weaken import weakened

from conftest import PYRUNC

PYTHON_MARK = "Python 3."


def _python_binary():
    # the interpreter bin/pyrunc runs: the venv's own, beside the installed command
    return os.path.realpath(os.path.join(os.path.dirname(PYRUNC), "python3"))


def _host_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=20).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/"):
                libs.append(p)
                break
    return libs


@pytest.fixture(scope="module")
def attacker_rootfs(tmp_path_factory):
    """A busybox rootfs plus the host interpreter's loader and libraries, and the attack files."""
    if not shutil.which("ldd"):
        pytest.skip("ldd (libc-bin) is not installed: cannot build the attacker's image")
    tmp = tmp_path_factory.mktemp("magic")
    root = copy_rootfs(tmp)
    for lib in _host_libs(_python_binary()):
        dst = root + lib
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(lib, dst)
        real = os.path.realpath(lib)  # /lib64/ld-linux -> /lib/x86_64-linux-gnu/ld-linux…
        if real != lib:
            os.makedirs(os.path.dirname(root + real), exist_ok=True)
            shutil.copy2(real, root + real)
    os.makedirs(root + "/usr/local/bin", exist_ok=True)
    os.symlink("/proc/self/exe", root + "/usr/local/bin/selfexe")      # found through PATH
    os.symlink("/proc/self/exe", root + "/bin/evil")                   # a symlink by path
    os.symlink("../proc/self/exe", root + "/bin/evil-rel")             # relative, same link
    os.symlink("/proc/1/exe", root + "/bin/evil-pid1")                 # another pid's exe
    with open(root + "/bin/evil-script", "w") as f:                    # a #! line
        f.write("#!/proc/self/exe --version\n")
    os.chmod(root + "/bin/evil-script", 0o755)
    with open(root + "/bin/evil-script2", "w") as f:                   # #! to a symlink to it
        f.write("#!/bin/evil --version\n")
    os.chmod(root + "/bin/evil-script2", 0o755)
    # an ELF whose program interpreter is a magic link: the host's `true`, its PT_INTERP renamed
    with open("/bin/true", "rb") as f:
        elf = f.read()
    old = b"/lib64/ld-linux-x86-64.so.2\0"
    if old in elf:
        new = b"/proc/self/exe\0".ljust(len(old), b"\0")
        with open(root + "/bin/evil-interp", "wb") as f:
            f.write(elf.replace(old, new, 1))
        os.chmod(root + "/bin/evil-interp", 0o755)
    return root


# (name, argv): each names the runtime's own executable in another way
ATTACKS = [
    ("proc-self-exe", ["/proc/self/exe", "--version"]),
    ("symlink", ["/bin/evil", "--version"]),
    ("relative-symlink", ["/bin/evil-rel", "--version"]),
    ("path-lookup", ["selfexe", "--version"]),
    ("pid1-exe", ["/bin/evil-pid1", "--version"]),
    ("dev-fd", ["/dev/fd/../exe", "--version"]),
    ("shebang", ["/bin/evil-script"]),
    ("shebang-to-symlink", ["/bin/evil-script2"]),
]


def _cfg(root, args):
    cfg = base_config(args)
    cfg["root"]["path"] = root
    cfg["process"]["env"] = ["PATH=/usr/local/bin:/bin:/sbin:/usr/bin", "HOME=/"]
    return cfg


def _init_attack(rt, root, args):
    p = rt.run(_cfg(root, args), timeout=30)
    return p.stdout + p.stderr


def _exec_attack(rt, root, args):
    b = rt.bundle(_cfg(root, ["sleep", "300"]))
    cid = rt.new_id()
    rt("run", "-d", "--bundle", b, cid, check=True, timeout=30)
    try:
        p = rt("exec", "--env", "PATH=/usr/local/bin:/bin", cid, *args, timeout=30)
        return p.stdout + p.stderr
    finally:
        rt("delete", "--force", cid, timeout=30)


@pytest.mark.parametrize("where", ["init", "exec"])
@pytest.mark.parametrize("name,args", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_host_interpreter_never_runs(anyrt, attacker_rootfs, where, name, args):
    attack = _init_attack if where == "init" else _exec_attack
    out = attack(anyrt, attacker_rootfs, args)
    assert PYTHON_MARK not in out, f"{anyrt.name} ran the host's interpreter in the container: {out}"
    if anyrt.name == "pyrunc":
        # refused with the reason, not some other failure (a PATH lookup skips such a candidate)
        assert "magic link" in out or (name == "path-lookup" and "not found in $PATH" in out), out


@pytest.mark.parametrize("where", ["init", "exec"])
def test_elf_interpreter_magic_link_refused(pyrunc, attacker_rootfs, where):
    if not os.path.exists(attacker_rootfs + "/bin/evil-interp"):
        pytest.skip("/bin/true has no /lib64/ld-linux-x86-64.so.2 interpreter to rename on this host")
    attack = _init_attack if where == "init" else _exec_attack
    out = attack(pyrunc, attacker_rootfs, ["/bin/evil-interp"])
    assert "ELF interpreter '/proc/self/exe'" in out and "magic link" in out, out


def test_ordinary_programs_still_run(anyrt, attacker_rootfs):
    """The same image's ordinary programs, scripts (with an argument on the #! line) and PATH
    lookups run as before: argv as the kernel builds it for a script."""
    with open(attacker_rootfs + "/bin/ok-script", "w") as f:
        f.write("#!/bin/sh -e\necho \"script:$0:$*\"\n")
    os.chmod(attacker_rootfs + "/bin/ok-script", 0o755)
    try:
        out = _init_attack(anyrt, attacker_rootfs, ["ok-script", "a b", "c"])
        assert "script:/bin/ok-script:a b c" in out, out
        out = _exec_attack(anyrt, attacker_rootfs, ["/bin/ok-script", "x"])
        assert "script:/bin/ok-script:x" in out, out
    finally:
        os.unlink(attacker_rootfs + "/bin/ok-script")


# --------------------------------------------------------------- the detector can fail
WEAK_EXEC = {"program.py": [
    # resolve by path, following magic links, and execve the path: what pyrunc did before
    ("L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS)", "0)"),
    ("L.openat2(-100, path, flags, 0, L.RESOLVE_NO_MAGICLINKS)", "L.openat2(-100, path, flags, 0, 0)"),
    ("    envp = [f\"{k}={v}\" for k, v in env.items()]\n",
     "    os.execve(prog.path, prog.argv, env)\n    envp = []\n"),
]}


@pytest.mark.parametrize("where", ["init", "exec"])
@pytest.mark.parametrize("name,args", [ATTACKS[0], ATTACKS[3], ATTACKS[5]], ids=["proc-self-exe", "path-lookup", "shebang"])
def test_detector_fires_on_weakened_runtime(tmp_path, attacker_rootfs, where, name, args):
    rt = weakened(tmp_path, WEAK_EXEC, "exec-by-path")
    try:
        attack = _init_attack if where == "init" else _exec_attack
        out = attack(rt, attacker_rootfs, args)
        assert PYTHON_MARK in out, f"the detector missed a runtime that execs by path: {out}"
    finally:
        left = rt.cleanup()
        assert not left, left


# --------------------------------------------------------------- startContainer hooks
def _hook_attack(rt, root):
    """A startContainer hook's path resolves in the container: the image makes it a link to
    /proc/self/exe. An unknown option makes Python print its usage ("python -h"), so the detector
    sees the host's interpreter in the hook's reported output."""
    cfg = _cfg(root, ["true"])
    cfg["hooks"] = {"startContainer": [{"path": "/bin/evil", "args": ["evil", "--version", "--bogus"]}]}
    p = rt.run(cfg, timeout=30)
    return p.stdout + p.stderr


def test_start_container_hook_never_runs_host_interpreter(anyrt, attacker_rootfs):
    out = _hook_attack(anyrt, attacker_rootfs)
    assert "python" not in out.lower(), out
    if anyrt.name == "pyrunc":
        assert "magic link" in out, out


# the hooks' programs not opened by fd (resolve_start, run_hook): exec'd by path
WEAK_HOOK = {"hooks.py": [("    return [_resolve(h, i) for i, h in", "    return [None for i, h in"),
                          ("    if phase == \"startContainer\" and prog is None:\n", "    if False:\n")]}


def test_hook_detector_fires_on_weakened_runtime(tmp_path, attacker_rootfs):
    rt = weakened(tmp_path, WEAK_HOOK, "hook-by-path")
    try:
        out = _hook_attack(rt, attacker_rootfs)
        assert "python" in out.lower(), f"the detector missed a hook exec'd by path: {out}"
    finally:
        assert not rt.cleanup()
