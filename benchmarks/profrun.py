"""Run the pyrunc command under cProfile: `python -I -S profrun.py OUT.prof PYRUNC ARGS...`.

Used by the tracing wrapper's `cprofile` mode (benchmarks/wrapper.py). The pyrunc command ends with
posix._exit (runtime/hotpath.py's exit_now), which would skip cProfile's dump: posix._exit and
os._exit are wrapped to dump first, in this process only (a forked or cloned child that calls it dumps nothing). Only the
runtime process is profiled: the init child's Python stops being profiled at its execve.
"""
import cProfile
import os
import posix
import sys


def main():
    out, script, *args = sys.argv[1:]
    me = os.getpid()
    prof = cProfile.Profile()
    real_exit = os._exit

    def _exit(code):
        if os.getpid() == me:
            prof.disable()
            prof.dump_stats(out)
        real_exit(code)

    os._exit = posix._exit = _exit
    sys.argv = [script, *args]
    with open(script, "rb") as f:
        code = compile(f.read(), script, "exec")
    g = {"__name__": "__main__", "__file__": script}
    prof.enable()
    try:
        exec(code, g)
    except SystemExit as e:
        prof.disable()
        prof.dump_stats(out)
        raise
    prof.disable()
    prof.dump_stats(out)


if __name__ == "__main__":
    main()
