"""Builders of ingress events as upstream producers would write them."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_sequence = itertools.count()
BASE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def event(
    channel: str,
    type_: str,
    customer: dict[str, str],
    properties: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    consent: dict[str, bool] | None = None,
    at_ms: int | None = None,
) -> dict[str, Any]:
    """A contract-valid event at ``at_ms`` (default: increasing timestamps from BASE)."""
    if at_ms is None:
        occurred_at = BASE + timedelta(seconds=next(_sequence))
    else:
        occurred_at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return {
        "event_id": event_id or f"it-{uuid.uuid4().hex}",
        "type": type_,
        "channel": channel,
        "occurred_at": occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "customer": customer,
        "properties": properties or {},
        "context": {
            "timezone": "Europe/Paris",
            "consent": consent
            if consent is not None
            else {"email": True, "sms": True, "push": True},
        },
    }


def order(
    customer_id: str, order_id: str, category: str = "shoes", channel: str = "web"
) -> dict[str, Any]:
    """An order_completed event on web or app."""
    return event(
        channel,
        "order_completed",
        {"customer_id": customer_id},
        {"order_id": order_id, "value": 89.9, "currency": "EUR", "category": category},
    )


def complaint(customer_id: str, case_id: str, reason: str, **properties: Any) -> dict[str, Any]:
    """A complaint_opened event from the call center."""
    return event(
        "call_center",
        "complaint_opened",
        {"customer_id": customer_id},
        {"case_id": case_id, "reason": reason, **properties},
    )
