"""The dead-letter record: the original bytes, where they came from and why they were refused."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from stream.core.events import Rejection
from stream.core.timestamps import format_ms


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a rejected message was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None


def dlq_record(
    rejection: Rejection, raw: bytes | None, source: SourcePosition, received_at_ms: int
) -> dict[str, Any]:
    """The DLQ message (schemas/dlq.schema.json) for one rejected input."""
    return {
        "reason": rejection.reason.value,
        "detail": rejection.detail[:1000],
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
            "key_b64": None if source.key is None else base64.b64encode(source.key).decode(),
        },
        "original_b64": base64.b64encode(raw or b"").decode(),
        "received_at": format_ms(received_at_ms),
    }
