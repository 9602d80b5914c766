"""Entry point of the evaluation worker process: ``python -m autometa._worker RFD WFD MEM_MB PARENT_PID``.

Started with :mod:`subprocess` rather than :mod:`multiprocessing` so that the user's main
script is never re-imported in the child (a script without a ``__main__`` guard would
otherwise run again) and no state is inherited by forking.
"""

from __future__ import annotations

import os
import signal
import sys


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in a child process
    """End this worker when the process that started it ends, also when that one is killed
    (SIGKILL, the OOM killer): a trial must not go on computing for nobody. Linux delivers
    SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); elsewhere, and as a second guard,
    a thread checks every second that the parent is still there."""
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    if os.getppid() != parent:  # the parent died before the guard was set
        os._exit(0)
    threading.Thread(target=watch, name="autometa-parent-watch", daemon=True).start()


def main(argv: list[str]) -> None:  # pragma: no cover - runs in a child process
    from multiprocessing.connection import Connection

    rfd, wfd, mem_mb = int(argv[0]), int(argv[1]), int(argv[2])
    _die_with_parent(int(argv[3]) if len(argv) > 3 else os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this worker
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach the parent's terminal as output
    reader, writer = Connection(rfd, writable=False), Connection(wfd, readable=False)
    from autometa.evaluation import serve

    # The memory limit is set by serve once Python, the libraries and the data are loaded: it
    # caps the trials, and a limit below what the worker already holds is reported, not
    # turned into an ImportError at start-up.
    serve(reader, writer, memory_limit_mb=mem_mb)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
