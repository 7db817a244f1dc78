"""Next-best-action v0: a small built-in rule set behind the ``decide()`` seam.

The policy-driven engine (candidates, CEL filters, arbitration, contact policy) replaces
the rules in ``_candidates`` later; the contract of ``decide`` stays: the state after the
event, the event and a ``now`` in, actions and one explain record out. Pure and
deterministic: the same input gives the same action ids, so a redelivered decision
re-emits the same ``action_id`` and ``idempotency_key``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from stream.core.events import Event
from stream.core.state import CustomerState, Reduction

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MARKETING_CAP_PER_DAY = 3

# What goes well with what a customer just bought (cross-sell v0).
COMPLEMENTS: dict[str, str] = {
    "shoes": "accessories",
    "outerwear": "accessories",
    "accessories": "outerwear",
    "beauty": "beauty",
    "home": "home",
}


class Category(StrEnum):
    """Business category of an action; service and transactional ignore marketing rules."""

    MARKETING = "marketing"
    SERVICE = "service"
    TRANSACTIONAL = "transactional"


class SuppressionReason(StrEnum):
    """Why a candidate action was not sent (one code per filter)."""

    CHOSEN = "chosen"
    UNREACHABLE = "unreachable"
    NO_CONSENT = "no_consent"
    OPEN_SERVICE_CASE = "open_service_case"
    CONTACT_CAP = "contact_cap"
    ALREADY_SENT = "already_sent"


@dataclass(frozen=True, slots=True)
class Action:
    """A next-best-action for one channel's sender."""

    action_id: str
    idempotency_key: str
    customer_id: str
    action: str
    channel: str
    category: Category
    trigger: Event
    policy_version: str
    decided_at_ms: int
    expires_at_ms: int
    reason: str
    stage: str
    payload: dict[str, Any] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        """The action message as the schema describes it."""
        return {
            "action_id": self.action_id,
            "idempotency_key": self.idempotency_key,
            "customer_id": self.customer_id,
            "action": self.action,
            "channel": self.channel,
            "category": self.category.value,
            "trigger": {
                "event_id": self.trigger.event_id,
                "type": self.trigger.type,
                "channel": self.trigger.channel,
            },
            "policy_version": self.policy_version,
            "decided_at": format_ms(self.decided_at_ms),
            "send_after": None,
            "expires_at": format_ms(self.expires_at_ms),
            "reason": self.reason,
            "stage": self.stage,
            "payload": self.payload,
        }

    def to_contact(self) -> dict[str, Any]:
        """The entry this action leaves in the customer's contact history."""
        return {
            "action_id": self.action_id,
            "action": self.action,
            "channel": self.channel,
            "category": self.category.value,
            "at_ms": self.decided_at_ms,
            "trigger_event_id": self.trigger.event_id,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """One action considered for a trigger, and what became of it."""

    action: str
    category: Category
    channel: str | None
    reason: SuppressionReason
    detail: str = ""

    @property
    def chosen(self) -> bool:
        """True if the candidate was sent."""
        return self.reason is SuppressionReason.CHOSEN


@dataclass(frozen=True, slots=True)
class Decision:
    """The explain record of one decision: every candidate and why it was (not) sent."""

    decision_id: str
    customer_id: str
    trigger: Event
    stage: str
    policy_version: str
    decided_at_ms: int
    candidates: tuple[Candidate, ...]
    actions: tuple[Action, ...]

    def to_message(self) -> dict[str, Any]:
        """The decision record as the schema describes it."""
        return {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "trigger": {
                "event_id": self.trigger.event_id,
                "type": self.trigger.type,
                "channel": self.trigger.channel,
            },
            "stage": self.stage,
            "policy_version": self.policy_version,
            "decided_at": format_ms(self.decided_at_ms),
            "candidates": [
                {
                    "action": c.action,
                    "channel": c.channel,
                    "category": c.category.value,
                    "outcome": "chosen" if c.chosen else "suppressed",
                    "reason": c.reason.value,
                    **({"detail": c.detail} if c.detail else {}),
                }
                for c in self.candidates
            ],
            "chosen": [a.action_id for a in self.actions],
        }


@dataclass(frozen=True, slots=True)
class _Proposal:
    action: str
    category: Category
    channels: tuple[str, ...]
    reason: str
    ttl_ms: int
    payload: dict[str, Any]


def format_ms(epoch_ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stable_id(*parts: str) -> str:
    """A deterministic 32-hex id from its parts."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def decide(reduction: Reduction, event: Event, now_ms: int, policy_version: str) -> Decision | None:
    """The decision this event triggers for this customer, or None if nothing applies."""
    if reduction.duplicate:
        return None
    state = reduction.state
    proposals = _candidates(state, event, reduction)
    if not proposals:
        return None
    candidates: list[Candidate] = []
    actions: list[Action] = []
    marketing_sent = _marketing_contacts_since(state, now_ms - DAY_MS)
    for proposal in proposals:
        candidate, channel = _filter(state, proposal, event, marketing_sent)
        candidates.append(candidate)
        if channel is None:
            continue
        action_id = stable_id(state.customer_key, event.event_id, proposal.action)
        actions.append(
            Action(
                action_id=action_id,
                idempotency_key=stable_id("idempotency", action_id),
                customer_id=state.customer_key,
                action=proposal.action,
                channel=channel,
                category=proposal.category,
                trigger=event,
                policy_version=policy_version,
                decided_at_ms=now_ms,
                expires_at_ms=now_ms + proposal.ttl_ms,
                reason=proposal.reason,
                stage=state.stage,
                payload=proposal.payload,
            )
        )
        if proposal.category is Category.MARKETING:
            marketing_sent += 1
    return Decision(
        decision_id=stable_id(state.customer_key, event.event_id, "decision"),
        customer_id=state.customer_key,
        trigger=event,
        stage=state.stage,
        policy_version=policy_version,
        decided_at_ms=now_ms,
        candidates=tuple(candidates),
        actions=tuple(actions),
    )


def _candidates(state: CustomerState, event: Event, reduction: Reduction) -> list[_Proposal]:
    if event.type == "complaint_opened":
        props = event.properties
        return [
            _Proposal(
                action="service_recovery",
                category=Category.SERVICE,
                channels=("call_center",),
                reason=f"complaint opened ({props['reason']}, {props.get('severity', 'medium')})",
                ttl_ms=4 * HOUR_MS,
                payload={
                    "case_id": props["case_id"],
                    "complaint_reason": props["reason"],
                    "severity": props.get("severity", "medium"),
                },
            )
        ]
    if event.type not in ("order_completed", "store_purchase"):
        return []
    if reduction.first_order and not state.app_installed:
        placement = "receipt" if event.type == "store_purchase" else "parcel"
        return [
            _Proposal(
                action="app_download_invite",
                category=Category.MARKETING,
                channels=("email", "sms"),
                reason="first order and no app yet: invite to the app with a QR code",
                ttl_ms=7 * DAY_MS,
                payload={"qr_code": True, "placement": placement},
            )
        ]
    category = state.orders["last_category"]
    if category is None:
        return []
    return [
        _Proposal(
            action="cross_sell",
            category=Category.MARKETING,
            channels=("push", "email") if state.app_installed else ("email",),
            reason=f"bought {category}: recommend {COMPLEMENTS.get(category, category)}",
            ttl_ms=DAY_MS,
            payload={
                "bought_category": category,
                "recommended_category": COMPLEMENTS.get(category, category),
                "order_id": state.orders["last_order_id"],
            },
        )
    ]


def _filter(
    state: CustomerState, proposal: _Proposal, event: Event, marketing_sent: int
) -> tuple[Candidate, str | None]:
    def suppressed(reason: SuppressionReason, detail: str) -> tuple[Candidate, None]:
        return Candidate(proposal.action, proposal.category, None, reason, detail), None

    if proposal.category is Category.MARKETING:
        if state.open_cases:
            return suppressed(
                SuppressionReason.OPEN_SERVICE_CASE,
                f"open case(s): {', '.join(sorted(state.open_cases))}",
            )
        if marketing_sent >= MARKETING_CAP_PER_DAY:
            return suppressed(
                SuppressionReason.CONTACT_CAP,
                f"{marketing_sent} marketing messages in the last 24 h",
            )
        if proposal.action == "app_download_invite" and any(
            c["action"] == proposal.action for c in state.contacts
        ):
            return suppressed(SuppressionReason.ALREADY_SENT, "invite sent before")
        reachable = [c for c in proposal.channels if state.is_reachable(c)]
        if not reachable:
            return suppressed(
                SuppressionReason.UNREACHABLE, f"no address for {', '.join(proposal.channels)}"
            )
        channels = [c for c in reachable if state.has_consent(c)]
        if not channels:
            return suppressed(SuppressionReason.NO_CONSENT, f"no consent on {', '.join(reachable)}")
        channel = channels[0]
    else:
        channel = proposal.channels[0]
    return Candidate(proposal.action, proposal.category, channel, SuppressionReason.CHOSEN), channel


def _marketing_contacts_since(state: CustomerState, since_ms: int) -> int:
    return sum(
        1
        for contact in state.contacts
        if contact["category"] == Category.MARKETING.value and contact["at_ms"] >= since_ms
    )
