"""The init's plan: everything the container's init needs, computed and checked by the runtime
process before the clone (container.prepare), then read by the init (runtime/init.py) and the
rootfs code. One declared shape instead of attributes added here and there.

A slotted class, not a dataclass: `dataclasses` imports inspect and re (milliseconds on every
create). Not frozen: create attaches what only exists later (the exec FIFO, the console, the
cgroup placement), and the init records its channel and whether it was started.
"""


class InitPlan:
    __slots__ = (
        # root filesystem
        "rootfs",            # str: the bundle's rootfs, absolute and resolved
        "root_readonly",     # bool: root.readonly
        "no_pivot",          # bool: --no-pivot (MS_MOVE + chroot instead of pivot_root)
        "root_propagation",  # int: MS_* of linux.rootfsPropagation, 0 for the default
        "mounts",            # [rootfs.Mount]: the mount plan (rootfs.plan_mounts)
        "devices",           # [dict]: linux.devices, checked
        "masked_paths",      # [str]: linux.maskedPaths
        "readonly_paths",    # [str]: linux.readonlyPaths
        # namespaces
        "new_flags",         # int: CLONE_NEW* of the namespaces to make
        "ns_paths",          # {type: path}: namespaces to join
        "ns_joins",          # [(type, path, flag)]: in setns order (user first)
        "userns",            # bool: a user namespace (new or joined)
        "cgroupns",          # bool: a cgroup namespace
        "uid_mappings",      # [dict]: linux.uidMappings
        "gid_mappings",      # [dict]: linux.gidMappings
        "time_offsets",      # {clock: {secs, nanosecs}}: linux.timeOffsets
        "hostname",          # str or None
        "domainname",        # str or None
        "net_devices",       # netdev plan or None: linux.netDevices
        "rootless",          # bool: the runtime is not root (runtime/rootless.py)
        # the process
        "proc",              # process.Plan: user, caps, rlimits, env, args, cwd
        "terminal",          # bool: process.terminal
        "preserve_fds",      # int: --preserve-fds (+ LISTEN_FDS)
        "preserved",         # [int]: the fds of that range the caller really passed
        "attrs",             # procattr plan or None: scheduler, ioPriority, personality
        "mempolicy",         # mempolicy plan or None
        "sysctl",            # [(key, path, value)]: linux.sysctl, checked against the namespaces
        "seccomp",           # dict or None: linux.seccomp, checked
        "hooks",             # {phase: [hook]}
        "runtime_hooks",     # bool: prestart or createRuntime hooks (run by the runtime process)
        # attached by create after prepare
        "cgroup_manager",    # cgroups.Manager
        "placement",         # cgroups.Placement: how the init joins its cgroups
        "fifo_fd",           # int: the exec FIFO (create), -1 for run
        "console",           # socket or None: where the init sends the pty master
        "console_size",      # dict or None: process.consoleSize
        # the init's own, after the clone
        "sync",              # sync.Channel to the runtime
        "started",           # bool: `start` released us (errors then go through the FIFO too)
    )

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)
        self.fifo_fd = -1
        self.started = False
        self.rootless = False
