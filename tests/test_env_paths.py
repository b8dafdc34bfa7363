"""config-linux.md linux.devices, maskedPaths, readonlyPaths, sysctl and mountLabel, read from
inside real containers (pyrunc and runc)."""
import os
import subprocess

import pytest

import envutil as E
from envutil import base_config, ok, fails, run, mountinfo

pytestmark = [E.needs_root, E.have_rootfs]
BOTH = E.runtime_params()
USERNS = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns(cfg):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = USERNS
    cfg["linux"]["gidMappings"] = USERNS
    # sysfs and the cgroup mount need privileges a user namespace does not have over the host
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    cfg["linux"]["maskedPaths"] = [p for p in cfg["linux"]["maskedPaths"] if not p.startswith("/sys")]
    return cfg


# ------------------------------------------------------------------ devices
DEVICES = [
    {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 12, "gid": 34},
    {"path": "/dev/sub/myloop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
    {"path": "/dev/myfifo", "type": "p", "fileMode": 0o622, "uid": 5},
    {"path": "/dev/myu", "type": "u", "major": 1, "minor": 3},
    {"path": "/dev/zero2", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
]


@pytest.mark.parametrize("rt", BOTH)
def test_devices(rt, tmp_path):
    cfg = base_config("for d in /dev/myzero /dev/sub/myloop /dev/myfifo /dev/myu; do "
                      "stat -c '%n %F %t:%T %a %u:%g' $d; done; head -c 4 /dev/zero2 | od -An -tx1")
    cfg["linux"]["devices"] = DEVICES
    # creating a node needs no cgroup rule; using one does
    cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 5,
                                                 "access": "rwm"})
    out = ok(rt, cfg, tmp_path).splitlines()
    assert out[0] == "/dev/myzero character special file 1:5 640 12:34"
    assert out[1] == "/dev/sub/myloop block special file 7:c8 600 0:0"
    assert out[2] == "/dev/myfifo fifo 0:0 622 5:0"
    assert out[3].startswith("/dev/myu character special file 1:3 ")
    assert out[4].split() == ["00"] * 4


@pytest.mark.parametrize("rt", BOTH)
def test_default_devices(rt, tmp_path):
    cfg = base_config("stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty;"
                      " for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l; done")
    out = ok(rt, cfg, tmp_path).splitlines()
    assert out[:6] == ["/dev/null 1:3 666", "/dev/zero 1:5 666", "/dev/full 1:7 666",
                       "/dev/random 1:8 666", "/dev/urandom 1:9 666", "/dev/tty 5:0 666"]
    assert out[6:] == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


@pytest.mark.parametrize("rt", BOTH)
def test_devices_in_user_namespace_are_bound(rt, tmp_path):
    cfg = userns(base_config("stat -c '%n %F %t:%T' /dev/zero /dev/kmsg; head -c 2 /dev/zero | od -An -tx1; "
                             "grep -c ' /dev/kmsg ' /proc/self/mountinfo"))
    cfg["linux"]["devices"] = [{"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
                               {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]
    out = ok(rt, cfg, tmp_path).splitlines()
    assert out[0] == "/dev/zero character special file 1:5"
    assert out[1] == "/dev/kmsg character special file 1:b"
    if rt == "pyrunc":  # runc 1.1.5's device cgroup refuses the bound node here (EPERM on read)
        assert out[2].split() == ["00", "00"]
    assert out[-1] == "1"  # a bind mount of the host's node


def test_fifo_in_user_namespace_is_made(tmp_path):
    """mknod of a fifo needs no privilege: made, not bound (runc 1.1.5 tries to bind the host's)."""
    cfg = userns(base_config("stat -c '%n %F %a' /dev/myfifo"))
    cfg["linux"]["devices"] = [{"path": "/dev/myfifo", "type": "p", "fileMode": 0o600}]
    assert ok("pyrunc", cfg, tmp_path).strip() == "/dev/myfifo fifo 600"


def test_device_in_user_namespace_without_host_node(tmp_path):
    cfg = userns(base_config())
    cfg["linux"]["devices"] = [{"path": "/dev/nosuchdevice", "type": "c", "major": 1, "minor": 5}]
    fails("pyrunc", cfg, tmp_path, "linux.devices", "/dev/nosuchdevice")


@pytest.mark.parametrize("rt", BOTH)
def test_bad_device_type(rt, tmp_path):
    cfg = base_config()
    cfg["linux"]["devices"] = [{"path": "/dev/x", "type": "z", "major": 1, "minor": 5}]
    r = fails(rt, cfg, tmp_path)
    if rt == "pyrunc":
        assert "linux.devices[0].type" in r.err


# ------------------------------------------------------------------ masked and readonly paths
@pytest.mark.parametrize("rt", BOTH)
def test_masked_paths(rt, tmp_path):
    cfg = base_config("wc -c < /proc/keys; ls -A /proc/acpi | wc -l; "
                      "touch /proc/acpi/x 2>/dev/null && echo wrote || echo acpi-refused; "
                      "stat -c %t:%T /proc/keys")
    cfg["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"] for k in
                                      ("bounding", "effective", "permitted")}
    out = ok(rt, cfg, tmp_path).split()
    assert out == ["0", "0", "acpi-refused", "1:3"]


@pytest.mark.parametrize("rt", BOTH)
def test_readonly_paths(rt, tmp_path):
    cfg = base_config("echo x > /proc/sys/kernel/domainname 2>/dev/null && echo wrote || echo sys-refused; "
                      "echo x > /proc/sysrq-trigger 2>/dev/null && echo wrote || echo sysrq-refused; "
                      "touch /mnt/ro/x 2>/dev/null && echo wrote || echo mnt-refused; touch /mnt/rw/x && echo rw-ok;"
                      + " cat /proc/self/mountinfo")
    E.mnt_tmpfs(cfg)
    cfg["mounts"] += [{"destination": "/mnt/ro", "type": "tmpfs", "source": "tmpfs"},
                      {"destination": "/mnt/rw", "type": "tmpfs", "source": "tmpfs"}]
    cfg["linux"]["readonlyPaths"].append("/mnt/ro")
    cfg["linux"]["readonlyPaths"].append("/does/not/exist")  # skipped, as runc does
    out = ok(rt, cfg, tmp_path)
    assert out.split()[:4] == ["sys-refused", "sysrq-refused", "mnt-refused", "rw-ok"]
    mi = mountinfo(out)
    assert "ro" in mi["/proc/sys"][0] and "ro" in mi["/mnt/ro"][0]


def test_masked_path_refuses_fake_dev_null(tmp_path):
    """A /dev/null that is not the 1:3 character device is never bound over masked paths."""
    cfg = base_config("cat /proc/keys")
    cfg["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]
    fails("pyrunc", cfg, tmp_path, "maskedPaths", "/dev/null")


def test_masked_path_refuses_dev_null_symlink(tmp_path):
    rootfs = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", E.ROOTFS, str(rootfs)], check=True, timeout=30)
    os.symlink("/proc/sys/kernel/domainname", rootfs / "dev" / "null")  # (not a host-wide sysctl)
    cfg = base_config("echo should-not-run")
    cfg["root"]["path"] = str(rootfs)
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    r = fails("pyrunc", cfg, tmp_path, "maskedPaths", "/dev/null")
    assert "should-not-run" not in r.out


# ------------------------------------------------------------------ sysctl
@pytest.mark.parametrize("rt", BOTH)
def test_sysctl_in_own_namespaces(rt, tmp_path):
    cfg = base_config("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max "
                      "/proc/sys/kernel/domainname /proc/sys/net/ipv4/conf/lo/forwarding")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234", "fs.mqueue.msg_max": "20",
                              "kernel.domainname": "example.org", "net/ipv4/conf/lo/forwarding": "1"}
    assert ok(rt, cfg, tmp_path).split() == ["1", "1234", "20", "example.org", "1"]
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1234"  # the host's value is untouched


@pytest.mark.parametrize("rt", BOTH)
@pytest.mark.parametrize("key,drop", [("net.ipv4.ip_forward", "network"), ("kernel.shmmax", "ipc"),
                                      ("fs.mqueue.queues_max", "ipc"), ("kernel.domainname", "uts"),
                                      ("vm.swappiness", None), ("kernel.hostname", None)])
def test_sysctl_outside_container_namespaces(rt, key, drop, tmp_path):
    cfg = base_config("echo should-not-run")
    if drop:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != drop]
        if drop == "uts":
            cfg.pop("hostname", None)
    cfg["linux"]["sysctl"] = {key: "1"}
    r = fails(rt, cfg, tmp_path, key)
    if rt == "pyrunc":
        assert "linux.sysctl" in r.err


def test_sysctl_in_joined_host_netns_refused(tmp_path):
    cfg = base_config()
    for n in cfg["linux"]["namespaces"]:
        if n["type"] == "network":
            n["path"] = "/proc/self/ns/net"  # the runtime's own
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    fails("pyrunc", cfg, tmp_path, "linux.sysctl.net.ipv4.ip_forward", "host")


# ------------------------------------------------------------------ mountLabel
@pytest.mark.parametrize("rt", BOTH)
def test_mount_label_without_selinux(rt, tmp_path):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here")
    cfg = base_config("echo should-not-run")
    cfg["linux"]["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c1,c2"
    r = run(rt, cfg, tmp_path)
    if rt == "runc" and r.rc == 0:
        pytest.skip("runc 1.1.5 ignores mountLabel without SELinux")
    assert r.rc == 1, r
    if rt == "pyrunc":
        assert "mountLabel" in r.err
