"""Every message the worker sends leaves through ``Outputs``; state is written after.

The ordering rule, enforced by ``Outputs.commit`` and nowhere else: **a batch's outputs
are acknowledged by the broker before its state is written** (it waits for the batch's
own sends, not for a flush of everything the producer holds). RocksDB keeps a table write
at once and survives a kill -9, so a state written while its actions and explain records
still sat in the producer would be re-read as done after a crash and never sent.
Measured: the kill -9 test lost 1 to 18 actions in 3 of 6 runs without this. A crash
after the outputs and before the state re-reads the batch (its offsets are not
committed) and sends again; senders drop the repeats by ``idempotency_key``.

How state is written is the ``StateWriter``'s business (``stream.shell.faust.state_writers``):
a writer may hand ``commit`` changelog records, which go out and are acknowledged with
the outputs, and then gets the offset of each table's last one with its writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol

import faust
import orjson
from faust.types import EventT

from stream.config import Topics
from stream.core.batch import BatchResult, Destination, Output, Writes
from stream.core.dlq import SourcePosition, dlq_key, dlq_record
from stream.core.events import Rejection
from stream.shell.clock import wall_ms
from stream.shell.faust.state_writers import ChangelogRecord
from stream.shell.metrics import Metrics

log = logging.getLogger(__name__)


Consumed = EventT[Any]  # a consumed record, as Faust hands it to an agent


class StateWriter(Protocol):
    """Writes a batch's table changes (after its outputs are acknowledged)."""

    def changelog(self, writes: Mapping[str, Writes], partition: int) -> list[ChangelogRecord]:
        """The changelog records to send with the outputs of one partition's writes."""

    def write(
        self, writes: Mapping[str, Writes], source: Consumed, logged: Mapping[str, int]
    ) -> None:
        """Apply one partition's writes (a value, or None to delete the key); ``source``:
        a record of that partition; ``logged``: per table, the offset of its last
        changelog record."""


Delivery = Awaitable[Any]  # a send's acknowledgement by the broker (raises if it failed)
Part = tuple[BatchResult, Sequence[Consumed]]  # a partition's result and its source records


def timestamp_ms(message: Any) -> int | None:
    """Kafka timestamp of a consumed message in epoch ms (Faust keeps seconds)."""
    return int(message.timestamp * 1000) if message.timestamp else None


class Outputs:
    """The worker's producer side: outputs by destination, dead letters, the commit order."""

    def __init__(self, app: faust.App, topics: Topics, metrics: Metrics, writer: StateWriter):
        self.app = app
        self.topics = topics
        self.metrics = metrics
        self.writer = writer
        self._topics: dict[tuple[Destination, str], str] = {}

    def topic(self, output: Output) -> str:
        """The topic an output goes to."""
        route = (output.destination, output.channel)
        topic = self._topics.get(route)
        if topic is None:
            if output.destination is Destination.ACTIONS:
                topic = self.topics.actions(output.channel)
            else:
                topic = str(getattr(self.topics, output.destination.value))
            self._topics[route] = topic
        return topic

    async def send(self, output: Output) -> Delivery:
        """Hand one message to the producer; returns its delivery (awaiting it: acknowledged)."""
        topic = self.topic(output)
        return await self.app.producer.send(topic, output.key, output.value, None, None, None)

    async def dead_letter(
        self, message: Any, rejection: Rejection, received_at_ms: int
    ) -> Delivery:
        """Send a consumed message to the DLQ with its reason and source position."""
        source = SourcePosition(
            message.topic, message.partition, message.offset, timestamp_ms(message), message.key
        )
        log.info("DLQ %s at %s: %s", rejection.reason.value, source, rejection.detail)
        self.metrics.invalid_events.labels(rejection.reason.value).inc()
        record = dlq_record(rejection, message.value, source, received_at_ms)
        topic = self.topics.dlq
        return await self.app.producer.send(
            topic, dlq_key(message.key), orjson.dumps(record), None, None, None
        )

    async def commit(self, parts: Sequence[Part], step: str) -> None:
        """Send a batch's outputs and dead letters; once acknowledged, write its state.

        ``parts``: the batch's results, one per source partition with that partition's
        records. One wait covers them all: for the acknowledgement of the batch's own
        sends (and of the changelog records the state writer hands over), not of
        everything the producer holds for other steps. Each part's writes then go to its
        own partition.
        """
        deliveries: list[Delivery] = []
        for result, source in parts:
            deliveries.extend(await self._send_all(result, source))
        written = [(result, source) for result, source in parts if result.has_writes()]
        if not written:
            return
        changelogs = [
            self.writer.changelog(result.writes, source[0].message.partition)
            for result, source in written
        ]
        logs = [await self._log(record) for records in changelogs for record in records]
        acknowledged = await self._acknowledged([*deliveries, *logs], step)
        logged = last_offsets(changelogs, acknowledged[len(deliveries) :])
        for (result, source), offsets in zip(written, logged, strict=True):
            self.writer.write(result.writes, source[0], offsets)

    async def _acknowledged(self, deliveries: list[Delivery], step: str) -> list[Any]:
        """Wait for every delivery (timed); what the broker answered, in order.

        A failed send has ended the worker (send_guard)."""
        started = time.perf_counter()
        acknowledged = await asyncio.gather(*deliveries)
        self.metrics.output_flush.labels(step).observe(time.perf_counter() - started)
        return acknowledged

    async def _log(self, record: ChangelogRecord) -> Delivery:
        """Send a changelog record to its table's partition."""
        send = self.app.producer.send
        return await send(record.topic, record.key, record.value, record.partition, None, None)

    async def _send_all(self, result: BatchResult, source: Sequence[Consumed]) -> list[Delivery]:
        """A result's outputs, then its dead letters; its notes go to the log."""
        deliveries = [await self.send(output) for output in result.outputs]
        received_at_ms = wall_ms()
        for dead in result.dead_letters:
            message = source[dead.position].message
            if dead.error is not None:  # a bug, not bad input: keep the traceback
                log.error("failed at offset %s", message.offset, exc_info=dead.error)
            deliveries.append(await self.dead_letter(message, dead.rejection, received_at_ms))
        for level, line in result.notes:
            log.log(level, line)
        return deliveries


def last_offsets(
    changelogs: Sequence[Sequence[ChangelogRecord]], acknowledged: Sequence[Any]
) -> list[dict[str, int]]:
    """Per part, the offset of each table's last changelog record; ``acknowledged``: the
    broker's answers (RecordMetadata) to the records, in the same order."""
    answers = iter(acknowledged)
    logged = []
    for records in changelogs:
        offsets: dict[str, int] = {}
        for record in records:
            offsets[record.table] = max(offsets.get(record.table, -1), next(answers).offset)
        logged.append(offsets)
    return logged
