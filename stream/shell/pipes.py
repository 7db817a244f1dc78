"""Output into a pipe whose reader has gone: ``journey customer C1 | head``, or
``make demo | tee log`` ended by Ctrl-C.

Python ignores SIGPIPE, so a write into such a pipe raises ``BrokenPipeError``. The recipe
of Python's signal documentation ("Note on SIGPIPE") ends quietly: point stdout at
/dev/null, so that the interpreter's last flush cannot fail again, and exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

# what a shell reports for a process that SIGPIPE ended, as `seq 9999999 | head -1` does
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def discard_stdout() -> None:
    """Point the stdout file descriptor at /dev/null; whatever is still buffered goes there."""
    with contextlib.suppress(
        OSError, ValueError
    ):  # no descriptor (a test's capture): nothing to do
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
