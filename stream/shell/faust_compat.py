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

from stream.shell.continuity import Continuity, Verdict

log = logging.getLogger(__name__)

#: The paths ``journey_consumer_deliveries_total`` counts (see ``deliveries``).
DELIVERY_PATHS = ("direct", "waited", "behind", "dropped", "resought", "gap", "suspended")

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
#: and not yet acked (Faust would drop them), ``gap`` those after a confirmed hole;
#: ``dropped`` counts re-read records already acked, ``resought`` records that arrived past
#: a hole and made the partition seek back (not delivered), ``suspended`` waited
#: deliveries a rebalance interrupted (read again). Read by the
#: ``journey_consumer_deliveries_total`` metric.
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
    """faust-streaming 0.15.3's ``Consumer._drain_messages`` with four changes.

    Continuity: Faust treats a record that arrives past a hole as proof of a gap and marks
    the hole, and the record itself, as acked before any agent has seen them; a commit
    then moves over records lost around a rebalance. Here ``Continuity`` judges every
    record of a topic with acks: a hole is re-read before it is believed, only the hole
    is marked, and a record re-read behind the read offset that is still owed is
    delivered (Faust drops it and the partition's commits stall).

    A delivery a rebalance interrupts (``suspend_flow``) never reached the streams; Faust
    moves the read offset past it all the same. Here the partition reads it again. And
    when flow control resumes, which clears the streams' queues, every stream partition
    is sought back to its committed offset (``watch_flow_resumes``), or to its earliest
    one when nothing is committed.

    Speed (``JOURNEY_FAST_DRAIN``): Faust awaits every delivery through
    ``wait_first(callback(message), suspend_flow.wait())``: four asyncio tasks started,
    awaited and three cancelled per message, about half of a bare Faust agent's time.
    When ``delivery_check`` says nothing can block, the callback is awaited directly;
    otherwise Faust's own race runs, so a rebalance still interrupts a delivery that waits.
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
    can_deliver_now = delivery_check(self) if _drain_options["fast"] else _never
    counts = deliveries
    acked_index = self._acked_index
    committed_offset = self._committed_offset
    gaps = self._gap
    continuity = Continuity()
    resumes = watch_flow_resumes(self.app.flow_control)

    def redeliverable(tp: Any, offset: int) -> bool:
        committed = committed_offset.get(tp)
        return (committed is None or offset >= committed) and offset not in acked_index[tp]

    async def earliest_offsets(tps: list[Any]) -> dict[Any, int]:
        # Bounded: the broker may be away; the partitions missing are judged without it.
        try:
            found = await asyncio.wait_for(self.earliest_offsets(*tps), 5.0)
        except Exception as exc:
            log.warning("no earliest offsets for %s (%r)", tps, exc)
            return {}
        return {tp: int(offset) for tp, offset in found.items() if offset is not None}

    starts: dict[Any, int | None] = {}  # earliest offsets asked during this fetch

    async def earliest(tp: Any) -> int | None:
        # Asked only while Faust knows no read offset: after a seek to nothing committed.
        if tp not in starts:
            starts[tp] = (await earliest_offsets([tp])).get(tp)
            log.info("%s has no committed offset: its first record must be %s", tp, starts[tp])
        return starts[tp]

    async def seek_stream_partitions() -> None:
        # aiokafka's seek_to_committed skips a partition with nothing committed (or 0):
        # it stays where the fetcher was, past the records the resume cleared, and with
        # no later record to show the hole, they would never be read again.
        await self.perform_seek()
        starts.clear()
        uncommitted = [
            tp
            for tp in self.assignment()
            if acks_enabled_for(tp.topic) and committed_offset.get(tp) is None
        ]
        if uncommitted:  # one not found stays put; the continuity check still guards it
            for tp, offset in (await earliest_offsets(uncommitted)).items():
                await self._seek(tp, offset)
        continuity.forget_positions()

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            if resumes.pop():
                # Resuming flow cleared every stream queue: records delivered before it
                # and not yet taken by an agent are gone. Read them again.
                log.info("flow resumed: seeking stream partitions to committed offsets")
                await seek_stream_partitions()
            set_flag(CONSUMER_FETCHING)
            ait = getmany(timeout=1.0)
            continuity.new_fetch()
            starts.clear()
            # Sleeping because sometimes getmany is called in a loop
            # never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    if resumes.pending:
                        break  # the rest of this batch is read again after the seek
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    behind = False
                    if acks_enabled_for(message.topic):
                        start = None if r_offset is not None else await earliest(tp)
                        judged = continuity.judge(tp, offset, r_offset, redeliverable, start)
                        verdict, expected = judged.verdict, judged.expected
                        if verdict is Verdict.STALE:
                            continue
                        if verdict is Verdict.DROP:
                            counts["dropped"] += 1  # acked already, or before the commit
                            continue
                        if verdict is Verdict.RESEEK:
                            # Faust would mark the hole acked and commit over it.
                            counts["resought"] += 1
                            log.warning(
                                "%s offset %s arrived where %s was owed: seeking back",
                                tp,
                                offset,
                                expected,
                            )
                            await self._seek(tp, expected)
                            continue
                        if verdict is Verdict.GAP:
                            # A re-read confirmed it (compaction, transaction markers).
                            counts["gap"] += 1
                            log.info("%s has no records in [%s, %s)", tp, expected, offset)
                            gaps[tp].addi(expected, offset)
                            gaps[tp].merge_overlaps()
                        behind = verdict is Verdict.BEHIND
                        if behind:
                            # Faust drops it: after a rebalance a record prefetched from
                            # the old position can move the read offset past the committed
                            # one the partition was sought back to; every record re-read
                            # in between would be dropped, never acked, and the
                            # partition's commits stall for good. Delivered instead:
                            # processing is idempotent downstream.
                            counts["behind"] += 1
                    elif r_offset is not None and offset < r_offset:
                        counts["dropped"] += 1  # Faust's rule for topics without acks
                        continue
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if can_deliver_now(tp):
                        counts["direct"] += 1
                        await callback(message)
                    else:
                        counts["waited"] += 1
                        delivery = callback(message)
                        waited = await self.wait_first(delivery, self.suspend_flow.wait())
                        if delivery not in waited.done:
                            # A rebalance suspended the flow first: the streams never got
                            # it. Faust moves the read offset on anyway, and its commit
                            # goes over the record. Read it again instead.
                            counts["suspended"] += 1
                            continuity.undelivered(tp)
                            await self._seek(tp, offset)
                            continue
                    if not behind:
                        set_read_offset(tp, offset)
                        continuity.on_delivered(tp, offset)
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


def _never(tp: Any) -> bool:
    return False


class FlowResumes:
    """Whether flow control resumed (and so cleared the stream queues) since last asked."""

    def __init__(self) -> None:
        self.pending = False

    def pop(self) -> bool:
        """True once after each resume."""
        pending, self.pending = self.pending, False
        return pending


def watch_flow_resumes(flow_control: Any) -> FlowResumes:
    """Note every ``resume`` of this flow control (mode's ``FlowControlEvent``).

    ``resume`` clears every queue Faust's streams read from. At the end of a rebalance
    Faust resumes after its seek to the committed offsets, so records the fetcher
    delivered during that seek are dropped from the queues unacked while the read offset
    has moved past them. The drain loop seeks again after each resume.
    """
    watch: FlowResumes | None = getattr(flow_control, "_journey_resumes", None)
    if watch is None:
        watch = FlowResumes()
        resume = flow_control.resume

        def resume_and_note() -> None:
            resume()
            watch.pending = True

        flow_control.resume = resume_and_note
        flow_control._journey_resumes = watch
    return watch


_drain_options = {"fast": True}
_faust_new_offset = FaustConsumer._new_offset


def _new_offset(self: Any, tp: Any) -> int | None:
    """Faust's next commit offset for ``tp``, refused while the committed one is owed.

    Faust commits the first run of consecutive acked offsets. Its check that the run
    starts at the committed offset is off by one (faust-streaming #606): with offset C
    committed and never acked, acks from C + 1 on commit over C. Here nothing is
    committed until C itself is acked or a confirmed gap.
    """
    committed = self._committed_offset[tp]
    if (
        committed is not None
        and self._acked[tp]
        and committed not in self._acked_index[tp]
        and not self._gap[tp].overlaps_point(committed)
    ):
        return None
    result: int | None = _faust_new_offset(self, tp)
    return result


def install_drain_loop(fast: bool = True) -> bool:
    """Use ``_drain_messages`` as the consumer drain loop, and ``_new_offset``'s check.

    Process-wide and idempotent. ``fast`` turns on direct delivery; the continuity
    checks are always on. Only for the pinned faust-streaming version the copy was
    taken from; on any other the worker keeps Faust's own loop, logs why, and returns
    False. Returns whether the loop is in use.
    """
    _drain_options["fast"] = fast
    if faust.__version__ != FAUST_VERSION:
        log.warning(
            "faust-streaming %s is not %s: keeping Faust's own consumer drain loop",
            faust.__version__,
            FAUST_VERSION,
        )
        return False
    FaustConsumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    FaustConsumer._new_offset = _new_offset  # type: ignore[method-assign]
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
