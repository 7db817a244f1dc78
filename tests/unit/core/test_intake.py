"""The ingest, outcomes and learn steps' pure batches: validate, address, count."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.core import intake
from stream.core.batch import DeadLetter, Destination, Output
from stream.core.events import DecodeOptions, DlqReason, Event, decode_event
from stream.core.identity import hash_identifier
from stream.core.intake import ingest_batch, learn_partition, outcomes_batch, route_of
from stream.core.messages import EventMessage, OutcomeMessage, decode
from stream.core.outcomes import Outcome
from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.resolve import IdentityRules, decide_link
from stream.core.stored import PROPENSITY
from tests.unit.core.decide.helpers import CATALOG

OPTIONS = DecodeOptions(CATALOG, max_event_bytes=4096, hash_salt="pepper", default_region="FR")
NOW_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z
INGRESS_TS_MS = NOW_MS + 123


def raw_event(**overrides: Any) -> bytes:
    message: dict[str, Any] = {
        "event_id": "e1",
        "type": "page_view",
        "channel": "web",
        "occurred_at": "2026-11-23T09:59:00.000Z",
        "customer": {"customer_id": "C1"},
        "properties": {"url": "/"},
    }
    message.update(overrides)
    return orjson.dumps(message)


# --- ingest -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "destination"),
    [
        ("C000123", Destination.CUSTOMER_EVENTS),
        ("loyalty:L1", Destination.IDENTITY_EVENTS),
        ("email:ab12", Destination.IDENTITY_EVENTS),
        ("phone:cd34", Destination.IDENTITY_EVENTS),
        ("anon:a1", Destination.IDENTITY_EVENTS),
    ],
)
def test_only_customer_ids_skip_the_resolve_step(key: str, destination: Destination) -> None:
    assert route_of(key) is destination


def test_a_customer_id_token_never_gets_an_alias_so_routing_it_is_the_identity() -> None:
    """Why skipping the resolve step is safe: no link can point a customer id elsewhere."""
    rules = IdentityRules()
    for canonical in ("C2", "loyalty:L1", "email:e", "phone:p", "anon:a"):
        for current in (None, "C1"):
            assert decide_link("C1", canonical, current, rules).alias is None


def test_an_event_keyed_by_a_customer_id_goes_straight_to_its_profile() -> None:
    value = raw_event()
    result = ingest_batch([("web", value, INGRESS_TS_MS)], OPTIONS, NOW_MS)
    expected = decode_event(value, "web", OPTIONS, NOW_MS)
    assert isinstance(expected, Event)
    assert result.outputs == [
        Output(
            Destination.CUSTOMER_EVENTS,
            b"C1",
            orjson.dumps({"event": expected.to_record(), "ingress_ts_ms": INGRESS_TS_MS}),
        )
    ]
    assert decode(result.outputs[0].value) == EventMessage(expected, INGRESS_TS_MS)
    assert result.dead_letters == []
    assert result.tally.counts == {("events", "web", "page_view"): 1}


def test_an_event_is_keyed_by_its_strongest_identifier_and_resolved() -> None:
    value = raw_event(customer={"anonymous_id": "a1", "email": "ann@example.com"})
    [output] = ingest_batch([("web", value, None)], OPTIONS, NOW_MS).outputs
    assert output.destination is Destination.IDENTITY_EVENTS  # the resolve step finds its profile
    assert output.key == f"email:{hash_identifier('ann@example.com', 'pepper')}".encode()
    assert orjson.loads(output.value)["ingress_ts_ms"] is None


@pytest.mark.parametrize(
    ("channel", "value", "reason"),
    [
        ("web", b"{not json", DlqReason.INVALID_JSON),
        ("web", None, DlqReason.NOT_AN_OBJECT),
        (None, raw_event(channel="fax"), DlqReason.UNKNOWN_CHANNEL),
        ("app", raw_event(), DlqReason.CHANNEL_MISMATCH),
        ("web", raw_event(occurred_at="2026-09-01T00:00:00Z"), DlqReason.TIMESTAMP_TOO_OLD),
    ],
    ids=["invalid_json", "tombstone", "unknown_channel", "channel_mismatch", "too_old"],
)
def test_an_invalid_event_is_a_dead_letter_with_its_reason(
    channel: str | None, value: bytes | None, reason: DlqReason
) -> None:
    result = ingest_batch([(channel, value, None)], OPTIONS, NOW_MS)
    assert result.outputs == []
    [dead] = result.dead_letters
    assert (dead.position, dead.rejection.reason, dead.error) == (0, reason, None)
    assert result.tally.counts == {}


def test_occurred_at_is_judged_against_the_clock_passed_in() -> None:
    value = raw_event(occurred_at="2026-09-01T00:00:00Z")
    result = ingest_batch([("web", value, None)], OPTIONS, NOW_MS - 80 * 24 * 3_600_000)
    assert result.dead_letters == []


def test_dead_letters_keep_their_positions_among_valid_events() -> None:
    records = [
        ("web", raw_event(event_id="a"), None),
        ("web", b"[]", None),
        ("web", raw_event(event_id="b"), None),
        ("web", raw_event(type="no_such_type"), None),
    ]
    result = ingest_batch(records, OPTIONS, NOW_MS)
    assert [(d.position, d.rejection.reason) for d in result.dead_letters] == [
        (1, DlqReason.NOT_AN_OBJECT),
        (3, DlqReason.UNKNOWN_EVENT_TYPE),
    ]
    assert [decode(o.value).event.event_id for o in result.outputs] == ["a", "b"]  # type: ignore[union-attr]


def test_a_decoder_failure_is_a_processing_error_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = iter([RuntimeError("bug")])

    def flaky(*args: Any) -> Any:
        error = next(calls, None)
        if error is not None:
            raise error
        return decode_event(*args)

    monkeypatch.setattr(intake, "decode_event", flaky)
    result = ingest_batch([("web", raw_event(), None)] * 2, OPTIONS, NOW_MS)
    [dead] = result.dead_letters
    assert (dead.position, dead.rejection.reason) == (0, DlqReason.PROCESSING_ERROR)
    assert dead.rejection.detail == "RuntimeError: bug"
    assert isinstance(dead.error, RuntimeError)
    assert len(result.outputs) == 1


# --- outcomes ---------------------------------------------------------------------------

OUTCOME = {
    "outcome_id": "out-1",
    "action_id": "act-1",
    "customer_id": "C000001",
    "channel": "email",
    "outcome": "clicked",
    "occurred_at": "2026-11-23T10:00:00Z",
}


def test_a_valid_outcome_goes_to_customer_events_keyed_by_its_customer() -> None:
    result = outcomes_batch([orjson.dumps(OUTCOME)], CATALOG, 4096)
    expected = Outcome("out-1", "act-1", "C000001", "email", "clicked", NOW_MS, {})
    assert result.outputs == [
        Output(
            Destination.CUSTOMER_EVENTS,
            b"C000001",
            orjson.dumps({"outcome": expected.to_record()}),
        )
    ]
    assert decode(result.outputs[0].value) == OutcomeMessage(expected)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", DlqReason.INVALID_JSON),
        (None, DlqReason.NOT_AN_OBJECT),
        (orjson.dumps({**OUTCOME, "outcome": "liked"}), DlqReason.SCHEMA_VIOLATION),
        (orjson.dumps({**OUTCOME, "occurred_at": "yesterday"}), DlqReason.INVALID_TIMESTAMP),
        (b" " * 5000, DlqReason.TOO_LARGE),
    ],
    ids=["invalid_json", "tombstone", "unknown_outcome", "bad_time", "too_large"],
)
def test_an_invalid_outcome_is_a_dead_letter_with_its_reason(
    value: bytes | None, reason: DlqReason
) -> None:
    result = outcomes_batch([value, orjson.dumps(OUTCOME)], CATALOG, 4096)
    [dead] = result.dead_letters
    assert (dead.position, dead.rejection.reason) == (0, reason)
    assert [output.key for output in result.outputs] == [b"C000001"]


# --- learn (the behaviours of the old LearnStage, on the pure fold) ---------------------


def trial(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.TRIAL, "engagement", channel)


def success(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.SUCCESS, "engagement", channel)


def record(value: Any, key: bytes | None = None) -> tuple[bytes | None, bytes]:
    """A learning-topic record: an update keyed by its action, or any value and key."""
    if isinstance(value, LearningUpdate):
        key = value.action.encode() if key is None else key
        value = value.to_message()
    return key, value if isinstance(value, bytes) else orjson.dumps(value)


def learn(
    records: list[tuple[bytes | None, bytes]], table: dict[bytes, bytes] | None = None, **kw: Any
):
    table = {} if table is None else table
    return learn_partition(records, table.get, kw.get("now_ms", NOW_MS))


def test_updates_are_folded_into_one_row_per_action() -> None:
    result = learn(
        [
            record(trial("promo")),
            record(trial("promo")),
            record(success("promo")),
            record(trial("promo", "push")),
            record(trial("welcome")),
            record(LearningUpdate("promo", UpdateKind.EXPOSURE, group="control")),
        ]
    )
    assert result.dead_letters == []
    rows = result.writes[PROPENSITY]
    assert set(rows) == {b"promo", b"welcome"}
    promo = orjson.loads(rows[b"promo"])
    assert promo["cells"] == {"engagement/email": [2, 1], "engagement/push": [1, 0]}
    assert promo["uplift"] == {"control": [1, 0]}
    assert (promo["updates"], promo["updated_at_ms"]) == (5, NOW_MS)
    assert orjson.loads(rows[b"welcome"])["cells"] == {"engagement/email": [1, 0]}


def test_a_stored_row_is_added_to() -> None:
    table: dict[bytes, bytes] = {}
    first = learn([record(trial("promo")), record(success("promo"))], table)
    table.update(first.writes[PROPENSITY])
    result = learn([record(trial("promo"))], table, now_ms=NOW_MS + 1_000)
    row = orjson.loads(result.writes[PROPENSITY][b"promo"])
    assert row["cells"] == {"engagement/email": [2, 1]}
    assert (row["updates"], row["updated_at_ms"]) == (3, NOW_MS + 1_000)


def test_the_stored_table_is_only_read() -> None:
    table = {b"promo": orjson.dumps({"action": "promo", "cells": {}, "uplift": {}, "updates": 0})}
    before = dict(table)
    learn([record(trial("promo"))], table)
    assert table == before


def test_malformed_messages_are_dead_letters_and_the_rest_is_counted() -> None:
    broken = [
        record(b"{not json", b"promo"),
        record({"kind": "trial"}, b"promo"),  # no action
        record({"action": "promo", "kind": "clicked"}, b"promo"),  # unknown kind
        record(trial("promo"), b"welcome"),  # keyed by another action
        record({"action": "promo", "kind": "trial"}, None),  # no key
        record([1, 2], b"promo"),
    ]
    result = learn([broken[0], record(trial("promo")), *broken[1:]])
    assert [dead.position for dead in result.dead_letters] == [0, 2, 3, 4, 5, 6]
    assert all(isinstance(dead, DeadLetter) for dead in result.dead_letters)
    assert {d.rejection.reason for d in result.dead_letters} == {DlqReason.PROCESSING_ERROR}
    assert all(isinstance(dead.error, Exception) for dead in result.dead_letters)
    assert set(result.writes[PROPENSITY]) == {b"promo"}
    promo = orjson.loads(result.writes[PROPENSITY][b"promo"])
    assert promo["cells"] == {"engagement/email": [1, 0]}


def test_each_changed_row_is_published_once_to_the_model_topic_as_written() -> None:
    result = learn([record(trial("promo")), record(trial("welcome")), record(success("promo"))])
    assert sorted(output.key for output in result.outputs) == [b"promo", b"welcome"]
    assert {output.destination for output in result.outputs} == {Destination.MODEL}
    published = {output.key: output.value for output in result.outputs}
    assert published == result.writes[PROPENSITY]
    assert orjson.loads(published[b"promo"])["cells"] == {"engagement/email": [1, 1]}


def test_a_batch_of_only_malformed_messages_writes_and_publishes_nothing() -> None:
    result = learn([record(b"oops", b"promo")])
    assert len(result.dead_letters) == 1
    assert result.outputs == []
    assert not result.has_writes()
