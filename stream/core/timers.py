"""Durable per-customer timers: armed, re-armed and cancelled by events, fired when due.

Pure: the caller passes the clock (``now_ms``) and a way to evaluate the policy's CEL.
Timers live in the customer state, so they are in the changelog with the rest of it.

Time semantics (docs/timers.md):
- **Event time anchors deadlines**: ``due = start event's occurred_at + delay``. A late
  start event does not stretch the wait.
- **Processing time fires them**: a timer fires when the worker's clock passes ``due``.
- **Out of order**: a cancel event cancels a pending timer only if it occurred at or after
  the timer's start; its time is remembered, so a start event older than the latest
  cancel (arriving late) arms nothing.
- **Re-arming**: with ``restart`` (default) a start event newer than the pending timer's
  start re-arms it (new id, new deadline); an older one changes nothing. Without it the
  first deadline stands.
- **Stale input**: a start event whose deadline is more than ``grace`` in the past arms
  nothing, so replaying old history fires no stale reminders.
- A fired timer is removed from the state in the same write that records its decision;
  a redelivered firing finds nothing due and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from stream.core.decide.conditions import ConditionError
from stream.core.decide.policy import Condition, TimerSpec, TimerTrigger
from stream.core.decide.records import stable_id
from stream.core.events import Event
from stream.core.state import CustomerState

TIMER_CHANNEL = "timer"


class TimerChange(StrEnum):
    """What an event did to a timer (metrics label)."""

    ARMED = "armed"
    REARMED = "rearmed"
    CANCELLED = "cancelled"
    STALE = "stale"
    CONDITION_ERROR = "condition_error"


@dataclass(frozen=True, slots=True)
class TimerUpdate:
    """One change an event made to one timer."""

    timer: str
    change: TimerChange


@dataclass(frozen=True, slots=True)
class FiredTimer:
    """A timer that came due, as taken out of the state."""

    name: str
    id: str
    due_ms: int
    armed_at_ms: int
    armed_by: str

    def to_event(self, customer_key: str) -> Event:
        """The synthetic trigger a fired timer feeds to the decision engine.

        ``event.type`` is the timer name, ``event.channel`` is ``timer`` and
        ``event.properties`` tells what armed it and when.
        """
        return Event(
            event_id=self.id,
            type=self.name,
            channel=TIMER_CHANNEL,
            occurred_at_ms=self.due_ms,
            customer_key=customer_key,
            identifiers={},
            properties={
                "timer": self.name,
                "armed_by": self.armed_by,
                "armed_at_ms": self.armed_at_ms,
                "due_ms": self.due_ms,
            },
            context={},
        )


Holds = Callable[[Condition], bool]


def timer_id(customer_key: str, name: str, event_id: str) -> str:
    """The id of the timer an event armed: deterministic, so redelivery re-arms the same one."""
    return stable_id(customer_key, "timer", name, event_id)


def apply_event(
    state: CustomerState,
    event: Event,
    timers: Sequence[TimerSpec],
    now_ms: int,
    holds: Holds,
) -> list[TimerUpdate]:
    """Cancel, then arm or re-arm, the state's timers for one event.

    Mutates ``state`` (the caller's fresh copy). ``holds`` evaluates a ``when`` condition
    on the state after the event; a condition that fails to evaluate counts as false.
    """
    updates: list[TimerUpdate] = []
    at = event.occurred_at_ms
    for spec in timers:
        cancels = _matches(spec.cancel, event.type, holds)
        starts = _matches(spec.start, event.type, holds)
        if cancels is None or starts is None:
            updates.append(TimerUpdate(spec.name, TimerChange.CONDITION_ERROR))
            continue
        pending = state.timers.get(spec.name)
        cancelled_at = state.timer_cancelled_at.get(spec.name)
        if cancels:
            state.timer_cancelled_at[spec.name] = max(at, cancelled_at or at)
            if pending is not None and at >= pending["armed_at_ms"]:
                del state.timers[spec.name]
                pending = None
                updates.append(TimerUpdate(spec.name, TimerChange.CANCELLED))
        if not starts or (cancelled_at is not None and at <= cancelled_at):
            continue
        if pending is not None and (not spec.restart or at <= pending["armed_at_ms"]):
            continue
        due_ms = at + spec.delay_ms
        if due_ms < now_ms - spec.grace_ms:
            updates.append(TimerUpdate(spec.name, TimerChange.STALE))
            continue
        state.timers[spec.name] = {
            "id": timer_id(state.customer_key, spec.name, event.event_id),
            "due_ms": due_ms,
            "armed_at_ms": at,
            "armed_by": event.type,
            "event_id": event.event_id,
        }
        change = TimerChange.ARMED if pending is None else TimerChange.REARMED
        updates.append(TimerUpdate(spec.name, change))
    return updates


def pop_due(state: CustomerState, now_ms: int) -> list[FiredTimer]:
    """Take every timer due at ``now_ms`` out of ``state`` (the caller's copy), earliest first."""
    due = sorted((t["due_ms"], name) for name, t in state.timers.items() if t["due_ms"] <= now_ms)
    fired = []
    for _, name in due:
        timer = state.timers.pop(name)
        fired.append(
            FiredTimer(name, timer["id"], timer["due_ms"], timer["armed_at_ms"], timer["armed_by"])
        )
    return fired


def _matches(triggers: Sequence[TimerTrigger], event_type: str, holds: Holds) -> bool | None:
    """True if one trigger matches the event (None if a condition failed to evaluate)."""
    for trigger in triggers:
        if not trigger.matches(event_type):
            continue
        if trigger.when is None:
            return True
        try:
            if holds(trigger.when):
                return True
        except ConditionError:
            return None
    return False
