"""Mailgun's webhooks: one JSON object per call, ``{"signature": {...}, "event-data": {...}}``.

The sender attaches ``action_id`` and ``customer_id`` as variables (``v:action_id`` with
the API, or the ``X-Mailgun-Variables`` header with SMTP); they come back in
``event-data.user-variables``. The signature is the hex HMAC-SHA256 of the signature's
``timestamp`` followed by its ``token``, keyed with the domain's webhook signing key (the
secret). It does not cover ``event-data``: within the tolerance a captured signature could
be replayed with another body; remembering the tokens seen in the window (a stateful cache,
the collector's) closes that, and deterministic outcome ids make a replayed genuine event
harmless. Event reference: https://documentation.mailgun.com/docs/mailgun/user-manual/events/
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

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
    json_object,
    our_identifiers,
    outcome_record,
    redacted,
    required_text,
    stale,
)

EVENT_DATA = "event-data"
NO_OUTCOME_EVENTS = frozenset(
    {"accepted", "stored", "list_member_uploaded", "list_member_upload_error", "list_uploaded"}
)
MAPPED_EVENTS = frozenset(
    {"delivered", "failed", "rejected", "opened", "clicked", "unsubscribed", "complained"}
)
# Permanent failures that are not the address refusing mail: Mailgun gave up after
# retrying temporary failures ("old"), or holds an opt-out we did not know of.
SOFT_PERMANENT_REASONS = frozenset({"old"})
SUPPRESSED_REASONS = frozenset({"suppress-unsubscribe", "suppress-complaint"})


class Mailgun:
    """Mailgun's signed webhooks."""

    name = "mailgun"

    def secret_error(self, secret: str) -> str | None:
        """None when ``secret`` (the webhook signing key) is not blank."""
        return None if secret.strip() else "the webhook signing key is empty"

    def verify(
        self, body: bytes, headers: Mapping[str, str], secret: str, now_ms: int
    ) -> str | None:
        """None when the body's signature is Mailgun's HMAC of timestamp + token and fresh."""
        message = parse_json(body)
        signature = message.get("signature") if isinstance(message, dict) else None
        if not isinstance(signature, dict):
            return "body has no signature object"
        fields: dict[str, str] = {}
        for name in ("timestamp", "token", "signature"):
            value = signature.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value:
                return f"signature.{name}: missing"
            fields[name] = value
        if not fields["timestamp"].isascii() or not fields["timestamp"].isdigit():
            return f"signature.timestamp is not Unix seconds: {fields['timestamp'][:40]!r}"
        too_far = stale(int(fields["timestamp"]), now_ms)
        if too_far is not None:
            return too_far
        if not secret.strip():
            return "verification key unusable: the webhook signing key is empty"
        expected = hmac.new(
            secret.encode(),
            (fields["timestamp"] + fields["token"]).encode(),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected.encode(), fields["signature"].lower().encode()):
            return "signature does not match timestamp and token"
        return None

    def outcomes(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch | Rejection:
        """The call's one event; the whole call rejected when there is no event-data object."""
        message = json_object(body)
        if isinstance(message, Rejection):
            return message
        event_data = message.get(EVENT_DATA)
        if not isinstance(event_data, dict):
            return Rejection(DlqReason.MISSING_FIELD, f"{EVENT_DATA}: missing or not an object")
        return batch_of([_outcome_of(event_data)])


def _outcome_of(data: dict[str, Any]) -> ItemResult:
    """Mailgun's event-data as an outcome record, a Rejection or Ignored."""
    ids = our_identifiers(data.get("user-variables"), f"{EVENT_DATA}.user-variables.")
    if not isinstance(ids, tuple):
        return ids
    name = event_kind(data, "event", f"{EVENT_DATA}.", NO_OUTCOME_EVENTS, MAPPED_EVENTS)
    if not isinstance(name, str):
        return name
    client = data.get("client-info")
    bot = client.get("bot") if isinstance(client, dict) else None
    if name in {"opened", "clicked"} and isinstance(bot, str) and bot:
        return Ignored(IgnoreReason.MACHINE_EVENT, f"{name} by a machine (client-info.bot {bot!r})")
    severity = data.get("severity")
    if name == "failed":
        if severity == "temporary":
            return Ignored(IgnoreReason.NO_OUTCOME, "temporary failure: Mailgun retries it")
        if severity != "permanent":
            return Rejection(
                DlqReason.MISSING_FIELD if severity is None else DlqReason.SCHEMA_VIOLATION,
                f"{EVENT_DATA}.severity: expected permanent or temporary, got {severity!r:.40}",
            )
    event_id = required_text(data, "id", f"{EVENT_DATA}.")
    if isinstance(event_id, Rejection):
        return event_id
    occurred_at_ms = epoch_seconds_ms(data.get("timestamp"), f"{EVENT_DATA}.timestamp")
    if isinstance(occurred_at_ms, Rejection):
        return occurred_at_ms
    occurrence = Occurrence("mailgun", name, event_id, occurred_at_ms)
    common = {"provider_event_id": event_id}
    if name == "failed":
        return _failure(occurrence, ids, data, common)
    if name == "rejected":
        return outcome_record(occurrence, ids, "failed", **common, **_reasons(data))
    if name == "clicked":
        return outcome_record(occurrence, ids, "clicked", **common, url=redacted(data.get("url")))
    if name == "complained":
        return outcome_record(occurrence, ids, "unsubscribed", **common, reason="spam_complaint")
    outcome = {"delivered": "delivered", "opened": "opened", "unsubscribed": "unsubscribed"}[name]
    return outcome_record(occurrence, ids, outcome, **common)


def _failure(
    occurrence: Occurrence, ids: tuple[str, str], data: dict[str, Any], common: dict[str, Any]
) -> dict[str, Any]:
    """A permanent failure: a hard bounce, a soft one (retries ran out) or a suppressed send."""
    reasons = _reasons(data)
    if data.get("reason") in SUPPRESSED_REASONS:
        return outcome_record(occurrence, ids, "failed", **common, **reasons)
    bounce_type = "soft" if data.get("reason") in SOFT_PERMANENT_REASONS else "hard"
    return outcome_record(occurrence, ids, "bounced", **common, bounce_type=bounce_type, **reasons)


def _reasons(data: dict[str, Any]) -> dict[str, Any]:
    """Mailgun's reason code and the receiving server's answer, addresses redacted."""
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    code = status.get("code")
    return {
        "reason": redacted(data.get("reason")),
        "code": code if isinstance(code, int) and not isinstance(code, bool) else None,
        "description": redacted(status.get("description") or status.get("message")),
    }


MAILGUN = Mailgun()
