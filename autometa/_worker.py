"""Entry point of the evaluation worker process: ``python -m autometa._worker RFD WFD MEM_MB``.

Started with :mod:`subprocess` rather than :mod:`multiprocessing` so that the user's main
script is never re-imported in the child (a script without a ``__main__`` guard would
otherwise run again) and no state is inherited by forking.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:  # pragma: no cover - runs in a child process
    from multiprocessing.connection import Connection

    rfd, wfd, mem_mb = int(argv[0]), int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this worker
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach the parent's terminal as output
    if mem_mb > 0:
        import resource

        limit = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    reader, writer = Connection(rfd, writable=False), Connection(wfd, readable=False)
    from autometa.evaluation import serve

    serve(reader, writer)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
