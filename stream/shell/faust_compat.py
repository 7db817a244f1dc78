"""The one place that touches faust-streaming internals (pinned: faust-streaming==0.15.3).

A Faust table decides which RocksDB partition and which changelog partition a write
goes to from the "current event" of the stream (a context variable). Inside a
``take_events`` batch that is the last event buffered, which can belong to another
partition than the key being written. ``partition_context`` sets the current event to
one of the partition being processed, so every table read and write in the block lands
on that partition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust import streams as faust_streams
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT


@contextmanager
def partition_context(event: EventT) -> Iterator[None]:
    """Make ``event`` (and so its partition) Faust's current event inside the block."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def group_by_partition(events: Sequence[EventT]) -> dict[int, list[EventT]]:
    """Events of a batch grouped by source partition, in offset order within each."""
    groups: dict[int, list[EventT]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


def partition_items(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) a table holds locally for one partition.

    RocksDB keeps one database per partition; the memory store (unit tests) has no
    partitions, so there every item is yielded for every partition asked.
    """
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        yield from list(store.items())
        return
    db = dbs.get(partition)
    if db is None:
        return
    yield from store._visible_items(db)


def estimated_keys(table: Any, partitions: set[int]) -> int:
    """About how many keys a table holds for these partitions (RocksDB's own estimate,
    no scan; the memory store of unit tests counts exactly)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return len(store.data) if hasattr(store, "data") else 0
    total = 0
    for partition in partitions:
        db = dbs.get(partition)
        if db is not None:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
    return total


_fetch_max_wait_ms: int | None = None


def set_fetch_max_wait_ms(milliseconds: int) -> None:
    """Make the worker's Kafka consumer wait at most this long in a fetch request.

    Faust hard-codes 1,500 ms. aiokafka leaves a partition with unconsumed buffered
    records out of the next fetch request, so under steady traffic new records on it wait
    for the in-flight request to time out on the idle partitions: up to 1.5 s of latency
    for events and timer firings (measured: 1.4 s median firing lag). Applies to every
    worker consumer this process creates afterwards.
    """
    global _fetch_max_wait_ms
    if _fetch_max_wait_ms is None:
        original = AIOKafkaConsumerThread._create_worker_consumer

        def create_worker_consumer(self: Any, transport: Any) -> Any:
            consumer = original(self, transport)
            if _fetch_max_wait_ms is not None:
                consumer._fetch_max_wait_ms = _fetch_max_wait_ms
            return consumer

        AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    _fetch_max_wait_ms = milliseconds
