"""A Python runtime's own attack surface: once the init (or an exec'd process) sees the
container's filesystem, an import would load the image's files as runtime code with the
runtime's privileges. The image here plants trojans at the paths of the host's standard library
and of the runtime package; no container may ever run them."""
import json
import os
import sys
import sysconfig

import pytest

from secutil import base_config, copy_rootfs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["signal", "json", "socket", "select", "subprocess", "array", "struct", "fcntl",
           "termios", "ctypes", "resource", "tty", "selectors", "enum", "re", "stat"]
# every module of the package, at its path (a module added later is planted too)
RUNTIME_MODULES = sorted(
    os.path.relpath(os.path.join(d, f), os.path.join(REPO, "runtime"))[:-3]
    for d, _, fs in os.walk(os.path.join(REPO, "runtime")) if "__pycache__" not in d
    for f in fs if f.endswith(".py"))


def plant(rootfs, marker_dir):
    trojan = f"open('/trojan-ran', 'w').write(__name__)\n"
    dirs = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
            os.path.join(sysconfig.get_paths()["stdlib"], "lib-dynload")}
    for d in dirs:
        target = rootfs + d
        os.makedirs(target, exist_ok=True)
        for m in MODULES:
            with open(os.path.join(target, m + ".py"), "w") as f:
                f.write(trojan)
    rt = rootfs + os.path.join(REPO, "runtime")
    os.makedirs(rt, exist_ok=True)
    for m in RUNTIME_MODULES:
        os.makedirs(os.path.dirname(os.path.join(rt, m)), exist_ok=True)
        with open(os.path.join(rt, m + ".py"), "w") as f:
            f.write(trojan)


def test_no_import_from_the_container(pyrunc, tmp_path):
    rootfs = copy_rootfs(tmp_path)
    plant(rootfs, tmp_path)
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\ncat >/dev/null\n")
    hook.chmod(0o755)
    cfg = base_config(["sh", "-c", "test -e /trojan-ran && cat /trojan-ran; echo done"])
    cfg["root"] = {"path": rootfs, "readonly": False}
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    cfg["hooks"] = {"createContainer": [{"path": str(hook)}],
                    "startContainer": [{"path": "/bin/true"}]}
    p = pyrunc.run(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "done", p.stdout
    assert not os.path.exists(os.path.join(rootfs, "trojan-ran"))
    # and an exec into it
    cfg["process"]["args"] = ["sleep", "100"]
    b = pyrunc.bundle(cfg)
    cid = pyrunc.new_id()
    pyrunc("run", "-d", "-b", b, cid, check=True)
    p = pyrunc("exec", cid, "sh", "-c", "test -e /trojan-ran && cat /trojan-ran; echo done")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "done"
    assert not os.path.exists(os.path.join(rootfs, "trojan-ran"))


def test_seal_imports_refuses_the_filesystem():
    """After seal_imports only built-in modules load: a missed preload fails instead of reading
    whatever the container's filesystem has at that path."""
    sys.path.insert(0, REPO)
    from runtime import process
    pid = os.fork()
    if pid == 0:
        try:
            process.seal_imports()
            import _signal  # noqa: F401 - built in: still fine
            try:
                import xml.dom.minidom  # noqa: F401 - on disk: refused
            except ImportError:
                os._exit(0)
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
