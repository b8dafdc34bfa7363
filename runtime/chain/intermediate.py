"""The intermediate process, for namespaces joined by path: it joins them, makes the new ones,
then forks the init (a pid namespace, joined or new, applies only to children) and reports the
init's pid. Without namespaces to join, the runtime clones the init directly and there is no
intermediate (chain/parent.py)."""
import os

from .. import linux as L
from .. import sync
from ..errors import Error, describe, unexpected, why
from . import init


def main(plan, launch, ch):
    """Entry of the intermediate process; never returns."""
    try:
        # our cgroups first, while the host's cgroup files are still ours to see (a joined mount
        # or user namespace would hide them or deny us): the init, our child, is born in them
        launch.placement.join()
        fds = [(t, os.open(p, os.O_RDONLY | os.O_CLOEXEC), flag) for t, p, flag in plan.ns_joins]
        for t, fd, flag in fds:
            if t == "user":  # first: it owns the others
                L.setns(fd, flag)
        if plan.new_flags & L.CLONE_NEWUSER:
            L.unshare(L.CLONE_NEWUSER)
            ch.send(sync.USERNS)
            ch.expect(sync.MAPPED, eof=sync.exit_now)
        for t, fd, flag in fds:
            if t != "user":
                try:
                    L.setns(fd, flag)
                except OSError as e:
                    raise Error(f"linux.namespaces: joining {t} namespace {plan.ns_paths[t]}: "
                                f"{why(e)}") from None
            os.close(fd)
        L.unshare(plan.new_flags & ~(L.CLONE_NEWUSER | L.CLONE_NEWCGROUP | L.CLONE_NEWTIME))
        pid = os.fork()
        if pid == 0:
            init.main(plan, launch, ch)
        ch.send(sync.PID, b"%d" % pid)
        os._exit(0)
    except Error as e:
        init.report(launch, ch, str(e))
    except OSError as e:
        init.report(launch, ch, describe(e))
    except BaseException as e:  # noqa: BLE001 - never unwind into the runtime's code
        init.report(launch, ch, f"container init: {unexpected(e)}")
    os._exit(1)
