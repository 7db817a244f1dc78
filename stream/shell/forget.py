"""``journey forget``: the right to erasure, through the worker that owns the customer.

The request goes to the customer's partition of the customer-events topic; the owning
worker deletes the profile (a tombstone in the changelog), its timers and held actions,
asks the resolve step to delete every alias of its identifiers and the stubs of the
profiles merged into it, and writes an audit record (customer id, count, time: no
personal data) to ``internal.erasures``, which this command waits for. Asked for a key
that was merged into another profile (an old cookie), it erases that profile: the person.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.config import Settings
from stream.core.messages import Erase, encode
from stream.shell.kafka_security import client_kwargs


async def forget(settings: Settings, customer_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Request the erasure of a customer and return the worker's audit record."""
    key = customer_id.encode()
    requested_at_ms = int(time.time() * 1000)
    security = client_kwargs(settings)
    consumer = AIOKafkaConsumer(
        settings.topics.erasures,
        bootstrap_servers=settings.broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security,
    )
    await consumer.start()
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.broker,
            acks="all",
            compression_type=settings.compression_type,
            **security,
        )
        await producer.start()
        try:
            request = encode(Erase(requested_at_ms, customer_id))
            await producer.send_and_wait(settings.topics.customer_events, request, key=key)
        finally:
            await producer.stop()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    audit = orjson.loads(record.value)
                    if record.key == key and audit["erased_at_ms"] >= requested_at_ms:
                        return dict(audit)
    finally:
        await consumer.stop()
    raise TimeoutError(f"no erasure record for {customer_id} within {timeout_s:.0f} s")
