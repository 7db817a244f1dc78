"""One step of the engine: apply an event to a customer's state and decide what to do.

This is the whole business logic of the per-customer agent, as a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.decide import Decision, Policy, decide_event
from stream.core.events import Event
from stream.core.state import CustomerState, Limits, StageChange, new_state, record_contacts, reduce


@dataclass(frozen=True, slots=True)
class StepResult:
    """The new state and everything the shell has to write for one event."""

    state: CustomerState
    duplicate: bool
    stage_change: StageChange | None
    decision: Decision | None


def step(
    state: CustomerState | None, event: Event, now_ms: int, limits: Limits, policy: Policy
) -> StepResult:
    """Reduce the event into the state, decide on the new state, record sent actions."""
    current = state if state is not None else new_state(event.customer_key)
    reduction = reduce(current, event, limits)
    if reduction.duplicate:
        return StepResult(current, True, None, None)
    decision = decide_event(reduction.state, event, policy, now_ms)
    updated = reduction.state
    if decision is not None and decision.actions:
        updated = record_contacts(updated, [action.to_contact() for action in decision.actions])
    return StepResult(updated, False, reduction.stage_change, decision)
