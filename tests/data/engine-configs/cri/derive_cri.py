#!/usr/bin/python3
"""HAND-DERIVED, not captured: configs shaped as containerd 1.6's CRI plugin builds them for the
kubelet (pkg/cri/server/sandbox_run_linux.go, container_create_linux.go, pkg/cri/opts/spec_linux.go),
starting from the config `ctr run --seccomp` captured from the same containerd (../ctr/), which is
containerd's default spec plus its default seccomp profile, the RuntimeDefault CRI uses.

What CRI adds and these reproduce: the pause sandbox (readonly root, /pause, oomScoreAdj -998,
cpu shares 2, its own shm tmpfs), containers that join the sandbox's network/ipc/uts (and pid for a
shared process namespace) by /proc/<pid>/ns path, the kubelet's /etc/hosts, /etc/hostname,
/etc/resolv.conf, /dev/shm and /dev/termination-log binds (rbind, rprivate), volumes with each
mountPropagation (Private -> rprivate; HostToContainer -> rslave and linux.rootfsPropagation
"rslave"; Bidirectional -> rshared and linux.rootfsPropagation "rshared"), the io.kubernetes.cri.*
annotations, /kubepods/... cgroupsPath, resources (cpu shares/quota/period, memory limit, swap =
limit, hugepageLimits, oomScoreAdj of the QoS class), security contexts (runAsUser/Group,
supplementalGroups, readOnlyRootFilesystem, capabilities, privileged with every host device and
no masked/readonly paths, allowPrivilegeEscalation false -> noNewPrivileges), host namespaces.

Regenerate with: python3 tests/data/engine-configs/cri/derive_cri.py  (after ../capture.py ctr)
"""
import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SB = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
CID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
POD_UID = "8c3f9b7e-5d2a-4e61-9f0b-3a7c1d2e4f56"
ROOT = "@ENGINE_ROOT@/state/io.containerd.grpc.v1.cri/sandboxes/" + SB
SOURCES = {}


def base():
    with open(os.path.join(HERE, "..", "ctr", "seccomp-default.json")) as f:
        cfg = json.load(f)
    cfg.pop("hooks", None)
    cfg["process"]["noNewPrivileges"] = False  # CRI: from allowPrivilegeEscalation (default true)
    return cfg


def bind(dst, src, kind, ro=False, prop="rprivate"):
    SOURCES[src] = kind
    return {"destination": dst, "type": "bind", "source": src,
            "options": ["rbind", prop, "ro" if ro else "rw"]}


def sandbox():
    cfg = base()
    cfg["process"].update(args=["/pause"], cwd="/", oomScoreAdj=-998, noNewPrivileges=True,
                          env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    cfg["root"] = {"path": "@ROOTFS@", "readonly": True}
    cfg["hostname"] = "pod-a"
    L = cfg["linux"]
    L["cgroupsPath"] = f"/kubepods/besteffort/pod{POD_UID}/{SB}"
    L["resources"] = {"devices": [{"allow": False, "access": "rwm"}], "cpu": {"shares": 2}}
    L["namespaces"] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                       {"type": "network", "path": "/var/run/netns/cni-6f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"}]
    SOURCES["/var/run/netns/cni-6f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"] = "netns"
    L["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev/shm"]
    cfg["mounts"].append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                          "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    cfg["mounts"].append(bind("/etc/resolv.conf", ROOT + "/resolv.conf", "file", ro=True))
    cfg["annotations"] = {
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-id": SB,
        "io.kubernetes.cri.sandbox-name": "pod-a",
        "io.kubernetes.cri.sandbox-namespace": "default",
        "io.kubernetes.cri.sandbox-log-directory": f"/var/log/pods/default_pod-a_{POD_UID}",
    }
    return cfg


def container(qos="burstable", share_pid=False):
    cfg = base()
    cfg["process"].update(args=["sh", "-c", "sleep 3600"], cwd="/", oomScoreAdj=999,
                          env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "HOSTNAME=pod-a", "KUBERNETES_SERVICE_HOST=10.96.0.1"])
    cfg["root"] = {"path": "@ROOTFS@"}
    L = cfg["linux"]
    L["cgroupsPath"] = f"/kubepods/{qos}/pod{POD_UID}/{CID}"
    L["resources"] = {"devices": [{"allow": False, "access": "rwm"}],
                      "cpu": {"shares": 102, "period": 100000}, "memory": {}}
    ns = [{"type": "pid"}, {"type": "ipc", "path": "/proc/@PID@/ns/ipc"},
          {"type": "uts", "path": "/proc/@PID@/ns/uts"}, {"type": "mount"},
          {"type": "network", "path": "/proc/@PID@/ns/net"}]
    if share_pid:
        ns[0] = {"type": "pid", "path": "/proc/@PID@/ns/pid"}
    L["namespaces"] = ns
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev/shm"]
    cfg["mounts"] += [
        bind("/etc/hosts", f"@ENGINE_ROOT@/kubelet/pods/{POD_UID}/etc-hosts", "file"),
        bind("/dev/termination-log", f"@ENGINE_ROOT@/kubelet/pods/{POD_UID}/containers/c/1234abcd", "file"),
        bind("/etc/hostname", ROOT + "/hostname", "file"),
        bind("/etc/resolv.conf", ROOT + "/resolv.conf", "file"),
        bind("/dev/shm", "@ENGINE_ROOT@/state/io.containerd.grpc.v1.cri/sandboxes/" + SB + "/shm", "dir"),
    ]
    cfg["annotations"] = {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "c",
        "io.kubernetes.cri.image-name": "localhost/busybox:latest",
        "io.kubernetes.cri.sandbox-id": SB,
        "io.kubernetes.cri.sandbox-name": "pod-a",
        "io.kubernetes.cri.sandbox-namespace": "default",
    }
    return cfg


def volume(prop):
    cfg = container()
    opt = {"Private": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}[prop]
    cfg["mounts"].append(bind("/data", f"@ENGINE_ROOT@/kubelet/pods/{POD_UID}/volumes/kubernetes.io~host-path/data",
                              "dir", prop=opt))
    if opt != "rprivate":
        cfg["linux"]["rootfsPropagation"] = opt
    return cfg


def privileged():
    cfg = container()
    caps = sorted(set(cfg["process"]["capabilities"]["bounding"]) | {
        "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
        "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_SYS_PACCT",
        "CAP_DAC_READ_SEARCH", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"})
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] = caps
    cfg["process"].pop("apparmorProfile", None)
    L = cfg["linux"]
    L.pop("seccomp", None)
    L.pop("maskedPaths", None)
    L.pop("readonlyPaths", None)
    for m in cfg["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    # privileged: every device of the host (with its permission bits, as containerd's
    # oci.WithHostDevices reads them), and an allow-all device rule
    with open(os.path.join(HERE, "..", "ctr", "privileged.json")) as f:
        L["devices"] = json.load(f)["linux"].get("devices", [])
    L["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    return cfg


def security_context():
    cfg = container()
    p = cfg["process"]
    p["user"] = {"uid": 1000, "gid": 3000, "additionalGids": [3000, 2000, 4000]}
    p["noNewPrivileges"] = True
    caps = [c for c in p["capabilities"]["bounding"] if c != "CAP_NET_RAW"] + ["CAP_NET_ADMIN"]
    # non-root with added capabilities: containerd 1.6 sets effective/permitted like root's
    p["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    cfg["root"]["readonly"] = True
    cfg["linux"]["maskedPaths"] = cfg["linux"]["maskedPaths"] + ["/proc/asound"]
    return cfg


def resources():
    cfg = container(qos="guaranteed")
    cfg["process"]["oomScoreAdj"] = -997
    r = cfg["linux"]["resources"]
    r["cpu"] = {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
    r["memory"] = {"limit": 134217728, "swap": 134217728}
    r["hugepageLimits"] = [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": 0}]
    r["unified"] = {}
    return cfg


def burstable_hugepages():
    # the kubelet lists every huge page size of the node, limit 0 unless the pod asks for some
    cfg = container(qos="burstable")
    r = cfg["linux"]["resources"]
    r["cpu"] = {"shares": 256, "quota": 100000, "period": 100000}
    r["memory"] = {"limit": 268435456, "swap": 268435456}
    r["hugepageLimits"] = [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": 0}]
    return cfg


def besteffort():
    cfg = container(qos="besteffort")
    cfg["process"]["oomScoreAdj"] = 1000
    cfg["linux"]["resources"]["cpu"] = {"shares": 2, "period": 100000}
    return cfg


def host_namespaces():
    cfg = container()
    cfg["linux"]["namespaces"] = [{"type": "mount"}]  # hostNetwork, hostPID, hostIPC
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev/mqueue",)]
    return cfg


SCENARIOS = {
    "sandbox": sandbox,
    "container-default": container,
    "container-shared-pid": lambda: container(share_pid=True),
    "volume-private": lambda: volume("Private"),
    "volume-hosttocontainer": lambda: volume("HostToContainer"),
    "volume-bidirectional": lambda: volume("Bidirectional"),
    "privileged": privileged,
    "security-context": security_context,
    "resources-guaranteed": resources,
    "resources-besteffort": besteffort,
    "resources-burstable-hugepages": burstable_hugepages,
    "host-namespaces": host_namespaces,
}

if __name__ == "__main__":
    index = {"engine": "containerd 1.6 CRI plugin, HAND-DERIVED (see derive_cri.py)", "scenarios": {}}
    for name, fn in SCENARIOS.items():
        SOURCES.clear()
        cfg = copy.deepcopy(fn())
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(cfg, f, indent=1, sort_keys=True)
            f.write("\n")
        index["scenarios"][name] = {"command": ["derive_cri.py", name], "hand_derived": True,
                                    "sources": dict(SOURCES)}
    with open(os.path.join(HERE, "_captures.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
