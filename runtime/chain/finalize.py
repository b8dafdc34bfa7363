"""The last steps before execve, one path for the container's init and for `exec` (runc's
finalizeNamespace shared by its standard and setns inits).

ORDER is the sequence; each name is a function below. The reasons for the order:
  - fds first: only stdio and the checked --preserve-fds cross execve, and a seccomp filter may
    deny close_range or fcntl;
  - personality and the memory policy before any filter, which may deny them;
  - without noNewPrivileges, installing a filter needs CAP_SYS_ADMIN, which the user switch may
    drop (podman's default profile and capabilities): it goes in before the switch, as runc's;
    with noNewPrivileges it goes in as late as possible, after the switch, so that our own steps
    run unfiltered;
  - the LSM label is written for execve (it takes effect there), before the switch that may take
    the right to write it;
  - the program was opened earlier, in the root (runtime/program.py): execve runs that file.
`run(t, first, stop)` runs a slice: the init runs the steps through `user` before or after it
waits for `start` (see chain/init.py).
"""
import os

from .. import linux as L
from .. import procfs, process, program
from ..errors import Error, why
from ..hotpath import sig

ORDER = ("close_fds", "default_signals", "personality", "mempolicy", "seccomp_before_user",
         "apparmor", "user", "seccomp_after_user", "execve")
USER_SWITCH = ORDER.index("user")


class Tail:
    """What the steps apply, computed before the fork (the plans) and in the child (program)."""
    __slots__ = ("preserved", "first_closed", "attrs", "mempolicy", "seccomp", "prepared",
                 "plan", "program", "env", "notify_state")

    def __init__(self, plan, preserved, first_closed, attrs=None, mempolicy=None, seccomp=None,
                 prepared=None, notify_state=None):
        self.plan = plan                # process.Plan: user, caps, apparmor, nnp
        self.preserved = preserved      # the --preserve-fds (and LISTEN_FDS) the caller really passed
        self.first_closed = first_closed  # every fd from here on is closed at execve
        self.attrs = attrs              # procattr plan (personality)
        self.mempolicy = mempolicy      # mempolicy plan
        self.seccomp = seccomp          # linux.seccomp of the config (listenerPath, metadata)
        self.prepared = prepared        # seccomp.Filter (compiled by the runtime), loaded by a seccomp step
        self.notify_state = notify_state  # () -> the state dict for a seccomp listener
        self.program = None             # program.Program, opened in the root
        self.env = None                 # the environment for execve


def close_fds(t):
    L.close_range(t.first_closed, 0xFFFFFFFF, 4)  # CLOSE_RANGE_CLOEXEC
    for fd in t.preserved:
        os.set_inheritable(fd, True)  # passed on as runc does, whatever flag the caller set


def default_signals(t):
    # Python ignores these two, and ignored dispositions survive execve (_signal is built in:
    # no import from the filesystem we no longer see)
    sig.signal(sig.SIGPIPE, sig.SIG_DFL)
    sig.signal(sig.SIGXFSZ, sig.SIG_DFL)


def personality(t):
    if t.attrs is not None:
        from .. import procattr
        procattr.apply_personality(t.attrs)


def mempolicy(t):
    if t.mempolicy is not None:
        from .. import mempolicy as mp
        mp.apply(t.mempolicy)


def _load_seccomp(t):
    from .. import seccomp
    state = None
    if t.seccomp.get("listenerPath"):
        # computed before the filter is in: what it imports or parses runs syscalls (openat,
        # stat) that the filter may deny or notify
        state = t.notify_state()
    nfd = seccomp.load(t.prepared)
    t.prepared = None
    if nfd is not None:
        seccomp.send_notify_fd(t.seccomp["listenerPath"], nfd, state, t.seccomp.get("listenerMetadata"))
        os.close(nfd)


def seccomp_before_user(t):
    if t.prepared is not None and not t.plan.nnp:
        _load_seccomp(t)


def apparmor(t):
    if t.plan.apparmor:
        # the profile takes effect at execve (checked to exist on this host at create)
        procfs.write("self/attr/apparmor/exec", f"exec {t.plan.apparmor}")


def user(t):
    process.apply_user(t.plan)


def seccomp_after_user(t):
    if t.prepared is not None:
        _load_seccomp(t)  # noNewPrivileges: as late as possible


def execve(t):
    program.execute(t.program, t.env)


_STEPS = {name: globals()[name] for name in ORDER}


def open_process(plan, attrs):
    """The steps before the wait, the same for the init and exec (runc's): the environment (HOME
    from the container's /etc/passwd when it has none), the cwd and the program resolved in the
    root (runtime/program.py), then what needs our privileges: rlimits, oomScoreAdj, scheduler
    and ioPriority. Returns (Program, environment dict) for the execve step."""
    env = process.env_dict(plan.env)
    if not env.get("HOME"):  # an empty HOME= counts as none (runc's)
        env["HOME"] = program.home_dir(plan.uid)
    try:
        program.chdir_in_root(plan.cwd)  # never a leaked host fd's /proc/self/fd link (CVE-2024-21626)
    except OSError as e:
        raise Error(f"unable to start container process: chdir to cwd ({plan.cwd!r}) set in "
                    f"config.json failed: {why(e).lower()}") from None
    try:
        prog = program.resolve(plan.args, env)  # in the root, by fd
    except Error as e:
        raise Error(f"unable to start container process: {e}") from None
    process.apply_early(plan)
    if attrs is not None:
        from .. import procattr
        procattr.apply(attrs)
    return prog, env


def run(t, first=0, stop=len(ORDER)):
    """Run ORDER[first:stop]; the last step, execve, returns only by raising."""
    for name in ORDER[first:stop]:
        _STEPS[name](t)
