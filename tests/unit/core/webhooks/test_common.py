"""Rules every webhook adapter shares, the registry, and what the outcomes do downstream."""

from __future__ import annotations

from typing import Any

import pytest

from stream.core.events import DlqReason, Rejection
from stream.core.outcomes import Outcome, apply_outcome
from stream.core.webhooks import PROVIDERS, Ignored, IgnoreReason
from stream.core.webhooks.common import (
    TOLERANCE_MS,
    Occurrence,
    epoch_seconds_ms,
    iso_timestamp_ms,
    our_identifiers,
    outcome_id_for,
    outcome_record,
    redacted,
    stale,
)
from tests.unit.core.test_outcomes import POLICY, contact, customer
from tests.unit.core.webhooks.helpers import body, only_outcome, sample

NOW_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z


def test_the_registry_names_each_provider_by_its_url_segment() -> None:
    assert sorted(PROVIDERS) == ["mailgun", "postmark", "sendgrid"]
    for name, provider in PROVIDERS.items():
        assert provider.name == name


def test_outcome_ids_are_deterministic_and_differ_by_every_part() -> None:
    base = ("sendgrid", "ev-1", "open", "act-1")
    assert outcome_id_for(*base) == outcome_id_for(*base)
    assert len(outcome_id_for(*base)) == 32
    variants = {outcome_id_for(*base[:i], "x", *base[i + 1 :]) for i in range(4)}
    assert len(variants | {outcome_id_for(*base)}) == 5


def test_our_identifiers_come_back_as_a_pair() -> None:
    assert our_identifiers({"action_id": "a", "customer_id": "C1", "x": 1}, "") == ("a", "C1")


@pytest.mark.parametrize("carrier", [None, {}, {"a_key": "a_value"}, "action_id", []])
def test_a_message_without_our_identifiers_is_not_ours(carrier: Any) -> None:
    result = our_identifiers(carrier, "Metadata.")
    assert isinstance(result, Ignored)
    assert result.reason is IgnoreReason.NOT_OURS


@pytest.mark.parametrize(
    ("carrier", "reason", "field"),
    [
        ({"action_id": "a"}, DlqReason.MISSING_FIELD, "Metadata.customer_id"),
        ({"customer_id": "C1"}, DlqReason.MISSING_FIELD, "Metadata.action_id"),
        ({"action_id": "", "customer_id": "C1"}, DlqReason.SCHEMA_VIOLATION, "Metadata.action_id"),
        ({"action_id": "a", "customer_id": 7}, DlqReason.SCHEMA_VIOLATION, "Metadata.customer_id"),
    ],
)
def test_half_of_our_identifiers_is_rejected_naming_the_field(
    carrier: dict[str, Any], reason: DlqReason, field: str
) -> None:
    result = our_identifiers(carrier, "Metadata.")
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.detail.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("550 5.1.1 <john.doe+x@example.co.uk>: no such user", "550 5.1.1 <[email]>: no such user"),
        (
            "https://shop.example/unsub?e=john%40example.com&x=1",
            "https://shop.example/unsub?e=[email]&x=1",
        ),
        ("https://www.sendgrid.com/", "https://www.sendgrid.com/"),
        ("", None),
        (None, None),
    ],
)
def test_free_text_keeps_no_address(text: str | None, expected: str | None) -> None:
    assert redacted(text) == expected


def test_free_text_is_cut_to_a_bounded_length() -> None:
    text = redacted("x" * 1000)
    assert text is not None and len(text) == 300 and text.endswith("...")


def test_a_signed_timestamp_within_the_tolerance_is_fresh_either_way() -> None:
    now_s = NOW_MS // 1000
    tolerance_s = TOLERANCE_MS // 1000
    assert stale(now_s - tolerance_s, NOW_MS) is None
    assert stale(now_s + tolerance_s, NOW_MS) is None
    assert "old" in (stale(now_s - tolerance_s - 1, NOW_MS) or "")
    assert "future" in (stale(now_s + tolerance_s + 1, NOW_MS) or "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1513299569, 1_513_299_569_000),
        (1529692199.626182, 1_529_692_199_626),
        (None, DlqReason.MISSING_FIELD),
        ("1513299569", DlqReason.INVALID_TIMESTAMP),
        (True, DlqReason.INVALID_TIMESTAMP),
        (-1, DlqReason.INVALID_TIMESTAMP),
        (1e15, DlqReason.INVALID_TIMESTAMP),
    ],
)
def test_unix_seconds_become_epoch_ms_or_a_precise_rejection(
    value: Any, expected: int | DlqReason
) -> None:
    result = epoch_seconds_ms(value, "timestamp")
    if isinstance(expected, int):
        assert result == expected
    else:
        assert isinstance(result, Rejection) and result.reason is expected
        assert result.detail.startswith("timestamp:")


def test_iso_timestamps_with_an_offset_become_utc() -> None:
    assert iso_timestamp_ms("2014-08-01T13:28:10.2735393-04:00", "BouncedAt") == (
        iso_timestamp_ms("2014-08-01T17:28:10.273Z", "BouncedAt")
    )
    rejected = iso_timestamp_ms("2014-08-01 13:28", "BouncedAt")
    assert isinstance(rejected, Rejection) and rejected.reason is DlqReason.INVALID_TIMESTAMP


def test_an_outcome_record_leaves_out_empty_details() -> None:
    record = outcome_record(
        Occurrence("mailgun", "clicked", "ev", 0), ("a", "C1"), "clicked", url=None, code=0
    )
    assert record["detail"] == {"provider": "mailgun", "provider_event": "clicked", "code": 0}
    assert record["occurred_at"] == "1970-01-01T00:00:00.000Z"
    assert record["channel"] == "email"


# --- what the mapped outcomes do to a customer (apply_outcome is the engine's own)


def _webhook_outcome(provider: str, payload: Any) -> Outcome:
    record = only_outcome(PROVIDERS[provider].outcomes(body(payload), {}))
    # The engine's test customer is C000001 with action a1.
    return Outcome.from_record(
        {
            **{k: v for k, v in record.items() if k != "occurred_at"},
            "action_id": "a1",
            "customer_id": "C000001",
            "occurred_at_ms": NOW_MS,
        }
    )


def _with_ids(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "action_id": "a1", "customer_id": "C000001"}


def test_a_spam_complaint_stops_marketing_email() -> None:
    spam = next(
        e for e in sample("sendgrid/event_webhook_reference.json") if e["event"] == "spamreport"
    )
    result = apply_outcome(
        customer(contact("a1")), _webhook_outcome("sendgrid", [_with_ids(spam)]), POLICY
    )
    assert result.state.consent["email"] is False
    assert result.state.opt_outs["email"] == "unsubscribed"


def test_a_hard_bounce_closes_email_and_a_blocked_one_does_not() -> None:
    bounce = next(
        e for e in sample("sendgrid/event_webhook_reference.json") if e["event"] == "bounce"
    )
    hard = apply_outcome(
        customer(contact("a1")), _webhook_outcome("sendgrid", [_with_ids(bounce)]), POLICY
    )
    assert hard.state.opt_outs["email"] == "hard_bounce"
    blocked = _with_ids({**bounce, "type": "blocked"})
    soft = apply_outcome(customer(contact("a1")), _webhook_outcome("sendgrid", [blocked]), POLICY)
    assert soft.state.consent["email"] is True
    assert "email" not in soft.state.opt_outs
    assert soft.state.contacts[0]["outcomes"] == ["bounced"]
