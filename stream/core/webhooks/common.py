"""What every email-provider webhook adapter returns, and the rules the adapters share.

An adapter turns one provider call (raw body, lower-cased headers) into outcome records of
``schemas/outcome.schema.json``. It is pure: no I/O, no clock (``now_ms`` is passed in),
so the collector mounts it at ``POST /webhooks/{provider}`` and tests replay the
providers' documented samples. Per call, the collector:

1. ``verify(body, headers, secret, now_ms)``: None when the call is authentic, else why
   not (answer 401 and produce nothing);
2. ``outcomes(body, headers)``: a ``WebhookBatch``, or a ``Rejection`` of the whole call
   when the body cannot be read at all (not JSON, not the provider's shape): the body
   goes to the DLQ as one message.

A batch sorts every item of the call (SendGrid posts many, Mailgun and Postmark one)
into exactly one of: an outcome record; a ``Rejection`` (the item names our identifiers
but is malformed: DLQ, with the field named); ``Ignored`` (not ours, or an event that
maps to no outcome: counted, not DLQ'd). Item indexes are positions in the body (always
0 for one-object providers).

PII: recipients' addresses are never copied into an outcome; free-text fields (bounce
reasons, URLs) have any address replaced by ``[email]``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from stream.core.events import DlqReason, Rejection, parse_json
from stream.core.timestamps import format_ms, parse_timestamp_ms

CHANNEL = "email"
ACTION_ID = "action_id"  # the identifiers a sender puts into every message (see docs/webhooks.md)
CUSTOMER_ID = "customer_id"
TOLERANCE_MS = 5 * 60_000  # a signed timestamp may differ from now by this much, either way
MAX_TEXT = 300  # characters kept of a provider's free-text field (a bounce reason, a URL)
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last RFC 3339 instant

# An address in free text, also URL-encoded (%40) as in a tracked link's query string.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class IgnoreReason(StrEnum):
    """Why an item of a webhook call produced no outcome and no dead letter (metrics label)."""

    NOT_OURS = "not_ours"  # no action_id / customer_id: a message we did not send
    NO_OUTCOME = "no_outcome"  # a known event that means nothing to us (processed, deferred...)
    MACHINE_EVENT = "machine_event"  # an open or click by a machine (privacy proxy, scanner)
    UNKNOWN_EVENT = "unknown_event"  # an event name the adapter does not know (a new one)


@dataclass(frozen=True, slots=True)
class Ignored:
    """An item that is counted and dropped, and why."""

    reason: IgnoreReason
    detail: str


@dataclass(frozen=True)
class WebhookBatch:
    """Every item of one call, each in exactly one list, as (index in the body, result)."""

    outcomes: list[tuple[int, dict[str, Any]]]
    rejected: list[tuple[int, Rejection]]
    ignored: list[tuple[int, Ignored]]


class WebhookProvider(Protocol):
    """One email provider's webhook: authenticity and mapping onto outcome records."""

    name: str  # the URL segment: POST /webhooks/{name}

    def secret_error(self, secret: str) -> str | None:
        """None when ``secret`` has this provider's form, else what is wrong (check at load)."""
        ...

    def verify(
        self, body: bytes, headers: Mapping[str, str], secret: str, now_ms: int
    ) -> str | None:
        """None when the call is authentic, else why not (missing header, bad signature...)."""
        ...

    def outcomes(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch | Rejection:
        """The call's items sorted into outcomes, rejections and ignored, or the whole call
        rejected when its body cannot be read."""
        ...


ItemResult = dict[str, Any] | Rejection | Ignored


def json_object(body: bytes) -> dict[str, Any] | Rejection:
    """The JSON object a one-record call's body holds, or why the whole call is refused."""
    message = parse_json(body)
    if isinstance(message, Rejection):
        return message
    if not isinstance(message, dict):
        return Rejection(DlqReason.NOT_AN_OBJECT, f"body is {type(message).__name__}")
    return message


def batch_of(results: Iterable[ItemResult]) -> WebhookBatch:
    """A batch from the results of the body's items, in body order."""
    batch = WebhookBatch([], [], [])
    for index, result in enumerate(results):
        if isinstance(result, Rejection):
            batch.rejected.append((index, result))
        elif isinstance(result, Ignored):
            batch.ignored.append((index, result))
        else:
            batch.outcomes.append((index, result))
    return batch


def our_identifiers(carrier: Any, path: str) -> tuple[str, str] | Rejection | Ignored:
    """``(action_id, customer_id)`` from where the sender put them (custom args, variables,
    metadata at ``path``); Ignored when neither is there, a Rejection naming the field when
    only one is or one is not a non-empty string."""
    if not isinstance(carrier, Mapping) or (
        ACTION_ID not in carrier and CUSTOMER_ID not in carrier
    ):
        return Ignored(IgnoreReason.NOT_OURS, f"no {path}{ACTION_ID}: a message we did not send")
    values: list[str] = []
    for name in (ACTION_ID, CUSTOMER_ID):
        if name not in carrier:
            return Rejection(DlqReason.MISSING_FIELD, f"{path}{name}: missing")
        value = carrier[name]
        if not isinstance(value, str) or not value:
            return Rejection(
                DlqReason.SCHEMA_VIOLATION,
                f"{path}{name}: expected a non-empty string, got {_kind(value)}",
            )
        values.append(value)
    return values[0], values[1]


def event_kind(
    record: Mapping[str, Any],
    name: str,
    path: str,
    no_outcome: Container[str],
    mapped: Container[str],
    noun: str = "event",
) -> str | Rejection | Ignored:
    """The item's event name (field ``name``), or why it gives no outcome: missing (a
    Rejection), one that means nothing to us or one the adapter does not know (Ignored)."""
    kind = record.get(name)
    if not isinstance(kind, str) or not kind:
        return Rejection(DlqReason.MISSING_FIELD, f"{path}{name}: missing")
    if kind in no_outcome:
        return Ignored(IgnoreReason.NO_OUTCOME, f"{noun} {kind!r}")
    if kind not in mapped:
        return Ignored(IgnoreReason.UNKNOWN_EVENT, f"{noun} {kind[:40]!r}")
    return kind


def required_text(record: Mapping[str, Any], name: str, path: str = "") -> str | Rejection:
    """The non-empty string field ``name`` of ``record``, or a Rejection naming it."""
    if name not in record or record[name] is None:
        return Rejection(DlqReason.MISSING_FIELD, f"{path}{name}: missing")
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return Rejection(
            DlqReason.SCHEMA_VIOLATION, f"{path}{name}: expected an id, got {_kind(value)}"
        )
    return str(value)


def epoch_seconds_ms(value: Any, field: str) -> int | Rejection:
    """Epoch ms of a provider's Unix time in seconds (integer or fraction), or why not."""
    if value is None:
        return Rejection(DlqReason.MISSING_FIELD, f"{field}: missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection(
            DlqReason.INVALID_TIMESTAMP, f"{field}: expected Unix seconds, got {_kind(value)}"
        )
    epoch_ms = round(value * 1000)
    if not 0 <= epoch_ms <= _MAX_EPOCH_MS:
        return Rejection(DlqReason.INVALID_TIMESTAMP, f"{field}: {value} is out of range")
    return epoch_ms


def iso_timestamp_ms(value: Any, field: str) -> int | Rejection:
    """Epoch ms of a provider's ISO 8601 / RFC 3339 timestamp with an offset, or why not."""
    if value is None:
        return Rejection(DlqReason.MISSING_FIELD, f"{field}: missing")
    try:
        return parse_timestamp_ms(value)
    except (TypeError, ValueError) as exc:
        return Rejection(DlqReason.INVALID_TIMESTAMP, f"{field}: {exc}")


def stale(timestamp_s: int, now_ms: int, tolerance_ms: int = TOLERANCE_MS) -> str | None:
    """Why a signed timestamp (Unix seconds) is too far from ``now_ms``, or None."""
    skew_ms = now_ms - timestamp_s * 1000
    if abs(skew_ms) <= tolerance_ms:
        return None
    side = "old" if skew_ms > 0 else "in the future"
    return (
        f"stale timestamp: {abs(skew_ms) / 1000:.0f} s {side} (tolerance {tolerance_ms // 1000} s)"
    )


def outcome_id_for(provider: str, event_key: str, event: str, action_id: str) -> str:
    """Deterministic outcome id, 32 hex digits: a provider's retry of one event gets the same."""
    text = "\x00".join((provider, event_key, event, action_id))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def redacted(value: Any) -> str | None:
    """A provider's free text fit for an outcome: addresses replaced, cut to MAX_TEXT."""
    if value is None or value == "":
        return None
    text = _EMAIL.sub("[email]", str(value))
    return text if len(text) <= MAX_TEXT else f"{text[: MAX_TEXT - 3]}..."


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Which provider event an outcome comes from: names for ids and ``detail``."""

    provider: str
    event: str  # the provider's own event name (SendGrid ``bounce``, Postmark ``Bounce``)
    event_key: str  # unique per provider event; the same when the provider retries it
    occurred_at_ms: int


def outcome_record(
    occurrence: Occurrence, ids: tuple[str, str], outcome: str, **detail: Any
) -> dict[str, Any]:
    """An outcome record (``schemas/outcome.schema.json``); None-valued details are left out."""
    action_id, customer_id = ids
    return {
        "outcome_id": outcome_id_for(
            occurrence.provider, occurrence.event_key, occurrence.event, action_id
        ),
        "action_id": action_id,
        "customer_id": customer_id,
        "channel": CHANNEL,
        "outcome": outcome,
        "occurred_at": format_ms(occurrence.occurred_at_ms),
        "detail": {
            "provider": occurrence.provider,
            "provider_event": occurrence.event,
            **{name: value for name, value in detail.items() if value is not None},
        },
    }


def _kind(value: Any) -> str:
    """The JSON type name of a value, for a rejection's detail."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "an empty string" if not value else "string"
    return {int: "number", float: "number", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
