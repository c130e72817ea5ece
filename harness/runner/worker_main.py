"""The entry of a sandboxed worker: ``python -m harness.runner.worker_main FD SLOT_FD``.

A sandboxed worker is a fresh interpreter that ``bwrap`` starts (:mod:`harness.runner.sandboxed`),
not a fork, so it takes its end of the coordinator's socket and its output slot
(:mod:`harness.runner.output_slot`) as inherited file descriptors and answers the same requests as any worker. Its stdout and stderr are already the log file the
coordinator opened; ``bwrap --die-with-parent`` ends it when the coordinator goes. It says
:data:`READY` once its imports are done, so that their time is not counted in the submission's budget.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from harness.runner.worker import answer

# Sent once the interpreter has imported torch and the harness: what comes after is the submission's.
READY = b"esr-worker-ready"


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not all(arg.isdigit() for arg in argv):
        print("usage: python -m harness.runner.worker_main FD SLOT_FD", file=sys.stderr)
        raise SystemExit(2)
    connection = Connection(int(argv[0]))
    connection.send_bytes(READY)
    answer(connection, int(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
