"""CVE-2025-52565 class: /dev/console is bound to the container's pty. An image whose
/dev/console (or /dev/pts/N) is a symlink to a /proc/sys file must not get that file bound, or
written through, in the container: the bind goes from the pty fd onto the checked target fd."""
import os
import sys
import time

from secutil import base_config, copy_rootfs, runc_xfail

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recvtty import Receiver, read_all  # noqa: E402


def test_console_symlink_to_procfs(anyrt, tmp_path, request):
    runc_xfail(request, anyrt, "binds the pty onto wherever /dev/console points (CVE-2025-52565)")
    rootfs = copy_rootfs(tmp_path)
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(rootfs, "dev", "console"))
    os.symlink("pts/ptmx", os.path.join(rootfs, "dev", "ptmx"))
    os.mknod(os.path.join(rootfs, "dev", "null"), 0o666 | 0o020000, os.makedev(1, 3))
    cfg = base_config(["sh", "-c", "grep -c core_pattern /proc/self/mountinfo; echo end"])
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["process"]["terminal"] = True
    # the image's own /dev (only devpts mounted): its /dev/console symlink is what gets used
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev", "/dev/shm", "/dev/mqueue")]
    cid = anyrt.new_id("cons")
    with Receiver(str(tmp_path / "console.sock")) as r:
        p = anyrt("run", "-d", "--console-socket", r.path, "-b", anyrt.bundle(cfg), cid, timeout=30)
        if p.returncode != 0:
            assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
            return  # refused: fine
        name, master, _ = r.receive()
    try:
        out = read_all(master).decode(errors="replace")
    finally:
        os.close(master)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert "end" in lines, out
    assert lines[lines.index("end") - 1] == "0", out  # core_pattern is not a mount point
