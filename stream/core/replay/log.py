"""A recorded window of the customer-events log, as the replay reads it.

A record is what Kafka gave: partition, offset, timestamp, key and value. Exported to a
file it is one JSON object per line (``to_line``), the value kept as the JSON it is, so a
window read from the broker once can be replayed again and again, or shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from stream.core.messages import Firing, Message


class LogFileError(ValueError):
    """A line of an exported log that is not a record; the message names the line."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of the customer-events topic."""

    partition: int
    offset: int
    timestamp_ms: int  # the Kafka record timestamp (wall clock)
    key: bytes
    value: bytes


def to_line(record: LogRecord) -> bytes:
    """The record as one line of an exported log (newline included)."""
    line: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": record.key.decode(),
        "value": orjson.Fragment(record.value),
    }
    return orjson.dumps(line) + b"\n"


def from_line(line: bytes, number: int) -> LogRecord:
    """A record from a line of an exported log; ``LogFileError`` names the line."""
    try:
        data = orjson.loads(line)
        return LogRecord(
            int(data["partition"]),
            int(data["offset"]),
            int(data["timestamp_ms"]),
            str(data["key"]).encode(),
            orjson.dumps(data["value"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise LogFileError(f"line {number}: not a log record ({exc})") from None


Clock = Callable[[int], int]  # a record's Kafka timestamp -> the processing clock


def processing_ms(record: LogRecord, message: Message, clock: Clock) -> int:
    """The time the worker handled a record at: a firing's send time, else the clock at
    the record's timestamp."""
    if isinstance(message, Firing):
        return message.sent_at_ms
    return clock(record.timestamp_ms)
