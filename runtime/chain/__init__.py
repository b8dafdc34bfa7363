"""The process chain: the code that makes a container's processes, from the runtime's side to
the execve of the user's program.

  parent.py        the runtime side: clone the init (or fork exec's process) and drive it over
                   the sync channel (runtime/sync.py) until it waits to be started
  intermediate.py  only for namespaces joined by path: join them, then fork the init
  init.py          the container's init: namespaces, root filesystem, the wait for `start`
  execproc.py      exec's new process: join the container, take its root
  finalize.py      the last steps, one path for init and exec, in the order of finalize.ORDER
  preload.py       what these processes may import once the host's files are out of sight

Everything here after the fork is small, linear, and never returns into the runtime's code.
"""
