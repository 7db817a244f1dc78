"""The dead-letter record: the original bytes, where they came from and why they were refused.

A dead-letter write must never fail on size, or the record it stands for would be lost (and
the worker would retry the same write forever). The original value is kept whole up to
``ORIGINAL_LIMIT`` bytes; a larger one keeps that prefix, and the record says so with
``original_truncated``, ``original_size`` and ``original_sha256`` (of the whole value). A key
is kept up to ``KEY_LIMIT`` bytes the same way, and a longer one is replaced, as the DLQ
message's Kafka key, by its SHA-256 digest. The largest record stays far below Kafka's
default 1 MiB request size.

Input refused by the HTTP collector was never on a topic: its record names the collector
(``collector_source``: the route, the key's name, the request and the item's place in it)
and the topic the item was meant for, instead of a partition and offset.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from stream.core.events import Rejection
from stream.core.timestamps import format_ms

ORIGINAL_LIMIT = 256 * 1024  # bytes of the original value kept (about 342 KiB in base64)
KEY_LIMIT = 1024  # bytes of the original key kept


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a rejected message was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None


def dlq_key(key: bytes | None) -> bytes | None:
    """The DLQ message's Kafka key: the original key, or its SHA-256 digest when too long."""
    if key is None or len(key) <= KEY_LIMIT:
        return key
    return hashlib.sha256(key).digest()


@dataclass(frozen=True, slots=True)
class CollectorSource:
    """Where the HTTP collector received a refused item."""

    topic: str  # the topic the item was meant for; "collector" when it names none of ours
    route: str
    key_name: str
    request_id: str
    index: int
    line: int | None = None


def collector_source(source: CollectorSource, received_at_ms: int) -> dict[str, Any]:
    """The ``source`` of a DLQ record for an item the collector refused."""
    collector: dict[str, Any] = {
        "route": source.route,
        "key_name": source.key_name,
        "request_id": source.request_id,
        "index": source.index,
    }
    if source.line is not None:
        collector["line"] = source.line
    return {
        "topic": source.topic,
        "timestamp_ms": received_at_ms,
        "key_b64": None,
        "collector": collector,
    }


def dlq_record(
    rejection: Rejection,
    raw: bytes | None,
    source: SourcePosition | CollectorSource,
    received_at_ms: int,
) -> dict[str, Any]:
    """The DLQ message (schemas/dlq.schema.json) for one rejected input, bounded in size."""
    original = raw or b""
    record: dict[str, Any] = {
        "reason": rejection.reason.value,
        "detail": rejection.detail[:1000],
        "source": _source(source)
        if isinstance(source, SourcePosition)
        else collector_source(source, received_at_ms),
        "original_b64": base64.b64encode(original[:ORIGINAL_LIMIT]).decode(),
        "original_size": len(original),
        "received_at": format_ms(received_at_ms),
    }
    if len(original) > ORIGINAL_LIMIT:
        record["original_truncated"] = True
        record["original_sha256"] = hashlib.sha256(original).hexdigest()
    return record


def _source(source: SourcePosition) -> dict[str, Any]:
    """The source position, with a key longer than ``KEY_LIMIT`` cut and hashed."""
    key = source.key
    fields: dict[str, Any] = {
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "timestamp_ms": source.timestamp_ms,
        "key_b64": None if key is None else base64.b64encode(key[:KEY_LIMIT]).decode(),
    }
    if key is not None and len(key) > KEY_LIMIT:
        fields["key_truncated"] = True
        fields["key_size"] = len(key)
        fields["key_sha256"] = hashlib.sha256(key).hexdigest()
    return fields
