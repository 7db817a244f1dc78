"""The per-customer state and the pure reducer that applies one event to it.

``reduce`` never reads the clock and never mutates its input unless told it owns it: the
same state and event always give the same result, which is what makes changelog replay
and tests exact.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.events import Event
from stream.core.money import currency_of
from stream.core.social import POST_TYPES, case_id_of, is_grievance, is_praise
from stream.core.stages import PURCHASE_EVENTS, Stage, next_stage

STAGE_HISTORY_LIMIT = 20
CONTACT_HISTORY_LIMIT = 50
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "push")
# The stored state is JSON (orjson): no infinity (it would be written as null) and no
# integer beyond 64 bits. The schemas bound neither prices nor quantities, so absurd but
# valid ones saturate at these instead of making the state unwritable.
MAX_AMOUNT = sys.float_info.max
MAX_QUANTITY = 2**63 - 1
# Inbound events that show the customer responding on an outbound channel.
RESPONSE_CHANNEL: dict[str, str] = {
    "email_opened": "email",
    "email_clicked": "email",
    "push_opened": "push",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the per-customer memory."""

    dedupe_window: int = 256
    recent_events: int = 50


@dataclass(slots=True)
class CustomerState:
    """Everything the engine knows about one customer (JSON-serialisable)."""

    customer_key: str
    created_at_ms: int = 0
    updated_at_ms: int = 0
    event_count: int = 0
    stage: str = Stage.AWARENESS.value
    stage_since_ms: int = 0
    stage_history: list[dict[str, Any]] = field(default_factory=list)
    identifiers: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    channels: dict[str, dict[str, int]] = field(default_factory=dict)
    cart: dict[str, Any] = field(
        default_factory=lambda: {"items": {}, "value": 0.0, "updated_at_ms": 0}
    )
    orders: dict[str, Any] = field(
        default_factory=lambda: {
            "count": 0,
            "revenue": 0.0,
            "returns": 0,
            "last_order_id": None,
            "last_order_at_ms": None,
            "last_category": None,
        }
    )
    consent: dict[str, bool] = field(default_factory=dict)
    opt_outs: dict[str, str] = field(default_factory=dict)
    app_installed: bool = False
    open_cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Social media posts by the customer (empty until the first): counts per type and per
    # sentiment, reviews' stars, and the latest post's sentiment (``_social_post``).
    social: dict[str, Any] = field(default_factory=dict)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    sent_counts: dict[str, int] = field(default_factory=dict)
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    responses: dict[str, int] = field(default_factory=dict)
    # Messages sent on a channel since the customer last showed interest there (fatigue).
    unanswered: dict[str, int] = field(default_factory=dict)
    recent_events: list[dict[str, Any]] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)
    # Pending timers by name: {"id", "due_ms", "armed_at_ms", "armed_by", "event_id"}.
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per timer, event time of the latest cancel (a late start older than it arms nothing).
    timer_cancelled_at: dict[str, int] = field(default_factory=dict)
    # Actions held by quiet hours: {"due_ms": send_after, "action": action message}.
    held: list[dict[str, Any]] = field(default_factory=list)
    # Identity: tokens linked to this profile (oldest first), links refused as conflicts.
    linked: list[str] = field(default_factory=list)
    identity_conflicts: list[dict[str, Any]] = field(default_factory=list)
    # Journeys (stream/core/journeys/runs.py): the active run of each journey, by id;
    # per journey, what ended the last run and when (re-entry); the entry conditions
    # that held at the last event (a condition entry fires when one becomes true).
    journeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    journey_ends: dict[str, dict[str, Any]] = field(default_factory=dict)
    journey_conditions: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        """The stored form (orjson serialises the dataclass natively)."""
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        """A deep, JSON-ready copy (via orjson: ten times faster than dataclasses.asdict)."""
        data: dict[str, Any] = orjson.loads(self.to_json())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Rebuild from ``to_dict`` output (unknown keys from newer versions are ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def copy(self) -> CustomerState:
        """An independent copy (nested containers included)."""
        return CustomerState.from_dict(self.to_dict())

    def next_due_ms(self) -> int | None:
        """The earliest deadline of a pending timer or held action, or None."""
        dues = [int(t["due_ms"]) for t in self.timers.values()]
        dues.extend(int(h["due_ms"]) for h in self.held)
        dues.extend(int(run["due_ms"]) for run in self.journeys.values())
        return min(dues, default=None)

    def has_consent(self, channel: str) -> bool:
        """True if the customer may receive marketing on this channel.

        Email, sms and push need an explicit grant; on-site, store and call-center
        contact only needs the absence of an opt-out.
        """
        if channel not in CONSENT_CHANNELS:
            return channel not in self.opt_outs
        return channel not in self.opt_outs and self.consent.get(channel, False)

    def may_contact(self, channel: str, category: str) -> bool:
        """Consent for marketing; for service and transactional only a working address.

        An unsubscribe stops marketing email for good; a hard bounce stops all email.
        """
        if category == "marketing":
            return self.has_consent(channel)
        return self.opt_outs.get(channel) != "hard_bounce"

    def counted_contacts(self) -> list[dict[str, Any]]:
        """The contacts caps and cooldowns count: every one but those withdrawn unsent."""
        return [c for c in self.contacts if not c.get("withdrawn")]

    def last_sent_ms(self, channel: str) -> int | None:
        """When the latest message actually sent on ``channel`` went out, or None."""
        return max(
            (
                c["send_at_ms"]
                for c in self.contacts
                if c["channel"] == channel
                and c.get("group") != "control"
                and not c.get("withdrawn")
            ),
            default=None,
        )

    def is_reachable(self, channel: str) -> bool:
        """True if a sender can address the customer there (an anonymous visitor has no inbox).

        A ``customer_id`` counts as an address for email and sms: the senders look the
        contact details up in the CRM by it.
        """
        if channel == "email":
            return "customer_id" in self.identifiers or "email_sha256" in self.identifiers
        if channel == "sms":
            return "customer_id" in self.identifiers or "phone_sha256" in self.identifiers
        if channel == "push":
            return self.app_installed
        return True


@dataclass(frozen=True, slots=True)
class StageChange:
    """A stage transition caused by one event."""

    from_stage: str
    to_stage: str


@dataclass(frozen=True, slots=True)
class Reduction:
    """Result of applying one event: the new state and what changed."""

    state: CustomerState
    duplicate: bool = False
    stage_change: StageChange | None = None
    first_order: bool = False


def new_state(customer_key: str) -> CustomerState:
    """The state of a customer never seen before."""
    return CustomerState(customer_key=customer_key)


def reduce(state: CustomerState, event: Event, limits: Limits, *, owned: bool = False) -> Reduction:
    """Apply one event; a duplicate event id changes nothing.

    ``owned``: the caller hands ``state`` over, and it is updated in place instead of
    copied (a copy is a third of a step's time). The result is the same either way.
    """
    if event.event_id in state.seen_event_ids:
        return Reduction(state=state, duplicate=True)
    orders_before = state.orders["count"]  # before ``new``, which may be ``state``
    new = state if owned else state.copy()
    _remember(new, event, limits)
    _apply_context(new, event)
    cases_before = len(new.open_cases)
    _APPLY.get(event.type, _ignore)(new, event)
    to_stage = next_stage(
        Stage(new.stage),
        event.type,
        new.orders["count"],
        len(new.open_cases),
        praise=event.channel == "social" and is_praise(event.type, event.properties),
        case_opened=len(new.open_cases) > cases_before,
    )
    stage_change = None
    if to_stage.value != new.stage:
        stage_change = StageChange(new.stage, to_stage.value)
        new.stage_history.append(
            {
                "from": new.stage,
                "to": to_stage.value,
                "at_ms": event.occurred_at_ms,
                "event_id": event.event_id,
            }
        )
        del new.stage_history[:-STAGE_HISTORY_LIMIT]
        new.stage = to_stage.value
        new.stage_since_ms = event.occurred_at_ms
    first_order = event.type in PURCHASE_EVENTS and orders_before == 0
    return Reduction(state=new, stage_change=stage_change, first_order=first_order)


def record_contacts(state: CustomerState, contacts: list[dict[str, Any]]) -> CustomerState:
    """State with the given sent actions appended to the bounded contact history."""
    if not contacts:
        return state
    new = state.copy()
    append_contacts(new, contacts)
    return new


def bounded_contacts(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest ``CONTACT_HISTORY_LIMIT`` contacts of each category, oldest first.

    Per category, so that uncapped service contacts (a run of complaint callbacks) never
    push the marketing contacts that caps and cooldowns count out of sight.
    """
    if len(contacts) <= CONTACT_HISTORY_LIMIT:
        return contacts
    kept: dict[str, int] = {}
    newest_first = []
    for contact in reversed(contacts):
        category = contact.get("category", "")
        if kept.get(category, 0) < CONTACT_HISTORY_LIMIT:
            kept[category] = kept.get(category, 0) + 1
            newest_first.append(contact)
    newest_first.reverse()
    return newest_first


def append_contacts(state: CustomerState, contacts: list[dict[str, Any]]) -> None:
    """``record_contacts`` in place, on a state the caller owns (saves a copy per step).

    A held-out contact (``group: control``) counts for caps, cooldowns and per-action
    limits, so the control group's decisions follow the treated path, but not as a
    message on its channel.
    """
    state.contacts.extend(contacts)
    state.contacts = bounded_contacts(state.contacts)
    for contact in contacts:
        state.sent_counts[contact["action"]] = state.sent_counts.get(contact["action"], 0) + 1
        if contact.get("group") == "control":
            continue
        channel = contact["channel"]
        state.sent_by_channel[channel] = state.sent_by_channel.get(channel, 0) + 1
        state.unanswered[channel] = state.unanswered.get(channel, 0) + 1


def withdraw_contact(state: CustomerState, action_id: str) -> None:
    """Mark a held contact withdrawn, never sent: it frees its caps (the caller owns
    ``state``) but stays in the history, so its exposure can still convert, as the
    control group's decisions do (uplift counts both groups by the same rule)."""
    for contact in state.contacts:
        if contact["action_id"] == action_id and not contact.get("withdrawn"):
            contact["withdrawn"] = True
            action, channel = contact["action"], contact["channel"]
            state.sent_counts[action] = max(0, state.sent_counts.get(action, 0) - 1)
            state.sent_by_channel[channel] = max(0, state.sent_by_channel.get(channel, 0) - 1)
            state.unanswered[channel] = max(0, state.unanswered.get(channel, 0) - 1)
            return


def _remember(state: CustomerState, event: Event, limits: Limits) -> None:
    if state.event_count == 0:
        state.created_at_ms = event.occurred_at_ms
        state.stage_since_ms = event.occurred_at_ms
    state.event_count += 1
    state.updated_at_ms = max(state.updated_at_ms, event.occurred_at_ms)
    state.seen_event_ids.append(event.event_id)
    del state.seen_event_ids[: -limits.dedupe_window]
    state.recent_events.append(
        {
            "event_id": event.event_id,
            "type": event.type,
            "channel": event.channel,
            "at_ms": event.occurred_at_ms,
        }
    )
    del state.recent_events[: -limits.recent_events]
    state.identifiers.update(event.identifiers)
    responded_on = RESPONSE_CHANNEL.get(event.type)
    if responded_on is not None:
        state.responses[responded_on] = state.responses.get(responded_on, 0) + 1
        state.unanswered[responded_on] = 0
    seen = state.channels.setdefault(event.channel, {"events": 0, "last_seen_ms": 0})
    seen["events"] += 1
    seen["last_seen_ms"] = max(seen["last_seen_ms"], event.occurred_at_ms)


def _apply_context(state: CustomerState, event: Event) -> None:
    timezone = event.context.get("timezone")
    if isinstance(timezone, str):
        state.timezone = timezone
    consent = event.context.get("consent")
    if isinstance(consent, dict):
        for channel in CONSENT_CHANNELS:
            granted = consent.get(channel)
            if isinstance(granted, bool):
                state.consent[channel] = granted


def _ignore(state: CustomerState, event: Event) -> None:
    return None


def amount(value: float) -> float:
    """A sum of money, saturated at the largest finite float (never inf)."""
    return value if math.isfinite(value) else MAX_AMOUNT


def _cart_value(items: dict[str, dict[str, Any]]) -> float:
    return amount(round(sum(float(item["quantity"] * item["price"]) for item in items.values()), 2))


def _add_to_cart(state: CustomerState, event: Event) -> None:
    props = event.properties
    items = state.cart["items"]
    item = items.setdefault(props["product_id"], {"quantity": 0, "price": 0.0, "category": None})
    item["quantity"] = min(item["quantity"] + int(props.get("quantity", 1)), MAX_QUANTITY)
    item["price"] = float(props["price"])
    item["category"] = props.get("category", item["category"])
    state.cart["value"] = _cart_value(items)
    state.cart["updated_at_ms"] = event.occurred_at_ms


def _remove_from_cart(state: CustomerState, event: Event) -> None:
    props = event.properties
    items = state.cart["items"]
    item = items.get(props["product_id"])
    if item is None:
        return
    item["quantity"] -= int(props.get("quantity", item["quantity"]))
    if item["quantity"] <= 0:
        del items[props["product_id"]]
    state.cart["value"] = _cart_value(items)
    state.cart["updated_at_ms"] = event.occurred_at_ms


def order_category(properties: dict[str, Any]) -> str | None:
    """The category of an order: its own, else its first item's."""
    category = properties.get("category")
    if category:
        return str(category)
    for item in properties.get("items") or []:
        if isinstance(item, dict) and item.get("category"):
            return str(item["category"])
    return None


def _purchase(state: CustomerState, event: Event) -> None:
    props = event.properties
    orders = state.orders
    orders["count"] += 1
    orders["revenue"] = amount(round(orders["revenue"] + float(props["value"]), 2))
    orders["last_order_id"] = props["order_id"]
    orders["last_order_at_ms"] = event.occurred_at_ms
    orders["last_category"] = order_category(props) or orders["last_category"]
    if "currency" in props:  # the customer's currency: their latest order's (money.py)
        orders["currency"] = currency_of(props)
    if event.type == "order_completed":
        state.cart = {"items": {}, "value": 0.0, "updated_at_ms": event.occurred_at_ms}


def _product_return(state: CustomerState, event: Event) -> None:
    orders = state.orders
    orders["returns"] += 1
    value = float(event.properties.get("value", 0.0))
    orders["revenue"] = round(max(0.0, orders["revenue"] - value), 2)


def _app_used(state: CustomerState, event: Event) -> None:
    state.app_installed = True


def _unsubscribed(state: CustomerState, event: Event) -> None:
    # A hard bounce stays: it stops all email, an unsubscribe only marketing.
    state.opt_outs.setdefault("email", "unsubscribed")
    state.consent["email"] = False


def _bounced(state: CustomerState, event: Event) -> None:
    if event.properties.get("bounce_type") == "hard":
        state.opt_outs["email"] = "hard_bounce"
        state.consent["email"] = False


def _complaint_opened(state: CustomerState, event: Event) -> None:
    props = event.properties
    state.open_cases[props["case_id"]] = {
        "reason": props["reason"],
        "severity": props.get("severity", "medium"),
        "opened_at_ms": event.occurred_at_ms,
    }


def _complaint_resolved(state: CustomerState, event: Event) -> None:
    state.open_cases.pop(event.properties["case_id"], None)


def new_social() -> dict[str, Any]:
    """The ``social`` record of a customer's first post."""
    return {
        "posts": {},
        "sentiment": {},
        "reviews": {"count": 0, "stars": 0},
        "last": None,
    }


def _social_post(state: CustomerState, event: Event) -> None:
    """Count the post, keep the latest one's sentiment, and open a case for a grievance.

    A grievance (``social.is_grievance``: a negative post, a review rated 1 or 2) by a
    known customer opens a service case like ``complaint_opened`` does: marketing pauses
    until a ``complaint_resolved`` names the case (on call_center or social). An
    anonymous author's grievance opens none: there is no marketing to pause, and the
    community team answers it all the same.
    """
    props = event.properties
    social = state.social or new_social()
    state.social = social
    social["posts"][event.type] = social["posts"].get(event.type, 0) + 1
    label = str(props.get("sentiment", "unknown"))
    social["sentiment"][label] = social["sentiment"].get(label, 0) + 1
    rating = props.get("rating")
    if event.type == "review" and isinstance(rating, int):
        social["reviews"]["count"] += 1
        social["reviews"]["stars"] += rating
    last = social["last"]
    if last is None or event.occurred_at_ms >= last["at_ms"]:
        social["last"] = {
            "type": event.type,
            "platform": str(props.get("platform", "")),
            "sentiment": label,
            "score": props.get("sentiment_score"),
            "source": str(props.get("sentiment_source", "none")),
            "at_ms": event.occurred_at_ms,
        }
    if is_grievance(event.type, props) and "customer_id" in state.identifiers:
        what = f"review rated {rating}" if event.type == "review" else f"negative {event.type}"
        state.open_cases.setdefault(  # a conversation already open stays one case
            case_id_of(event.type, props, event.event_id),
            {
                "reason": f"{what} on {props.get('platform', 'social')}",
                "severity": "high" if rating == 1 else "medium",
                "opened_at_ms": event.occurred_at_ms,
            },
        )


_APPLY = {
    "add_to_cart": _add_to_cart,
    "remove_from_cart": _remove_from_cart,
    "order_completed": _purchase,
    "store_purchase": _purchase,
    "product_return": _product_return,
    "app_installed": _app_used,
    "app_opened": _app_used,
    "qr_scanned": _app_used,
    "push_opened": _app_used,
    "unsubscribed": _unsubscribed,
    "bounced": _bounced,
    "complaint_opened": _complaint_opened,
    "complaint_resolved": _complaint_resolved,
    **dict.fromkeys(POST_TYPES, _social_post),
}
