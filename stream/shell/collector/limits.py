"""The collector's limits: a token bucket per key, and a bound on what it holds at once.

Both take the time as an argument (monotonic seconds), so the tests drive them without
waiting. Neither waits: a request over a limit is answered 429 with the seconds after
which it would pass (``Retry-After``), and the caller decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.shell.collector.keys import ApiKey


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, up to ``burst``; a request takes its cost or nothing."""

    rate: float
    burst: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate: float, burst: float, now_s: float) -> TokenBucket:
        """A bucket that starts full."""
        return cls(rate, burst, burst, now_s)

    def take(self, cost: float, now_s: float) -> float:
        """0.0 if ``cost`` tokens were taken; else the seconds until they would be there
        (``math.inf`` for a cost above the burst, which can never pass)."""
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated_s = now_s
        if cost > self.burst:
            return math.inf
        if cost <= self.tokens:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """One bucket per key name; a key whose rate or burst changed (a reloaded keys file)
    starts a new, full bucket."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: ApiKey, records: int, now_s: float) -> float:
        """0.0 if the request may go; else the seconds to wait (see ``TokenBucket.take``)."""
        bucket = self._buckets.get(key.name)
        if bucket is None or (bucket.rate, bucket.burst) != (key.rate, key.burst):
            bucket = self._buckets[key.name] = TokenBucket.full(key.rate, key.burst, now_s)
        return bucket.take(records if key.per_event else 1, now_s)


def retry_after(wait_s: float) -> int:
    """Whole seconds for a Retry-After header: at least 1."""
    return max(1, math.ceil(wait_s))


@dataclass(slots=True)
class InFlight:
    """Requests and bytes held at once, below two bounds."""

    max_requests: int
    max_bytes: int
    requests: int = 0
    bytes: int = 0

    def try_enter(self, size: int) -> bool:
        """Count a request of ``size`` bytes in if both bounds allow it; False otherwise.
        One request alone always fits the byte bound (its own limit guards its size)."""
        if self.requests >= self.max_requests:
            return False
        if self.requests and self.bytes + size > self.max_bytes:
            return False
        self.requests += 1
        self.bytes += size
        return True

    def leave(self, size: int) -> None:
        """Count a request of ``size`` bytes out."""
        self.requests -= 1
        self.bytes -= size
