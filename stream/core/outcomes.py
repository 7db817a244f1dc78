"""Outcomes reported by the channel senders, and what each one does to the customer state.

An outcome names the ``action_id`` it answers. It is matched against the customer's
contact history (the last ``CONTACT_HISTORY_LIMIT`` actions of each category): an unknown
action id (never sent, or too old) and a repeat of an outcome already recorded for that
action change nothing and are counted by the shell. Otherwise:

- ``opened``, ``clicked``, ``converted``: the customer is listening on that channel; the
  unanswered streak (fatigue) resets;
- the policy's reward outcomes (clicked, converted by default): the first one per action
  counts a response on the channel (affinity) and a success for the learned model;
- ``bounced`` (hard unless ``detail.bounce_type`` is ``soft``): the channel is closed for
  every category, as an ESP hard bounce is; ``unsubscribed``: marketing on the channel
  stops; both withdraw consent;
- ``delivered``, ``dismissed``, ``failed``: recorded on the contact only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stream.core.decide.learning import ENGAGED_OUTCOMES
from stream.core.decide.policy import Policy
from stream.core.events import DlqReason, Rejection, parse_json
from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.schemas import SchemaCatalog
from stream.core.state import CustomerState
from stream.core.timestamps import parse_timestamp_ms


class OutcomeStatus(StrEnum):
    """What became of an outcome (metrics label)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN_ACTION = "unknown_action"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A validated outcome."""

    outcome_id: str
    action_id: str
    customer_id: str
    channel: str
    outcome: str
    occurred_at_ms: int
    detail: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        """JSON form on the internal customer-keyed topic."""
        return {
            "outcome_id": self.outcome_id,
            "action_id": self.action_id,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "outcome": self.outcome,
            "occurred_at_ms": self.occurred_at_ms,
            "detail": self.detail,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Outcome:
        """Inverse of ``to_record``."""
        return cls(**record)


def decode_outcome(
    raw: bytes | None, catalog: SchemaCatalog, max_bytes: int
) -> Outcome | Rejection:
    """Parse and validate an outcome message, or say precisely why it is rejected."""
    if raw is None:
        return Rejection(DlqReason.NOT_AN_OBJECT, "empty message")
    if len(raw) > max_bytes:
        return Rejection(DlqReason.TOO_LARGE, f"{len(raw)} bytes, max {max_bytes}")
    data = parse_json(raw)
    if isinstance(data, Rejection):
        return data
    if not isinstance(data, dict):
        return Rejection(DlqReason.NOT_AN_OBJECT, f"got {type(data).__name__}")
    error = catalog.message_error("outcome", data)
    if error is not None:
        return Rejection(DlqReason.SCHEMA_VIOLATION, error)
    try:
        occurred_at_ms = parse_timestamp_ms(data["occurred_at"])
    except ValueError as exc:
        return Rejection(DlqReason.INVALID_TIMESTAMP, str(exc))
    return Outcome(
        outcome_id=data["outcome_id"],
        action_id=data["action_id"],
        customer_id=data["customer_id"],
        channel=data["channel"],
        outcome=data["outcome"],
        occurred_at_ms=occurred_at_ms,
        detail=data.get("detail", {}),
    )


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    """The state after an outcome, what happened to it and what the model learns."""

    state: CustomerState
    status: OutcomeStatus
    learning: tuple[LearningUpdate, ...] = ()


def apply_outcome(state: CustomerState, outcome: Outcome, policy: Policy) -> OutcomeResult:
    """Record an outcome on its contact and update affinity, fatigue and consent."""
    index = _contact_index(state, outcome.action_id)
    if index is None:
        return OutcomeResult(state, OutcomeStatus.UNKNOWN_ACTION)
    if outcome.outcome in state.contacts[index].get("outcomes", ()):
        return OutcomeResult(state, OutcomeStatus.DUPLICATE)
    new = state.copy()
    contact = new.contacts[index]
    channel = contact["channel"]
    rewarded_before = any(o in policy.learning.rewards for o in contact.get("outcomes", ()))
    contact.setdefault("outcomes", []).append(outcome.outcome)
    learning: list[LearningUpdate] = []
    if outcome.outcome in ENGAGED_OUTCOMES:
        new.unanswered[channel] = 0
    if outcome.outcome in policy.learning.rewards and not rewarded_before:
        new.responses[channel] = new.responses.get(channel, 0) + 1
        learning.append(
            LearningUpdate(contact["action"], UpdateKind.SUCCESS, contact.get("stage", ""), channel)
        )
    if outcome.outcome == "bounced" and outcome.detail.get("bounce_type") != "soft":
        new.opt_outs[channel] = "hard_bounce"
        new.consent[channel] = False
    elif outcome.outcome == "unsubscribed":
        new.opt_outs.setdefault(channel, "unsubscribed")
        new.consent[channel] = False
    return OutcomeResult(new, OutcomeStatus.APPLIED, tuple(learning))


def _contact_index(state: CustomerState, action_id: str) -> int | None:
    for index in range(len(state.contacts) - 1, -1, -1):
        contact = state.contacts[index]
        if (
            contact["action_id"] == action_id
            and contact.get("group") != "control"
            and not contact.get("withdrawn")
        ):
            return index
    return None
