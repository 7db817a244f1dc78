"""The wall clock of the shell: stamps that must be real time whatever the processing clock.

The processing clock (``Clock``, possibly sped up for demos and tests) is described by the
settings: ``stream.config.Clock``, made by ``Settings.clock()``.
"""

from __future__ import annotations

import time


def wall_ms() -> int:
    """The wall clock in epoch milliseconds (latency metrics, DLQ and audit stamps)."""
    return int(time.time() * 1000)
