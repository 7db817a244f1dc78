"""Decoding ingress bytes: valid events become Events, everything else a precise Rejection."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.core.events import DecodeOptions, DlqReason, Event, Rejection, decode_event
from stream.core.identity import hash_identifier
from stream.core.schemas import default_schema_dir, load_catalog

EXAMPLES = default_schema_dir() / "examples"
CATALOG = load_catalog()
OPTIONS = DecodeOptions(CATALOG, max_event_bytes=4096, hash_salt="pepper", default_region="FR")
VALID = sorted(p for p in (EXAMPLES / "valid").glob("*.json") if p.name.count(".") == 2)
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def base_event(**overrides: object) -> dict[str, object]:
    message: dict[str, object] = {
        "event_id": "e1",
        "type": "page_view",
        "channel": "web",
        "occurred_at": "2026-11-23T10:15:00.000Z",
        "customer": {"customer_id": "C1"},
        "properties": {"url": "/"},
    }
    message.update(overrides)
    return message


def decode(message: object, topic_channel: str | None = "web") -> Event | Rejection:
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    return decode_event(raw, topic_channel, OPTIONS)


def test_every_channel_has_its_event_types() -> None:
    assert set(CATALOG.event_types) == {"web", "app", "email", "store", "call_center", "social"}
    assert {"add_to_cart", "order_completed", "login"} <= CATALOG.event_types["web"]
    assert {"complaint_opened", "complaint_resolved"} <= CATALOG.event_types["call_center"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_valid_example_decodes(path: Path) -> None:
    message = orjson.loads(path.read_bytes())
    result = decode(message, message["channel"])
    assert isinstance(result, Event), result
    assert result.type == message["type"] and result.channel == message["channel"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_invalid_example_is_rejected_with_its_reason(path: Path) -> None:
    example = orjson.loads(path.read_bytes())
    result = decode(example["message"], None)
    assert isinstance(result, Rejection)
    assert result.reason.value == example["expect_reason"], result.detail


def test_valid_event_is_keyed_timestamped_and_hashed() -> None:
    result = decode(base_event(customer={"email": " Ann@Example.com "}))
    assert isinstance(result, Event)
    digest = hash_identifier("ann@example.com", "pepper")
    assert result.customer_key == f"email:{digest}"
    assert result.identifiers == {"email_sha256": digest}
    assert result.occurred_at_ms == 1_795_428_900_000  # 2026-11-23T10:15:00Z
    assert "Example" not in orjson.dumps(result.to_record()).decode()
    assert Event.from_record(orjson.loads(orjson.dumps(result.to_record()))) == result


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 5000, DlqReason.TOO_LARGE),
        (b'{"a": "\xff"}', DlqReason.INVALID_UTF8),
        (b'{"a": ', DlqReason.INVALID_JSON),
        (b'{"a": NaN}', DlqReason.INVALID_NUMBER),
        (b'"just a string"', DlqReason.NOT_AN_OBJECT),
        (None, DlqReason.NOT_AN_OBJECT),
    ],
    ids=["too_large", "invalid_utf8", "invalid_json", "nan", "string", "tombstone"],
)
def test_bytes_that_are_not_an_event_object(raw: bytes | None, reason: DlqReason) -> None:
    result = decode_event(raw, "web", OPTIONS)
    assert isinstance(result, Rejection) and result.reason is reason


@pytest.mark.parametrize(
    ("overrides", "topic", "reason", "detail_contains"),
    [
        ({"channel": "fax"}, "web", DlqReason.UNKNOWN_CHANNEL, "fax"),
        ({"channel": "app", "type": "app_opened"}, "web", DlqReason.CHANNEL_MISMATCH, "app"),
        ({"type": "teleported"}, "web", DlqReason.UNKNOWN_EVENT_TYPE, "teleported"),
        ({"customer": {}}, "web", DlqReason.MISSING_IDENTIFIER, "identifier"),
        ({"customer": "C1"}, "web", DlqReason.MISSING_IDENTIFIER, "identifier"),
        ({"customer": {"phone": "not a phone"}}, "web", DlqReason.INVALID_IDENTIFIER, "phone"),
        ({"properties": {"title": "no url"}}, "web", DlqReason.SCHEMA_VIOLATION, "url"),
        ({"occurred_at": "yesterday"}, "web", DlqReason.INVALID_TIMESTAMP, "occurred_at"),
        ({"occurred_at": "2026-11-23T10:15:00"}, "web", DlqReason.INVALID_TIMESTAMP, "offset"),
        ({"surprise": 1}, "web", DlqReason.SCHEMA_VIOLATION, "surprise"),
    ],
    ids=lambda v: v.value if isinstance(v, DlqReason) else None,
)
def test_event_shaped_messages_rejected_with_a_precise_reason(
    overrides: dict[str, object], topic: str, reason: DlqReason, detail_contains: str
) -> None:
    result = decode(base_event(**overrides), topic)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert detail_contains in result.detail


def test_missing_envelope_fields_are_named() -> None:
    message = base_event()
    del message["occurred_at"], message["event_id"]
    result = decode(message)
    assert isinstance(result, Rejection) and result.reason is DlqReason.MISSING_FIELD
    assert "event_id" in result.detail and "occurred_at" in result.detail


@pytest.mark.parametrize(
    ("written", "meaning"),
    [
        ("2026-11-23t10:15:00z", "2026-11-23T10:15:00Z"),  # RFC 3339 allows lowercase
        ("2026-11-23T11:15:00.250+01:00", "2026-11-23T10:15:00.250Z"),
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),  # a leap second: next minute
        ("2016-12-31T23:59:60.999Z", "2017-01-01T00:00:00Z"),
    ],
)
def test_every_rfc_3339_form_is_read(written: str, meaning: str) -> None:
    from stream.core.timestamps import parse_timestamp_ms

    assert parse_timestamp_ms(written) == parse_timestamp_ms(meaning)
