"""The consumer drain loop: faust-streaming 0.15.3's ``Consumer._drain_messages`` with four
changes, so that no record is lost around a rebalance.

Continuity: Faust treats a record that arrives past a hole as proof of a gap and marks
the hole, and the record itself, as acked before any agent has seen them; a commit then
moves over records lost around a rebalance. Here ``Continuity`` judges every record of a
topic with acks: a hole is re-read before it is believed, only the hole is marked, and a
record re-read behind the read offset that is still owed is delivered (Faust drops it and
the partition's commits stall).

A delivery a rebalance interrupts (``suspend_flow``) never reached the streams; Faust
moves the read offset past it all the same. Here the partition reads it again. And when
flow control resumes, which clears the streams' queues, every stream partition is sought
back to its committed offset (``flow_resumes``), or to its earliest one when nothing is
committed.

Speed (``JOURNEY_FAST_DRAIN``): when ``direct_delivery.delivery_check`` says nothing can
block, the callback is awaited directly; otherwise Faust's own race runs, so a rebalance
still interrupts a delivery that waits.

The loop is cut in parts: ``drain_messages`` keeps Faust's stop and error handling,
``Drain.fetch`` is one ``getmany`` round, ``Drain.handle`` one record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.consumer import Consumer as FaustConsumer

from stream.shell.continuity import Continuity, Verdict
from stream.shell.faust.deliveries import deliveries
from stream.shell.faust.patches import commit_guard
from stream.shell.faust.patches.direct_delivery import delivery_check, never
from stream.shell.faust.patches.flow_resumes import watch_flow_resumes
from stream.shell.faust.pinned import require_pinned_faust

log = logging.getLogger(__name__)

faust_drain_messages = FaustConsumer._drain_messages

#: Copied, and replaced.
UPSTREAM = (faust_drain_messages,)

#: Faust's: give the event loop a turn after this many records.
YIELD_EVERY = 100

#: The verdicts of records the streams do not get.
NOT_DELIVERED = (Verdict.STALE, Verdict.DROP, Verdict.RESEEK)


@dataclass
class DrainOptions:
    """The knob: read when a consumer's drain loop starts (at an app's start)."""

    fast: bool = True


options = DrainOptions()


def install(fast: bool = True) -> bool:
    """Use ``drain_messages`` as every consumer's drain loop, with the commit guard it needs.

    Once per process; ``fast`` (direct delivery) applies to loops started from now on, the
    continuity checks are always on. Returns True: the loop is in use (an unpinned Faust
    raises ``UnsupportedFaust`` instead).
    """
    require_pinned_faust(__name__)
    options.fast = fast
    commit_guard.install()
    if FaustConsumer._drain_messages is not drain_messages:
        FaustConsumer._drain_messages = drain_messages  # type: ignore[method-assign]
    return True


async def drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - via broker
    """Faust's ``Consumer._drain_messages``: ``Drain`` rounds until the consumer or the
    fetcher stops, with Faust's handling of how it stops."""
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    drain = Drain(self, delivery_check(self) if options.fast else never)
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            await drain.fetch()
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
        self.diag.unset_flag(CONSUMER_FETCHING)


class Drain:  # pragma: no cover - via broker
    """One run of a consumer's drain loop: its continuity, flow resumes and offsets asked.

    The consumer's attributes are looked up once, as Faust's loop does: this runs for
    every record.
    """

    def __init__(self, consumer: Any, can_deliver_now: Callable[[Any], bool]) -> None:
        self.consumer = consumer
        self.can_deliver_now = can_deliver_now
        self.callback = consumer.callback
        self.getmany = consumer.getmany
        self.get_read_offset = consumer._read_offset.__getitem__
        self.set_read_offset = consumer._read_offset.__setitem__
        self.set_flag = consumer.diag.set_flag
        self.unset_flag = consumer.diag.unset_flag
        self.commit_every = consumer._commit_every
        self.acks_enabled_for = consumer.app.topics.acks_enabled_for
        self.acked_index = consumer._acked_index
        self.committed_offset = consumer._committed_offset
        self.gaps = consumer._gap
        self.counts = deliveries
        self.continuity = Continuity()
        self.resumes = watch_flow_resumes(consumer.app.flow_control)
        self.starts: dict[Any, int | None] = {}  # earliest offsets asked during this fetch
        self.num_since_yield = 0

    async def fetch(self) -> None:
        """One round: a seek after a flow resume, one ``getmany``, every record handled."""
        consumer = self.consumer
        if self.resumes.pop():
            # Resuming flow cleared every stream queue: records delivered before it
            # and not yet taken by an agent are gone. Read them again.
            log.info("flow resumed: seeking stream partitions to committed offsets")
            await self.seek_stream_partitions()
        self.set_flag(CONSUMER_FETCHING)
        ait = self.getmany(timeout=1.0)
        self.continuity.new_fetch()
        self.starts.clear()
        # Sleeping because sometimes getmany is called in a loop
        # never releasing to the event loop
        await consumer.sleep(0)
        if not consumer.should_stop:
            async for tp, message in ait:
                if self.resumes.pending:
                    break  # the rest of this batch is read again after the seek
                self.num_since_yield += 1
                if self.num_since_yield > YIELD_EVERY:
                    await asyncio.sleep(0)
                    self.num_since_yield = 0
                await self.handle(tp, message)
            self.unset_flag(CONSUMER_FETCHING)

    async def handle(self, tp: Any, message: Any) -> None:
        """Hand one fetched record to the streams, or skip it, or read it again later."""
        offset = message.offset
        r_offset = self.get_read_offset(tp)
        behind = False
        if self.acks_enabled_for(message.topic):
            verdict = await self.judge(tp, offset, r_offset)
            if verdict in NOT_DELIVERED:
                return
            behind = verdict is Verdict.BEHIND
        elif r_offset is not None and offset < r_offset:
            self.counts["dropped"] += 1  # Faust's rule for topics without acks
            return
        consumer = self.consumer
        if self.commit_every is not None and consumer._n_acked >= self.commit_every:
            consumer._n_acked = 0
            await consumer.commit()
        if self.can_deliver_now(tp):
            self.counts["direct"] += 1
            await self.callback(message)
        elif not await self.deliver_racing_rebalance(tp, message):
            return
        if not behind:
            self.set_read_offset(tp, offset)
            self.continuity.on_delivered(tp, offset)

    async def judge(self, tp: Any, offset: int, r_offset: int | None) -> Verdict:
        """Continuity's verdict on a record of a topic with acks, acted on: a skip counted,
        a hole sought back to, or a confirmed gap marked."""
        start = None if r_offset is not None else await self.earliest(tp)
        judged = self.continuity.judge(tp, offset, r_offset, self.redeliverable, start)
        verdict, expected = judged.verdict, judged.expected
        if verdict is Verdict.DROP:
            self.counts["dropped"] += 1  # acked already, or before the commit
        elif verdict is Verdict.RESEEK:
            # Faust would mark the hole acked and commit over it.
            self.counts["resought"] += 1
            log.warning(
                "%s offset %s arrived where %s was owed: seeking back", tp, offset, expected
            )
            await self.consumer._seek(tp, expected)
        elif verdict is Verdict.GAP:
            # A re-read confirmed it (compaction, transaction markers).
            self.counts["gap"] += 1
            log.info("%s has no records in [%s, %s)", tp, expected, offset)
            self.gaps[tp].addi(expected, offset)
            self.gaps[tp].merge_overlaps()
        elif verdict is Verdict.BEHIND:
            # Faust drops it: after a rebalance a record prefetched from the old
            # position can move the read offset past the committed one the partition was
            # sought back to; every record re-read in between would be dropped, never
            # acked, and the partition's commits stall for good. Delivered instead:
            # processing is idempotent downstream.
            self.counts["behind"] += 1
        return verdict

    async def deliver_racing_rebalance(self, tp: Any, message: Any) -> bool:
        """Faust's delivery, raced against a rebalance suspending the flow; False when the
        rebalance won and the partition is sought back to read the record again."""
        consumer = self.consumer
        self.counts["waited"] += 1
        delivery = self.callback(message)
        waited = await consumer.wait_first(delivery, consumer.suspend_flow.wait())
        if delivery in waited.done:
            return True
        # A rebalance suspended the flow first: the streams never got it. Faust moves
        # the read offset on anyway, and its commit goes over the record. Read it again
        # instead.
        self.counts["suspended"] += 1
        self.continuity.undelivered(tp)
        await consumer._seek(tp, message.offset)
        return False

    def redeliverable(self, tp: Any, offset: int) -> bool:
        """Whether a record re-read at ``offset`` is still owed (not acked, not committed)."""
        committed = self.committed_offset.get(tp)
        return (committed is None or offset >= committed) and offset not in self.acked_index[tp]

    async def earliest(self, tp: Any) -> int | None:
        """The earliest offset of ``tp``, asked once per fetch."""
        # Asked only while Faust knows no read offset: after a seek to nothing committed.
        if tp not in self.starts:
            self.starts[tp] = (await self.earliest_offsets([tp])).get(tp)
            log.info("%s has no committed offset: its first record must be %s", tp, self.starts[tp])
        return self.starts[tp]

    async def earliest_offsets(self, tps: list[Any]) -> dict[Any, int]:
        """The earliest offsets the broker reports for ``tps``; those it did not, left out."""
        # Bounded: the broker may be away; the partitions missing are judged without it.
        try:
            found = await asyncio.wait_for(self.consumer.earliest_offsets(*tps), 5.0)
        except Exception as exc:
            log.warning("no earliest offsets for %s (%r)", tps, exc)
            return {}
        return {tp: int(offset) for tp, offset in found.items() if offset is not None}

    async def seek_stream_partitions(self) -> None:
        """Seek every assigned partition to its committed offset, or its earliest."""
        # aiokafka's seek_to_committed skips a partition with nothing committed (or 0):
        # it stays where the fetcher was, past the records the resume cleared, and with
        # no later record to show the hole, they would never be read again.
        consumer = self.consumer
        await consumer.perform_seek()
        self.starts.clear()
        uncommitted = [
            tp
            for tp in consumer.assignment()
            if self.acks_enabled_for(tp.topic) and self.committed_offset.get(tp) is None
        ]
        if uncommitted:  # one not found stays put; the continuity check still guards it
            for tp, offset in (await self.earliest_offsets(uncommitted)).items():
                await consumer._seek(tp, offset)
        self.continuity.forget_positions()
