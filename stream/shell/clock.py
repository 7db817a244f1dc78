"""The worker's clock: wall time, or wall time sped up for demos and tests.

``now = anchor + (wall - anchor) * speed``: at ``speed`` 1 it is the wall clock; at 720
one real second is twelve simulated minutes, so a two-day wait passes in four minutes.
Every process of one run (workers, simulator, tests) must share ``anchor`` and
``speed`` so they agree on the time, and the anchor must not change across restarts or
time would jump back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """Processing-time clock in epoch milliseconds."""

    speed: float = 1.0
    anchor_ms: int = 0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"clock speed must be positive, got {self.speed}")

    def now_ms(self) -> int:
        """The current time on this clock."""
        wall_ms = time.time() * 1000
        if self.speed == 1.0:
            return int(wall_ms)
        return int(self.anchor_ms + (wall_ms - self.anchor_ms) * self.speed)

    def real_seconds(self, clock_ms: float) -> float:
        """How many real seconds a span of ``clock_ms`` takes on this clock."""
        return clock_ms / self.speed / 1000


def clock_from(speed: float, anchor_ms: int | None) -> Clock:
    """The clock for these settings; without an anchor a sped-up clock starts now."""
    if anchor_ms is None:
        anchor_ms = int(time.time() * 1000)
    return Clock(speed, anchor_ms)
