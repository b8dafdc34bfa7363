"""The process chain: the code that makes a container's processes, from the runtime's side to
the execve of the user's program.

  parent.py        the runtime side: clone the init (or fork exec's process) and drive it over
                   the sync channel (runtime/sync.py) until it waits to be started
  intermediate.py  only for namespaces joined by path: join them, then fork the init
  init.py          the container's init: namespaces, root filesystem, the wait for `start`
  execproc.py      exec's new process: join the container, take its root
  finalize.py      the last steps, one path for init and exec, in the order of finalize.ORDER

Everything here after the fork is small, linear, and never returns into the runtime's code.

Below: what these processes may import once they stop seeing the host's files, the one list of
it. The init (after pivot_root) and exec's process (after its chroot) are forks of the runtime:
what the runtime has loaded before the fork is loaded there, and nothing else can be (the host's
sys.path is gone; worse, the container's files must never be imported as our code:
process.seal_imports). The runtime side calls these before it forks. (Here, not in a module of
its own: one import less on every create and exec; hot path, see runtime/hotpath.py.)
"""


def preload_init(plan):
    """What the init may use after pivot_root: import it now, before the clone."""
    from . import finalize, init  # noqa: F401 - the chain itself
    if plan.hooks.get("createContainer") or plan.hooks.get("startContainer"):
        from .. import hooks  # noqa: F401
        import json  # noqa: F401 - hooks.in_container: the init's hooks' state
    if plan.terminal:
        from .. import tty  # noqa: F401
    if plan.idmapped:
        from .. import idmap  # noqa: F401
    if plan.rootless:
        from .. import rootless  # noqa: F401
    if plan.sysctl:
        from .. import sysctl  # noqa: F401
    _process(plan.attrs, plan.mempolicy, plan.seccomp)


def preload_exec(attrs, mempolicy, seccomp, terminal):
    """What exec's process may use after its chroot: import it now, before the fork."""
    from . import execproc, finalize  # noqa: F401
    from .. import program, procfs  # noqa: F401 - the process's own steps
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

