"""One step of the engine for one customer: an event arrives, or the clock passes a deadline.

This is the whole business logic of the per-customer agent, as two pure functions:

- ``step``: reduce the event into the state, cancel/arm timers, decide, hold what quiet
  hours hold, record the contacts;
- ``fire``: release the held actions and fire the timers that are due, deciding for each
  fired timer exactly as for an event;
- ``observe``: record a sender's outcome (affinity, fatigue, consent, learning).

Each returns what the learned model should count (``StepResult.learning``): a trial per
action sent, a success per rewarded outcome, an exposure per decided marketing action
(treated or held out) and a conversion when an exposed customer buys within the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stream.core.decide import (
    Action,
    Decision,
    Policy,
    condition_context,
    decide_event,
    decide_timer,
)
from stream.core.decide.conditions import Evaluator
from stream.core.decide.engine import decide_actions
from stream.core.decide.holdout import HoldoutPolicy
from stream.core.decide.records import JourneyRef, TriggerRef
from stream.core.events import Event
from stream.core.holds import hold, release_due
from stream.core.identity import tokens
from stream.core.journeys.runs import JourneyCount, on_clock, on_event, on_outcome
from stream.core.money import currency_of, value_of
from stream.core.outcomes import Outcome, OutcomeStatus, apply_outcome
from stream.core.propensity import EMPTY_MODEL, LearningUpdate, PropensityModel, UpdateKind
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
    to_send: tuple[Action, ...] = ()  # actions to send now
    held: tuple[Action, ...] = ()  # actions chosen but held until their send_after
    timer_updates: tuple[TimerUpdate, ...] = ()
    fired: tuple[FiredTimer, ...] = ()
    links: tuple[str, ...] = ()  # tokens newly seen on this profile: link them to it
    unlinks: tuple[str, ...] = ()  # tokens evicted from it (over the identifier limit)
    learning: tuple[LearningUpdate, ...] = ()  # counts for the learned model, by action
    outcome: OutcomeStatus | None = None  # what became of an outcome (``observe``)
    journeys: tuple[JourneyCount, ...] = ()  # what the journey runs did

    @property
    def decision(self) -> Decision | None:
        """The always-on decision (an event makes at most one), not a journey step's."""
        return next((d for d in self.decisions if d.journey is None), None)


def step(
    state: CustomerState | None,
    event: Event,
    now_ms: int,
    limits: Limits,
    policy: Policy,
    model: PropensityModel = EMPTY_MODEL,
    *,
    owned: bool = False,
) -> StepResult:
    """Reduce the event into the state, update timers, decide, record sent/held actions.

    ``owned``: the caller hands ``state`` over: it is updated in place, not copied (see
    ``reduce``). If the step raises, it may be left half-updated: reload it.
    """
    if state is None:
        state, owned = new_state(event.customer_key), True
    reduction = reduce(state, event, limits, owned=owned)
    if reduction.duplicate:
        return StepResult(state, duplicate=True)
    updated = reduction.state  # the state this step owns
    conditions = condition_context(updated, event, policy, now_ms)
    timer_updates = apply_event(
        updated, event, policy.timers, now_ms, lambda c: conditions().holds(c)
    )
    conversions = _attribute_conversion(updated, event, policy.holdout)
    journeys = _JourneyDecider(updated, policy, now_ms, model)
    moved = on_event(updated, event, policy, now_ms, journeys, journeys.conditions)
    if moved:  # the always-on actions see the journeys' state and contacts
        conditions = condition_context(updated, event, policy, now_ms)
    decision = decide_event(updated, event, policy, now_ms, conditions, model)
    decisions = (*moved.decisions, *((decision,) if decision is not None else ()))
    send, held = _record(updated, decisions[len(moved.decisions) :], now_ms)
    seen = [t for t in tokens(event.identifiers) if t != updated.customer_key]
    updated.linked, links, unlinks = bounded_links(
        updated.linked, seen, policy.identity.max_identifiers
    )
    send = (*journeys.send, *send)
    return StepResult(
        updated,
        stage_change=reduction.stage_change,
        decisions=decisions,
        to_send=send,
        held=(*journeys.held, *held),
        timer_updates=tuple(timer_updates),
        links=tuple(links),
        unlinks=tuple(unlinks),
        learning=(*conversions, *_learned(decisions, send, policy.holdout)),
        journeys=tuple(moved.counts),
    )


def observe(
    state: CustomerState,
    outcome: Outcome,
    policy: Policy,
    now_ms: int | None = None,
    model: PropensityModel = EMPTY_MODEL,
) -> StepResult:
    """Record a sender's outcome on the customer's contact (affinity, fatigue, consent);
    a journey run waiting for it moves on (given the clock, ``now_ms``)."""
    result = apply_outcome(state, outcome, policy)
    waiting = any(run.get("last_action") == outcome.action_id for run in state.journeys.values())
    if now_ms is None or result.status is not OutcomeStatus.APPLIED or not waiting:
        return StepResult(result.state, outcome=result.status, learning=result.learning)
    updated = result.state if result.state is not state else state.copy()
    journeys = _JourneyDecider(updated, policy, now_ms, model)
    moved = on_outcome(
        updated, outcome.action_id, outcome.outcome, policy, now_ms, journeys, journeys.conditions
    )
    return StepResult(
        updated,
        outcome=result.status,
        decisions=tuple(moved.decisions),
        to_send=tuple(journeys.send),
        held=tuple(journeys.held),
        learning=(*result.learning, *_learned(moved.decisions, journeys.send, policy.holdout)),
        journeys=tuple(moved.counts),
    )


def fire(
    state: CustomerState, now_ms: int, policy: Policy, model: PropensityModel = EMPTY_MODEL
) -> StepResult:
    """Release the held actions and fire the timers due at ``now_ms``.

    Nothing due (a duplicate or early tick, a cancelled timer): the state is returned
    unchanged and nothing is emitted.
    """
    due_ms = state.next_due_ms()
    if due_ms is None or due_ms > now_ms:
        return StepResult(state)
    updated = state.copy()
    release = release_due(updated, now_ms, policy.version, policy.contact)
    decisions: list[Decision] = list(release.records)
    send: list[Action] = list(release.to_send)
    held: list[Action] = list(release.held_again)
    fired = pop_due(updated, now_ms)
    journeys = _JourneyDecider(updated, policy, now_ms, model)
    moved = on_clock(updated, policy, now_ms, journeys, journeys.conditions)
    decisions.extend(moved.decisions)
    for timer in fired:
        entered = on_event(
            updated,
            timer.to_event(updated.customer_key),
            policy,
            now_ms,
            journeys,
            journeys.conditions,
        )
        decisions.extend(entered.decisions)
        moved.counts.extend(entered.counts)
        decision = decide_timer(
            updated, timer.to_event(updated.customer_key), policy, now_ms, model
        )
        if decision is None:
            continue
        decisions.append(decision)
        # Record each decision's contacts before the next timer decides (caps see them).
        now_send, now_held = _record(updated, (decision,), now_ms)
        send.extend(now_send)
        held.extend(now_held)
    send.extend(journeys.send)
    held.extend(journeys.held)
    return StepResult(
        updated,
        decisions=tuple(decisions),
        to_send=tuple(send),
        held=tuple(held),
        fired=tuple(fired),
        # release records are not new decisions: their exposure was counted when decided
        learning=_learned(decisions[len(release.records) :], send, policy.holdout),
        journeys=tuple(moved.counts),
    )


class _JourneyDecider:
    """Decides a journey step's actions and records their contacts on the state at once,
    so the caps of the next decision see them; collects what to send and what to hold."""

    def __init__(
        self, state: CustomerState, policy: Policy, now_ms: int, model: PropensityModel
    ) -> None:
        self.state = state
        self.policy = policy
        self.now_ms = now_ms
        self.model = model
        self.send: list[Action] = []
        self.held: list[Action] = []

    def conditions(self, event: Event) -> Callable[[], Evaluator]:
        """The CEL evaluator of ``event`` on the state as it is now."""
        return condition_context(self.state, event, self.policy, self.now_ms)

    def __call__(
        self, action_ids: tuple[str, ...], event: Event, trigger: TriggerRef, step: JourneyRef
    ) -> Decision:
        decision = decide_actions(
            self.state,
            event,
            action_ids,
            self.policy,
            self.now_ms,
            self.conditions(event),
            self.model,
            trigger,
            step,
        )
        send, held = _record(self.state, (decision,), self.now_ms)
        self.send.extend(send)
        self.held.extend(held)
        return decision


def _record(
    state: CustomerState, decisions: tuple[Decision, ...], now_ms: int
) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """Record the chosen actions as contacts on ``state`` (the step's own copy) and split
    them into send-now and held."""
    actions = [action for decision in decisions for action in decision.actions]
    held_out = [action for decision in decisions for action in decision.held_out]
    if not actions and not held_out:
        return (), ()
    append_contacts(state, [action.to_contact() for action in (*actions, *held_out)])
    send: list[Action] = []
    held: list[Action] = []
    for action in actions:
        if action.send_after_ms is not None and action.send_after_ms > now_ms:
            hold(state, action)
            held.append(action)
        else:
            send.append(action)
    return tuple(send), tuple(held)


def _learned(
    decisions: Sequence[Decision], send: Sequence[Action], holdout: HoldoutPolicy
) -> tuple[LearningUpdate, ...]:
    """A trial per action sent now; an exposure per decided action of a held-out category."""
    updates = [
        LearningUpdate(action.action, UpdateKind.TRIAL, action.stage, action.channel)
        for action in send
    ]
    for decision in decisions:
        for action in (*decision.actions, *decision.held_out):
            if action.category in holdout.categories:
                updates.append(
                    LearningUpdate(
                        action.action,
                        UpdateKind.EXPOSURE,
                        group=action.group,
                        variant=action.variant,
                        journey=action.journey.journey if action.journey else "",
                    )
                )
    return tuple(updates)


def _attribute_conversion(
    state: CustomerState, event: Event, holdout: HoldoutPolicy
) -> tuple[LearningUpdate, ...]:
    """A conversion for every exposure this purchase follows within the window (marks them);
    each carries the purchase's value, which the performance counters add up as revenue."""
    if event.type not in holdout.conversion_events:
        return ()
    updates: list[LearningUpdate] = []
    for contact in state.contacts:
        at_ms = contact["at_ms"]
        if (
            "group" in contact
            and not contact.get("converted")
            and contact["category"] in holdout.categories
            and at_ms <= event.occurred_at_ms <= at_ms + holdout.conversion_window_ms
        ):
            contact["converted"] = True
            updates.append(
                LearningUpdate(
                    contact["action"],
                    UpdateKind.CONVERSION,
                    group=contact["group"],
                    variant=contact.get("variant", ""),
                    journey=contact.get("journey", ""),
                    value=value_of(event.properties),
                    currency=currency_of(event.properties),
                )
            )
    return tuple(updates)
