"""The next-best-action arbiter: candidates, filters, arbitration, channel choice, explain.

Pure and deterministic for the same (state, trigger, policy, now): no clock, no I/O.

1. Candidates: actions whose trigger names the event type (and whose ``when`` holds).
2. Filters, in order, each removal recorded with a ``Reason``: open service case
   (marketing), max per customer, cooldown (cheap, on the state), then the policy's CEL:
   trigger condition, eligibility, applicability, suitability.
3. Arbitration: priority = propensity x context weight x value x lever, ties broken by
   the action's position in the policy, then its id.
4. Channel choice, in priority order: among the action's channels that can reach the
   customer, have consent and are under every cap (at the send time quiet hours give),
   the one with the best smoothed response rate, ties by the action's preferred order.
   Up to ``max_actions`` actions (optionally one per channel) are chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stream.core.decide.conditions import ConditionError, Evaluator
from stream.core.decide.contact import cap_breached, customer_zone, is_exempt, quiet_release_ms
from stream.core.decide.policy import ActionSpec, Policy, Trigger
from stream.core.decide.records import (
    Action,
    Candidate,
    Decision,
    Reason,
    Scores,
    TriggerRef,
    stable_id,
)
from stream.core.events import Event
from stream.core.state import CustomerState

HOUR_MS = 3_600_000
# When no channel works, the explain record gives the reason that got furthest.
_CHANNEL_REASON_RANK = {Reason.UNREACHABLE: 0, Reason.NO_CONSENT: 1, Reason.CONTACT_CAP: 2}


@dataclass(frozen=True, slots=True)
class _Scored:
    spec: ActionSpec
    scores: Scores
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _ChannelPick:
    channel: str | None
    send_after_ms: int | None
    reason: Reason
    detail: str
    checks: tuple[tuple[str, str], ...]


def condition_context(
    state: CustomerState, event: Event, policy: Policy, now_ms: int
) -> Callable[[], Evaluator]:
    """The CEL evaluator for one trigger, built on first use and then shared.

    Building converts every variable the policy reads, so a trigger no condition looks
    at costs nothing.
    """
    evaluator: Evaluator | None = None
    plan = policy.view_plan

    def conditions() -> Evaluator:
        nonlocal evaluator
        if evaluator is None:
            zone = customer_zone(state.timezone, policy.contact.default_timezone)
            evaluator = Evaluator.build(
                {
                    "customer": plan.customer(state),
                    "event": plan.event(event),
                    "now_ms": now_ms,
                    "local_hour": datetime.fromtimestamp(now_ms / 1000, tz=zone).hour,
                    "constants": plan.constants(policy.constants),
                }
            )
        return evaluator

    return conditions


def decide_event(
    state: CustomerState,
    event: Event,
    policy: Policy,
    now_ms: int,
    conditions: Callable[[], Evaluator] | None = None,
) -> Decision | None:
    """The decision an event triggers for this customer, or None if no action names it.

    A fired timer is decided the same way through ``decide_timer``.
    """
    entries = policy.by_event.get(event.type)
    if not entries:
        return None
    return _decide(state, event, entries, policy, now_ms, conditions)


def decide_timer(
    state: CustomerState, fired: Event, policy: Policy, now_ms: int
) -> Decision | None:
    """The decision a fired timer (as ``FiredTimer.to_event``) triggers, or None."""
    entries = policy.by_timer.get(fired.type)
    if not entries:
        return None
    return _decide(state, fired, entries, policy, now_ms, None)


def _decide(
    state: CustomerState,
    event: Event,
    entries: tuple[tuple[ActionSpec, Trigger], ...],
    policy: Policy,
    now_ms: int,
    conditions: Callable[[], Evaluator] | None,
) -> Decision:
    trigger = TriggerRef(event.event_id, event.type, event.channel)
    zone = customer_zone(state.timezone, policy.contact.default_timezone)
    if conditions is None:
        conditions = condition_context(state, event, policy, now_ms)

    candidates: list[Candidate] = []
    scored: list[_Scored] = []
    for spec, action_trigger in entries:
        outcome = _filter(state, spec, action_trigger, conditions, now_ms)
        if isinstance(outcome, Candidate):
            candidates.append(outcome)
        else:
            scored.append(outcome)
    scored.sort(key=lambda s: (-s.scores.priority, s.spec.order, s.spec.id))
    actions: list[Action] = []
    pending: list[dict[str, Any]] = []
    for item in scored:
        spec = item.spec
        if len(actions) >= policy.max_actions:
            candidates.append(
                _removed(spec, Reason.OUTRANKED, "another action ranked higher", item)
            )
            continue
        pick = _pick_channel(
            state, spec, policy, now_ms, zone, pending, {a.channel for a in actions}
        )
        if pick.channel is None:
            candidates.append(
                Candidate(
                    spec.id, spec.category, pick.reason, pick.detail, None, item.scores, pick.checks
                )
            )
            continue
        action = _action(state, spec, trigger, policy, now_ms, pick, item.payload)
        actions.append(action)
        pending.append(action.to_contact())
        candidates.append(
            Candidate(
                spec.id, spec.category, Reason.CHOSEN, "", pick.channel, item.scores, pick.checks
            )
        )
    return Decision(
        decision_id=stable_id(state.customer_key, trigger.event_id, "decision"),
        customer_id=state.customer_key,
        trigger=trigger,
        stage=state.stage,
        policy_version=policy.version,
        decided_at_ms=now_ms,
        candidates=tuple(candidates),
        actions=tuple(actions),
    )


def _removed(
    spec: ActionSpec, reason: Reason, detail: str, item: _Scored | None = None
) -> Candidate:
    return Candidate(spec.id, spec.category, reason, detail, None, item.scores if item else None)


def _filter(
    state: CustomerState,
    spec: ActionSpec,
    trigger: Trigger,
    conditions: Callable[[], Evaluator],
    now_ms: int,
) -> Candidate | _Scored:
    """Cheap checks on the state first, then the policy's CEL conditions."""
    if spec.category == "marketing" and state.open_cases:
        cases = ", ".join(sorted(state.open_cases))
        return _removed(spec, Reason.OPEN_SERVICE_CASE, f"open case(s): {cases}")
    sent = state.sent_counts.get(spec.id, 0)
    if spec.max_per_customer is not None and sent >= spec.max_per_customer:
        return _removed(
            spec, Reason.ALREADY_SENT, f"sent {sent} time(s), max {spec.max_per_customer}"
        )
    if spec.cooldown_ms is not None:
        last = max((c["at_ms"] for c in state.contacts if c["action"] == spec.id), default=None)
        if last is not None and now_ms - last < spec.cooldown_ms:
            return _removed(spec, Reason.COOLDOWN, f"last sent {(now_ms - last) // 60_000} min ago")
    try:
        for condition, reason in (
            (trigger.when, Reason.TRIGGER_CONDITION),
            (spec.eligibility, Reason.NOT_ELIGIBLE),
            (spec.applicability, Reason.NOT_APPLICABLE),
            (spec.suitability, Reason.NOT_SUITABLE),
        ):
            if condition is not None and not conditions().holds(condition):
                return _removed(spec, reason, condition.source)
        weight = 1.0
        if spec.context_weight is not None:
            weight = conditions().number(spec.context_weight, 1.0)
        scores = Scores(spec.propensity, weight, spec.value, spec.lever)
        payload = {name: conditions().value(expression) for name, expression in spec.payload}
    except ConditionError as exc:
        return _removed(spec, Reason.CONDITION_ERROR, str(exc))
    return _Scored(spec, scores, payload)


def _pick_channel(
    state: CustomerState,
    spec: ActionSpec,
    policy: Policy,
    now_ms: int,
    zone: Any,
    pending: list[dict[str, Any]],
    taken: set[str],
) -> _ChannelPick:
    contact = policy.contact
    exempt = is_exempt(contact, spec.category)
    ranked = sorted(
        enumerate(spec.channels), key=lambda item: (-state.response_rate(item[1]), item[0])
    )
    history = [*state.contacts, *pending]  # what the caps count, for every channel tried
    checks: list[tuple[str, str]] = []
    best_failure = (Reason.UNREACHABLE, "")
    for _, channel in ranked:
        failure: tuple[Reason, str] | None = None
        send_after_ms = None
        if policy.one_per_channel and channel in taken:
            failure = (Reason.CHANNEL_TAKEN, f"{channel} already used in this decision")
        elif not state.is_reachable(channel):
            failure = (Reason.UNREACHABLE, f"no address for {channel}")
        elif not state.may_contact(channel, spec.category):
            failure = (Reason.NO_CONSENT, f"no consent on {channel}")
        elif not exempt:
            if contact.quiet_hours is not None and channel in contact.quiet_hours.channels:
                send_after_ms = quiet_release_ms(now_ms, zone, contact.quiet_hours)
            send_at = send_after_ms if send_after_ms is not None else now_ms
            cap = cap_breached(contact.caps, history, channel, spec.category, send_at)
            if cap is not None:
                failure = (
                    Reason.CONTACT_CAP,
                    f"cap {cap.name}: {cap.max} per {cap.window_ms // HOUR_MS} h",
                )
        if failure is None:
            checks.append((channel, Reason.CHOSEN.value))
            return _ChannelPick(channel, send_after_ms, Reason.CHOSEN, "", tuple(checks))
        checks.append((channel, failure[0].value))
        if _CHANNEL_REASON_RANK.get(failure[0], 3) >= _CHANNEL_REASON_RANK.get(best_failure[0], 3):
            best_failure = failure
    return _ChannelPick(None, None, best_failure[0], best_failure[1], tuple(checks))


def _action(
    state: CustomerState,
    spec: ActionSpec,
    trigger: TriggerRef,
    policy: Policy,
    now_ms: int,
    pick: _ChannelPick,
    payload: dict[str, Any],
) -> Action:
    assert pick.channel is not None
    action_id = stable_id(state.customer_key, trigger.event_id, spec.id)
    start = pick.send_after_ms if pick.send_after_ms is not None else now_ms
    return Action(
        action_id=action_id,
        idempotency_key=stable_id("idempotency", action_id),
        customer_id=state.customer_key,
        action=spec.id,
        channel=pick.channel,
        category=spec.category,
        trigger=trigger,
        policy_version=policy.version,
        decided_at_ms=now_ms,
        send_after_ms=pick.send_after_ms,
        expires_at_ms=start + spec.validity_ms,
        reason=spec.reason or spec.description or spec.id,
        stage=state.stage,
        content=spec.content,
        payload=payload,
    )
