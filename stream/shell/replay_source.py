"""Where a replay's records come from and where its tables live: the customer-events
topic (bounded by time or offsets) or an exported file; RocksDB stores in a temporary
folder, so a long window needs disk, not memory.

The window is read into one file per partition (outside any consumer group: nothing is
committed, no worker is disturbed), then merged by record
timestamp, so each customer's records stay in log order and a merge's two profiles
(on two partitions) come in the order the worker saw them.
"""

from __future__ import annotations

import contextlib
import heapq
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from stream.config import Settings
from stream.core.replay.log import LogRecord, from_line, to_line
from stream.shell.kafka_security import client_kwargs
from stream.shell.model_view import end_offsets, whole_topic_consumer

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Bounds:
    """Which records of the topic: from ``since_ms`` to ``until_ms`` (record timestamps),
    or per partition from one offset to another (``offsets``, end excluded)."""

    since_ms: int | None = None
    until_ms: int | None = None
    offsets: dict[int, tuple[int, int]] | None = None


async def export_window(
    settings: Settings,
    bounds: Bounds,
    folder: Path,
    progress: Progress | None = None,
    topic: str | None = None,
) -> list[Path]:
    """Read the window of a topic (the customer-events topic unless named) into one file
    per partition."""
    topic = topic or settings.topics.customer_events
    consumer = whole_topic_consumer(settings.broker, topic, security=client_kwargs(settings))
    await consumer.start()
    try:
        ends = await end_offsets(consumer, deadline_s=30.0)
        found = {tp: await _span(consumer, tp, ends[tp], bounds) for tp in ends}
        spans = {tp: span for tp, span in found.items() if span is not None}
        consumer.pause(*(tp for tp in ends if tp not in spans))
        for tp, (start, _) in spans.items():
            consumer.seek(tp, start)
        paths = {tp: folder / f"{topic}-{tp.partition}.ndjson" for tp in spans}
        read = await _read(consumer, spans, paths)
        if progress is not None:
            progress(f"{read} records from {len(spans)} partition(s)")
        return sorted(paths.values())
    finally:
        await consumer.stop()


async def _span(
    consumer: AIOKafkaConsumer, tp: TopicPartition, last: int, bounds: Bounds
) -> tuple[int, int] | None:
    """The offsets ``[start, end)`` of the window on one partition (None: nothing)."""
    if bounds.offsets is not None:
        return bounds.offsets.get(tp.partition)
    first = (await consumer.beginning_offsets([tp]))[tp]
    start = await _offset_at(consumer, tp, bounds.since_ms, first, last)
    end = await _offset_at(consumer, tp, bounds.until_ms, last, last)
    return (start, end) if start < end else None


async def _offset_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, at_ms: int | None, default: int, last: int
) -> int:
    if at_ms is None:
        return default
    found = (await consumer.offsets_for_times({tp: at_ms}))[tp]
    return last if found is None else int(found.offset)


async def _read(
    consumer: AIOKafkaConsumer,
    spans: dict[TopicPartition, tuple[int, int]],
    paths: dict[TopicPartition, Path],
) -> int:
    """Write each partition's records in its span to its file; the number written."""
    read = 0
    with contextlib.ExitStack() as files:
        out = {tp: files.enter_context(path.open("wb")) for tp, path in paths.items()}
        pending = {tp for tp, (start, end) in spans.items() if start < end}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1_000)
            for tp, messages in batches.items():
                end = spans[tp][1]
                for message in messages:
                    if message.offset < end and message.key is not None and message.value:
                        record = LogRecord(
                            tp.partition,
                            message.offset,
                            message.timestamp,
                            message.key,
                            message.value,
                        )
                        out[tp].write(to_line(record))
                        read += 1
            for tp in list(pending):
                if await consumer.position(tp) >= spans[tp][1]:
                    pending.discard(tp)
                    consumer.pause(tp)
    return read


def read_log(path: Path) -> Iterator[LogRecord]:
    """The records of an exported log file, in its order; ``LogFileError`` names a bad line."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield from_line(line, number)


def merged(paths: Iterable[Path]) -> Iterator[LogRecord]:
    """The records of per-partition files, by timestamp (each file keeps its order)."""
    return heapq.merge(
        *(read_log(path) for path in paths),
        key=lambda record: (record.timestamp_ms, record.partition, record.offset),
    )


def write_log(records: Iterable[LogRecord], path: Path) -> Iterator[LogRecord]:
    """Pass ``records`` through, writing each to ``path`` on the way (``--save``)."""
    with path.open("wb") as out:
        for record in records:
            out.write(to_line(record))
            yield record


class DiskStores:
    """RocksDB stores in a temporary folder, removed by ``close``."""

    def __init__(self, parent: Path | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="journey-replay-", dir=parent))
        self.opened: list[Any] = []

    def __call__(self, name: str) -> MutableMapping[bytes, bytes]:
        """A new store named ``name``."""
        from rocksdict import Rdict

        store = Rdict(str(self.folder / name))
        self.opened.append(store)
        return cast(MutableMapping[bytes, bytes], store)

    def close(self) -> None:
        """Close every store and delete the folder."""
        for store in self.opened:
            store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def stamp() -> str:
    """Now as a report's ``generated_at``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
