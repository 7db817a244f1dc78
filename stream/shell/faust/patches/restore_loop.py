"""The table restore loop: faust-streaming 0.15.3's ``Recovery._slurp_changelogs`` with
three changes, all for speed (``JOURNEY_FAST_DRAIN``).

Faust spends most of a restore on per-record overhead: an ``asyncio.wait_for`` (a task
and a timer) around every queue read, two debug f-strings formatted for every record,
and a recovery-end check that sums every partition's remaining offsets after every
record. Here a record already queued is taken without ``wait_for``, nothing is
formatted, and the end check runs when the queue is empty (at the end of a restore it
always is). The records applied and their order are Faust's.

The loop is cut in parts: ``slurp_changelogs`` keeps Faust's loop and its error
handling, ``Restore.next_event`` reads the queue, ``Restore.apply`` buffers one record
into its table, ``Restore.on_queue_empty`` runs the end checks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from time import monotonic
from typing import Any

from faust.tables.recovery import Recovery
from faust.utils.tracing import finish_span
from mode.services import ServiceTask

from stream.shell.faust.pinned import require_pinned_faust

log = logging.getLogger(__name__)

faust_slurp_changelogs = Recovery._slurp_changelogs.fun

#: Copied, and replaced (Faust's still runs with the fast path off).
UPSTREAM = (faust_slurp_changelogs,)


@dataclass
class RestoreOptions:
    """The knob: read when a recovery's restore task starts (at an app's start)."""

    fast: bool = True


options = RestoreOptions()


def install(fast: bool = True) -> None:
    """Make ``slurp_changelogs`` the recovery's restore task (once per process); ``fast``
    off makes restores started from now on run Faust's own loop."""
    require_pinned_faust(__name__)
    options.fast = fast
    if Recovery._slurp_changelogs is not RESTORE_TASK:
        Recovery._slurp_changelogs = RESTORE_TASK  # type: ignore[method-assign]


async def slurp_changelogs(self: Any) -> None:  # pragma: no cover - via broker
    """Faust's ``Recovery._slurp_changelogs``: apply changelog records to the tables until
    the recovery stops, signalling the end of each recovery."""
    if not options.fast:
        await faust_slurp_changelogs(self)
        return
    restore = Restore(self)
    changelog_queue = self.tables.changelog_queue
    timeout_count = 0
    while not self.should_stop:
        try:
            self.signal_recovery_end.clear()
            event = await restore.next_event()
            if event is None:
                timeout_count += 1
                if self.should_stop:
                    return
                await restore.maybe_signal_recovery_end(timed_out=True, timeout_count=timeout_count)
                continue
            timeout_count = 0
            await restore.apply(event)
            if changelog_queue.empty():
                await restore.on_queue_empty()
        except Exception as ex:
            log.warning("Error in recovery %s", ex)


RESTORE_TASK = ServiceTask(slurp_changelogs)


class Restore:  # pragma: no cover - via broker
    """One run of a recovery's restore loop: Faust's bookkeeping of the records applied.

    The recovery's attributes are looked up once, as Faust's loop does: this runs for
    every changelog record.
    """

    def __init__(self, recovery: Any) -> None:
        self.recovery = recovery
        self.changelog_queue = recovery.tables.changelog_queue
        self.tp_to_table = recovery.tp_to_table
        self.active_tps = recovery.active_tps
        self.standby_tps = recovery.standby_tps
        self.active_offsets = recovery.active_offsets
        self.standby_offsets = recovery.standby_offsets
        self.active_events_received_at = recovery._active_events_received_at
        self.standby_events_received_at = recovery._standby_events_received_at
        self.buffers = recovery.buffers
        self.buffer_sizes = recovery.buffer_sizes
        self.processing_times = recovery._processing_times
        # The table and offsets of the last record routed: Faust's loop variables, which
        # a record of a partition neither active nor standby keeps (see ``route``).
        self.table: Any = None
        self.offsets: Any = None

    async def next_event(self) -> Any:
        """The next changelog record: taken at once when one is queued, else awaited for
        up to 5 s; None when none came."""
        queue = self.changelog_queue
        if not queue.empty():
            return queue.get_nowait()
        try:
            return await asyncio.wait_for(queue.get(), timeout=5.0)
        except TimeoutError:
            return None

    async def apply(self, event: Any) -> None:
        """Buffer one changelog record into its table, unless its offset was seen; a full
        buffer is written to the table."""
        now = monotonic()
        message = event.message
        tp = message.tp
        offset = message.offset
        bufsize, is_active = self.route(tp, offset, now)
        table, offsets = self.table, self.offsets
        seen_offset = offsets.get(tp, None)
        if seen_offset is None or offset > seen_offset:
            offsets[tp] = offset
            buf = self.buffers[table]
            buf.append(event)
            await table.on_changelog_event(event)
            if len(buf) >= bufsize:
                table.apply_changelog_batch(buf)
                buf.clear()
                self.recovery._last_flush_at = now
            if is_active:
                self.sample_processing_time()

    def route(self, tp: Any, offset: int, now: float) -> tuple[Any, bool]:
        """The buffer size for a record of ``tp`` and whether ``tp`` is active; ``table``
        and ``offsets`` become its table and offset counter.

        As in Faust, a partition neither active nor standby is only logged, and its
        record goes to the table and offsets of the record before (upstream keeps that
        bug; kept here too, so that the records applied are Faust's).
        """
        bufsize = self.buffer_sizes.get(tp)
        is_active = False
        if tp in self.active_tps:
            is_active = True
            self.table = table = self.tp_to_table[tp]
            self.offsets = self.active_offsets
            if bufsize is None:
                bufsize = self.buffer_sizes[tp] = table.recovery_buffer_size
            self.active_events_received_at[tp] = now
        elif tp in self.standby_tps:
            self.table = table = self.tp_to_table[tp]
            self.offsets = self.standby_offsets
            if bufsize is None:
                bufsize = self.buffer_sizes[tp] = table.standby_buffer_size
                self.standby_events_received_at[tp] = now
        else:
            log.warning("recovery unknown topic %s offset %s", tp, offset)
        return bufsize, is_active

    def sample_processing_time(self) -> None:
        """Faust's sample of the time between two active records (its remaining-time
        estimate)."""
        recovery = self.recovery
        now_after = monotonic()
        last_processed_at = recovery._last_active_event_processed_at
        if last_processed_at is not None:
            self.processing_times.append(now_after - last_processed_at)
            if len(self.processing_times) > recovery.num_samples_required_for_estimate:
                self.processing_times.popleft()
        recovery._last_active_event_processed_at = now_after

    async def on_queue_empty(self) -> None:
        """Faust's per-record end checks, run when the queue is empty: the end of the
        recovery signalled, standbys reported ready."""
        recovery = self.recovery
        await self.maybe_signal_recovery_end()
        standby_ready = recovery._standbys_span is None and recovery.tables.standbys_ready
        if not standby_ready and not recovery.standby_remaining_total():
            if recovery._standbys_span:
                finish_span(recovery._standbys_span)
                recovery._standbys_span = None
            recovery.tables.on_standbys_ready()

    async def maybe_signal_recovery_end(
        self, timed_out: bool = False, timeout_count: int = 0
    ) -> None:
        """Signal the end of the recovery when nothing more is needed (the buffers
        flushed first)."""
        recovery = self.recovery
        if timed_out and recovery.app.in_transaction and timeout_count > 1:
            await self.detect_aborted_tx()
        if recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            if recovery._actives_span is not None:
                recovery._actives_span.set_tag("Actives-Ready", True)
            recovery.signal_recovery_end.set()

    async def detect_aborted_tx(self) -> None:
        """Move an active partition to its highwater when an aborted transaction ends it."""
        recovery = self.recovery
        highwaters = recovery.active_highwaters
        offsets = recovery.active_offsets
        for tp, highwater in highwaters.items():
            behind = highwater is not None and offsets[tp] is not None and offsets[tp] < highwater
            if behind and await recovery.app.consumer.position(tp) >= highwater:
                log.info("Aborted tx until highwater for %s", tp)
                offsets[tp] = highwater
