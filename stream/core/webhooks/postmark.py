"""Postmark's webhooks: one JSON object per call, told apart by ``RecordType``.

The sender puts ``action_id`` and ``customer_id`` into the message's ``Metadata``, which
Postmark returns in every record. Postmark does not sign its calls: the webhook URL
carries HTTP basic-auth credentials (``https://user:password@collector.example/...``) and
the secret is that ``user:password``, compared in constant time with the
``Authorization: Basic`` header. There is no timestamp to judge freshness by; TLS and
idempotent outcome ids are the replay defence.
Reference: https://postmarkapp.com/developer/webhooks/webhooks-overview
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from stream.core.events import Rejection
from stream.core.webhooks.common import (
    Ignored,
    IgnoreReason,
    ItemResult,
    Occurrence,
    WebhookBatch,
    batch_of,
    event_kind,
    iso_timestamp_ms,
    json_object,
    our_identifiers,
    outcome_record,
    redacted,
    required_text,
)

# When each record type happened.
TIME_FIELDS = {
    "Delivery": "DeliveredAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "SubscriptionChange": "ChangedAt",
}
NO_OUTCOME_RECORDS = frozenset({"Inbound", "SMTPApiError"})
# Bounce types (the ``Type`` field): the address refuses mail for good, or for now; the
# other types (auto-replies, challenge and virus notices...) are no delivery failure.
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
SOFT_BOUNCES = frozenset(
    {"SoftBounce", "Transient", "DnsError", "Blocked", "SpamNotification", "DMARCPolicy"}
)


class Postmark:
    """Postmark's webhooks, authenticated with basic-auth credentials in the URL."""

    name = "postmark"

    def secret_error(self, secret: str) -> str | None:
        """None when ``secret`` has the form ``user:password``."""
        user, colon, password = secret.partition(":")
        return None if user and colon and password else "expected user:password"

    def verify(
        self, body: bytes, headers: Mapping[str, str], secret: str, now_ms: int
    ) -> str | None:
        """None when the Authorization header holds the configured credentials."""
        authorization = headers.get("authorization")
        if not authorization:
            return "missing header authorization"
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return "authorization is not Basic credentials"
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            return "authorization credentials are not base64"
        if not hmac.compare_digest(credentials, secret.encode()):
            return "credentials do not match"
        return None

    def outcomes(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch | Rejection:
        """The call's one record; the whole call rejected when the body is no JSON object."""
        record = json_object(body)
        if isinstance(record, Rejection):
            return record
        return batch_of([_outcome_of(record)])


def _outcome_of(record: dict[str, Any]) -> ItemResult:
    """One Postmark record as an outcome record, a Rejection or Ignored."""
    ids = our_identifiers(record.get("Metadata"), "Metadata.")
    if not isinstance(ids, tuple):
        return ids
    kind = event_kind(record, "RecordType", "", NO_OUTCOME_RECORDS, TIME_FIELDS, "record")
    if not isinstance(kind, str):
        return kind
    mapped = _outcome_and_detail(kind, record)
    if not isinstance(mapped, tuple):
        return mapped
    outcome, detail = mapped
    event_key = _event_key(kind, record)
    if isinstance(event_key, Rejection):
        return event_key
    occurred_at_ms = iso_timestamp_ms(record.get(TIME_FIELDS[kind]), TIME_FIELDS[kind])
    if isinstance(occurred_at_ms, Rejection):
        return occurred_at_ms
    message_id = record.get("MessageID")
    return outcome_record(
        Occurrence("postmark", kind, event_key, occurred_at_ms),
        ids,
        outcome,
        provider_event_id=event_key if kind in {"Bounce", "SpamComplaint"} else None,
        provider_message_id=message_id if isinstance(message_id, str) and message_id else None,
        **detail,
    )


def _outcome_and_detail(kind: str, record: dict[str, Any]) -> tuple[str, dict[str, Any]] | Ignored:
    """Our outcome for a record, and what its detail says; Ignored when there is none."""
    if kind == "Delivery":
        return "delivered", {}
    if kind == "Open":
        return "opened", {}
    if kind == "Click":
        return "clicked", {"url": redacted(record.get("OriginalLink"))}
    if kind == "SpamComplaint":
        return "unsubscribed", {"reason": "spam_complaint"}
    if kind == "Bounce":
        return _bounce(record)
    return _subscription_change(record)


def _bounce(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | Ignored:
    """A bounce record by its Type: hard, soft, or no delivery failure."""
    bounce_type = record.get("Type")
    if bounce_type == "SpamComplaint":
        return "unsubscribed", {"reason": "spam_complaint"}
    if bounce_type not in HARD_BOUNCES | SOFT_BOUNCES:
        return Ignored(IgnoreReason.NO_OUTCOME, f"bounce type {bounce_type!r:.40} is no failure")
    return "bounced", {
        "bounce_type": "hard" if bounce_type in HARD_BOUNCES else "soft",
        "postmark_type": bounce_type,
        "reason": redacted(record.get("Description")),
        "details": redacted(record.get("Details")),
    }


def _subscription_change(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | Ignored:
    """An address suppressed for a message of ours; a reactivation is no outcome."""
    if record.get("SuppressSending") is not True:
        return Ignored(IgnoreReason.NO_OUTCOME, "subscription change reactivates the address")
    reason = record.get("SuppressionReason")
    origin = redacted(record.get("Origin"))
    if reason == "HardBounce":
        return "bounced", {"bounce_type": "hard", "postmark_type": reason, "origin": origin}
    if reason == "SpamComplaint":
        return "unsubscribed", {"reason": "spam_complaint", "origin": origin}
    return "unsubscribed", {"reason": redacted(reason), "origin": origin}


def _event_key(kind: str, record: dict[str, Any]) -> str | Rejection:
    """What tells one Postmark record from another: its ID when it has one (bounces and
    complaints), else the message, the time and (for a click) the link."""
    if kind in {"Bounce", "SpamComplaint"}:
        return required_text(record, "ID")
    message_id = required_text(record, "MessageID")
    if isinstance(message_id, Rejection):
        return message_id
    parts = [message_id, str(record.get(TIME_FIELDS[kind]))]
    if kind == "Click":
        parts.append(str(record.get("OriginalLink")))
    return "|".join(parts)


POSTMARK = Postmark()
