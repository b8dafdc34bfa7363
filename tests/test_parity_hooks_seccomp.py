"""Issue 18, hooks and seccomp "to the letter": each scenario run against pyrunc AND runc 1.1.5,
asserting runc's behaviour (runc's param is a strict xfail where runc 1.1.5 is itself unsafe and
pyrunc does better).

- startContainer hooks run as the container process would: after the user switch, the capability
  drop, noNewPrivileges and the seccomp filter, with or without noNewPrivileges (runc's
  standard_init_linux.go order);
- every hook gets fds 0-2 only (runc 1.1.5 leaks its init's fds to createContainer hooks and the
  caller's to the poststop hooks of `delete`: xfail there);
- a hook without `env` inherits (the runtime's env; the process env for createContainer; that plus
  HOME for startContainer); `"env": []` is empty;
- the working directory: the bundle (prestart, createRuntime, poststart), the rootfs
  (createContainer), the process's cwd (startContainer);
- seccomp: above the largest syscall number a listed architecture names, a non-permissive
  default gives ENOSYS (runc's patchbpf), checked with a hand-made static x86_64 binary (no C
  compiler needed) that makes two raw syscalls and writes their errnos;
- SCMP_ACT_NOTIFY wording, an empty listenerPath, rlimits above the hard limit, hook failures:
  one line, runc's words, no Python class name.
"""
import fcntl
import json
import os
import platform
import re
import struct
import time

import pytest

from conftest import base_config
from runtime import errors

PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
INIT_PHASES = ("createContainer", "startContainer")
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Interrupt|Exit)\b")
BUSYBOX_CAPS = 0x20000420  # CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: the demo config's


def _xfail_runc(rt, request, reason):
    if rt.name == "runc":
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"runc 1.1.5: {reason}"))


def _see_dir(cfg, d):
    """Show the host dir D at the same path in the container (startContainer hooks resolve and
    write there), on a tmpfs /tmp so nothing is made in the shared rootfs."""
    cfg["mounts"] += [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                      {"destination": str(d), "type": "bind", "source": str(d), "options": ["rbind"]}]


def _hook(out, script, name, env=None):
    """/bin/sh -c SCRIPT with $0 = NAME and $D = OUT (inline: a script file would hold an fd of
    the shell's own)."""
    h = {"path": "/bin/sh", "args": ["sh", "-c", f"D={out}/{name}; {script}", name]}
    if env is not None:
        h["env"] = env
    return h


# ------------------------------------------------------------------ one lifecycle per runtime
@pytest.fixture(scope="module", params=["pyrunc", "runc"])
def lifecycle(request, tmp_path_factory):
    """create / start / delete of a container whose hooks (every phase, no `env`) record their
    fds, cwd and environment; the runtime runs from / with fds 3 (a flock'd file, as an engine's
    lock) and another from 10 up open, and CALLERVAR in its environment."""
    import shutil
    from conftest import RUNTIMES, Runtime
    name = request.param
    if name == "runc" and not shutil.which("runc"):
        pytest.skip("runc not installed")
    tmp = tmp_path_factory.mktemp(f"life-{name}")
    out = tmp / "out"
    out.mkdir()
    rt = Runtime(name, RUNTIMES[name], str(tmp))
    cfg = base_config(["true"])
    cfg["process"]["env"].append("FROMPROC=1")
    cfg["process"]["cwd"] = "/tmp"
    _see_dir(cfg, out)
    rec = "ls /proc/self/fd | tr '\\n' ' ' > $D.fds; pwd -P > $D.cwd; env > $D.env; cat > $D.state"
    cfg["hooks"] = {ph: [_hook(out, rec, ph)] for ph in PHASES}
    cfg["hooks"]["prestart"].append(_hook(out, "env > $D.env", "emptyenv", env=[]))
    b = rt.bundle(cfg)
    cid = rt.new_id()
    lock = open(tmp / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    ten = fcntl.fcntl(lock.fileno(), fcntl.F_DUPFD, 10)  # a second one, higher up
    kw = dict(pass_fds=(lock.fileno(), ten), cwd="/", env=dict(os.environ, CALLERVAR="from-caller"))
    try:
        rt("create", "-b", b, cid, check=True, **kw)
        rt("start", cid, check=True, **kw)
        deadline = time.monotonic() + 15
        while rt.state(cid)["status"] != "stopped":
            assert time.monotonic() < deadline, "the container did not stop"
            time.sleep(0.05)
        rt("delete", cid, check=True, **kw)
        got = {"bundle": b, "rootfs": os.path.realpath(cfg["root"]["path"]), "lock_fd": lock.fileno()}
        for ph in PHASES + ("emptyenv",):
            for kind in ("fds", "cwd", "env", "state"):
                p = out / f"{ph}.{kind}"
                got[(ph, kind)] = p.read_text() if p.exists() else None
        yield rt, got
    finally:
        os.close(ten)
        lock.close()
        left = rt.cleanup()
        assert not left, f"state left behind: {left}"


def _fds(got, phase):
    text = got[(phase, "fds")]
    assert text is not None, f"the {phase} hook did not run"
    return text.split()


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "startContainer", "poststart"])
def test_hooks_get_only_stdio(lifecycle, phase):
    """(security) 0-2 only: `ls` opens the 4th itself. runc's bats: "startContainer hook
    doesn't get any extra file descriptor"."""
    rt, got = lifecycle
    assert _fds(got, phase) == ["0", "1", "2", "3"], (rt.name, phase, got[(phase, "fds")])


@pytest.mark.parametrize("phase", ["createContainer", "poststop"])
def test_hooks_get_only_stdio_where_runc_leaks(lifecycle, phase, request):
    """(security) runc 1.1.5 gives createContainer hooks its init's socket, log pipe and exec
    fifo, and poststop hooks of `delete` the caller's fds (here the lock file): pyrunc does not."""
    rt, got = lifecycle
    _xfail_runc(rt, request, "leaks its own fds to createContainer hooks and the caller's to "
                "poststop hooks of delete")
    assert _fds(got, phase) == ["0", "1", "2", "3"], (rt.name, phase, got[(phase, "fds")])


def test_start_container_hook_does_not_get_preserved_fds(anyrt, tmp_path, request):
    """(security) --preserve-fds passes fds to the container process, not to its hooks: a
    startContainer hook sees 0-2 only (runc 1.1.5 passes them on to the hook too)."""
    import subprocess
    _xfail_runc(anyrt, request, "its startContainer hooks get the --preserve-fds fds")
    out = tmp_path / "out"
    out.mkdir()
    cfg = base_config(["true"])
    _see_dir(cfg, out)
    cfg["hooks"] = {"startContainer": [_hook(out, "ls /proc/self/fd | tr '\\n' ' ' > $D", "start")]}
    b = anyrt.bundle(cfg)
    # fd 3 of the runtime: a file of the host, preserved for the process
    cmd = ["sh", "-c", 'exec 3</etc/hostname; exec "$@"', "sh", anyrt.binary, "--root", anyrt.root,
           "run", "--preserve-fds", "1", "-b", b, anyrt.new_id()]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert (out / "start").read_text().split() == ["0", "1", "2", "3"]


def test_hook_state_in_the_container(lifecycle):
    """runtime.md "state": for hooks in the container's namespaces the pid is the one seen there
    (1: the demo config has its own pid namespace); startContainer's status is created."""
    rt, got = lifecycle
    st = {ph: json.loads(got[(ph, "state")]) for ph in ("createRuntime", "createContainer", "startContainer")}
    assert st["createRuntime"]["status"] == "creating" and st["createRuntime"]["pid"] > 1, st
    assert (st["createContainer"]["status"], st["createContainer"]["pid"]) == ("creating", 1), st
    assert (st["startContainer"]["status"], st["startContainer"]["pid"]) == ("created", 1), st


def _env(got, phase):
    text = got[(phase, "env")]
    assert text is not None, f"the {phase} hook did not run"
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "poststart", "poststop"])
def test_runtime_hooks_without_env_inherit_the_runtime_env(lifecycle, phase):
    rt, got = lifecycle
    env = _env(got, phase)
    assert env.get("CALLERVAR") == "from-caller", (rt.name, phase, env)
    assert "FROMPROC" not in env


def test_init_hooks_without_env_inherit_the_process_env(lifecycle):
    """createContainer: process.env as given; startContainer: plus the HOME the init added."""
    rt, got = lifecycle
    cc, sc = _env(got, "createContainer"), _env(got, "startContainer")
    for env in (cc, sc):
        assert env.get("FROMPROC") == "1" and "CALLERVAR" not in env, (rt.name, env)
        assert env.get("PATH", "").startswith("/usr/local/sbin"), (rt.name, env)
    assert "HOME" not in cc and sc.get("HOME") == "/root", (rt.name, cc, sc)


def test_hook_with_empty_env_gets_none(lifecycle):
    rt, got = lifecycle
    env = _env(got, "emptyenv")
    assert "CALLERVAR" not in env and "FROMPROC" not in env and "HOME" not in env, (rt.name, env)


def test_hook_working_directories(lifecycle):
    """The bundle for the runtime's hooks (runc chdirs to it; the runtime ran from /), the rootfs
    for createContainer, the process's cwd for startContainer."""
    rt, got = lifecycle
    cwd = {ph: (got[(ph, "cwd")] or "").strip() for ph in PHASES}
    for ph in ("prestart", "createRuntime", "poststart"):
        assert cwd[ph] == os.path.realpath(got["bundle"]), (rt.name, ph, cwd)
    assert cwd["createContainer"] == got["rootfs"], (rt.name, cwd)
    assert cwd["startContainer"] == "/tmp", (rt.name, cwd)


# ------------------------------------------------------------------ startContainer under the filter
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_start_container_hook_runs_as_the_process(anyrt, tmp_path, nnp):
    """(security) A startContainer hook is the image's code: it runs under the container's
    seccomp filter (its mkdir denied), with the container's capabilities and noNewPrivileges,
    whichever noNewPrivileges is (runc applies the filter before or after the user switch, but
    always before the hook)."""
    out = tmp_path / "out"
    out.mkdir()
    cfg = base_config(["true"])
    cfg["process"]["noNewPrivileges"] = nnp
    _see_dir(cfg, out)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    script = ("grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status > $D; "
              "mkdir $D.dir 2>/dev/null; echo mkdir=$? >> $D")
    cfg["hooks"] = {"startContainer": [_hook(out, script, "start")]}
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    got = dict(ln.replace("\t", "").split(":", 1) if ":" in ln else ln.split("=", 1)
               for ln in (out / "start").read_text().splitlines())
    assert got["Seccomp"] == "2", got
    assert got["NoNewPrivs"] == ("1" if nnp else "0"), got
    assert int(got["CapEff"], 16) == BUSYBOX_CAPS, got
    assert got["mkdir"] != "0" and not (out / "start.dir").exists(), got


def test_start_container_hook_under_a_filter_denying_newer_calls(anyrt, tmp_path):
    """What runs the hook inside the filter does without memfd_create, pidfd_open and
    close_range when the profile denies them (runc's Go needs none of them)."""
    out = tmp_path / "out"
    out.mkdir()
    cfg = base_config(["true"])
    _see_dir(cfg, out)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["memfd_create", "pidfd_open", "close_range"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    script = "cat > $D.state; ls /proc/self/fd | tr '\\n' ' ' > $D"
    cfg["hooks"] = {"startContainer": [_hook(out, script, "start")]}
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr
    assert (out / "start").read_text().split() == ["0", "1", "2", "3"]
    assert json.loads((out / "start.state").read_text())["status"] == "created"


def test_start_container_hook_killed_by_the_filter(anyrt):
    """runc's seccomp.bats "startContainer hook": SCMP_ACT_KILL on mkdir kills the hook's mkdir,
    and the error says which hook and "bad system call"."""
    cfg = base_config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]}
    cfg["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}]}
    p = anyrt.run(cfg)
    assert p.returncode != 0
    # runc 1.1.5 says "error running hook #0", later runcs "error running startContainer hook #0"
    want = "error running startContainer hook #0" if anyrt.name == "pyrunc" else "error running hook #0"
    assert want in p.stderr and "bad system call" in p.stderr, p.stderr
    assert not CLASS_NAME.search(p.stderr), p.stderr


@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_runtime_needs_no_newer_syscalls_under_the_filter(anyrt, nnp):
    """runc's seccomp.bats "verify syscall compatibility after seccomp enforcement": what the
    runtime does under the filter (and what runs startContainer hooks) needs none of these."""
    cfg = base_config(["true"])
    cfg["process"]["noNewPrivileges"] = nnp
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["close_range", "fsopen", "fsconfig", "fspick", "openat2", "open_tree",
                                "move_mount", "mount_setattr", "memfd_create", "pidfd_open"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    cfg["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------------------ seccomp: ENOSYS above the profile
def _two_syscalls_elf(a, b):
    """A static x86_64 ELF writing two bytes, the errnos of syscall(A) and syscall(B) (all
    arguments 0; 0 when they succeed), to stdout, then exiting 0."""
    zero = b"\x31\xff\x31\xf6\x31\xd2\x4d\x31\xd2\x4d\x31\xc0\x4d\x31\xc9"
    code = (zero + b"\xb8" + struct.pack("<I", a) + b"\x0f\x05\xf7\xd8\x89\xc3"     # ebx = -ret
            + zero + b"\xb8" + struct.pack("<I", b) + b"\x0f\x05\xf7\xd8\x88\xc7"  # bh = -ret
            + b"\x53"                                                              # push rbx
            + b"\xb8\x01\x00\x00\x00\xbf\x01\x00\x00\x00\x48\x89\xe6\xba\x02\x00\x00\x00\x0f\x05"
            + b"\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05")                             # exit(0)
    base, hdr = 0x400000, 64 + 56
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                       2, 0x3E, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    size = hdr + len(code)
    return ehdr + struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000) + code


def _two_syscalls_elf32(a, b):
    """The same as an i386 ELF (int 0x80)."""
    z = b"\x31\xdb\x31\xc9\x31\xd2\x31\xff\x31\xed"                                  # args 0
    code = (z + b"\xb8" + struct.pack("<I", a) + b"\xcd\x80\xf7\xd8\x89\xc6"               # esi = -ret
            + z + b"\xb8" + struct.pack("<I", b) + b"\xcd\x80\xf7\xd8"
            + b"\x89\xf3\x88\xc7\x53"                                                   # bl, bh; push
            + b"\xb8\x04\x00\x00\x00\xbb\x01\x00\x00\x00\x89\xe1\xba\x02\x00\x00\x00\xcd\x80"
            + b"\xb8\x01\x00\x00\x00\x31\xdb\xcd\x80")                                # exit(0)
    base, hdr = 0x08048000, 52 + 32
    size = hdr + len(code)
    ehdr = struct.pack("<4sBBBBB7sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, b"\0" * 7,
                       2, 3, 1, base + hdr, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    return ehdr + struct.pack("<IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000) + code


def _names_up_to(top):
    """Every syscall name libseccomp knows on x86_64 with a number <= TOP."""
    import ctypes
    lib = ctypes.CDLL("libseccomp.so.2")
    f = lib.seccomp_syscall_resolve_num_arch
    f.restype, f.argtypes = ctypes.c_char_p, (ctypes.c_uint32, ctypes.c_int)
    return [n.decode() for n in (f(0xC000003E, i) for i in range(top + 1)) if n]


CLONE3, NOSUCH = 435, 1000
ENOSYS, EPERM, EINVAL = 38, 1, 22
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def _allow_up_to_434(**kw):
    # an "older" profile: everything up to pidfd_open (434), not clone3 (435)
    sc = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ARCHES,
          "syscalls": [{"names": _names_up_to(434), "action": "SCMP_ACT_ALLOW"}]}
    sc.update(kw)
    return sc


# (profile, errno of clone3(NULL, 0), errno of syscall 1000), as runc 1.1.5 gives them here
ENOSYS_CASES = {
    "errno-default": (lambda: _allow_up_to_434(), ENOSYS, ENOSYS),
    "errno-default-ret5": (lambda: _allow_up_to_434(defaultErrnoRet=5), ENOSYS, ENOSYS),
    "kill-default": (lambda: _allow_up_to_434(defaultAction="SCMP_ACT_KILL_PROCESS"), ENOSYS, ENOSYS),
    # the profile names a larger syscall (a rule whose action is the default counts too)
    "named-above": (lambda: dict(_allow_up_to_434(), syscalls=[
        {"names": _names_up_to(434), "action": "SCMP_ACT_ALLOW"},
        {"names": ["process_mrelease"], "action": "SCMP_ACT_ERRNO"}]), EPERM, ENOSYS),
    # only the listed architectures get the stub: none listed, none
    "no-architectures": (lambda: dict(_allow_up_to_434(), architectures=[]), EPERM, EPERM),
    # a permissive default: no stub (clone3 runs: EINVAL for its NULL args)
    "allow-default": (lambda: {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
                      EINVAL, ENOSYS),
}


def _run_two_syscalls(rt, tmp_path, elf, seccomp):
    """Run ELF under SECCOMP; the two errnos it wrote."""
    import subprocess
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "sys2"
    exe.write_bytes(elf)
    exe.chmod(0o755)
    cfg = base_config(["/mnt/sys2"])  # /mnt: in the shared rootfs already (nothing made there)
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(bindir),
                          "options": ["rbind", "ro"]})
    cfg["linux"]["seccomp"] = seccomp
    # the output is two raw bytes: read as bytes (the fixture's runner decodes text)
    outf = tmp_path / "stdout"
    b = rt.bundle(cfg)
    with open(outf, "wb") as f:
        p = subprocess.run([rt.binary, "--root", rt.root, "run", "-b", b, rt.new_id()],
                           stdout=f, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)
    assert p.returncode == 0, p.stderr
    got = outf.read_bytes()
    assert len(got) == 2, (got, p.stderr)
    return got[0], got[1]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the test binary is x86_64 code")
@pytest.mark.parametrize("case", list(ENOSYS_CASES))
def test_unknown_syscalls_get_enosys(anyrt, tmp_path, case):
    """(security/compat) glibc falls back from clone3 (and others) only on ENOSYS: an older
    profile must not turn a newer syscall into EPERM or a kill."""
    make, want_clone3, want_nosuch = ENOSYS_CASES[case]
    got = _run_two_syscalls(anyrt, tmp_path, _two_syscalls_elf(CLONE3, NOSUCH), make())
    assert got == (want_clone3, want_nosuch), case


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the test binary is i386 code")
def test_unknown_i386_syscalls_get_enosys(anyrt, tmp_path):
    """The stub per listed architecture: i386 syscalls (int 0x80) are checked against the
    largest i386 number the profile names."""
    import subprocess
    elf = _two_syscalls_elf32(CLONE3, NOSUCH)
    probe = tmp_path / "probe32"
    probe.write_bytes(elf)
    probe.chmod(0o755)
    try:
        ran = subprocess.run([str(probe)], capture_output=True, timeout=10).stdout
    except OSError:
        ran = b""
    if len(ran) != 2:
        pytest.skip("this kernel runs no i386 binaries")
    assert _run_two_syscalls(anyrt, tmp_path, elf, _allow_up_to_434()) == (ENOSYS, ENOSYS)


# ------------------------------------------------------------------ seccomp notify wording
def _notify_cfg(names, listener):
    cfg = base_config(["true"])
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener,
                               "architectures": ["SCMP_ARCH_X86_64"],
                               "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]}
    return cfg


def test_notify_on_write_is_refused(anyrt, tmp_path):
    p = anyrt.run(_notify_cfg(["write"], str(tmp_path / "agent.sock")))
    assert p.returncode != 0
    assert "SCMP_ACT_NOTIFY cannot be used for the write syscall" in p.stderr


def test_notify_without_agent(anyrt, tmp_path):
    p = anyrt.run(_notify_cfg(["mkdir"], str(tmp_path / "no-agent.sock")))
    assert p.returncode != 0
    assert "failed to connect with seccomp agent" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_notify_on_sendmsg_runs(anyrt, tmp_path, nnp):
    """runc allows SCMP_ACT_NOTIFY on sendmsg (it hands the fd over otherwise); pyrunc refused
    it, and now hands its fd over with sendmmsg then."""
    from test_env_seccomp import Agent
    path = str(tmp_path / "agent.sock")
    agent = Agent(path)
    agent.start()
    try:
        cfg = _notify_cfg(["sendmsg", "mkdir", "mkdirat"], path)
        cfg["process"]["noNewPrivileges"] = nnp
        cfg["process"]["args"] = ["sh", "-c", "mkdir /notmade && echo mkdir-ok; [ -d /notmade ] || echo absent"]
        p = anyrt.run(cfg)
    finally:
        agent.close()
    assert agent.error is None, agent.error
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["mkdir-ok", "absent"]  # the agent said yes, nothing was made


@pytest.mark.parametrize("extra", [{"listenerPath": ""}, {"listenerMetadata": "m"},
                                   {"listenerPath": "", "listenerMetadata": "m"}],
                         ids=["empty-path", "metadata-only", "both"])
def test_listener_fields_without_notify_are_ignored(anyrt, extra):
    """runc runs these (an empty listenerPath is none); pyrunc refused them."""
    cfg = base_config(["true"])
    cfg["linux"]["seccomp"] = dict({"defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}, **extra)
    p = anyrt.run(cfg)
    assert p.returncode == 0, p.stderr


def test_start_container_hook_with_notify_gets_only_stdio(anyrt, tmp_path):
    """runc's seccomp-notify.bats: a startContainer hook under a NOTIFY filter sees fds 0-2 only
    (`ls` opens the 4th)."""
    from test_env_seccomp import Agent
    path = str(tmp_path / "agent.sock")
    agent = Agent(path)
    agent.start()
    try:
        out = tmp_path / "out"
        out.mkdir()
        cfg = _notify_cfg(["mkdir"], path)
        _see_dir(cfg, out)
        cfg["hooks"] = {"startContainer": [_hook(out, "ls /proc/self/fd | tr '\\n' ' ' > $D", "start")]}
        p = anyrt.run(cfg)
    finally:
        agent.close()
    assert p.returncode == 0, p.stderr
    assert agent.error is None, agent.error
    assert (out / "start").read_text().split() == ["0", "1", "2", "3"]


# ------------------------------------------------------------------ errors: one line, no class names
def _cap_sys_resource():
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("CapEff:"):
                return bool(int(ln.split()[1], 16) >> 24 & 1)
    return False


def test_rlimit_above_the_hard_limit(anyrt):
    """podman's default RLIMIT_NOFILE (1048576) on a host whose hard limit is lower, without
    CAP_SYS_RESOURCE: runc fails with the kernel's "operation not permitted"; pyrunc too, naming
    the rlimit and the hard limit it has (it said `ValueError: not allowed to raise maximum
    limit`)."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 1048576 or _cap_sys_resource():
        pytest.skip("this runtime may raise RLIMIT_NOFILE to 1048576 here")
    cfg = base_config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    p = anyrt.run(cfg)
    assert p.returncode != 0
    assert "operation not permitted" in p.stderr, p.stderr
    assert not CLASS_NAME.search(p.stderr), p.stderr
    if anyrt.name == "pyrunc":
        assert "RLIMIT_NOFILE" in p.stderr and str(hard) in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("phase", ["prestart", "createContainer", "startContainer"])
def test_hook_failures_in_runc_words(anyrt, tmp_path, phase):
    """"error running ... hook #1", the exit status, and for a file that is no program the
    errno execve gave (pyrunc said "exit status 127")."""
    junk = tmp_path / "junk"
    junk.write_text("not a program\n")
    junk.chmod(0o755)
    cfg = base_config(["true"])
    _see_dir(cfg, tmp_path)
    cfg["hooks"] = {phase: [{"path": "/bin/true"}, {"path": "/bin/false"}]}
    p = anyrt.run(cfg)
    assert p.returncode != 0 and "hook #1" in p.stderr and "exit status 1" in p.stderr, p.stderr
    assert "error running" in p.stderr
    cfg["hooks"] = {phase: [{"path": "/bin/true"}, {"path": str(junk)}]}
    p = anyrt.run(cfg)
    assert p.returncode != 0 and "hook #1" in p.stderr and "exec format error" in p.stderr, p.stderr
    assert not CLASS_NAME.search(p.stderr), p.stderr


def test_unexpected_exceptions_read_without_class_names():
    """The init's, exec's and the CLI's last-resort handlers (errors.unexpected)."""
    assert errors.unexpected(ValueError("not allowed to raise maximum limit")) == \
        "not allowed to raise maximum limit"
    assert errors.unexpected(KeyError("args")) == "missing key args"
    assert errors.unexpected(RuntimeError()) == "unexpected failure"
    assert errors.unexpected(FileNotFoundError(2, "No such file or directory", "/x")) == \
        "/x: no such file or directory"
    for e in (ValueError("a\nb"), TypeError("x"), MemoryError()):
        assert not CLASS_NAME.search(errors.unexpected(e)) and "\n" not in errors.unexpected(e)
