"""The per-worker timer scheduler: turns passed deadlines into firing messages.

It never writes state. Each tick it (1) follows the assignment: drops revoked
partitions and loads the due table of new ones into the index; (2) moves the in-memory
window forward and loads the deadlines that entered it; (3) sends one firing message
(``Firing``, keyed by customer) to the customer-events topic for every customer
whose deadline passed. The process agent, which owns the customer's partition, handles
it like an event: it re-reads the state, fires what is due there and writes the result.
A duplicate, early or stale firing finds nothing due and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from stream.config import Clock
from stream.core.batch import Destination, Output
from stream.core.messages import Firing, encode
from stream.core.timer_index import TimerIndex
from stream.shell.faust import partition_items
from stream.shell.metrics import Metrics

log = logging.getLogger(__name__)

MAX_FIRINGS_PER_TICK = 5000
LOAD_YIELD_EVERY = 20_000

Send = Callable[[Output], Awaitable[Any]]  # ``Outputs.send``


def firing(key: bytes, due_ms: int, now_ms: int) -> Output:
    """The firing message for a customer, keyed like its events (the owner's partition)."""
    return Output(Destination.CUSTOMER_EVENTS, key, encode(Firing(due_ms, now_ms)))


class Scheduler:
    """Owns a TimerIndex and keeps it in step with the due table and the assignment."""

    def __init__(
        self,
        index: TimerIndex,
        due_table: Any,
        clock: Clock,
        metrics: Metrics,
        send: Send,
        owned_partitions: Callable[[], set[int] | None],
    ) -> None:
        self.index = index
        self.due_table = due_table
        self.clock = clock
        self.metrics = metrics
        self.send = send
        self.owned_partitions = owned_partitions
        self.next_advance_ms = 0

    async def tick(self) -> int:
        """One round; returns the number of firings sent."""
        owned = self.owned_partitions()
        if owned is None:  # rebalancing or recovering: the index waits
            return 0
        now_ms = self.clock.now_ms()
        added = self.index.assign(owned)
        if now_ms >= self.next_advance_ms:
            self.index.advance(now_ms)
            self.next_advance_ms = now_ms + self.index.horizon_ms // 2
            await self.load(self.index.partitions, "assignment" if added else "window")
        elif added:
            await self.load(added, "assignment")
        fired = 0
        for due in self.index.pop_due(now_ms, MAX_FIRINGS_PER_TICK):
            await self.send(firing(due.key, due.due_ms, now_ms))
            fired += 1
        self.metrics.timer_ticks.inc(fired)
        self.metrics.timer_index_size.set(len(self.index))
        return fired

    async def load(self, partitions: set[int], reason: str) -> int:
        """Load the due-table entries of these partitions that fall in the window."""
        started = time.perf_counter()
        loaded = 0
        self.index.begin_load()
        try:
            loaded = await self._load(partitions)
        finally:
            self.index.end_load()
        elapsed = time.perf_counter() - started
        self.metrics.timer_index_load.observe(elapsed)
        log.log(
            logging.INFO if reason == "assignment" else logging.DEBUG,
            "timer index (%s): loaded %d deadline(s) from %d partition(s) in %.3f s",
            reason,
            loaded,
            len(partitions),
            elapsed,
        )
        return loaded

    async def _load(self, partitions: set[int]) -> int:
        loaded = 0
        for partition in sorted(partitions):
            batch: list[tuple[bytes, int]] = []
            for key, value in partition_items(self.due_table, partition):
                batch.append((key, int(value)))
                if len(batch) >= LOAD_YIELD_EVERY:
                    loaded += self.index.load(partition, batch)
                    batch = []
                    await asyncio.sleep(0)  # let the agents and heartbeats run
                    if partition not in self.index.partitions:
                        break  # revoked meanwhile
            loaded += self.index.load(partition, batch)
        return loaded

    async def run(self, interval_s: float) -> None:
        """Tick forever; an error is logged and the next tick tries again."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer scheduler tick failed")
            await asyncio.sleep(interval_s)
