"""What the HTTP collector does with a request body, without HTTP or Kafka.

A body is split into items (``split_body``): one JSON object, a JSON array of them (each
element re-serialised), or NDJSON (one per line; blank lines skipped). Each item is then
judged by the worker's own decoder (``decode_event`` with the same ``DecodeOptions`` and
processing clock; ``decode_outcome`` for outcomes), so the collector accepts exactly what
the ingest and outcomes steps would: a ``Verdict`` per item says where an accepted record
goes (its channel, Kafka key and original bytes) or why it was refused (the DLQ's reason
codes). ``Answer`` is the per-item answer the caller gets, and its HTTP status.

A JSON body that cannot be parsed cannot be split either: it is one item, refused with the
parser's reason. Use NDJSON to keep a bad record from taking its neighbours down with it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from stream.core.events import (
    MAX_DEPTH,
    DecodeOptions,
    DlqReason,
    Rejection,
    decode_event,
    parse_json,
)
from stream.core.outcomes import decode_outcome
from stream.core.schemas import SchemaCatalog

OUTCOMES = "outcomes"  # what a key must be allowed to write outcomes; their "channel" here
_WHITESPACE = b" \t\r\n"


class BodyFormat(StrEnum):
    """How a body holds its records, chosen by the request's Content-Type."""

    JSON = "json"  # one object, or an array of objects
    NDJSON = "ndjson"  # one object per line


# Media types by format. text/plain is what navigator.sendBeacon sends for a string body
# (a JSON media type would need a CORS preflight, which a beacon cannot make).
MEDIA_TYPES: Mapping[str, BodyFormat] = {
    "application/json": BodyFormat.JSON,
    "text/plain": BodyFormat.JSON,
    "application/x-ndjson": BodyFormat.NDJSON,
    "application/ndjson": BodyFormat.NDJSON,
    "application/jsonl": BodyFormat.NDJSON,
    "application/x-jsonlines": BodyFormat.NDJSON,
}


def body_format(content_type: str) -> BodyFormat | None:
    """The format a Content-Type names (parameters such as charset ignored), or None."""
    media_type = content_type.partition(";")[0].strip().lower()
    return MEDIA_TYPES.get(media_type)


@dataclass(frozen=True, slots=True)
class Item:
    """One record of a body: its position, its bytes, and its line in an NDJSON body.

    ``rejection`` is set when the item is known to be bad before it is decoded (a JSON
    body that could not be split into records)."""

    index: int
    raw: bytes
    line: int | None = None
    rejection: Rejection | None = None


def split_body(body: bytes, fmt: BodyFormat, max_depth: int = MAX_DEPTH) -> list[Item]:
    """The items of a body (an empty list for a body that holds none)."""
    if fmt is BodyFormat.NDJSON:
        return _ndjson_items(body)
    text = body.strip(_WHITESPACE)
    if not text:
        return []
    if not text.startswith(b"["):
        return [Item(0, body)]
    parsed = parse_json(text, max_depth + 1)  # the array is one more level around each record
    if isinstance(parsed, Rejection):
        return [Item(0, body, rejection=parsed)]
    return [Item(index, orjson.dumps(element)) for index, element in enumerate(parsed)]


def _ndjson_items(body: bytes) -> list[Item]:
    """One item per line that is not blank (a trailing CR is dropped, as from CRLF)."""
    items: list[Item] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        line = line.removesuffix(b"\r")
        if line.strip(_WHITESPACE):
            items.append(Item(len(items), line, number))
    return items


def items_from_records(records: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Items of records built in code (an adapter's outcome records), serialised as JSON."""
    return [Item(index, orjson.dumps(record)) for index, record in enumerate(records)]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid record: where it goes (its channel, or ``outcomes``), its key and bytes."""

    index: int
    channel: str
    record_id: str  # event_id or outcome_id
    key: bytes
    value: bytes
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that will not be produced, why, and what it names of itself (if it can
    be read): its channel and id."""

    index: int
    rejection: Rejection
    raw: bytes
    line: int | None = None
    channel: str | None = None
    record_id: str | None = None


Verdict = Accepted | Refused


def judge_events(
    items: Sequence[Item], options: DecodeOptions, channels: Collection[str], now_ms: int
) -> list[Verdict]:
    """Each item decoded as the ingest step would at ``now_ms``; accepted ones keyed by
    their strongest identifier's token (email and phone hashed, never raw)."""
    verdicts: list[Verdict] = []
    for item in items:
        decoded = item.rejection or decode_event(item.raw, None, options, now_ms)
        if not isinstance(decoded, Rejection) and decoded.channel not in channels:
            decoded = Rejection(
                DlqReason.UNKNOWN_CHANNEL, f"channel {decoded.channel!r} is not one of ours"
            )
        if isinstance(decoded, Rejection):
            verdicts.append(_refused(item, decoded, "event_id", channels))
            continue
        key = decoded.customer_key.encode()
        verdicts.append(
            Accepted(item.index, decoded.channel, decoded.event_id, key, item.raw, item.line)
        )
    return verdicts


def judge_outcomes(items: Sequence[Item], catalog: SchemaCatalog, max_bytes: int) -> list[Verdict]:
    """Each item decoded as the outcomes step would; accepted ones keyed by customer id."""
    verdicts: list[Verdict] = []
    for item in items:
        decoded = item.rejection or decode_outcome(item.raw, catalog, max_bytes)
        if isinstance(decoded, Rejection):
            verdicts.append(_refused(item, decoded, "outcome_id", (OUTCOMES,)))
            continue
        key = decoded.customer_id.encode()
        verdicts.append(
            Accepted(item.index, OUTCOMES, decoded.outcome_id, key, item.raw, item.line)
        )
    return verdicts


def _refused(item: Item, rejection: Rejection, id_field: str, channels: Collection[str]) -> Refused:
    """The refusal of an item, with the channel and id it names when it can be read."""
    message = parse_json(item.raw) if item.rejection is None else None
    channel = record_id = None
    if isinstance(message, dict):
        named = message.get("channel")
        channel = named if isinstance(named, str) and named in channels else None
        named_id = message.get(id_field)
        record_id = named_id[:200] if isinstance(named_id, str) else None
    if OUTCOMES in channels:  # an outcome goes to the outcomes topic whatever it says
        channel = OUTCOMES
    return Refused(item.index, rejection, item.raw, item.line, channel, record_id)


def forbidden_channels(verdicts: Sequence[Verdict], allowed: Collection[str]) -> list[str]:
    """The channels records name that a key may not write, sorted (empty: none)."""
    named = {v.channel for v in verdicts if v.channel is not None}
    return sorted(named.difference(allowed))


@dataclass(frozen=True, slots=True)
class Answer:
    """The per-item answer to a request whose accepted records the broker acknowledged."""

    verdicts: tuple[Verdict, ...]

    @property
    def accepted(self) -> int:
        """How many records were accepted."""
        return sum(1 for v in self.verdicts if isinstance(v, Accepted))

    @property
    def rejected(self) -> int:
        """How many records were refused (and dead-lettered)."""
        return len(self.verdicts) - self.accepted

    @property
    def status(self) -> int:
        """200 all accepted, 207 some refused, 400 none accepted."""
        if not self.rejected:
            return 200
        return 207 if self.accepted else 400

    def to_json(self) -> dict[str, Any]:
        """The response body: counts, then one entry per item in body order."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "results": [_result(v) for v in self.verdicts],
        }


def _result(verdict: Verdict) -> dict[str, Any]:
    """One item's entry of the answer."""
    result: dict[str, Any] = {"index": verdict.index}
    if verdict.line is not None:
        result["line"] = verdict.line
    if isinstance(verdict, Accepted):
        result.update(status="accepted", id=verdict.record_id, channel=verdict.channel)
        return result
    result.update(
        status="rejected", reason=verdict.rejection.reason.value, detail=verdict.rejection.detail
    )
    if verdict.record_id is not None:
        result["id"] = verdict.record_id
    return result
