"""Decode and validate ingress bytes into an Event, or a Rejection with a precise reason.

This is the only place raw input is interpreted. Every way a message can be wrong has
its own ``DlqReason``; the DLQ records, metrics labels and tests use the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from stream.core.identity import IdentifierError, resolve_identity
from stream.core.schemas import SchemaCatalog
from stream.core.timestamps import parse_timestamp_ms

ENVELOPE_FIELDS: tuple[str, ...] = ("event_id", "type", "channel", "occurred_at", "customer")
IDENTIFIER_FIELDS: frozenset[str] = frozenset(
    {"customer_id", "anonymous_id", "email", "email_sha256", "phone", "phone_sha256", "loyalty_id"}
)


class DlqReason(StrEnum):
    """Why an input message was rejected (one value per distinct failure)."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_MISMATCH = "channel_mismatch"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_IDENTIFIER = "invalid_identifier"
    SCHEMA_VIOLATION = "schema_violation"
    INVALID_TIMESTAMP = "invalid_timestamp"
    PROCESSING_ERROR = "processing_error"  # the worker failed on a valid event (a bug)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input message that cannot be processed, and why."""

    reason: DlqReason
    detail: str


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event: identifiers hashed, keyed by customer, timestamp in epoch ms."""

    event_id: str
    type: str
    channel: str
    occurred_at_ms: int
    customer_key: str
    identifiers: dict[str, str]
    properties: dict[str, Any]
    context: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form used on the internal customer-keyed topic."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "channel": self.channel,
            "occurred_at_ms": self.occurred_at_ms,
            "customer_key": self.customer_key,
            "identifiers": self.identifiers,
            "properties": self.properties,
            "context": self.context,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        """Inverse of ``to_record``."""
        return cls(
            event_id=record["event_id"],
            type=record["type"],
            channel=record["channel"],
            occurred_at_ms=record["occurred_at_ms"],
            customer_key=record["customer_key"],
            identifiers=record["identifiers"],
            properties=record["properties"],
            context=record["context"],
        )


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What the decoder needs besides the bytes."""

    catalog: SchemaCatalog
    max_event_bytes: int
    hash_salt: str
    default_region: str


def _parse_json(raw: bytes) -> Any | Rejection:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            return Rejection(DlqReason.INVALID_UTF8, str(utf8_error))
        return Rejection(DlqReason.INVALID_JSON, str(exc))


def _check_envelope(
    message: dict[str, Any], topic_channel: str | None, catalog: SchemaCatalog
) -> Rejection | None:
    missing = [name for name in ENVELOPE_FIELDS if name not in message]
    if missing:
        return Rejection(DlqReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    channel = message["channel"]
    if channel not in catalog.event_validators:
        return Rejection(DlqReason.UNKNOWN_CHANNEL, f"channel {channel!r} is not one of ours")
    if topic_channel is not None and channel != topic_channel:
        return Rejection(
            DlqReason.CHANNEL_MISMATCH,
            f"channel {channel!r} arrived on the {topic_channel!r} topic",
        )
    if message["type"] not in catalog.event_types[channel]:
        return Rejection(
            DlqReason.UNKNOWN_EVENT_TYPE,
            f"type {message['type']!r} is not a {channel} event type",
        )
    customer = message["customer"]
    if not isinstance(customer, dict) or not IDENTIFIER_FIELDS.intersection(customer):
        return Rejection(DlqReason.MISSING_IDENTIFIER, "customer carries no identifier")
    return None


def decode_event(
    raw: bytes | None, topic_channel: str | None, options: DecodeOptions
) -> Event | Rejection:
    """Decode one ingress message; never raises on bad input."""
    if raw is None:
        return Rejection(DlqReason.NOT_AN_OBJECT, "message has no value (tombstone)")
    if len(raw) > options.max_event_bytes:
        return Rejection(
            DlqReason.TOO_LARGE, f"{len(raw)} bytes > limit of {options.max_event_bytes}"
        )
    message = _parse_json(raw)
    if isinstance(message, Rejection):
        return message
    if not isinstance(message, dict):
        return Rejection(DlqReason.NOT_AN_OBJECT, f"JSON {type(message).__name__}, not an object")
    rejection = _check_envelope(message, topic_channel, options.catalog)
    if rejection is not None:
        return rejection
    validator = options.catalog.event_validators[message["channel"]]
    violation = options.catalog.first_error(validator, message)
    if violation is not None:
        return Rejection(DlqReason.SCHEMA_VIOLATION, violation)
    try:
        occurred_at_ms = parse_timestamp_ms(message["occurred_at"])
    except ValueError as exc:
        return Rejection(DlqReason.INVALID_TIMESTAMP, f"occurred_at: {exc}")
    try:
        identity = resolve_identity(message["customer"], options.hash_salt, options.default_region)
    except IdentifierError as exc:
        return Rejection(DlqReason.INVALID_IDENTIFIER, str(exc))
    return Event(
        event_id=message["event_id"],
        type=message["type"],
        channel=message["channel"],
        occurred_at_ms=occurred_at_ms,
        customer_key=identity.customer_key,
        identifiers=identity.identifiers,
        properties=message.get("properties") or {},
        context=message.get("context") or {},
    )
