"""A journey as the engine runs it: entry, re-entry, exits, goal and a graph of nodes.

Built and checked by ``journeys.load`` from the policy's ``journeys:`` section. Frozen
and shared by every run of the same version: a run is pinned to its ``version`` (the id
and a hash of the journey's own definition), so a policy reload that changes a journey
gives it a new version while the customers already in it finish the one they entered.

Which ``event`` a condition sees: a condition about an arriving event (entry, exit, goal,
``wait_for``) sees that event; everything a node evaluates (a branch, a ``wait: until``,
the conditions and payload of an action a node sends) sees the event that started the
run, so "the order that started onboarding" stays the same at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from stream.core.journeys.graph import NodeKind

if TYPE_CHECKING:
    from stream.core.decide.policy import Condition

OUTCOMES = ("delivered", "opened", "clicked", "converted")  # a wait_for can wait for these


class SendResult(StrEnum):
    """What became of a ``send`` or ``decide`` node's message (its edges' labels)."""

    SENT = "sent"  # sent now, or decided for a control-group customer (logged, not sent)
    HELD = "held"  # quiet hours: it goes out at their end
    SUPPRESSED = "suppressed"  # a filter, cap, consent or fatigue removed it


class Reentry(StrEnum):
    """When a customer whose run ended may enter the journey again."""

    NEVER = "never"
    AFTER_EXIT = "after_exit"
    COOLDOWN = "cooldown"  # after_exit, once ``cooldown_ms`` has passed since the exit


@dataclass(frozen=True, slots=True)
class EventMatch:
    """An event type and an optional condition on it (the arriving event)."""

    event: str
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class ExitRule:
    """Leave the journey at once: when an event arrives, or when a condition holds."""

    reason: str
    event: EventMatch | None = None
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class Goal:
    """The conversion the journey is for: counted, and optionally the end of the run."""

    match: EventMatch
    exits: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    """One case of a branch: the first whose condition holds decides the next node."""

    name: str
    when: Condition
    next: str


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of a split: a share of the customers (percent) and where they go."""

    name: str
    weight: int
    next: str


@dataclass(frozen=True, slots=True)
class Node:
    """One node; only the fields of its ``kind`` are set.

    - send / decide: ``actions`` (one for send), ``next`` and optionally a node per
      ``SendResult`` (``on_result``);
    - wait: ``wait_ms``, or ``until_local`` (minutes after local midnight), or ``until``
      (CEL giving epoch ms); then ``next``;
    - wait_for: ``event`` (and ``match``: properties equal to the entry event's) or
      ``outcome`` of the run's last message; ``timeout_ms``, ``next``, ``on_timeout``;
    - branch: ``cases`` in order, ``next`` is the else;
    - split: ``arms``;
    - exit: ``reason``.
    """

    name: str
    kind: NodeKind
    next: str = ""
    actions: tuple[str, ...] = ()
    on_result: tuple[tuple[SendResult, str], ...] = ()
    wait_ms: int | None = None
    until_local: int | None = None
    until: Condition | None = None
    event: EventMatch | None = None
    match: tuple[str, ...] = ()
    outcome: str | None = None
    timeout_ms: int = 0
    on_timeout: str = ""
    cases: tuple[Case, ...] = ()
    arms: tuple[Arm, ...] = ()
    reason: str = ""
    description: str = ""

    def after_send(self, result: SendResult) -> str:
        """The node a send or decide goes on to for this result."""
        return dict(self.on_result).get(result, self.next)

    def edges(self) -> tuple[tuple[str, str], ...]:
        """Every (label, target) leaving the node, as the page draws them."""
        if self.kind in (NodeKind.SEND, NodeKind.DECIDE):
            labelled = dict(self.on_result)
            return tuple((r.value, labelled.get(r, self.next)) for r in SendResult)
        if self.kind is NodeKind.WAIT:
            return (("next", self.next),)
        if self.kind is NodeKind.WAIT_FOR:
            return (("next", self.next), ("timeout", self.on_timeout))
        if self.kind is NodeKind.BRANCH:
            return (*((case.name, case.next) for case in self.cases), ("else", self.next))
        if self.kind is NodeKind.SPLIT:
            return tuple((arm.name, arm.next) for arm in self.arms)
        return ()


@dataclass(frozen=True, slots=True)
class Journey:
    """One version of a journey."""

    id: str
    version: str
    description: str
    entries: tuple[EventMatch, ...]  # none: ``entry_condition`` becoming true enters
    entry_condition: Condition | None
    reentry: Reentry
    cooldown_ms: int
    max_duration_ms: int
    exits: tuple[ExitRule, ...]
    goal: Goal | None
    start: str
    nodes: dict[str, Node]
    order: int = 0  # position in the policy: journeys are entered in this order
    entry_timer: bool = False  # the one entry's ``event`` names a timer of the policy
