"""The worker's clock: wall time, or wall time sped up for demos and tests.

``now = start + (wall - anchor) * speed``, ``start`` defaulting to ``anchor``: at speed 1
without a start it is the wall clock; at 720 one real second is twelve clock minutes, so
a two-day wait passes in four minutes. A ``start`` pins the clock to a chosen moment (the
tests run at 11:00 in Paris whatever the hour). Every process of one run (workers,
simulator, tests) must share the settings so they agree on the time, and they must not
change across restarts or time would jump back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """Processing-time clock in epoch milliseconds."""

    speed: float = 1.0
    anchor_ms: int = 0
    start_ms: int | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"clock speed must be positive, got {self.speed}")

    def now_ms(self) -> int:
        """The current time on this clock."""
        wall_ms = time.time() * 1000
        if self.speed == 1.0 and self.start_ms is None:
            return int(wall_ms)
        return int(self.to_clock_ms(wall_ms))

    def to_clock_ms(self, wall_ms: float) -> float:
        """The clock time at a given wall-clock time (e.g. a Kafka record timestamp)."""
        start = self.anchor_ms if self.start_ms is None else self.start_ms
        return start + (wall_ms - self.anchor_ms) * self.speed

    def real_seconds(self, clock_ms: float) -> float:
        """How many real seconds a span of ``clock_ms`` takes on this clock."""
        return clock_ms / self.speed / 1000


def wall_ms() -> int:
    """The wall clock in epoch milliseconds (latency metrics, DLQ and audit stamps)."""
    return int(time.time() * 1000)


def clock_from(speed: float, anchor_ms: int | None, start_ms: int | None = None) -> Clock:
    """The clock for these settings; without an anchor the clock is anchored now."""
    if anchor_ms is None:
        anchor_ms = int(time.time() * 1000)
    return Clock(speed, anchor_ms, start_ms)
