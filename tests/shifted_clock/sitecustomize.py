"""Shift this Python process's wall clock by ``JOURNEY_TEST_CLOCK_SHIFT_S`` seconds.

Put on ``PYTHONPATH`` by ``tests/run_shifted.sh``, so that pytest and every Python process
it starts (workers, simulator, sender, CLI) run as on another date, the same offset in all
of them. time-machine shifts ``time.time``/``time_ns``, ``datetime.now``, ``date.today``,
``localtime``, ``gmtime``, ``strftime`` and ``clock_gettime(CLOCK_REALTIME)``; the monotonic
clock, which asyncio's timeouts use, is left alone. The clock keeps running.
"""

from __future__ import annotations

import os
import sys
import time

_shift = os.environ.get("JOURNEY_TEST_CLOCK_SHIFT_S")
if _shift:
    try:
        import time_machine
    except ImportError:  # another interpreter on the path (kafka.sh's python3): say so
        print(f"sitecustomize: clock NOT shifted in {sys.executable}", file=sys.stderr)
    else:
        time_machine.travel(time.time() + float(_shift), tick=True).start()
        # time-machine's clock starts ticking at its first reading, not at start(): read it
        # now, or a process whose first reading comes seconds later (a worker, after its
        # imports) runs that much behind the others.
        time.time()
