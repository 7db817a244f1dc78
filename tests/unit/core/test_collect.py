"""The collector's pure rules: splitting a body, judging each record, the answer."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from stream.config import CHANNELS_IN
from stream.core.collect import (
    OUTCOMES,
    Accepted,
    Answer,
    BodyFormat,
    Item,
    Refused,
    body_format,
    forbidden_channels,
    items_from_records,
    judge_events,
    judge_outcomes,
    split_body,
)
from stream.core.dlq import CollectorSource, dlq_record
from stream.core.events import DecodeOptions, DlqReason, Rejection
from stream.core.identity import hash_identifier
from tests.unit.core.decide.helpers import CATALOG

OPTIONS = DecodeOptions(CATALOG, max_event_bytes=4096, hash_salt="pepper", default_region="FR")
NOW_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z


def event(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "event_id": "e1",
        "type": "page_view",
        "channel": "web",
        "occurred_at": "2026-11-23T09:59:00.000Z",
        "customer": {"customer_id": "C1"},
        "properties": {"url": "/"},
    }
    message.update(overrides)
    return message


def outcome(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "outcome_id": "o1",
        "action_id": "a1",
        "customer_id": "C1",
        "channel": "email",
        "outcome": "opened",
        "occurred_at": "2026-11-23T09:59:00.000Z",
    }
    message.update(overrides)
    return message


def judge(body: bytes, fmt: BodyFormat = BodyFormat.JSON) -> list[Accepted | Refused]:
    return judge_events(split_body(body, fmt), OPTIONS, CHANNELS_IN, NOW_MS)


# --- the body ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("application/json", BodyFormat.JSON),
        ("Application/JSON; charset=utf-8", BodyFormat.JSON),
        ("text/plain;charset=UTF-8", BodyFormat.JSON),  # navigator.sendBeacon's string body
        ("application/x-ndjson", BodyFormat.NDJSON),
        ("application/jsonl", BodyFormat.NDJSON),
        ("application/xml", None),
        ("", None),
    ],
)
def test_the_content_type_names_the_body_format(content_type: str, fmt: BodyFormat | None) -> None:
    assert body_format(content_type) is fmt


def test_a_single_object_is_one_item_with_its_original_bytes() -> None:
    body = b'  {"event_id": "e1" , "x": 1}\n'
    assert split_body(body, BodyFormat.JSON) == [Item(0, body)]


def test_an_array_is_one_item_per_element_each_re_serialised() -> None:
    body = orjson.dumps([event(event_id="a"), event(event_id="b")])
    items = split_body(b" " + body, BodyFormat.JSON)
    assert [orjson.loads(i.raw)["event_id"] for i in items] == ["a", "b"]
    assert [i.index for i in items] == [0, 1]


def test_an_array_that_is_not_json_is_one_refused_item_with_the_parsers_reason() -> None:
    body = b'[{"event_id": "a"}, {"event_id": "b", "event_id": "c"}]'
    [item] = split_body(body, BodyFormat.JSON)
    assert item.rejection is not None and item.rejection.reason is DlqReason.DUPLICATE_KEY
    [verdict] = judge_events([item], OPTIONS, CHANNELS_IN, NOW_MS)
    assert isinstance(verdict, Refused) and verdict.raw == body
    assert verdict.rejection.reason is DlqReason.DUPLICATE_KEY


def test_an_array_may_be_one_level_deeper_than_a_record() -> None:
    deep: Any = {}
    for _ in range(29):  # 32 levels with properties and the event: the limit itself
        deep = {"d": deep}
    body = orjson.dumps([event(properties={"url": "/", "deep": deep})])
    [verdict] = judge(body)
    assert isinstance(verdict, Accepted)


def test_ndjson_has_one_item_per_line_and_skips_blank_lines() -> None:
    lines = [orjson.dumps(event(event_id=f"e{n}")) for n in range(3)]
    body = lines[0] + b"\r\n\n  \n" + lines[1] + b"\n" + lines[2] + b"\n"
    items = split_body(body, BodyFormat.NDJSON)
    assert [(i.index, i.line, i.raw) for i in items] == [
        (0, 1, lines[0]),
        (1, 4, lines[1]),
        (2, 5, lines[2]),
    ]


@pytest.mark.parametrize("body", [b"", b"  \n", b"[]"])
def test_an_empty_body_holds_no_item(body: bytes) -> None:
    assert split_body(body, BodyFormat.JSON) == []
    assert split_body(body.replace(b"[]", b""), BodyFormat.NDJSON) == []


# --- each record --------------------------------------------------------------------------


def test_ndjson_with_a_bad_line_in_the_middle_refuses_that_line_alone() -> None:
    body = b"\n".join(
        [orjson.dumps(event(event_id="a")), b'{"event_id": "b", oops', orjson.dumps(event())]
    )
    verdicts = judge(body, BodyFormat.NDJSON)
    assert [type(v) for v in verdicts] == [Accepted, Refused, Accepted]
    bad = verdicts[1]
    assert isinstance(bad, Refused) and bad.rejection.reason is DlqReason.INVALID_JSON
    assert (bad.index, bad.line, bad.raw) == (1, 2, b'{"event_id": "b", oops')


def test_an_array_with_invalid_elements_refuses_each_with_the_dlq_reason() -> None:
    body = orjson.dumps(
        [
            event(event_id="ok"),
            event(event_id="no-type", type="teleport"),
            "not an object",
            event(event_id="old", occurred_at="2026-09-01T00:00:00Z"),
            event(event_id="no-id", customer={}),
            event(event_id="bad-phone", customer={"phone": "not a phone"}),
        ]
    )
    verdicts = judge(body)
    reasons = [v.rejection.reason if isinstance(v, Refused) else None for v in verdicts]
    assert reasons == [
        None,
        DlqReason.UNKNOWN_EVENT_TYPE,
        DlqReason.NOT_AN_OBJECT,
        DlqReason.TIMESTAMP_TOO_OLD,
        DlqReason.MISSING_IDENTIFIER,
        DlqReason.INVALID_IDENTIFIER,
    ]
    assert [v.record_id for v in verdicts] == ["ok", "no-type", None, "old", "no-id", "bad-phone"]


def test_the_processing_clock_judges_occurred_at_as_the_worker_does() -> None:
    ahead = event(occurred_at="2026-11-24T11:00:00Z")  # 25 h ahead of NOW_MS
    [verdict] = judge(orjson.dumps(ahead))
    assert isinstance(verdict, Refused)
    assert verdict.rejection.reason is DlqReason.TIMESTAMP_IN_FUTURE
    [later] = judge_events(
        split_body(orjson.dumps(ahead), BodyFormat.JSON), OPTIONS, CHANNELS_IN, NOW_MS + 3_600_000
    )
    assert isinstance(later, Accepted)


def test_an_accepted_event_keeps_its_bytes_and_is_keyed_by_its_hashed_identifier() -> None:
    raw = orjson.dumps(event(customer={"email": "Jo@Example.com", "anonymous_id": "a1"}))
    [verdict] = judge(raw)
    assert isinstance(verdict, Accepted)
    assert verdict.value == raw and verdict.channel == "web" and verdict.record_id == "e1"
    assert verdict.key == f"email:{hash_identifier('jo@example.com', 'pepper')}".encode()
    assert b"Example" not in verdict.key


def test_a_customer_id_is_the_key_when_there_is_one() -> None:
    [verdict] = judge(orjson.dumps(event(customer={"customer_id": "C9", "email": "a@b.c"})))
    assert isinstance(verdict, Accepted) and verdict.key == b"C9"


def test_a_channel_the_schemas_know_but_the_collector_does_not_is_unknown() -> None:
    items = split_body(orjson.dumps(event(channel="app", type="app_opened")), BodyFormat.JSON)
    [verdict] = judge_events(items, OPTIONS, ("web",), NOW_MS)
    assert isinstance(verdict, Refused)
    assert verdict.rejection.reason is DlqReason.UNKNOWN_CHANNEL


def test_the_channels_records_name_are_checked_against_a_keys_channels() -> None:
    body = orjson.dumps(
        [event(), event(channel="email", type="no_such_type"), event(channel="nowhere")]
    )
    verdicts = judge(body)
    assert [v.channel for v in verdicts] == ["web", "email", None]
    assert forbidden_channels(verdicts, {"web"}) == ["email"]
    assert forbidden_channels(verdicts, {"web", "email"}) == []


def test_outcomes_are_judged_by_the_outcome_decoder_and_keyed_by_customer_id() -> None:
    records = [outcome(), outcome(outcome="teleported"), outcome(customer_id="C2")]
    items = items_from_records(records)
    verdicts = judge_outcomes(items, CATALOG, 4096)
    assert [type(v) for v in verdicts] == [Accepted, Refused, Accepted]
    assert [v.channel for v in verdicts] == [OUTCOMES] * 3
    first, bad, last = verdicts
    assert isinstance(first, Accepted) and first.key == b"C1" and first.record_id == "o1"
    assert isinstance(last, Accepted) and last.key == b"C2"
    assert isinstance(bad, Refused) and bad.rejection.reason is DlqReason.SCHEMA_VIOLATION


# --- the answer -------------------------------------------------------------------------


def test_the_answer_is_200_207_or_400_and_lists_every_record_in_order() -> None:
    verdicts = judge(b"\n".join([orjson.dumps(event()), b"[1"]), BodyFormat.NDJSON)
    assert Answer(tuple(verdicts)).status == 207
    assert Answer(tuple(verdicts[:1])).status == 200
    assert Answer(tuple(verdicts[1:])).status == 400
    assert Answer(tuple(verdicts)).to_json() == {
        "accepted": 1,
        "rejected": 1,
        "results": [
            {"index": 0, "line": 1, "status": "accepted", "id": "e1", "channel": "web"},
            {
                "index": 1,
                "line": 2,
                "status": "rejected",
                "reason": "invalid_json",
                "detail": verdicts[1].rejection.detail,  # type: ignore[union-attr]
            },
        ],
    }


def test_a_dead_letter_from_the_collector_names_it_and_follows_the_schema() -> None:
    source = CollectorSource("cjo.events.web", "/events", "web-tracker", "r1", 3, 4)
    record = dlq_record(Rejection(DlqReason.INVALID_JSON, "bad"), b"{", source, NOW_MS)
    assert record["source"] == {
        "topic": "cjo.events.web",
        "timestamp_ms": NOW_MS,
        "key_b64": None,
        "collector": {
            "route": "/events",
            "key_name": "web-tracker",
            "request_id": "r1",
            "index": 3,
            "line": 4,
        },
    }
    assert base64.b64decode(record["original_b64"]) == b"{"
    assert CATALOG.message_error("dlq", record) is None
    del record["source"]["collector"]  # neither a Kafka position nor the collector
    assert CATALOG.message_error("dlq", record) is not None
