"""The worker's drain loop (``shell.faust.patches.drain_loop``) against the real broker, in an
in-process Faust app: records a flow-control resume clears from the stream queues are
read again, also from a partition the group never committed.

Faust resumes flow control at the end of every recovery, and the resume clears every
stream queue. aiokafka's ``seek_to_committed`` leaves a partition with nothing committed
where its fetcher stands, past the cleared records; with no later record to reveal the
hole they were never read again (a kill -9 run stalled that way, 5 customers short).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.shell.faust.patches.drain_loop import install as install_drain_loop
from tests.integration.conftest import BROKER

RECORDS = 20


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for ``condition`` on the event loop, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def committed(group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset of ``tp``, read from the broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BROKER, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()


async def test_a_resume_rereads_what_it_cleared_from_a_never_committed_partition(
    tmp_path: Path,
) -> None:
    name = f"it-drain-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all")
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send_and_wait(name, str(n).encode(), key=b"k", partition=0)
    finally:
        await producer.stop()

    assert install_drain_loop(True)
    app = faust.App(
        name,
        broker=f"kafka://{BROKER}",
        store="memory://",
        datadir=str(tmp_path),  # not <name>-data in the working directory
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
    )
    topic = app.topic(name, key_serializer="raw", value_serializer="raw", partitions=1)
    gate = asyncio.Event()
    seen: list[int] = []

    @app.agent(topic)
    async def consume(stream: faust.StreamT) -> None:
        async for value in stream:
            await gate.wait()  # holds the first record: the rest wait in the queue
            seen.append(int(value))

    tp = TopicPartition(name, 0)
    await app.start()
    try:
        await until(
            lambda: app.consumer._read_offset.get(tp) == RECORDS - 1,
            "every record delivered to the stream queue",
        )
        assert await committed(name, tp) is None  # nothing acked, nothing committed
        # What Faust does when a recovery ends: the queued records 1..19 are cleared.
        app.flow_control.resume()
        gate.set()
        await until(lambda: set(seen) == set(range(RECORDS)), "every record processed")
        await until(
            lambda: app.consumer._committed_offset.get(tp) == RECORDS,
            "the commit at the end of the partition",
        )
    finally:
        await app.stop()
    assert await committed(name, tp) == RECORDS
