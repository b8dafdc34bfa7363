"""What the runtime computes before the clone, in declared shapes: the init's plan (InitPlan), and
the records it is made of elsewhere (process.Plan, rootfs.Mount), all frozen; beside it, Launch:
what only exists once the runtime starts acting (the exec FIFO, the console, the cgroups, the
channel), which the runtime fills in and the init reads.

Records are frozen and slotted, what @dataclass(frozen=True, slots=True) gives, by hand: no
dataclasses import on create (hot path: see runtime/hotpath.py).
"""


class Record:
    """A frozen, slotted record: every field given by name at construction, none changed after;
    `replace` makes a changed copy."""
    __slots__ = ()

    def __init__(self, **fields):
        slots = self.__slots__
        if fields.keys() != set(slots):
            missing = [s for s in slots if s not in fields]
            extra = [f for f in fields if f not in slots]
            raise TypeError(f"{type(self).__name__}: missing {missing}, unknown {extra}")
        for name in slots:
            object.__setattr__(self, name, fields[name])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__}.{name}: a plan is frozen (use replace)")

    __delattr__ = __setattr__

    def replace(self, **changes):
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return type(self)(**fields)

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(
            f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


class InitPlan(Record):
    """Everything the container's init needs, checked by the runtime process before the clone
    (built in one place: runtime/prepare.py)."""
    __slots__ = (
        # root filesystem
        "rootfs",            # str: the bundle's rootfs, absolute and resolved
        "root_readonly",     # bool: root.readonly
        "no_pivot",          # bool: --no-pivot (MS_MOVE + chroot instead of pivot_root)
        "root_propagation",  # int: MS_* of linux.rootfsPropagation, 0 for the default
        "mounts",            # (rootfs.Mount, ...): the mount plan (rootfs.plan_mounts)
        "devices",           # [dict]: linux.devices, checked
        "masked_paths",      # [str]: linux.maskedPaths
        "readonly_paths",    # [str]: linux.readonlyPaths
        # namespaces
        "new_flags",         # int: CLONE_NEW* of the namespaces to make
        "ns_paths",          # {type: path}: namespaces to join
        "ns_joins",          # ((type, path, flag), ...): in setns order (user first)
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
        "preserved",         # (int, ...): the fds of that range the caller really passed
        "attrs",             # procattr plan or None: scheduler, ioPriority, personality
        "mempolicy",         # mempolicy plan or None
        "sysctl",            # [(key, path, value)]: linux.sysctl, checked against the namespaces
        "seccomp",           # dict or None: linux.seccomp, checked
        "seccomp_filter",    # seccomp.Filter or None: compiled (or from the cache, runtime/bpfcache.py)
        "hooks",             # {phase: [hook]}
        "runtime_hooks",     # bool: prestart or createRuntime hooks (run by the runtime process)
    )

    @property
    def idmapped(self):
        return any(m.idmap for m in self.mounts)


class Launch:
    """What the runtime attaches to a plan as it acts, and what the init records of its own.
    Mutable on purpose, and small: the plan above is what was decided."""
    __slots__ = (
        "cgroup_manager",    # cgroups.Manager
        "placement",         # cgroups.Placement: how the init joins its cgroups
        "fifo_fd",           # int: the exec FIFO (create), -1 for run
        "console",           # socket or None: where the init sends the pty master
        "console_size",      # dict or None: process.consoleSize
        "trees",             # {mount index: fd}: detached idmapped trees (runtime/idmap.py)
        "sync",              # sync.Channel to the runtime (the init's end)
        "started",           # bool: `start` released us (errors then go through the FIFO too)
    )

    def __init__(self):
        self.cgroup_manager = self.placement = self.console = self.console_size = self.sync = None
        self.fifo_fd = -1
        self.trees = {}
        self.started = False
