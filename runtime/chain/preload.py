"""What a process of the chain may import after it stops seeing the host's files.

The init (after pivot_root) and exec's process (after its chroot) are forks of the runtime: what
the runtime has loaded before the fork is loaded there, and nothing else can be (the host's
sys.path is gone; worse, the container's files must never be imported as our code:
process.seal_imports). This is the one list of those imports, per plan; the runtime calls it
before it forks."""


def for_init(plan):
    from . import finalize, init  # noqa: F401 - the chain itself
    if plan.hooks.get("createContainer") or plan.hooks.get("startContainer"):
        from .. import hooks  # noqa: F401
    if plan.terminal:
        from .. import tty  # noqa: F401
    if plan.idmapped:
        from .. import idmap  # noqa: F401
    if plan.rootless:
        from .. import rootless  # noqa: F401
    if plan.sysctl:
        from .. import sysctl  # noqa: F401
    _process(plan.attrs, plan.mempolicy, plan.seccomp)


def for_exec(attrs, mempolicy, seccomp, terminal):
    from . import execproc, finalize  # noqa: F401
    from .. import program, procfs, rootfs  # noqa: F401 - the process's own steps
    if terminal:
        from .. import tty  # noqa: F401
    _process(attrs, mempolicy, seccomp)


def _process(attrs, mempolicy, seccomp):
    """The finalize steps' own modules (chain/finalize.py imports them where they run)."""
    if attrs is not None:
        from .. import procattr  # noqa: F401
    if mempolicy is not None:
        from .. import mempolicy as _  # noqa: F401
    if seccomp is not None:
        if seccomp.get("listenerPath"):  # send_notify_fd's
            import array  # noqa: F401
            import json  # noqa: F401
        from .. import seccomp as _  # noqa: F401,F811
