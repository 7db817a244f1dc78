"""One step of the engine: apply an event to a customer's state and decide what to do.

This is the whole business logic of the per-customer agent, as a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.decide import Decision, decide
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
    state: CustomerState | None, event: Event, now_ms: int, limits: Limits, policy_version: str
) -> StepResult:
    """Reduce the event into the state, decide, and record sent actions as contacts."""
    current = state if state is not None else new_state(event.customer_key)
    reduction = reduce(current, event, limits)
    decision = decide(reduction, event, now_ms, policy_version)
    updated = reduction.state
    if decision is not None and decision.actions:
        updated = record_contacts(updated, [action.to_contact() for action in decision.actions])
    return StepResult(
        state=updated,
        duplicate=reduction.duplicate,
        stage_change=reduction.stage_change,
        decision=decision,
    )
