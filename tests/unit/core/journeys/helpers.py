"""Shared helpers for journey tests: a policy around some journeys, events, outcomes."""

from __future__ import annotations

import re
from textwrap import dedent, indent
from typing import Any

from stream.core.decide import Policy
from stream.core.events import Event
from stream.core.outcomes import Outcome
from stream.core.pipeline import StepResult, step
from stream.core.state import CustomerState, new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
CONSENT: dict[str, Any] = {
    "consent": {"email": True, "push": True, "sms": True},
    "timezone": "UTC",
}

# Journeys send these; a policy built by ``journey_policy`` holds those its journeys name.
ACTIONS = {
    "promo_email": "{id: promo_email, category: marketing, channels: [email]}",
    "promo_push": "{id: promo_push, category: marketing, channels: [push]}",
    "promo_sms": "{id: promo_sms, category: marketing, channels: [sms]}",
    "low_offer": "{id: low_offer, category: marketing, channels: [email], value: 1.0}",
    "high_offer": (
        "{id: high_offer, category: marketing, channels: [email], value: 5.0, "
        "eligibility: 'customer.orders.revenue >= 100.0'}"
    ),
    "receipt": "{id: receipt, category: transactional, channels: [email]}",
}
BANNER = "{id: banner, category: marketing, channels: [web], triggers: [{event: page_view}]}"


def journey_policy(
    journeys: str, contact: str = "{default_timezone: UTC}", control_share: float = 0.0
) -> Policy:
    """A policy with ``journeys`` (YAML list items), the actions they name and a banner."""
    named = [text for name, text in ACTIONS.items() if re.search(rf"\b{name}\b", journeys)]
    actions = "".join(f"  - {text}\n" for text in [*named, BANNER])
    return policy_from(
        "format: 1\n"
        "name: journeys\n"
        f"contact_policy: {contact}\n"
        f"holdout: {{control_share: {control_share}}}\n"
        f"actions:\n{actions}"
        f"journeys:\n{indent(dedent(journeys).strip(), '  ')}\n"
    )


def event(
    type_: str,
    at_ms: int = NOON_MS,
    *,
    key: str = "C000001",
    context: dict[str, Any] | None = None,
    **properties: Any,
) -> Event:
    """An event of customer ``key`` (consent on email, push and sms; UTC) at ``at_ms``."""
    return build_event(
        type_,
        properties=properties,
        at_ms=at_ms,
        customer_key=key,
        context=CONSENT if context is None else context,
    )


def order(at_ms: int = NOON_MS, order_id: str = "o1", value: float = 50.0, **kw: Any) -> Event:
    """An order_completed event."""
    return event("order_completed", at_ms, order_id=order_id, value=value, **kw)


def enter(
    policy: Policy,
    entry: Event | None = None,
    now_ms: int = NOON_MS,
    state: CustomerState | None = None,
) -> StepResult:
    """The step of an entry event (a first order by default) for a new customer."""
    entry = entry or order(now_ms)
    state = state or new_state(entry.customer_key)
    return step(state, entry, now_ms, LIMITS, policy)


def outcome(action_id: str, what: str, channel: str = "email", at_ms: int = NOON_MS) -> Outcome:
    """A sender's outcome for ``action_id``."""
    return Outcome(f"{action_id}-{what}", action_id, "C000001", channel, what, at_ms, {})


def moves(result: StepResult) -> list[tuple[str, str, str]]:
    """(node, what, detail) of every journey move of a step."""
    return [(m.node, m.what, m.detail) for m in result.journeys]


def sent(result: StepResult) -> list[str]:
    """The action names a step sends now."""
    return [action.action for action in result.to_send]
