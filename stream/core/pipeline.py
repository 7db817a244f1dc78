"""One step of the engine for one customer: an event arrives, or the clock passes a deadline.

This is the whole business logic of the per-customer agent, as two pure functions:

- ``step``: reduce the event into the state, cancel/arm timers, decide, hold what quiet
  hours hold, record the contacts;
- ``fire``: release the held actions and fire the timers that are due, deciding for each
  fired timer exactly as for an event.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.decide import (
    Action,
    Decision,
    Policy,
    condition_context,
    decide_event,
    decide_timer,
)
from stream.core.events import Event
from stream.core.holds import hold, release_due
from stream.core.identity import tokens
from stream.core.resolve import bounded_links
from stream.core.state import CustomerState, Limits, StageChange, append_contacts, new_state, reduce
from stream.core.timers import FiredTimer, TimerUpdate, apply_event, pop_due


@dataclass(frozen=True, slots=True)
class StepResult:
    """The new state and everything the shell has to write for one event or firing."""

    state: CustomerState
    duplicate: bool = False
    stage_change: StageChange | None = None
    decisions: tuple[Decision, ...] = ()
    send: tuple[Action, ...] = ()  # actions to emit now
    held: tuple[Action, ...] = ()  # actions chosen but held until their send_after
    timer_updates: tuple[TimerUpdate, ...] = ()
    fired: tuple[FiredTimer, ...] = ()
    links: tuple[str, ...] = ()  # tokens newly seen on this profile: link them to it
    unlinks: tuple[str, ...] = ()  # tokens evicted from it (over the identifier limit)

    @property
    def decision(self) -> Decision | None:
        """The first decision (an event makes at most one)."""
        return self.decisions[0] if self.decisions else None


def step(
    state: CustomerState | None, event: Event, now_ms: int, limits: Limits, policy: Policy
) -> StepResult:
    """Reduce the event into the state, update timers, decide, record sent/held actions."""
    current = state if state is not None else new_state(event.customer_key)
    reduction = reduce(current, event, limits)
    if reduction.duplicate:
        return StepResult(current, duplicate=True)
    updated = reduction.state  # a fresh copy this step owns
    conditions = condition_context(updated, event, policy, now_ms)
    timer_updates = apply_event(
        updated, event, policy.timers, now_ms, lambda c: conditions().holds(c)
    )
    decision = decide_event(updated, event, policy, now_ms, conditions)
    decisions = (decision,) if decision is not None else ()
    send, held = _record(updated, decisions, now_ms)
    seen = [t for t in tokens(event.identifiers) if t != updated.customer_key]
    updated.linked, links, unlinks = bounded_links(
        updated.linked, seen, policy.identity.max_identifiers
    )
    return StepResult(
        updated,
        stage_change=reduction.stage_change,
        decisions=decisions,
        send=send,
        held=held,
        timer_updates=tuple(timer_updates),
        links=tuple(links),
        unlinks=tuple(unlinks),
    )


def fire(state: CustomerState, now_ms: int, policy: Policy) -> StepResult:
    """Release the held actions and fire the timers due at ``now_ms``.

    Nothing due (a duplicate or early tick, a cancelled timer): the state is returned
    unchanged and nothing is emitted.
    """
    due_ms = state.next_due_ms()
    if due_ms is None or due_ms > now_ms:
        return StepResult(state)
    updated = state.copy()
    released, records = release_due(updated, now_ms, policy.version)
    decisions: list[Decision] = list(records)
    send: list[Action] = list(released)
    held: list[Action] = []
    fired = pop_due(updated, now_ms)
    for timer in fired:
        decision = decide_timer(updated, timer.to_event(updated.customer_key), policy, now_ms)
        if decision is None:
            continue
        decisions.append(decision)
        # Record each decision's contacts before the next timer decides (caps see them).
        now_send, now_held = _record(updated, (decision,), now_ms)
        send.extend(now_send)
        held.extend(now_held)
    return StepResult(
        updated, decisions=tuple(decisions), send=tuple(send), held=tuple(held), fired=tuple(fired)
    )


def _record(
    state: CustomerState, decisions: tuple[Decision, ...], now_ms: int
) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """Record the chosen actions as contacts on ``state`` (the step's own copy) and split
    them into send-now and held."""
    actions = [action for decision in decisions for action in decision.actions]
    if not actions:
        return (), ()
    append_contacts(state, [action.to_contact() for action in actions])
    send: list[Action] = []
    held: list[Action] = []
    for action in actions:
        if action.send_after_ms is not None and action.send_after_ms > now_ms:
            hold(state, action)
            held.append(action)
        else:
            send.append(action)
    return tuple(send), tuple(held)
