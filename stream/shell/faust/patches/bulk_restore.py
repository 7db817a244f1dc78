"""Bulk restore: a changelog partition far behind is read by a plain consumer into RocksDB
write batches before Faust's own recovery starts (``JOURNEY_BULK_RESTORE_MIN_RECORDS``).

Faust restores a table one record at a time through its consumer, its changelog queue and
a per-record callback: about 22,000 records/s on the 2-core reference VM, where a plain
consumer writing RocksDB write batches reaches about 80,000/s (bench/scale.py). Here,
when a recovery has computed the highwaters of its active changelog partitions, those at
least ``min_records`` behind their table's persisted offset are read with a plain
aiokafka consumer: each fetched batch of a partition becomes one RocksDB write batch that
also carries the partition's new persisted offset (Faust's own offset key), so a crash or
a rebalance mid-way leaves a database whose offset says exactly what it holds (the
batches skip the write-ahead log and are flushed at the end; see ``_write``). Faust's
recovery then starts from that offset and reads whatever is left, as usual.

What is written is what Faust's ``Store.apply_changelog_batch`` writes: the record's key
and value as they are, a tombstone as a delete. The restore stops at half the recovery's
broker request timeout (Faust gives up the whole recovery at the timeout); Faust
restores the rest. Tables not on RocksDB (the memory store of unit tests) and standby
partitions are left to Faust.

Wraps ``Recovery._build_offsets`` (called for the actives right after their highwaters
are known, before Faust seeks) and relies on the RocksDB store's offset key and
per-partition databases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from rocksdict import WriteOptions

from stream.shell.faust.pinned import require_pinned_faust
from stream.shell.faust.stores import write_batch

log = logging.getLogger(__name__)

faust_build_offsets = Recovery._build_offsets

#: Wrapped (the recovery's offsets), and relied on (the recovery calls it for the actives
#: once their highwaters are known; the store's offset key and databases).
UPSTREAM = (
    faust_build_offsets,
    Recovery._restart_recovery.fun,
    RocksDBStore.persisted_offset,
    RocksDBStore.set_persisted_offset,
    RocksDBStore.apply_changelog_batch,
    RocksDBStore._db_for_partition,
)
FETCH_MAX_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_MAX_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 20_000  # per getmany: one write batch per partition of it
UNLOGGED = WriteOptions()
# A settable attribute (rocksdict's stub calls it a method).
UNLOGGED.disable_wal = True  # type: ignore[method-assign,assignment]


@dataclass
class BulkRestoreOptions:
    """The knobs: read when a recovery builds its offsets."""

    min_records: int = 0  # 0: off
    client: Callable[[], AIOKafkaConsumer] | None = None  # a consumer outside any group


options = BulkRestoreOptions()


@dataclass(frozen=True)
class Span:
    """The changelog offsets ``start`` to ``last`` a partition's store lacks."""

    store: Any  # a RocksDB Store
    start: int
    last: int

    @property
    def records(self) -> int:
        """How many offsets the span covers (a compacted log holds fewer records)."""
        return self.last - self.start + 1


def behind(
    stores: Mapping[Any, Any],
    offsets: Mapping[Any, int | None],
    highwaters: Mapping[Any, int],
    min_records: int,
) -> dict[Any, Span]:
    """The partitions whose store is at least ``min_records`` (> 0) behind the highwater
    (the last offset); ``offsets`` hold the last offset applied (None or -1: none)."""
    spans = {}
    for tp, store in stores.items():
        last = highwaters.get(tp, -1)
        applied = offsets.get(tp)
        start = 0 if applied is None or applied < 0 else applied + 1
        if last - start + 1 >= min_records > 0:
            spans[tp] = Span(store, start, last)
    return spans


@dataclass
class Progress:
    """What a bulk restore has applied so far."""

    records: int = 0
    applied: dict[Any, int] = field(default_factory=dict)  # tp: last offset written
    complete: bool = False  # every span read to its end


async def restore(
    consumer: AIOKafkaConsumer, spans: Mapping[Any, Span], deadline: float
) -> Progress:
    """Read every span into its table's database, a write batch per fetched batch, until
    done or ``deadline`` (monotonic); the offsets go in with the records."""
    progress = Progress()
    topic_partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in spans}
    consumer.assign(list(topic_partitions))
    for kafka_tp, tp in topic_partitions.items():
        consumer.seek(kafka_tp, spans[tp].start)
    remaining = set(topic_partitions)
    try:
        while remaining and time.monotonic() < deadline:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=MAX_RECORDS)
            for kafka_tp, messages in fetched.items():
                tp = topic_partitions[kafka_tp]
                if messages:
                    _write(spans[tp].store, tp, messages)
                    progress.applied[tp] = messages[-1].offset
                    progress.records += len(messages)
            for kafka_tp in list(remaining):
                if await consumer.position(kafka_tp) > spans[topic_partitions[kafka_tp]].last:
                    remaining.discard(kafka_tp)
    finally:  # also when cancelled (a new rebalance): what was written is kept, durably
        for tp in progress.applied:
            spans[tp].store._db_for_partition(tp.partition).flush()
    progress.complete = not remaining
    return progress


def _write(store: RocksDBStore, tp: Any, messages: list[Any]) -> None:
    """One write batch: the records as Faust applies them, and the partition's offset.

    Without the write-ahead log (a third faster): a crash loses the newest batches, never
    part of one, and the offset goes with them; ``restore`` flushes at its end, before
    Faust writes anything logged on top (which a crash would otherwise replay over a gap).
    """
    changes = ((message.key, message.value) for message in messages)
    write_batch(store, tp.partition, changes, messages[-1].offset, UNLOGGED)


async def build_offsets(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
    """Faust's ``_build_offsets``; for the actives, a bulk restore of those far behind
    first, so that Faust starts reading after what it wrote (through the broker:
    tests/integration/test_recovery.py).

    A bulk restore that fails (a broker error, say) is logged and left to Faust, which
    reads from the offset it knew: what the bulk restore wrote is written again, in the
    same order, to the same result."""
    if title == "active" and options.min_records > 0 and options.client is not None:
        stores = {
            tp: self.tp_to_table[tp].data
            for tp in tps
            if tp in self.tp_to_table and isinstance(self.tp_to_table[tp].data, RocksDBStore)
        }
        spans = behind(stores, destination, self.active_highwaters, options.min_records)
        if spans:
            budget = self.app.conf.broker_request_timeout / 2
            try:
                progress = await _timed_restore(options.client, spans, budget)
            except Exception as exc:  # Faust's own loop can still restore them all
                log.warning("Bulk restore failed (%r): Faust restores the partitions", exc)
            else:
                for tp, offset in progress.applied.items():
                    destination[tp] = offset
    await faust_build_offsets(self, consumer, tps, destination, title)


async def _timed_restore(
    client: Callable[[], AIOKafkaConsumer], spans: Mapping[Any, Span], budget_s: float
) -> Progress:  # pragma: no cover - via broker
    """Run ``restore`` with a fresh consumer, logging what it did and how fast."""
    wanted = sum(span.records for span in spans.values())
    log.info(
        "Bulk restore: reading up to %d changelog records of %d partitions", wanted, len(spans)
    )
    started = time.monotonic()
    consumer = client()
    await consumer.start()
    try:
        progress = await restore(consumer, spans, started + budget_s)
    finally:
        await consumer.stop()
    elapsed = time.monotonic() - started
    log.info(
        "Bulk restore: %d records in %.1f s (%.0f records/s)%s",
        progress.records,
        elapsed,
        progress.records / elapsed if elapsed else 0.0,
        "" if progress.complete else " (out of time: Faust restores the rest)",
    )
    return progress


def install(min_records: int, client: Callable[[], AIOKafkaConsumer] | None) -> None:
    """Bulk-restore active changelog partitions ``min_records`` or more behind (0: off),
    reading with consumers from ``client`` (the wrapper goes in once per process)."""
    require_pinned_faust(__name__)
    options.min_records = min_records
    options.client = client
    if Recovery._build_offsets is not build_offsets:
        Recovery._build_offsets = build_offsets  # type: ignore[method-assign]
