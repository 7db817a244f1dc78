"""SendGrid's Event Webhook: signature verification and the mapping of its documented events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stream.core.events import DlqReason, Rejection
from stream.core.webhooks import PROVIDERS, IgnoreReason, WebhookBatch
from stream.core.webhooks.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.unit.core.webhooks.helpers import (
    ACTION_ID,
    CUSTOMER_ID,
    OURS,
    assert_valid_outcomes,
    body,
    copied,
    only_outcome,
    sample,
)

SENDGRID = PROVIDERS["sendgrid"]
REFERENCE = "sendgrid/event_webhook_reference.json"

# SendGrid's own test vector: sendgrid/sendgrid-python, test/unit/test_eventwebhook.py.
SDK_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3"
    "GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SDK_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCW"
    "Hw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SDK_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15Tl"
    "uLtEZtM="
)
SDK_BAD_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDW"
    "YNH3j/0="
)
SDK_TIMESTAMP = "1600112502"
SDK_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"  # part of the signed bytes
).encode()
SDK_NOW_MS = 1_600_112_510_000  # 8 s after the vector's signing time

NOW_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z
NOW_S = str(NOW_MS // 1000)


def sdk_headers(signature: str = SDK_SIGNATURE, timestamp: str = SDK_TIMESTAMP) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: timestamp}


class Signer:
    """A P-256 key pair made for the test, signing as SendGrid does."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode()

    def headers(self, payload: bytes, timestamp: str = NOW_S) -> dict[str, str]:
        signature = self.key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


# --- signature


def test_sendgrids_own_test_vector_verifies() -> None:
    assert SENDGRID.verify(SDK_PAYLOAD, sdk_headers(), SDK_PUBLIC_KEY, SDK_NOW_MS) is None


@pytest.mark.parametrize(
    ("payload", "headers", "key", "why"),
    [
        (SDK_PAYLOAD, sdk_headers(), SDK_OTHER_KEY, "does not match"),
        (b"payload", sdk_headers(), SDK_PUBLIC_KEY, "does not match"),
        (SDK_PAYLOAD.rstrip(), sdk_headers(), SDK_PUBLIC_KEY, "does not match"),
        (SDK_PAYLOAD, sdk_headers(SDK_BAD_SIGNATURE), SDK_PUBLIC_KEY, "does not match"),
        (SDK_PAYLOAD, sdk_headers(timestamp="timestamp"), SDK_PUBLIC_KEY, "not Unix seconds"),
    ],
    ids=["other key", "other payload", "without the trailing CRLF", "bad signature", "bad time"],
)
def test_sendgrids_own_negative_cases_fail(
    payload: bytes, headers: dict[str, str], key: str, why: str
) -> None:
    reason = SENDGRID.verify(payload, headers, key, SDK_NOW_MS)
    assert reason is not None and why in reason


def test_a_payload_signed_with_our_test_key_verifies(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    assert SENDGRID.verify(payload, signer.headers(payload), signer.public_key, NOW_MS) is None


def test_a_tampered_body_fails(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    tampered = payload.replace(b'"bounce"', b'"delivered"', 1)
    assert tampered != payload
    reason = SENDGRID.verify(tampered, signer.headers(payload), signer.public_key, NOW_MS)
    assert reason == "signature does not match the body and timestamp"


def test_a_signature_by_another_key_fails(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    other = Signer()
    reason = SENDGRID.verify(payload, other.headers(payload), signer.public_key, NOW_MS)
    assert reason == "signature does not match the body and timestamp"


def test_a_signature_over_another_timestamp_fails(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    headers = {**signer.headers(payload), TIMESTAMP_HEADER: str(int(NOW_S) - 1)}
    reason = SENDGRID.verify(payload, headers, signer.public_key, NOW_MS)
    assert reason == "signature does not match the body and timestamp"


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_a_missing_header_is_named(signer: Signer, missing: str) -> None:
    payload = sample_bytes_with_ours()
    headers = {k: v for k, v in signer.headers(payload).items() if k != missing}
    assert (
        SENDGRID.verify(payload, headers, signer.public_key, NOW_MS) == f"missing header {missing}"
    )


def test_a_signature_older_than_five_minutes_is_stale_even_when_genuine(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    at_limit = signer.headers(payload, str(int(NOW_S) - 300))
    assert SENDGRID.verify(payload, at_limit, signer.public_key, NOW_MS) is None
    too_old = signer.headers(payload, str(int(NOW_S) - 301))
    reason = SENDGRID.verify(payload, too_old, signer.public_key, NOW_MS)
    assert reason is not None and reason.startswith("stale timestamp: 301 s old")
    ahead = signer.headers(payload, str(int(NOW_S) + 301))
    assert "future" in (SENDGRID.verify(payload, ahead, signer.public_key, NOW_MS) or "")


def test_a_signature_that_is_not_base64_is_refused(signer: Signer) -> None:
    payload = sample_bytes_with_ours()
    headers = {**signer.headers(payload), SIGNATURE_HEADER: "not base64!"}
    assert SENDGRID.verify(payload, headers, signer.public_key, NOW_MS) == (
        f"{SIGNATURE_HEADER} is not base64"
    )


def test_the_secret_must_be_a_p256_public_key(signer: Signer) -> None:
    assert SENDGRID.secret_error(SDK_PUBLIC_KEY) is None
    assert SENDGRID.secret_error(signer.public_key) is None
    assert SENDGRID.secret_error("not a key") == "not a base64 DER public key"
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    p384_b64 = base64.b64encode(
        p384.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    assert SENDGRID.secret_error(p384_b64) == "not an elliptic-curve P-256 public key"
    reason = SENDGRID.verify(SDK_PAYLOAD, sdk_headers(), "not a key", SDK_NOW_MS)
    assert reason == "verification key unusable: not a base64 DER public key"


# --- mapping


def with_ours(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample's events as the sender's custom args would make them."""
    return [{**event, **OURS} for event in copied(events)]


def sample_bytes_with_ours() -> bytes:
    return body(with_ours(sample(REFERENCE)))


def test_the_documented_sample_is_ignored_as_not_ours() -> None:
    batch = SENDGRID.outcomes(body(sample(REFERENCE)), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.rejected == []
    assert [index for index, _ in batch.ignored] == list(range(11))
    assert {ignored.reason for _, ignored in batch.ignored} == {IgnoreReason.NOT_OURS}


# The reference sample's events in order, and what each becomes.
MAPPING = [
    ("processed", None, IgnoreReason.NO_OUTCOME, {}),
    ("deferred", None, IgnoreReason.NO_OUTCOME, {}),
    ("delivered", "delivered", None, {}),
    ("open", "opened", None, {}),
    ("click", "clicked", None, {"url": "http://www.sendgrid.com/"}),
    (
        "bounce",
        "bounced",
        None,
        {
            "bounce_type": "hard",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "bounce_classification": "invalid",
        },
    ),
    ("dropped", "failed", None, {"reason": "Bounced Address"}),
    ("spamreport", "unsubscribed", None, {"reason": "spam_complaint"}),
    ("unsubscribe", "unsubscribed", None, {}),
    ("group_unsubscribe", "unsubscribed", None, {"asm_group_id": 10}),
    ("group_resubscribe", None, IgnoreReason.NO_OUTCOME, {}),
]


def mapped() -> WebhookBatch:
    batch = SENDGRID.outcomes(sample_bytes_with_ours(), {})
    assert isinstance(batch, WebhookBatch)
    return batch


@pytest.mark.parametrize(("index", "row"), list(enumerate(MAPPING)), ids=[r[0] for r in MAPPING])
def test_each_documented_event_maps_as_the_table_says(
    index: int, row: tuple[str, str | None, IgnoreReason | None, dict[str, Any]]
) -> None:
    event, outcome, ignored, detail = row
    batch = mapped()
    assert sample(REFERENCE)[index]["event"] == event
    outcomes = dict(batch.outcomes)
    if outcome is None:
        assert dict(batch.ignored)[index].reason is ignored
        assert index not in outcomes
        return
    record = outcomes[index]
    assert record["outcome"] == outcome
    assert record["action_id"] == ACTION_ID and record["customer_id"] == CUSTOMER_ID
    assert record["channel"] == "email"
    assert record["occurred_at"] == "2017-12-15T00:59:29.000Z"  # timestamp 1513299569
    assert record["detail"] == {
        "provider": "sendgrid",
        "provider_event": event,
        "provider_event_id": "sg_event_id",
        "provider_message_id": "sg_message_id",
        **detail,
    }


def test_every_mapped_event_is_a_valid_outcome_without_the_address() -> None:
    batch = mapped()
    assert batch.rejected == []
    assert len(assert_valid_outcomes(batch)) == 8


def test_outcome_ids_follow_the_providers_event_so_a_retry_maps_to_the_same_id() -> None:
    first, retry = mapped(), mapped()
    ids = [record["outcome_id"] for _, record in first.outcomes]
    assert ids == [record["outcome_id"] for _, record in retry.outcomes]
    # The sample gives every event the same placeholder id: the event name still tells them apart.
    assert len(set(ids)) == len(ids)
    events = with_ours(sample(REFERENCE))
    events[2]["sg_event_id"] = "another-event"
    moved = SENDGRID.outcomes(body(events), {})
    assert isinstance(moved, WebhookBatch)
    assert dict(moved.outcomes)[2]["outcome_id"] != dict(first.outcomes)[2]["outcome_id"]


def test_a_blocked_bounce_is_soft() -> None:
    bounce = with_ours(sample(REFERENCE))[5]
    record = only_outcome(SENDGRID.outcomes(body([{**bounce, "type": "blocked"}]), {}))
    assert record["outcome"] == "bounced"
    assert record["detail"]["bounce_type"] == "soft"
    assert (
        only_outcome(SENDGRID.outcomes(body([{**bounce, "type": "bounce"}]), {}))["detail"][
            "bounce_type"
        ]
        == "hard"
    )


def test_a_machine_open_is_ignored() -> None:
    opened = {**with_ours(sample(REFERENCE))[3], "sg_machine_open": True}
    batch = SENDGRID.outcomes(body([opened]), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.outcomes == [] and batch.ignored[0][1].reason is IgnoreReason.MACHINE_EVENT


def test_an_event_name_sendgrid_adds_later_is_ignored_not_dead_lettered() -> None:
    event = {**with_ours(sample(REFERENCE))[2], "event": "machine_learning_insight"}
    batch = SENDGRID.outcomes(body([event]), {})
    assert isinstance(batch, WebhookBatch)
    assert batch.ignored[0][1].reason is IgnoreReason.UNKNOWN_EVENT


def test_a_bounce_reason_that_names_the_recipient_is_redacted() -> None:
    bounce = with_ours(sample(REFERENCE))[5]
    bounce["reason"] = "550 5.1.1 <example@test.com>: Recipient address rejected"
    record = only_outcome(SENDGRID.outcomes(body([bounce]), {}))
    assert record["detail"]["reason"] == "550 5.1.1 <[email]>: Recipient address rejected"


def _event(**changes: Any) -> dict[str, Any]:
    event = with_ours(sample(REFERENCE))[2]  # delivered
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


@pytest.mark.parametrize(
    ("item", "reason", "field"),
    [
        (_event(customer_id=None), DlqReason.MISSING_FIELD, "customer_id"),
        (_event(action_id=42), DlqReason.SCHEMA_VIOLATION, "action_id"),
        (_event(event=None), DlqReason.MISSING_FIELD, "event"),
        (_event(sg_event_id=None), DlqReason.MISSING_FIELD, "sg_event_id"),
        (_event(timestamp=None), DlqReason.MISSING_FIELD, "timestamp"),
        (_event(timestamp="yesterday"), DlqReason.INVALID_TIMESTAMP, "timestamp"),
        ("delivered", DlqReason.NOT_AN_OBJECT, "event is str"),
    ],
)
def test_a_malformed_event_of_ours_is_rejected_naming_the_field(
    item: Any, reason: DlqReason, field: str
) -> None:
    good = with_ours(sample(REFERENCE))[3]
    batch = SENDGRID.outcomes(body([good, item]), {})
    assert isinstance(batch, WebhookBatch)
    assert [index for index, _ in batch.outcomes] == [0]  # the good one still goes through
    [(index, rejection)] = batch.rejected
    assert index == 1
    assert rejection.reason is reason
    assert rejection.detail.startswith(field)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[{", DlqReason.INVALID_JSON),
        (b'{"event": "open"}', DlqReason.SCHEMA_VIOLATION),
        (b'[{"a": 1, "a": 2}]', DlqReason.DUPLICATE_KEY),
        (b"\xff", DlqReason.INVALID_UTF8),
    ],
)
def test_an_unreadable_body_rejects_the_whole_call(raw: bytes, reason: DlqReason) -> None:
    result = SENDGRID.outcomes(raw, {})
    assert isinstance(result, Rejection) and result.reason is reason


def test_an_empty_array_is_an_empty_batch() -> None:
    assert SENDGRID.outcomes(b"[]", {}) == WebhookBatch([], [], [])
