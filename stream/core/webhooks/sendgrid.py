"""SendGrid's Event Webhook: a JSON array of events, signed with ECDSA P-256 over SHA-256.

The sender puts ``action_id`` and ``customer_id`` into the message's ``custom_args``;
SendGrid copies custom args into every event as top-level keys. The signature
(``X-Twilio-Email-Event-Webhook-Signature``, base64 DER) covers the
``X-Twilio-Email-Event-Webhook-Timestamp`` header's text followed by the raw body; the
secret is the verification key SendGrid shows (base64 DER public key).
Event reference: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from stream.core.events import DlqReason, Rejection, parse_json
from stream.core.webhooks.common import (
    Ignored,
    IgnoreReason,
    ItemResult,
    Occurrence,
    WebhookBatch,
    batch_of,
    epoch_seconds_ms,
    event_kind,
    our_identifiers,
    outcome_record,
    redacted,
    required_text,
    stale,
)

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

# Events that tell us nothing the engine uses: accepted for delivery, delayed (SendGrid
# retries; delivered or bounce follows), resubscribed to a group (consent returns
# through a consent event, never through an outcome).
NO_OUTCOME_EVENTS = frozenset({"processed", "deferred", "group_resubscribe"})
MAPPED_EVENTS = frozenset(
    {
        "delivered",
        "bounce",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
    }
)


class SendGrid:
    """SendGrid's signed Event Webhook."""

    name = "sendgrid"

    def secret_error(self, secret: str) -> str | None:
        """None when ``secret`` is a base64 DER P-256 public key, else what is wrong."""
        key = _public_key(secret)
        return key if isinstance(key, str) else None

    def verify(
        self, body: bytes, headers: Mapping[str, str], secret: str, now_ms: int
    ) -> str | None:
        """None when the signature over timestamp + body is SendGrid's and fresh, else why not."""
        signature_b64 = headers.get(SIGNATURE_HEADER)
        if not signature_b64:
            return f"missing header {SIGNATURE_HEADER}"
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not timestamp:
            return f"missing header {TIMESTAMP_HEADER}"
        if not timestamp.isascii() or not timestamp.isdigit():
            return f"{TIMESTAMP_HEADER} is not Unix seconds: {timestamp[:40]!r}"
        too_far = stale(int(timestamp), now_ms)
        if too_far is not None:
            return too_far
        key = _public_key(secret)
        if isinstance(key, str):
            return f"verification key unusable: {key}"
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except binascii.Error:
            return f"{SIGNATURE_HEADER} is not base64"
        try:
            key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "signature does not match the body and timestamp"
        return None

    def outcomes(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch | Rejection:
        """One result per event of the array; the whole call rejected if it is not one."""
        events = parse_json(body)
        if isinstance(events, Rejection):
            return events
        if not isinstance(events, list):
            return Rejection(
                DlqReason.SCHEMA_VIOLATION,
                f"(root): expected an array of events, got {type(events).__name__}",
            )
        return batch_of(_outcome_of(event) for event in events)


@functools.lru_cache(maxsize=32)
def _public_key(secret: str) -> ec.EllipticCurvePublicKey | str:
    """The P-256 public key of a base64 DER secret, or what is wrong with the secret."""
    try:
        key = load_der_public_key(base64.b64decode(secret.strip(), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        return "not a base64 DER public key"
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "not an elliptic-curve P-256 public key"
    return key


def _outcome_of(event: Any) -> ItemResult:
    """One SendGrid event as an outcome record, a Rejection or Ignored."""
    if not isinstance(event, dict):
        return Rejection(DlqReason.NOT_AN_OBJECT, f"event is {type(event).__name__}")
    ids = our_identifiers(event, "")
    if not isinstance(ids, tuple):
        return ids
    name = event_kind(event, "event", "", NO_OUTCOME_EVENTS, MAPPED_EVENTS)
    if not isinstance(name, str):
        return name
    if name == "open" and event.get("sg_machine_open") is True:
        return Ignored(IgnoreReason.MACHINE_EVENT, "open by a machine (sg_machine_open)")
    event_id = required_text(event, "sg_event_id")
    if isinstance(event_id, Rejection):
        return event_id
    occurred_at_ms = epoch_seconds_ms(event.get("timestamp"), "timestamp")
    if isinstance(occurred_at_ms, Rejection):
        return occurred_at_ms
    occurrence = Occurrence("sendgrid", name, event_id, occurred_at_ms)
    common = {
        "provider_event_id": event_id,
        "provider_message_id": redacted(event.get("sg_message_id")),
    }
    if name == "bounce":
        # "blocked": refused for now (SendGrid does not suppress the address); older
        # events carry no type and are bounces.
        bounce_type = "soft" if event.get("type") == "blocked" else "hard"
        return outcome_record(
            occurrence,
            ids,
            "bounced",
            **common,
            bounce_type=bounce_type,
            reason=redacted(event.get("reason")),
            status=redacted(event.get("status")),
            bounce_classification=redacted(event.get("bounce_classification")),
        )
    if name == "dropped":
        return outcome_record(
            occurrence, ids, "failed", **common, reason=redacted(event.get("reason"))
        )
    if name == "click":
        return outcome_record(occurrence, ids, "clicked", **common, url=redacted(event.get("url")))
    if name == "spamreport":
        return outcome_record(occurrence, ids, "unsubscribed", **common, reason="spam_complaint")
    if name == "group_unsubscribe":
        group = event.get("asm_group_id")
        return outcome_record(
            occurrence,
            ids,
            "unsubscribed",
            **common,
            asm_group_id=group if isinstance(group, int) and not isinstance(group, bool) else None,
        )
    outcome = {"delivered": "delivered", "open": "opened", "unsubscribe": "unsubscribed"}[name]
    return outcome_record(occurrence, ids, outcome, **common)


SENDGRID = SendGrid()
