"""The Customer 360 view: what marketing, sales and service see of one customer.

Pure: built from the stored state. Raw emails and phone numbers are never stored; their
salted hashes are shown shortened (enough to compare two profiles, not to reverse them).
Times are RFC 3339.
"""

from __future__ import annotations

import re
from typing import Any

from stream.core.decide.holdout import HoldoutPolicy, group_of
from stream.core.money import DEFAULT_CURRENCY
from stream.core.state import CustomerState
from stream.core.timestamps import format_ms

# A customer key or identifier token: C000123, loyalty:L1, email:<hex>, anon:<cookie>.
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$")
HASHED = ("email_sha256", "phone_sha256", "social_sha256")


def valid_customer_id(customer_id: str) -> bool:
    """True if the text can be a customer key (checked before any lookup)."""
    return bool(CUSTOMER_ID.match(customer_id))


def _time(ms: int | None) -> str | None:
    return format_ms(ms) if ms else None


def _masked(kind: str, value: str) -> str:
    return f"{value[:8]}…" if kind in HASHED else value


def profile_view(state: CustomerState, holdout: HoldoutPolicy) -> dict[str, Any]:
    """The unified profile of ``state`` as the API returns it."""
    return {
        "customer_id": state.customer_key,
        "group": group_of(state.customer_key, holdout),
        "identifiers": {k: _masked(k, v) for k, v in sorted(state.identifiers.items())},
        "linked_identifiers": len(state.linked),
        "stage": state.stage,
        "stage_since": _time(state.stage_since_ms),
        "stage_history": [
            {"from": h["from"], "to": h["to"], "at": _time(h["at_ms"]), "event_id": h["event_id"]}
            for h in state.stage_history
        ],
        "first_seen": _time(state.created_at_ms),
        "last_seen": _time(state.updated_at_ms),
        "event_count": state.event_count,
        "engagement": _engagement(state),
        "channels": _channels(state),
        "cart": _cart(state),
        "orders": _orders(state),
        "consent": {channel: state.has_consent(channel) for channel in ("email", "sms", "push")},
        "opt_outs": dict(state.opt_outs),
        "app_installed": state.app_installed,
        "open_cases": _open_cases(state),
        "social": _social(state),
        "timers": [
            {"name": name, "due": _time(timer["due_ms"])}
            for name, timer in sorted(state.timers.items(), key=lambda item: item[1]["due_ms"])
        ],
        "journeys": _journeys(state),
        "held_actions": [
            {
                "action": held["action"]["action"],
                "channel": held["action"]["channel"],
                "send_after": _time(held["due_ms"]),
            }
            for held in state.held
        ],
        "recent_events": [
            {
                "event_id": e["event_id"],
                "type": e["type"],
                "channel": e["channel"],
                "at": _time(e["at_ms"]),
            }
            for e in state.recent_events
        ],
        "recent_actions": [_recent_action(contact) for contact in state.contacts],
    }


def _engagement(state: CustomerState) -> dict[str, dict[str, Any]]:
    """Per channel the customer used: events seen and when last."""
    return {
        channel: {"events": seen["events"], "last_seen": _time(seen["last_seen_ms"])}
        for channel, seen in sorted(state.channels.items())
    }


def _channels(state: CustomerState) -> dict[str, dict[str, int]]:
    """Per channel we sent on or heard back from: sends, responses, unanswered sends."""
    return {
        channel: {
            "sent": state.sent_by_channel.get(channel, 0),
            "responses": state.responses.get(channel, 0),
            "unanswered": state.unanswered.get(channel, 0),
        }
        for channel in sorted({*state.sent_by_channel, *state.responses})
    }


def currency(state: CustomerState) -> str:
    """The currency of a customer's amounts: their latest order's, else the default."""
    return str(state.orders.get("currency") or DEFAULT_CURRENCY)


def _cart(state: CustomerState) -> dict[str, Any]:
    """The cart's item count, value (in the customer's currency) and last change."""
    return {
        "items": sum(int(item["quantity"]) for item in state.cart["items"].values()),
        "value": float(state.cart["value"]),
        "currency": currency(state),
        "updated_at": _time(state.cart["updated_at_ms"]),
    }


def _orders(state: CustomerState) -> dict[str, Any]:
    """The order history in summary."""
    return {
        "count": state.orders["count"],
        "revenue": float(state.orders["revenue"]),
        "currency": currency(state),
        "returns": state.orders["returns"],
        "last_category": state.orders["last_category"],
        "last_order_at": _time(state.orders["last_order_at_ms"]),
    }


def _open_cases(state: CustomerState) -> list[dict[str, Any]]:
    """The open service cases, by case id."""
    return [
        {
            "case_id": case_id,
            "reason": case["reason"],
            "severity": case["severity"],
            "opened_at": _time(case["opened_at_ms"]),
        }
        for case_id, case in sorted(state.open_cases.items())
    ]


def _social(state: CustomerState) -> dict[str, Any] | None:
    """The customer's social media posts: counts, sentiment, stars, the latest post (None
    before the first)."""
    social = state.social
    if not social:
        return None
    reviews = social["reviews"]
    last = social["last"]
    return {
        "posts": dict(sorted(social["posts"].items())),
        "sentiment": dict(sorted(social["sentiment"].items())),
        "reviews": reviews["count"],
        "average_rating": round(reviews["stars"] / reviews["count"], 2)
        if reviews["count"]
        else None,
        "last": None
        if last is None
        else {
            "type": last["type"],
            "platform": last["platform"],
            "sentiment": last["sentiment"],
            "score": last["score"],
            "source": last["source"],
            "at": _time(last["at_ms"]),
        },
    }


def _recent_action(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact of the state as the API shows it (fields a contact may lack get defaults)."""
    return {
        "action_id": contact["action_id"],
        "action": contact["action"],
        "channel": contact["channel"],
        "category": contact["category"],
        "decided_at": _time(contact["at_ms"]),
        "trigger_event_id": contact.get("trigger_event_id"),
        "reason": contact.get("reason", ""),
        "outcomes": list(contact.get("outcomes", [])),
        "group": contact.get("group", "treatment"),
        "withdrawn": bool(contact.get("withdrawn", False)),
    }


def _journeys(state: CustomerState) -> list[dict[str, Any]]:
    """The journeys the customer is in: where, since when, and what ends the wait."""
    return [
        {
            "journey": journey,
            "version": run["version"],
            "run": run["run"],
            "node": run["node"],
            "since": _time(run["since_ms"]),
            "entered_at": _time(run["entered_at_ms"]),
            "next_step_at": _time(run["due_ms"]),
            "ends_by": _time(run["ends_ms"]),
            "group": run["group"],
        }
        for journey, run in sorted(state.journeys.items())
    ]
