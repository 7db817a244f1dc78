"""RFC 3339 and nothing else: the forms the contract allows are read, other ISO 8601 refused."""

from __future__ import annotations

import jsonschema_rs
import orjson
import pytest

from stream.core.events import DlqReason, Rejection
from stream.core.timestamps import format_ms, parse_timestamp_ms
from tests.unit.core.test_events import base_event, decode
from tests.unit.core.test_outcomes import VALID as VALID_OUTCOME
from tests.unit.core.test_outcomes import decode as decode_outcome

AT_MS = 1_796_292_000_000  # 2026-12-03T10:00:00Z

# (written, epoch ms): every RFC 3339 section 5.6 form.
ACCEPTED = [
    ("2026-12-03T10:00:00Z", AT_MS),
    ("2026-12-03t10:00:00z", AT_MS),  # lowercase t and z
    ("2026-12-03T11:30:00+01:30", AT_MS),
    ("2026-12-03T05:00:00-05:00", AT_MS),
    ("2026-12-03T10:00:00-00:00", AT_MS),  # "offset unknown": the time is UTC
    ("2026-12-03T10:00:00.5Z", AT_MS + 500),
    ("2026-12-03T10:00:00.250Z", AT_MS + 250),
    ("2026-12-03T10:00:00.123456789Z", AT_MS + 123),  # any number of digits, truncated
    ("2016-12-31T23:59:60Z", 1_483_228_800_000),  # a leap second: the next minute
    ("2016-12-31T23:59:60.999Z", 1_483_228_800_000),
    ("1969-12-31T23:59:59.500Z", -500),
]

# (written, words the DLQ detail gives): ISO 8601 forms RFC 3339 does not have, and nonsense.
REFUSED = [
    ("2026-W49-4T10:00:00Z", "week date"),
    ("2026W494T100000Z", "week date"),
    ("2026-337T10:00:00Z", "ordinal date"),
    ("20261203T100000Z", "basic format"),
    ("2026-12-03T10:00:00+0000", "+hh:mm"),
    ("2026-12-03T10:00:00+00", "+hh:mm"),
    ("2026-12-03T10:00:00", "no UTC offset"),
    ("2026-12-03T10:00:00.250", "no UTC offset"),
    ("2026-12-03", "a date without a time"),
    ("2026-12-03 10:00:00Z", "separated by T"),
    ("2026-12-03T10:00Z", "not an RFC 3339 date-time"),  # seconds are required
    ("2026-12-03T10:00:00,5Z", "not an RFC 3339 date-time"),  # decimal comma
    ("2026-12-03T10:00:00.Z", "not an RFC 3339 date-time"),
    ("2026-12-03T10:00:00+24:00", "offset out of range"),
    ("2026-12-03T24:00:00Z", "out of range"),
    ("2026-02-30T10:00:00Z", "day is out of range"),
    ("\uff12026-12-03T10:00:00Z", "not an RFC 3339 date-time"),  # a full-width digit
    (" 2026-12-03T10:00:00Z", "not an RFC 3339 date-time"),
    ("yesterday", "not an RFC 3339 date-time"),
]


@pytest.mark.parametrize(("written", "epoch_ms"), ACCEPTED, ids=[w for w, _ in ACCEPTED])
def test_every_rfc_3339_form_is_read_to_the_millisecond(written: str, epoch_ms: int) -> None:
    assert parse_timestamp_ms(written) == epoch_ms


@pytest.mark.parametrize(("written", "words"), REFUSED, ids=[w for w, _ in REFUSED])
def test_other_iso_8601_forms_are_refused_with_a_reason_in_words(written: str, words: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_timestamp_ms(written)
    assert words in str(refused.value)


@pytest.mark.parametrize(("written", "words"), REFUSED[:9], ids=[w for w, _ in REFUSED[:9]])
def test_an_event_or_outcome_with_such_a_time_goes_to_the_dlq_as_invalid_timestamp(
    written: str, words: str
) -> None:
    event = decode(base_event(occurred_at=written))
    assert isinstance(event, Rejection) and event.reason is DlqReason.INVALID_TIMESTAMP
    assert words in event.detail and "occurred_at" in event.detail
    outcome = decode_outcome({**VALID_OUTCOME, "occurred_at": written})
    assert isinstance(outcome, Rejection) and outcome.reason is DlqReason.INVALID_TIMESTAMP


def test_the_schemas_date_time_format_agrees_with_the_parser() -> None:
    # The schemas say "format": "date-time" (RFC 3339); the worker does not assert formats
    # in the schema check, so the parser is what refuses, with its own DLQ reason.
    date_time = jsonschema_rs.validator_for(
        {"type": "string", "format": "date-time"}, validate_formats=True
    )
    for written, _ in ACCEPTED:
        assert date_time.is_valid(written), written
    for written, _ in REFUSED:
        assert not date_time.is_valid(written), written


def test_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_timestamp_ms(orjson.loads(b"1796292000"))


def test_what_the_worker_writes_it_reads_back() -> None:
    for epoch_ms in (0, AT_MS, AT_MS + 7, -500):
        assert parse_timestamp_ms(format_ms(epoch_ms)) == epoch_ms
