"""The one place that touches faust-streaming internals (pinned: faust-streaming==0.15.3).

A Faust table decides which RocksDB partition and which changelog partition a write
goes to from the "current event" of the stream (a context variable). Inside a
``take_events`` batch that is the last event buffered, which can belong to another
partition than the key being written. ``partition_context`` sets the current event to
one of the partition being processed, so every table read and write in the block lands
on that partition.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from time import monotonic
from typing import Any

import faust
from faust import streams as faust_streams
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT
from faust.utils.tracing import finish_span
from mode.services import ServiceTask

log = logging.getLogger(__name__)

#: The paths ``journey_consumer_deliveries_total`` counts (see ``deliveries``).
DELIVERY_PATHS = ("direct", "waited", "behind", "dropped")

#: The faust-streaming release whose internals this module copies and patches.
FAUST_VERSION = "0.15.3"


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


#: Messages the worker's consumer handed to the streams, by path: ``direct`` (nothing could
#: block, the delivery was awaited inline) or ``waited`` (Faust's race against a
#: rebalance); ``behind`` counts those of them re-read behind the partition's read offset
#: and not yet acked (Faust would drop them), ``dropped`` the re-read ones already acked.
#: Read by the ``journey_consumer_deliveries_total`` metric.
deliveries: dict[str, int] = dict.fromkeys(DELIVERY_PATHS, 0)


def delivery_check(consumer: Any) -> Callable[[Any], bool]:
    """A check that delivering a message of a partition to its streams cannot block now.

    Faust's conductor callback for a message waits on three things: flow control (off
    during a rebalance), the producer buffer ebbing, and room in every subscribed stream's
    queue; it also takes the conductor's callback lock. When none of them would wait, the
    callback completes without suspending, so it needs no race against ``suspend_flow``.
    """
    app = consumer.app
    suspended = consumer.suspend_flow.is_set
    flow_active = app.flow_control.is_active
    buffer = app.producer.buffer
    conductor = app.topics
    tp_index = conductor._tp_index
    callback_lock = conductor._tp_to_callback_lock

    def can_deliver_now(tp: Any) -> bool:
        if suspended() or not flow_active() or callback_lock.locked():
            return False
        if buffer.size > buffer.max_messages:
            return False
        channels = tp_index.get(tp)
        if not channels:
            return False
        return not any(channel.queue.full() for channel in channels)

    return can_deliver_now


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - via broker
    """faust-streaming 0.15.3's ``Consumer._drain_messages`` with one change.

    Faust awaits every message's delivery through ``wait_first(callback(message),
    suspend_flow.wait())``: four asyncio tasks started, awaited and three cancelled per
    message, about half of a bare Faust agent's time. Here, when ``delivery_check`` says
    nothing can block, the callback is awaited directly; otherwise Faust's own race runs,
    so a rebalance still interrupts a delivery that waits. Everything else is Faust's code.
    """
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    can_deliver_now = delivery_check(self)
    counts = deliveries
    acked_index = self._acked_index
    committed_offset = self._committed_offset

    def redeliverable(tp: Any, offset: int) -> bool:
        committed = committed_offset.get(tp)
        return (committed is None or offset >= committed) and offset not in acked_index[tp]

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = getmany(timeout=1.0)
            # Sleeping because sometimes getmany is called in a loop
            # never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    behind = r_offset is not None and offset < r_offset
                    if behind and not redeliverable(tp, offset):
                        counts["dropped"] += 1  # acked already, or before the commit
                        continue
                    if behind:
                        # Faust drops it: after a rebalance a record prefetched from the
                        # old position can move the read offset past the committed one the
                        # partition was sought back to, and every record re-read in between
                        # is dropped, never acked, and the partition's commits stall for
                        # good. Delivered instead: processing is idempotent downstream.
                        counts["behind"] += 1
                        log.info(
                            "redelivering %s offset %s behind read offset %s", tp, offset, r_offset
                        )
                    else:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if can_deliver_now(tp):
                        counts["direct"] += 1
                        await callback(message)
                    else:
                        counts["waited"] += 1
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    if not behind:
                        set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


_faust_drain_messages = FaustConsumer._drain_messages


def install_drain_fast_path(enabled: bool = True) -> bool:
    """Use ``_drain_messages`` as the consumer drain loop (or, disabled, Faust's own).

    Process-wide and idempotent. Only for the pinned faust-streaming version the copy
    was taken from; on any other the worker keeps Faust's own loop, logs why, and
    returns False. Returns whether the fast path is in use.
    """
    if not enabled:
        FaustConsumer._drain_messages = _faust_drain_messages  # type: ignore[method-assign]
        return False
    if faust.__version__ != FAUST_VERSION:
        log.warning(
            "faust-streaming %s is not %s: keeping Faust's own consumer drain loop",
            faust.__version__,
            FAUST_VERSION,
        )
        return False
    FaustConsumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    return True


def enable_idempotent_producer() -> None:
    """Make the worker's producer idempotent (process-wide, idempotent).

    Faust turns aiokafka's ``enable_idempotence`` on only inside transactions. With it,
    a batch the producer retries after a broker restart or a lost response is written
    once: no duplicate changelog, action or explain records from retries. It needs
    ``acks=all``, which the worker sets anyway.
    """
    from faust.transport.drivers.aiokafka import Producer as AIOKafkaFaustProducer

    def settings_extra(self: Any) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    AIOKafkaFaustProducer._settings_extra = settings_extra  # type: ignore[method-assign]


async def _slurp_changelogs(self: Any) -> None:  # pragma: no cover - via broker
    """faust-streaming 0.15.3's ``Recovery._slurp_changelogs`` with three changes.

    Faust spends most of a restore on per-record overhead: an ``asyncio.wait_for`` (a
    task and a timer) around every queue read, two debug f-strings formatted for every
    record, and a recovery-end check that sums every partition's remaining offsets after
    every record. Here a record already queued is taken without ``wait_for``, nothing is
    formatted, and the end check runs when the queue is empty (at the end of a restore it
    always is). The records applied and their order are Faust's.
    """
    changelog_queue = self.tables.changelog_queue
    tp_to_table = self.tp_to_table
    active_tps = self.active_tps
    standby_tps = self.standby_tps
    active_offsets = self.active_offsets
    standby_offsets = self.standby_offsets
    active_events_received_at = self._active_events_received_at
    standby_events_received_at = self._standby_events_received_at
    buffers = self.buffers
    buffer_sizes = self.buffer_sizes
    processing_times = self._processing_times

    async def maybe_signal_recovery_end(timed_out: bool = False, timeout_count: int = 0) -> None:
        if timed_out and self.app.in_transaction and timeout_count > 1:
            await detect_aborted_tx()
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            self.signal_recovery_end.set()

    async def detect_aborted_tx() -> None:
        highwaters = self.active_highwaters
        offsets = self.active_offsets
        for tp, highwater in highwaters.items():
            behind = highwater is not None and offsets[tp] is not None and offsets[tp] < highwater
            if behind and await self.app.consumer.position(tp) >= highwater:
                log.info("Aborted tx until highwater for %s", tp)
                offsets[tp] = highwater

    timeout_count = 0
    while not self.should_stop:
        try:
            self.signal_recovery_end.clear()
            if changelog_queue.empty():
                try:
                    event = await asyncio.wait_for(changelog_queue.get(), timeout=5.0)
                except TimeoutError:
                    timeout_count += 1
                    if self.should_stop:
                        return
                    await maybe_signal_recovery_end(timed_out=True, timeout_count=timeout_count)
                    continue
            else:
                event = changelog_queue.get_nowait()
            now = monotonic()
            timeout_count = 0
            message = event.message
            tp = message.tp
            offset = message.offset
            bufsize = buffer_sizes.get(tp)
            is_active = False
            if tp in active_tps:
                is_active = True
                table = tp_to_table[tp]
                offsets = active_offsets
                if bufsize is None:
                    bufsize = buffer_sizes[tp] = table.recovery_buffer_size
                active_events_received_at[tp] = now
            elif tp in standby_tps:
                table = tp_to_table[tp]
                offsets = standby_offsets
                if bufsize is None:
                    bufsize = buffer_sizes[tp] = table.standby_buffer_size
                    standby_events_received_at[tp] = now
            else:
                log.warning("recovery unknown topic %s offset %s", tp, offset)

            seen_offset = offsets.get(tp, None)
            if seen_offset is None or offset > seen_offset:
                offsets[tp] = offset
                buf = buffers[table]
                buf.append(event)
                await table.on_changelog_event(event)
                if len(buf) >= bufsize:
                    table.apply_changelog_batch(buf)
                    buf.clear()
                    self._last_flush_at = now
                now_after = monotonic()
                if is_active:
                    last_processed_at = self._last_active_event_processed_at
                    if last_processed_at is not None:
                        processing_times.append(now_after - last_processed_at)
                        if len(processing_times) > self.num_samples_required_for_estimate:
                            processing_times.popleft()
                    self._last_active_event_processed_at = now_after

            if changelog_queue.empty():
                await maybe_signal_recovery_end()
                standby_ready = self._standbys_span is None and self.tables.standbys_ready
                if not standby_ready and not self.standby_remaining_total():
                    if self._standbys_span:
                        finish_span(self._standbys_span)
                        self._standbys_span = None
                    self.tables.on_standbys_ready()
        except Exception as ex:
            log.warning("Error in recovery %s", ex)


_faust_slurp_changelogs = Recovery._slurp_changelogs


def install_recovery_fast_path(enabled: bool = True) -> bool:
    """Use ``_slurp_changelogs`` for table recovery (or, disabled, Faust's own).

    Process-wide and idempotent; only on the pinned faust-streaming version.
    """
    if not enabled or faust.__version__ != FAUST_VERSION:
        Recovery._slurp_changelogs = _faust_slurp_changelogs
        return False
    Recovery._slurp_changelogs = ServiceTask(_slurp_changelogs)
    return True
