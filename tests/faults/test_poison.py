"""Poison input on the real broker: each kind in cjo.dlq with its own reason, nothing lost.

Every kind of bad input of issue 10 (invalid UTF-8, non-JSON, JSON of the wrong shape,
missing identifiers, a payload over JOURNEY_MAX_EVENT_BYTES, deep nesting, timestamps in
the future and too old, unknown channel and type, NaN/Infinity, duplicate keys) is mixed
into a few hundred valid events of several customers, some of them sent twice. The worker
must dead-letter each bad message with its reason, count every message once, and go on
deciding.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from datetime import timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream.core.events import MAX_DEPTH, DlqReason
from stream.shell.watch import Samples, scrape, total
from tests.integration.conftest import BROKER, Deployment, WorkerProcess
from tests.integration.events import BASE, complaint, event

CUSTOMERS = [f"C71{n:05d}" for n in range(12)]
EVENTS_PER_CUSTOMER = 25
DUPLICATES = 24  # valid events sent a second time, byte for byte


def _page_view(**overrides: Any) -> dict[str, Any]:
    return {**event("web", "page_view", {"customer_id": "C7199999"}, {"url": "/"}), **overrides}


def _dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def _poison(max_event_bytes: int) -> dict[DlqReason, tuple[str, bytes]]:
    """One message per kind of poison: the reason it must get, its channel topic, its bytes."""
    valid = _dumps(_page_view())
    assert valid.endswith(b"}}")  # ... its context object, then the event's end
    future = BASE + timedelta(days=3)  # the worker's clock reads BASE + 1 h
    ancient = BASE - timedelta(days=400)

    def at(moment: Any) -> bytes:
        return _dumps(_page_view(occurred_at=moment.isoformat().replace("+00:00", "Z")))

    return {
        DlqReason.TOO_LARGE: (
            "web",
            _dumps(_page_view(properties={"url": "/", "title": "x" * max_event_bytes})),
        ),
        DlqReason.INVALID_UTF8: ("web", valid.replace(b"C7199999", b"C71\xff\xfe999")),
        DlqReason.INVALID_JSON: ("web", b"<event id='e1' type='page_view'/>"),
        DlqReason.INVALID_NUMBER: ("web", valid[:-2] + b',"score":NaN}}'),
        DlqReason.TOO_DEEP: (
            "web",
            valid[:-2] + b',"x":' + b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH + b"}}",
        ),
        DlqReason.DUPLICATE_KEY: ("web", valid[:-1] + b',"event_id":"again"}'),
        DlqReason.NOT_AN_OBJECT: ("web", b'[{"event_id": "e1"}]'),
        DlqReason.MISSING_FIELD: ("web", _dumps({"event_id": "m1", "type": "page_view"})),
        DlqReason.SCHEMA_VIOLATION: ("web", _dumps(_page_view(properties={"url": 7}))),
        DlqReason.MISSING_IDENTIFIER: ("web", _dumps(_page_view(customer={"nickname": "Bo"}))),
        DlqReason.INVALID_IDENTIFIER: ("web", _dumps(_page_view(customer={"phone": "call me"}))),
        DlqReason.UNKNOWN_CHANNEL: ("web", _dumps(_page_view(channel="fax"))),
        DlqReason.CHANNEL_MISMATCH: ("app", _dumps(_page_view())),
        DlqReason.UNKNOWN_EVENT_TYPE: ("web", _dumps(_page_view(type="teleported"))),
        DlqReason.INVALID_TIMESTAMP: ("web", _dumps(_page_view(occurred_at="yesterday"))),
        DlqReason.TIMESTAMP_IN_FUTURE: ("web", at(future)),
        DlqReason.TIMESTAMP_TOO_OLD: ("web", at(ancient)),
    }


def _valid_events() -> list[dict[str, Any]]:
    """A few hundred valid web events, the customers' events interleaved."""
    kinds = itertools.cycle(
        [
            ("page_view", {"url": "/shoes"}),
            ("search", {"query": "boots", "results": 3}),
            ("product_view", {"product_id": "SKU-1", "category": "shoes", "price": 89.9}),
        ]
    )
    return [
        event("web", type_, {"customer_id": cid}, properties)
        for _ in range(EVENTS_PER_CUSTOMER)
        for cid, (type_, properties) in zip(CUSTOMERS, kinds, strict=False)
    ]


async def _produce(messages: list[tuple[str, bytes, bytes]]) -> None:
    """Send (topic, key, value) in this order, then wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BROKER, acks="all", linger_ms=5, max_request_size=4_000_000
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _accounted(samples: Samples | None, messages: int) -> Samples | None:
    """The samples once every message sent is counted, valid and stepped, or rejected."""
    if samples is None:
        return None
    ingested = total(samples, "journey_events_total")
    rejected = total(samples, "journey_events_invalid_total")
    stepped = total(samples, "journey_decision_seconds_count", kind="event")
    return samples if ingested + rejected >= messages and stepped >= ingested else None


async def test_poison_lands_in_the_dlq_by_reason_and_nothing_is_lost(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    topics = deployment.settings.topics
    poison = _poison(deployment.settings.max_event_bytes)
    assert len(poison[DlqReason.TOO_LARGE][1]) > deployment.settings.max_event_bytes
    valid = _valid_events()
    duplicates = valid[::7][:DUPLICATES]
    assert len(duplicates) == DUPLICATES

    def keyed(message: dict[str, Any]) -> tuple[str, bytes, bytes]:
        cid = message["customer"]["customer_id"]
        return topics.events(message["channel"]), cid.encode(), orjson.dumps(message)

    # each duplicate a few messages after its original; the poison spread through it all
    stream = [keyed(m) for m in valid]
    for message in reversed(duplicates):
        stream.insert(stream.index(keyed(message)) + 3, keyed(message))
    for n, (reason, (channel, raw)) in enumerate(poison.items()):
        key = f"poison-{reason.value}".encode()
        stream.insert(1 + n * len(stream) // len(poison), (topics.events(channel), key, raw))
    await _produce(stream)

    # after the poison, a valid event that makes the engine act
    cid = CUSTOMERS[0]
    await deployment.produce("call_center", [complaint(cid, "K-poison", "late delivery")])
    sent = len(stream) + 1

    samples = await deployment.wait_for(
        lambda: _accounted(scrape(f"{worker.url}/metrics"), sent),
        timeout_s=45,
        what=f"{sent} messages counted on /metrics",
    )
    ingested = total(samples, "journey_events_total")
    rejected = total(samples, "journey_events_invalid_total")
    stepped = total(samples, "journey_decision_seconds_count", kind="event")
    dropped = total(samples, "journey_events_duplicate_total")
    # nothing lost, nothing counted twice
    assert ingested + rejected == sent
    assert rejected == len(poison)
    assert ingested == len(valid) + DUPLICATES + 1
    # the process step steps every ingested event once, and drops the duplicates
    assert stepped == ingested
    assert dropped == DUPLICATES
    assert stepped - dropped == len(valid) + 1
    for reason in DlqReason:
        expected = 1 if reason in poison else 0
        assert total(samples, "journey_events_invalid_total", reason=reason.value) == expected

    # each poison message in the DLQ once, with its reason and a schema-valid record
    records = await deployment.collect([topics.dlq], lambda rs: len(rs) >= len(poison))
    dlq = [orjson.loads(r.value) for r in records]
    assert len(dlq) == len(poison)
    by_original = {raw: (reason, channel) for reason, (channel, raw) in poison.items()}
    assert len(by_original) == len(poison)
    seen = set()
    for record, message in zip(records, dlq, strict=True):
        assert deployment.catalog.message_error("dlq", message) is None, message
        reason, channel = by_original[base64.b64decode(message["original_b64"])]
        assert message["reason"] == reason.value, message["detail"]
        assert message["detail"]
        assert message["source"]["topic"] == topics.events(channel)
        assert record.key == f"poison-{reason.value}".encode()
        seen.add(reason)
    assert seen == set(poison)

    # the worker is alive and still acts on valid input
    actions = await deployment.actions(
        lambda a: any(x["customer_id"] == cid and x["action"] == "service_recovery" for x in a),
        timeout_s=20,
    )
    assert actions
    assert worker.process is not None and worker.process.poll() is None
