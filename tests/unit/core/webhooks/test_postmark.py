"""Postmark's webhooks: basic-auth credentials and the mapping of its documented records."""

from __future__ import annotations

import base64
from typing import Any

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

POSTMARK = PROVIDERS["postmark"]
SECRET = "journey:s3cret-Pa55"
NOW_MS = 1_795_428_000_000
SAMPLES = ["delivery", "bounce", "open", "click", "spam_complaint", "subscription_change"]


def basic(credentials: str, scheme: str = "Basic") -> dict[str, str]:
    return {"authorization": f"{scheme} {base64.b64encode(credentials.encode()).decode()}"}


def with_ours(name: str, **changes: Any) -> dict[str, Any]:
    """A documented sample with our identifiers in its Metadata (and ``changes``)."""
    record = copied(sample(f"postmark/{name}.json"))
    record["Metadata"] = dict(OURS)
    record.update(changes)
    return record


# --- authentication


def test_the_configured_credentials_are_authentic() -> None:
    raw = body(with_ours("delivery"))
    assert POSTMARK.verify(raw, basic(SECRET), SECRET, NOW_MS) is None
    assert POSTMARK.verify(raw, basic(SECRET, "basic"), SECRET, NOW_MS) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing header authorization"),
        (basic("journey:wrong"), "credentials do not match"),
        (basic("journey:s3cret-Pa55 "), "credentials do not match"),
        (basic(SECRET, "Bearer"), "authorization is not Basic credentials"),
        ({"authorization": "Basic ***"}, "authorization credentials are not base64"),
    ],
)
def test_other_credentials_are_refused_with_the_reason(
    headers: dict[str, str], reason: str
) -> None:
    assert POSTMARK.verify(body(with_ours("delivery")), headers, SECRET, NOW_MS) == reason


def test_the_secret_must_be_user_colon_password() -> None:
    assert POSTMARK.secret_error(SECRET) is None
    assert POSTMARK.secret_error("journey") == "expected user:password"
    assert POSTMARK.secret_error(":password") == "expected user:password"


# --- mapping


@pytest.mark.parametrize("name", SAMPLES)
def test_each_documented_sample_is_ignored_as_not_ours(name: str) -> None:
    batch = POSTMARK.outcomes(body(sample(f"postmark/{name}.json")), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.rejected == []
    assert batch.ignored[0][1].reason is IgnoreReason.NOT_OURS


MAPPING: list[tuple[str, str, dict[str, Any], str]] = [
    ("delivery", "delivered", {}, "2019-11-05T16:33:54.907Z"),
    (
        "bounce",
        "bounced",
        {
            "provider_event_id": "4323372036854775807",
            "bounce_type": "hard",
            "postmark_type": "HardBounce",
            "reason": (
                "The server was unable to deliver your message"
                " (ex: unknown user, mailbox not found)."
            ),
            "details": "Test bounce details",
        },
        "2019-11-05T16:33:54.907Z",
    ),
    ("open", "opened", {}, "2019-11-05T16:33:54.907Z"),
    ("click", "clicked", {"url": "https://example.com"}, "2017-10-25T15:21:11.906Z"),
    (
        "spam_complaint",
        "unsubscribed",
        {"provider_event_id": "42", "reason": "spam_complaint"},
        "2019-11-05T16:33:54.907Z",
    ),
    (
        "subscription_change",
        "bounced",
        {"bounce_type": "hard", "postmark_type": "HardBounce", "origin": "Recipient"},
        "2020-02-01T10:53:34.416Z",
    ),
]


@pytest.mark.parametrize(("name", "outcome", "detail", "occurred_at"), MAPPING)
def test_each_documented_record_maps_as_the_table_says(
    name: str, outcome: str, detail: dict[str, Any], occurred_at: str
) -> None:
    record = with_ours(name)
    result = only_outcome(POSTMARK.outcomes(body(record), {}))
    assert result["outcome"] == outcome
    assert (result["action_id"], result["customer_id"]) == (ACTION_ID, CUSTOMER_ID)
    assert result["occurred_at"] == occurred_at
    assert result["detail"] == {
        "provider": "postmark",
        "provider_event": record["RecordType"],
        "provider_message_id": record["MessageID"],
        **detail,
    }


@pytest.mark.parametrize(
    ("bounce_type", "expected"),
    [
        ("HardBounce", "hard"),
        ("BadEmailAddress", "hard"),
        ("SoftBounce", "soft"),
        ("Transient", "soft"),
        ("DnsError", "soft"),
    ],
)
def test_a_bounce_is_hard_or_soft_by_its_type(bounce_type: str, expected: str) -> None:
    result = only_outcome(POSTMARK.outcomes(body(with_ours("bounce", Type=bounce_type)), {}))
    assert (result["outcome"], result["detail"]["bounce_type"]) == ("bounced", expected)


@pytest.mark.parametrize("bounce_type", ["AutoResponder", "AddressChange", "ChallengeVerification"])
def test_a_bounce_record_that_is_no_delivery_failure_is_ignored(bounce_type: str) -> None:
    batch = POSTMARK.outcomes(body(with_ours("bounce", Type=bounce_type)), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.ignored[0][1].reason is IgnoreReason.NO_OUTCOME


def test_a_bounce_record_of_type_spam_complaint_unsubscribes() -> None:
    result = only_outcome(POSTMARK.outcomes(body(with_ours("bounce", Type="SpamComplaint")), {}))
    assert (result["outcome"], result["detail"]["reason"]) == ("unsubscribed", "spam_complaint")


@pytest.mark.parametrize(
    ("reason", "outcome", "detail_reason"),
    [
        ("SpamComplaint", "unsubscribed", "spam_complaint"),
        ("ManualSuppression", "unsubscribed", "ManualSuppression"),
    ],
)
def test_a_suppression_for_our_message_stops_email(
    reason: str, outcome: str, detail_reason: str
) -> None:
    record = with_ours("subscription_change", SuppressionReason=reason)
    result = only_outcome(POSTMARK.outcomes(body(record), {}))
    assert (result["outcome"], result["detail"]["reason"]) == (outcome, detail_reason)


def test_a_reactivation_is_no_outcome() -> None:
    record = with_ours("subscription_change", SuppressSending=False)
    batch = POSTMARK.outcomes(body(record), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.ignored[0][1].reason is IgnoreReason.NO_OUTCOME


def test_an_offset_timestamp_is_reported_in_utc() -> None:
    record = with_ours("bounce", BouncedAt="2014-08-01T13:28:10.2735393-04:00")
    assert only_outcome(POSTMARK.outcomes(body(record), {}))["occurred_at"] == (
        "2014-08-01T17:28:10.273Z"
    )


def test_outcome_ids_are_stable_per_record_and_differ_between_records() -> None:
    def outcome_id(record: dict[str, Any]) -> str:
        return str(only_outcome(POSTMARK.outcomes(body(record), {}))["outcome_id"])

    assert outcome_id(with_ours("open")) == outcome_id(with_ours("open"))
    later_open = with_ours("open", ReceivedAt="2019-11-05T17:00:00Z", FirstOpen=False)
    assert outcome_id(later_open) != outcome_id(with_ours("open"))
    other_link = with_ours("click", OriginalLink="https://example.com/other")
    assert outcome_id(other_link) != outcome_id(with_ours("click"))
    assert outcome_id(with_ours("bounce", ID=1)) != outcome_id(with_ours("bounce", ID=2))


def test_an_unknown_record_type_is_ignored() -> None:
    batch = POSTMARK.outcomes(body(with_ours("delivery", RecordType="Forecast")), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.ignored[0][1].reason is IgnoreReason.UNKNOWN_EVENT


def without(name: str, field: str) -> dict[str, Any]:
    record = with_ours(name)
    del record[field]
    return record


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        (
            with_ours("delivery", Metadata={"action_id": ACTION_ID}),
            DlqReason.MISSING_FIELD,
            "Metadata.customer_id",
        ),
        (without("delivery", "RecordType"), DlqReason.MISSING_FIELD, "RecordType"),
        (without("delivery", "MessageID"), DlqReason.MISSING_FIELD, "MessageID"),
        (without("delivery", "DeliveredAt"), DlqReason.MISSING_FIELD, "DeliveredAt"),
        (
            with_ours("delivery", DeliveredAt="2019-11-05"),
            DlqReason.INVALID_TIMESTAMP,
            "DeliveredAt",
        ),
        (without("bounce", "ID"), DlqReason.MISSING_FIELD, "ID"),
        (with_ours("bounce", ID=True), DlqReason.SCHEMA_VIOLATION, "ID"),
    ],
)
def test_a_malformed_record_of_ours_is_rejected_naming_the_field(
    record: dict[str, Any], reason: DlqReason, field: str
) -> None:
    batch = POSTMARK.outcomes(body(record), {})
    assert isinstance(batch, WebhookBatch)
    [(index, rejection)] = batch.rejected
    assert index == 0 and rejection.reason is reason
    assert rejection.detail.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", DlqReason.INVALID_JSON),
        (b"[{}]", DlqReason.NOT_AN_OBJECT),
        (b'"Delivery"', DlqReason.NOT_AN_OBJECT),
    ],
)
def test_an_unreadable_body_rejects_the_whole_call(raw: bytes, reason: DlqReason) -> None:
    result = POSTMARK.outcomes(raw, {})
    assert isinstance(result, Rejection) and result.reason is reason
