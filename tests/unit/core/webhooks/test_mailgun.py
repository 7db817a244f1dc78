"""Mailgun's webhooks: the HMAC signature and the mapping of its documented events."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from stream.core.events import DlqReason, Rejection
from stream.core.webhooks import PROVIDERS, IgnoreReason, WebhookBatch
from tests.unit.core.webhooks.helpers import (
    ACTION_ID,
    CUSTOMER_ID,
    OURS,
    body,
    copied,
    only_outcome,
    sample,
)

MAILGUN = PROVIDERS["mailgun"]
SIGNING_KEY = "key-test-3ax6xnjp29jd6fds4gc373sgvjxteol0"
NOW_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z
SAMPLES = [
    "accepted",
    "delivered",
    "failed_permanent",
    "failed_permanent_delayed_bounce",
    "failed_temporary",
    "opened",
    "clicked",
    "unsubscribed",
    "complained",
]


def with_ours(name: str) -> dict[str, Any]:
    """A documented sample as the sender's ``v:`` variables would make it."""
    payload = copied(sample(f"mailgun/{name}.json"))
    payload["event-data"]["user-variables"] = dict(OURS)
    return payload


def signed(
    payload: dict[str, Any], timestamp: int = NOW_MS // 1000, key: str = SIGNING_KEY
) -> bytes:
    """The payload with a signature made as Mailgun makes it."""
    token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {
        **payload,
        "signature": {"timestamp": str(timestamp), "token": token, "signature": digest},
    }
    return body(payload)


# --- signature


def test_a_payload_signed_with_the_signing_key_verifies() -> None:
    assert MAILGUN.verify(signed(with_ours("delivered")), {}, SIGNING_KEY, NOW_MS) is None


def test_a_signature_made_with_another_key_fails() -> None:
    raw = signed(with_ours("delivered"), key="key-someone-else")
    assert (
        MAILGUN.verify(raw, {}, SIGNING_KEY, NOW_MS)
        == "signature does not match timestamp and token"
    )


@pytest.mark.parametrize("field", ["token", "timestamp", "signature"])
def test_a_tampered_signature_field_fails(field: str) -> None:
    payload = orjson.loads(signed(with_ours("delivered")))
    value = payload["signature"][field]
    payload["signature"][field] = str(int(value) - 1) if field == "timestamp" else "0" + value[1:]
    assert MAILGUN.verify(body(payload), {}, SIGNING_KEY, NOW_MS) == (
        "signature does not match timestamp and token"
    )


def test_the_signature_covers_timestamp_and_token_only_not_the_event() -> None:
    # Mailgun's scheme, documented: within the tolerance a captured signature still
    # verifies with another event-data. The collector's token cache is the defence.
    payload = orjson.loads(signed(with_ours("delivered")))
    payload["event-data"]["event"] = "complained"
    assert MAILGUN.verify(body(payload), {}, SIGNING_KEY, NOW_MS) is None


def test_the_documented_signature_example_does_not_verify_with_our_key() -> None:
    raw = body(sample("mailgun/delivered.json"))  # signed 2018-06-14 with Mailgun's key
    assert MAILGUN.verify(raw, {}, SIGNING_KEY, 1_529_006_854_000) == (
        "signature does not match timestamp and token"
    )


def test_a_signature_older_than_five_minutes_is_stale() -> None:
    now_s = NOW_MS // 1000
    assert MAILGUN.verify(signed(with_ours("opened"), now_s - 300), {}, SIGNING_KEY, NOW_MS) is None
    reason = MAILGUN.verify(signed(with_ours("opened"), now_s - 301), {}, SIGNING_KEY, NOW_MS)
    assert reason is not None and reason.startswith("stale timestamp: 301 s old")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (body(with_ours("delivered") | {"signature": None}), "body has no signature object"),
        (b"not json", "body has no signature object"),
        (
            body({"signature": {"timestamp": "1", "signature": "ab"}, "event-data": {}}),
            "signature.token: missing",
        ),
        (
            body({"signature": {"timestamp": "soon", "token": "t", "signature": "ab"}}),
            "signature.timestamp is not Unix seconds: 'soon'",
        ),
    ],
)
def test_a_missing_or_malformed_signature_is_named(raw: bytes, reason: str) -> None:
    assert MAILGUN.verify(raw, {}, SIGNING_KEY, NOW_MS) == reason


def test_the_signing_key_must_not_be_blank() -> None:
    assert MAILGUN.secret_error(SIGNING_KEY) is None
    assert MAILGUN.secret_error("  ") == "the webhook signing key is empty"


# --- mapping


@pytest.mark.parametrize("name", SAMPLES)
def test_each_documented_sample_is_ignored_as_not_ours(name: str) -> None:
    batch = MAILGUN.outcomes(body(sample(f"mailgun/{name}.json")), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.rejected == []
    assert batch.ignored[0][0] == 0
    assert batch.ignored[0][1].reason is IgnoreReason.NOT_OURS


MAPPING: list[tuple[str, str | None, dict[str, Any], str]] = [
    ("accepted", None, {}, ""),
    ("delivered", "delivered", {}, "2018-06-22T18:29:59.626Z"),
    (
        "failed_permanent",
        "bounced",
        {
            "bounce_type": "hard",
            "reason": "suppress-bounce",
            "code": 605,
            "description": "Not delivering to previously bounced address",
        },
        "2018-06-22T21:12:49.818Z",
    ),
    (
        "failed_permanent_delayed_bounce",
        "bounced",
        {
            "bounce_type": "hard",
            "reason": "generic",
            "code": 550,
            "description": (
                "I'm sorry to have to inform you that your message could not be delivered"
                " to one or more recipients."
            ),
        },
        "2022-10-19T21:15:38.405Z",
    ),
    ("failed_temporary", None, {}, ""),
    ("opened", "opened", {}, "2013-08-21T01:09:03.042Z"),
    ("clicked", "clicked", {"url": "http://example.com/signup"}, "2013-08-21T08:59:24.095Z"),
    ("unsubscribed", "unsubscribed", {}, "2013-08-22T23:23:11.421Z"),
    ("complained", "unsubscribed", {"reason": "spam_complaint"}, "2013-08-22T23:31:00.050Z"),
]


@pytest.mark.parametrize(("name", "outcome", "detail", "occurred_at"), MAPPING)
def test_each_documented_event_maps_as_the_table_says(
    name: str, outcome: str | None, detail: dict[str, Any], occurred_at: str
) -> None:
    payload = with_ours(name)
    batch = MAILGUN.outcomes(signed(payload), {})
    assert isinstance(batch, WebhookBatch)
    if outcome is None:
        assert batch.outcomes == []
        assert batch.ignored[0][1].reason is IgnoreReason.NO_OUTCOME
        return
    record = only_outcome(batch)
    assert record["outcome"] == outcome
    assert (record["action_id"], record["customer_id"]) == (ACTION_ID, CUSTOMER_ID)
    assert record["occurred_at"] == occurred_at
    assert record["detail"] == {
        "provider": "mailgun",
        "provider_event": payload["event-data"]["event"],
        "provider_event_id": payload["event-data"]["id"],
        **detail,
    }


def failed(reason: str) -> dict[str, Any]:
    payload = with_ours("failed_permanent")
    payload["event-data"]["reason"] = reason
    return payload


def test_a_permanent_failure_after_retries_ran_out_is_a_soft_bounce() -> None:
    record = only_outcome(MAILGUN.outcomes(body(failed("old")), {}))
    assert (record["outcome"], record["detail"]["bounce_type"]) == ("bounced", "soft")


@pytest.mark.parametrize("reason", ["suppress-unsubscribe", "suppress-complaint"])
def test_a_send_mailgun_suppressed_for_an_opt_out_is_a_failure_not_a_bounce(reason: str) -> None:
    record = only_outcome(MAILGUN.outcomes(body(failed(reason)), {}))
    assert record["outcome"] == "failed"
    assert record["detail"]["reason"] == reason
    assert "bounce_type" not in record["detail"]


@pytest.mark.parametrize("name", ["opened", "clicked"])
def test_an_open_or_click_by_a_bot_is_ignored(name: str) -> None:
    payload = with_ours(name)
    payload["event-data"]["client-info"]["bot"] = "apple"
    batch = MAILGUN.outcomes(body(payload), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.ignored[0][1].reason is IgnoreReason.MACHINE_EVENT


def test_a_retried_event_maps_to_the_same_outcome_id_and_another_event_does_not() -> None:
    first = only_outcome(MAILGUN.outcomes(signed(with_ours("opened")), {}))
    # A retry carries a new signature but the same event.
    retry = only_outcome(MAILGUN.outcomes(signed(with_ours("opened"), NOW_MS // 1000 + 600), {}))
    assert first["outcome_id"] == retry["outcome_id"]
    other = with_ours("opened")
    other["event-data"]["id"] = "another-open"
    assert only_outcome(MAILGUN.outcomes(body(other), {}))["outcome_id"] != first["outcome_id"]


def test_an_unknown_event_name_is_ignored() -> None:
    payload = with_ours("delivered")
    payload["event-data"]["event"] = "inbox_placement"
    batch = MAILGUN.outcomes(body(payload), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.ignored[0][1].reason is IgnoreReason.UNKNOWN_EVENT


def broken(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    payload = with_ours(name)
    target = payload["event-data"]
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (
            broken("delivered", ("user-variables", "customer_id"), None),
            DlqReason.MISSING_FIELD,
            "event-data.user-variables.customer_id",
        ),
        (
            broken("delivered", ("user-variables", "action_id"), ["a"]),
            DlqReason.SCHEMA_VIOLATION,
            "event-data.user-variables.action_id",
        ),
        (broken("delivered", ("event",), None), DlqReason.MISSING_FIELD, "event-data.event"),
        (broken("delivered", ("id",), None), DlqReason.MISSING_FIELD, "event-data.id"),
        (
            broken("delivered", ("timestamp",), None),
            DlqReason.MISSING_FIELD,
            "event-data.timestamp",
        ),
        (
            broken("delivered", ("timestamp",), "2018-06-22"),
            DlqReason.INVALID_TIMESTAMP,
            "event-data.timestamp",
        ),
        (
            broken("failed_permanent", ("severity",), None),
            DlqReason.MISSING_FIELD,
            "event-data.severity",
        ),
        (
            broken("failed_permanent", ("severity",), "fatal"),
            DlqReason.SCHEMA_VIOLATION,
            "event-data.severity",
        ),
    ],
)
def test_a_malformed_event_of_ours_is_rejected_naming_the_field(
    payload: dict[str, Any], reason: DlqReason, field: str
) -> None:
    batch = MAILGUN.outcomes(body(payload), {})
    assert isinstance(batch, WebhookBatch)
    [(index, rejection)] = batch.rejected
    assert index == 0 and rejection.reason is reason
    assert rejection.detail.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", DlqReason.INVALID_JSON),
        (b"[]", DlqReason.NOT_AN_OBJECT),
        (b'{"signature": {}}', DlqReason.MISSING_FIELD),
        (b'{"event-data": "delivered"}', DlqReason.MISSING_FIELD),
    ],
)
def test_an_unreadable_body_rejects_the_whole_call(raw: bytes, reason: DlqReason) -> None:
    result = MAILGUN.outcomes(raw, {})
    assert isinstance(result, Rejection) and result.reason is reason
