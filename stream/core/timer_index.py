"""The scheduler's deadline-ordered index of customers with something due. Pure, no I/O.

The truth is the customer state (pending timers and held actions, in the changelog) and
its one-number summary, the due table (customer key -> earliest deadline). This index is
a worker's in-memory view of that table for the partitions it owns, rebuilt from it on
assignment, so firing never scans customers.

Memory is bounded by a horizon: only deadlines before ``loaded_until_ms`` are held. The
scheduler moves the window forward (``advance``) and loads the due table's entries that
fall inside it; deadlines further out stay on disk until then. A 30-day win-back timer
costs nothing in memory for 30 days.

Stale heap entries (a key re-armed or cancelled) are skipped lazily and compacted away
when they outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Due:
    """A customer whose earliest deadline has passed."""

    key: bytes
    partition: int
    due_ms: int


class TimerIndex:
    """Deadlines within the loaded window, for the owned partitions."""

    def __init__(self, horizon_ms: int) -> None:
        if horizon_ms <= 0:
            raise ValueError(f"horizon_ms must be positive, got {horizon_ms}")
        self.horizon_ms = horizon_ms
        self.loaded_until_ms = 0
        self.partitions: set[int] = set()
        self._heap: list[tuple[int, bytes, int]] = []
        self._live: dict[bytes, tuple[int, int]] = {}  # key -> (due_ms, partition)
        # Keys the owner updated while a load runs: the load's (older) reading must not win.
        self._fresh: set[bytes] | None = None

    def __len__(self) -> int:
        """Customers with a deadline in the loaded window."""
        return len(self._live)

    def update(self, key: bytes, partition: int, due_ms: int | None) -> None:
        """Record a customer's earliest deadline (None: nothing pending)."""
        if self._fresh is not None:
            self._fresh.add(key)
        self._put(key, partition, due_ms)

    def _put(self, key: bytes, partition: int, due_ms: int | None) -> None:
        if due_ms is None or due_ms >= self.loaded_until_ms or partition not in self.partitions:
            self._live.pop(key, None)
            return
        if self._live.get(key) == (due_ms, partition):
            return
        self._live[key] = (due_ms, partition)
        heapq.heappush(self._heap, (due_ms, key, partition))
        if len(self._heap) > 2 * len(self._live) + 1024:
            self._compact()

    def begin_load(self) -> None:
        """Start loading from the due table: from now on the owner's ``update`` wins over it."""
        self._fresh = set()

    def end_load(self) -> None:
        """Loading is over."""
        self._fresh = None

    def load(self, partition: int, entries: Iterable[tuple[bytes, int]]) -> int:
        """Add a partition's due-table entries inside the window; returns how many.

        A key the owner updated since ``begin_load`` is skipped: the table reading may be
        older than what the owner just wrote.
        """
        loaded = 0
        fresh = self._fresh or ()
        for key, due_ms in entries:
            if due_ms < self.loaded_until_ms and key not in fresh:
                self._put(key, partition, due_ms)
                loaded += 1
        return loaded

    def advance(self, now_ms: int) -> None:
        """Move the window's end to ``now_ms + horizon``; the caller then loads the due table."""
        self.loaded_until_ms = max(self.loaded_until_ms, now_ms + self.horizon_ms)

    def assign(self, partitions: Iterable[int]) -> set[int]:
        """Own exactly these partitions; returns the new ones, which the caller loads."""
        owned = set(partitions)
        added = owned - self.partitions
        revoked = self.partitions - owned
        self.partitions = owned
        if revoked:
            self._live = {k: v for k, v in self._live.items() if v[1] not in revoked}
            self._compact()
        return added

    def pop_due(self, now_ms: int, limit: int) -> list[Due]:
        """Up to ``limit`` customers whose deadline is at or before ``now_ms``, earliest first.

        They leave the index: the owner ``update``s them again after handling the firing.
        """
        due: list[Due] = []
        heap, live = self._heap, self._live
        while heap and heap[0][0] <= now_ms and len(due) < limit:
            due_ms, key, partition = heapq.heappop(heap)
            if live.get(key) == (due_ms, partition):
                del live[key]
                due.append(Due(key, partition, due_ms))
        return due

    def next_due_ms(self) -> int | None:
        """The earliest live deadline, or None."""
        heap, live = self._heap, self._live
        while heap and live.get(heap[0][1]) != (heap[0][0], heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _compact(self) -> None:
        self._heap = [(due, key, partition) for key, (due, partition) in self._live.items()]
        heapq.heapify(self._heap)
