"""Decode and validate ingress bytes into an Event, or a Rejection with a precise reason.

This is the only place raw input is interpreted. Every way a message can be wrong has
its own ``DlqReason``; the DLQ records, metrics labels and tests use the same values.

The checks cost next to nothing on valid input, the ingest hot path: nesting depth is
measured only when the payload holds more brackets than the limit, duplicate keys are
ruled out by comparing two colon counts, and NaN/Infinity are looked for only once orjson
has refused the bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from stream.core.identity import IdentifierError, resolve_identity
from stream.core.schemas import SchemaCatalog
from stream.core.social import enrich
from stream.core.timestamps import parse_timestamp_ms

ENVELOPE_FIELDS: tuple[str, ...] = ("event_id", "type", "channel", "occurred_at", "customer")
IDENTIFIER_FIELDS: frozenset[str] = frozenset(
    {
        "customer_id",
        "anonymous_id",
        "email",
        "email_sha256",
        "phone",
        "phone_sha256",
        "social_handle",
        "social_sha256",
        "loyalty_id",
    }
)

MAX_DEPTH = 32  # nested objects and arrays, the event object itself counting as one
MAX_FUTURE_MS = 24 * 3_600_000  # occurred_at may run ahead of the processing clock by this
MAX_AGE_MS = 30 * 24 * 3_600_000  # ... and lag behind it by this


class DlqReason(StrEnum):
    """Why an input message was rejected (one value per distinct failure)."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    INVALID_NUMBER = "invalid_number"  # NaN, Infinity, or a number beyond a double's range
    TOO_DEEP = "too_deep"  # objects and arrays nested deeper than MAX_DEPTH
    DUPLICATE_KEY = "duplicate_key"  # an object names the same key twice
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_MISMATCH = "channel_mismatch"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_IDENTIFIER = "invalid_identifier"
    SCHEMA_VIOLATION = "schema_violation"
    INVALID_TIMESTAMP = "invalid_timestamp"  # occurred_at is not RFC 3339 with an offset
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"  # more than MAX_FUTURE_MS ahead of the clock
    TIMESTAMP_TOO_OLD = "timestamp_too_old"  # more than MAX_AGE_MS behind the clock
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
    max_depth: int = MAX_DEPTH
    max_future_ms: int = MAX_FUTURE_MS
    max_age_ms: int = MAX_AGE_MS


# A JSON string literal; unterminated at the end of the text (the bytes before a parse
# error can stop inside one).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")
# What a producer writes for a non-finite float (Python, JavaScript, C), at a parse error.
_NON_FINITE = re.compile(r"[-+]?(?:nan|inf(?:inity)?)(?![A-Za-z0-9_])", re.IGNORECASE)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_ESCAPED_COLON = b"\\u003"  # the prefix of \u003a and \u003A (and of a few other escapes)


def _deeper_than(text: bytes, limit: int) -> bool:
    """Whether objects and arrays outside string literals nest deeper than ``limit``."""
    depth = 0
    for byte in _STRING.sub(b"", text).translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _invalid_number(text: str, pos: int) -> str | None:
    """The NaN, Infinity or out-of-range number orjson stopped at, if that is what it was."""
    start = pos - 1 if 0 < pos <= len(text) and text[pos - 1] in "+-" else pos
    token = _NON_FINITE.match(text, start)
    if token is not None:
        return f"{token.group()} at char {start} is not a JSON number"
    number = _NUMBER.match(text, start)
    if number is not None and float(number.group()) in (float("inf"), float("-inf")):
        return f"{number.group()[:40]} at char {start} is beyond the range of a double"
    return None


def _rejected_json(raw: bytes, error: orjson.JSONDecodeError, max_depth: int) -> Rejection:
    """Why orjson refused the bytes: the first problem it met, most precise reason first."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        return Rejection(DlqReason.INVALID_UTF8, str(utf8_error))
    text, pos = error.doc, error.pos
    deep = raw.count(b"{") + raw.count(b"[") > max_depth
    if deep and _deeper_than(text[:pos].encode(), max_depth):
        return Rejection(DlqReason.TOO_DEEP, f"nested deeper than {max_depth} levels")
    number = _invalid_number(text, pos)
    if number is not None:
        return Rejection(DlqReason.INVALID_NUMBER, number)
    return Rejection(DlqReason.INVALID_JSON, str(error))


class _DuplicateKey(Exception):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _repeated_key(raw: bytes, message: Any) -> str | None:
    """A key repeated in one object of the valid JSON ``raw`` (orjson kept its last value).

    Exact, and cheap when there is none (the hot path). Outside string literals, a colon
    in valid JSON is the separator after a key; inside them a colon is written as itself
    unless escaped as \\u003a (JSON has no other way to write one). So when the bytes
    hold no such escape, ``raw`` has as many colons as the message re-serialised (one per
    key orjson kept, plus the same colons inside the same strings) exactly when orjson
    dropped no member, that is when no object repeats a key. Otherwise (a repeat, or the
    rare escape) the standard library's parser finds the key, or finds none.
    """
    if b"\\" not in raw or _ESCAPED_COLON not in raw:
        try:
            if raw.count(b":") == orjson.dumps(message).count(b":"):
                return None
        except orjson.JSONEncodeError:  # cannot happen to what orjson parsed; be safe
            pass
    try:
        json.loads(raw, object_pairs_hook=_pairs_without_duplicates)
    except _DuplicateKey as exc:
        return str(exc.args[0])
    except ValueError:  # orjson accepted the bytes: trust it
        pass
    return None


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any | Rejection:
    """The JSON value of ``raw``, or why it is poison: bad UTF-8 or JSON, a number JSON
    cannot hold, nesting deeper than ``max_depth``, an object repeating a key."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _rejected_json(raw, exc, max_depth)
    # As deep as the limit takes as many opening brackets: most events have a handful.
    if raw.count(b"{") + raw.count(b"[") > max_depth and _deeper_than(raw, max_depth):
        return Rejection(DlqReason.TOO_DEEP, f"nested deeper than {max_depth} levels")
    key = _repeated_key(raw, message)
    if key is not None:
        return Rejection(DlqReason.DUPLICATE_KEY, f"an object repeats the key {key!r}")
    return message


def _short(value: Any) -> str:
    """The repr of a value from the input, cut to a length fit for a log line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _check_envelope(
    message: dict[str, Any], topic_channel: str | None, catalog: SchemaCatalog
) -> Rejection | None:
    missing = [name for name in ENVELOPE_FIELDS if name not in message]
    if missing:
        return Rejection(DlqReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    channel = message["channel"]
    if not isinstance(channel, str) or channel not in catalog.event_validators:
        return Rejection(DlqReason.UNKNOWN_CHANNEL, f"channel {_short(channel)} is not one of ours")
    if topic_channel is not None and channel != topic_channel:
        return Rejection(
            DlqReason.CHANNEL_MISMATCH,
            f"channel {channel!r} arrived on the {topic_channel!r} topic",
        )
    type_ = message["type"]
    if not isinstance(type_, str) or type_ not in catalog.event_types[channel]:
        return Rejection(
            DlqReason.UNKNOWN_EVENT_TYPE,
            f"type {_short(type_)} is not a {channel} event type",
        )
    customer = message["customer"]
    if not isinstance(customer, dict) or not IDENTIFIER_FIELDS.intersection(customer):
        return Rejection(DlqReason.MISSING_IDENTIFIER, "customer carries no identifier")
    return None


def _check_timestamp(text: str, now_ms: int | None, options: DecodeOptions) -> int | Rejection:
    """Epoch ms of ``occurred_at``, or why it is unusable: unparsable, or too far from now."""
    try:
        occurred_at_ms = parse_timestamp_ms(text)
    except ValueError as exc:
        return Rejection(DlqReason.INVALID_TIMESTAMP, f"occurred_at: {exc}")
    if now_ms is None:
        return occurred_at_ms
    if occurred_at_ms - now_ms > options.max_future_ms:
        return Rejection(
            DlqReason.TIMESTAMP_IN_FUTURE,
            f"occurred_at {text} is {(occurred_at_ms - now_ms) / 3_600_000:.1f} h ahead of "
            f"the processing clock (limit {options.max_future_ms / 3_600_000:g} h)",
        )
    if now_ms - occurred_at_ms > options.max_age_ms:
        return Rejection(
            DlqReason.TIMESTAMP_TOO_OLD,
            f"occurred_at {text} is {(now_ms - occurred_at_ms) / 86_400_000:.1f} days behind "
            f"the processing clock (limit {options.max_age_ms / 86_400_000:g} days)",
        )
    return occurred_at_ms


def decode_event(
    raw: bytes | None,
    topic_channel: str | None,
    options: DecodeOptions,
    now_ms: int | None = None,
) -> Event | Rejection:
    """Decode one ingress message; never raises on bad input.

    ``now_ms`` is the processing clock: ``occurred_at`` further ahead of it than
    ``options.max_future_ms`` or behind it by more than ``options.max_age_ms`` is
    rejected. Without it (tools, tests) the time is not checked against a clock.
    """
    if raw is None:
        return Rejection(DlqReason.NOT_AN_OBJECT, "message has no value (tombstone)")
    if len(raw) > options.max_event_bytes:
        return Rejection(
            DlqReason.TOO_LARGE, f"{len(raw)} bytes > limit of {options.max_event_bytes}"
        )
    message = parse_json(raw, options.max_depth)
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
    occurred_at_ms = _check_timestamp(message["occurred_at"], now_ms, options)
    if isinstance(occurred_at_ms, Rejection):
        return occurred_at_ms
    try:
        identity = resolve_identity(message["customer"], options.hash_salt, options.default_region)
    except IdentifierError as exc:
        return Rejection(DlqReason.INVALID_IDENTIFIER, str(exc))
    properties = message.get("properties") or {}
    context = message.get("context") or {}
    if message["channel"] == "social":  # a post's sentiment and the case it may open
        properties = enrich(message["type"], properties, context)
    return Event(
        event_id=message["event_id"],
        type=message["type"],
        channel=message["channel"],
        occurred_at_ms=occurred_at_ms,
        customer_key=identity.customer_key,
        identifiers=identity.identifiers,
        properties=properties,
        context=context,
    )
