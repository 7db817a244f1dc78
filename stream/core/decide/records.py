"""What a decision produces: actions for the senders and one explain record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from stream.core.decide.learning import Estimate
from stream.core.timestamps import format_ms


class Reason(StrEnum):
    """Why a candidate was chosen or removed: one code per filter (explain records, metrics)."""

    CHOSEN = "chosen"
    TRIGGER_CONDITION = "trigger_condition"
    NOT_ELIGIBLE = "not_eligible"
    NOT_APPLICABLE = "not_applicable"
    NOT_SUITABLE = "not_suitable"
    CONDITION_ERROR = "condition_error"
    OPEN_SERVICE_CASE = "open_service_case"
    COOLDOWN = "cooldown"
    ALREADY_SENT = "already_sent"
    UNREACHABLE = "unreachable"
    NO_CONSENT = "no_consent"
    CONTACT_CAP = "contact_cap"
    CHANNEL_TAKEN = "channel_taken"
    OUTRANKED = "outranked"
    EXPIRED = "expired"
    FATIGUED = "fatigued"  # too many unanswered messages on the channel: it rests
    EXPERIMENT_ARM = "experiment_arm"  # the customer is in another arm of an experiment
    HOLDOUT = "holdout"  # universal control group: decided and logged, not sent
    JOURNEY_EXITED = "journey_exited"  # held, and its journey run ended before release


@dataclass(frozen=True, slots=True)
class TriggerRef:
    """What a decision answered: an event, a fired timer (channel ``timer``) or a release."""

    event_id: str
    type: str
    channel: str

    def to_message(self) -> dict[str, str]:
        """JSON form used in actions and decision records."""
        return {"event_id": self.event_id, "type": self.type, "channel": self.channel}


@dataclass(frozen=True, slots=True)
class JourneyRef:
    """The journey step a decision or action belongs to: journey, pinned version, node, run."""

    journey: str
    version: str
    node: str
    run: str

    def to_message(self) -> dict[str, str]:
        """JSON form used in actions and decision records."""
        return {"id": self.journey, "version": self.version, "node": self.node, "run": self.run}


@dataclass(frozen=True, slots=True)
class Scores:
    """The arbitration terms of a candidate: priority = propensity x context x value x lever."""

    propensity: float
    context_weight: float
    value: float
    lever: float

    @property
    def priority(self) -> float:
        """The product the arbiter ranks by."""
        return self.propensity * self.context_weight * self.value * self.lever

    def to_message(self) -> dict[str, float]:
        """JSON form (every term and the priority)."""
        return {
            "propensity": self.propensity,
            "context_weight": self.context_weight,
            "value": self.value,
            "lever": self.lever,
            "priority": round(self.priority, 9),
        }


@dataclass(frozen=True, slots=True)
class Action:
    """A next-best-action for one channel's sender."""

    action_id: str
    idempotency_key: str
    customer_id: str
    action: str
    channel: str
    category: str
    trigger: TriggerRef
    policy_version: str
    decided_at_ms: int
    send_after_ms: int | None
    expires_at_ms: int
    reason: str
    stage: str
    content: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    group: str = "treatment"  # control: decided for the control group, never sent
    variant: str = ""  # "experiment=variant" when the action is under an experiment
    journey: JourneyRef | None = None  # the journey step that sent it, if any

    def to_message(self) -> dict[str, Any]:
        """The action message as schemas/action.schema.json describes it."""
        message: dict[str, Any] = {
            "action_id": self.action_id,
            "idempotency_key": self.idempotency_key,
            "customer_id": self.customer_id,
            "action": self.action,
            "channel": self.channel,
            "category": self.category,
            "trigger": self.trigger.to_message(),
            "policy_version": self.policy_version,
            "decided_at": format_ms(self.decided_at_ms),
            "send_after": None if self.send_after_ms is None else format_ms(self.send_after_ms),
            "expires_at": format_ms(self.expires_at_ms),
            "reason": self.reason,
            "stage": self.stage,
            "payload": self.payload,
        }
        if self.content is not None:
            message["content"] = self.content
        if self.variant:
            name, _, variant = self.variant.partition("=")
            message["experiment"] = {"name": name, "variant": variant}
        if self.journey is not None:
            message["journey"] = self.journey.to_message()
        return message

    def to_dict(self) -> dict[str, Any]:
        """Lossless JSON-ready form (times in epoch ms), as held actions are stored."""
        data: dict[str, Any] = orjson.loads(orjson.dumps(self))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        """Inverse of ``to_dict``."""
        journey = data.get("journey")
        return cls(
            **{
                **data,
                "trigger": TriggerRef(**data["trigger"]),
                "journey": JourneyRef(**journey) if journey else None,
            }
        )

    def to_contact(self) -> dict[str, Any]:
        """The entry this action leaves in the customer's contact history."""
        return {
            "action_id": self.action_id,
            "action": self.action,
            "channel": self.channel,
            "category": self.category,
            "at_ms": self.decided_at_ms,
            "send_at_ms": self.send_after_ms
            if self.send_after_ms is not None
            else self.decided_at_ms,
            "trigger_event_id": self.trigger.event_id,
            "reason": self.reason,
            "stage": self.stage,
            "group": self.group,
            **({"variant": self.variant} if self.variant else {}),
            **({"journey": self.journey.journey} if self.journey else {}),
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """One action considered for a trigger, and what became of it."""

    action: str
    category: str
    reason: Reason
    detail: str = ""
    channel: str | None = None
    scores: Scores | None = None
    channel_checks: tuple[tuple[str, str], ...] = ()
    estimates: tuple[tuple[str, Estimate], ...] = ()  # per channel, best first
    variant: str = ""  # "experiment=variant" when the action is under an experiment

    @property
    def chosen(self) -> bool:
        """True if the candidate was sent."""
        return self.reason is Reason.CHOSEN

    def to_message(self) -> dict[str, Any]:
        """JSON form inside the decision record."""
        message: dict[str, Any] = {
            "action": self.action,
            "category": self.category,
            "channel": self.channel,
            "outcome": "chosen" if self.chosen else "suppressed",
            "reason": self.reason.value,
        }
        if self.detail:
            message["detail"] = self.detail
        if self.scores is not None:
            message["scores"] = self.scores.to_message()
        if self.channel_checks:
            message["channels"] = dict(self.channel_checks)
        if self.estimates:
            message["propensities"] = {ch: est.to_message() for ch, est in self.estimates}
        if self.variant:
            name, _, variant = self.variant.partition("=")
            message["experiment"] = {"name": name, "variant": variant}
        return message


@dataclass(frozen=True, slots=True)
class Decision:
    """The explain record of one decision: every candidate and why it was (not) sent."""

    decision_id: str
    customer_id: str
    trigger: TriggerRef
    stage: str
    policy_version: str
    decided_at_ms: int
    candidates: tuple[Candidate, ...]
    actions: tuple[Action, ...]
    group: str = "treatment"  # the customer's holdout group
    held_out: tuple[Action, ...] = ()  # chosen for a control-group customer, never sent
    strategy: str = ""  # the learning strategy that scored the candidates
    journey: JourneyRef | None = None  # the journey step that asked, if any
    choice: str = ""  # the decided actions as ``action@channel`` pairs (held out too)
    probability: float = 1.0  # how likely the policy was to make this choice
    choices: tuple[tuple[str, float], ...] = ()  # the likeliest choices, when drawn

    def to_message(self) -> dict[str, Any]:
        """The decision record as schemas/decision.schema.json describes it."""
        return {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "trigger": self.trigger.to_message(),
            "stage": self.stage,
            "policy_version": self.policy_version,
            "decided_at": format_ms(self.decided_at_ms),
            "candidates": [candidate.to_message() for candidate in self.candidates],
            "chosen": [action.action_id for action in self.actions],
            "chosen_channel": self.actions[0].channel if self.actions else None,
            "group": self.group,
            **({"strategy": self.strategy} if self.strategy else {}),
            **({"journey": self.journey.to_message()} if self.journey else {}),
            "choice": self.choice,
            "probability": round(self.probability, 6),
            **({"choices": dict(self.choices)} if self.choices else {}),
        }


def stable_id(*parts: str) -> str:
    """A deterministic 32-hex id from its parts."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
