"""The next-best-action arbiter: candidates, filters, arbitration, channel choice, explain.

Pure and deterministic for the same (state, trigger, policy, model, now): no clock, no
I/O; the Thompson draws are seeded by the decision.

1. Candidates: actions whose trigger names the event type (and whose ``when`` holds).
2. Filters, in order, each removal recorded with a ``Reason``: experiment arm, open
   service case (marketing), max per customer, cooldown (cheap, on the state), then the
   policy's CEL: trigger condition, eligibility, applicability, suitability.
3. Scoring: each of the action's channels gets a propensity from the learned model and
   the customer's own history (``learning.estimate``); the action's propensity is its
   best channel's. Arbitration: priority = propensity x context weight x value x lever,
   ties broken by the action's position in the policy, then its id.
4. Channel choice, in priority order: the best-scored channel that can reach the
   customer, has consent, is not resting (fatigue) and is under every cap (at the send
   time quiet hours give). Up to ``max_actions`` actions (optionally one per channel).
5. Holdout: for a customer in the universal control group, a chosen action of a held-out
   category is recorded as ``holdout`` and not sent (it still counts for caps, so the
   control group's decisions follow the treated path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stream.core.decide.conditions import ConditionError, Evaluator
from stream.core.decide.contact import cap_breached, customer_zone, is_exempt, quiet_release_ms
from stream.core.decide.holdout import CONTROL, group_of, holds_out, variant_of
from stream.core.decide.learning import (
    NO_HISTORY,
    ChannelHistory,
    Estimate,
    FatiguePolicy,
    LearningPolicy,
    Prior,
    Seed,
    estimate,
    personal_terms,
    resting_until_ms,
)
from stream.core.decide.policy import ActionSpec, Policy, Trigger
from stream.core.decide.probability import (
    Cell,
    Option,
    choice_distribution,
    choice_key,
    needs_draws,
    probability_of,
    top_choices,
)
from stream.core.decide.records import (
    Action,
    Candidate,
    Decision,
    JourneyRef,
    Reason,
    Scores,
    TriggerRef,
    stable_id,
)
from stream.core.events import Event
from stream.core.propensity import EMPTY_MODEL, PropensityModel
from stream.core.state import CustomerState
from stream.core.timestamps import format_ms

HOUR_MS = 3_600_000
# When no channel works, the explain record gives the reason that got furthest.
_CHANNEL_REASON_RANK = {
    Reason.UNREACHABLE: 0,
    Reason.NO_CONSENT: 1,
    Reason.FATIGUED: 2,
    Reason.CONTACT_CAP: 3,
}


@dataclass(frozen=True, slots=True)
class _Scored:
    spec: ActionSpec
    scores: Scores
    payload: dict[str, Any]
    estimates: tuple[tuple[str, Estimate], ...]  # per channel, best first
    variant: str
    channels: tuple[str, ...]  # in the policy's (or the experiment arm's) order
    fixed_order: bool  # an experiment arm's channels: the first listed ranks the action


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
    model: PropensityModel = EMPTY_MODEL,
) -> Decision | None:
    """The decision an event triggers for this customer, or None if no action names it.

    A fired timer is decided the same way through ``decide_timer``.
    """
    entries = policy.by_event.get(event.type)
    if not entries:
        return None
    return _decide(state, event, entries, policy, now_ms, conditions, model)


def decide_timer(
    state: CustomerState,
    fired: Event,
    policy: Policy,
    now_ms: int,
    model: PropensityModel = EMPTY_MODEL,
) -> Decision | None:
    """The decision a fired timer (as ``FiredTimer.to_event``) triggers, or None."""
    entries = policy.by_timer.get(fired.type)
    if not entries:
        return None
    return _decide(state, fired, entries, policy, now_ms, None, model)


def decide_actions(
    state: CustomerState,
    event: Event,
    action_ids: tuple[str, ...],
    policy: Policy,
    now_ms: int,
    conditions: Callable[[], Evaluator],
    model: PropensityModel,
    trigger: TriggerRef,
    journey: JourneyRef,
) -> Decision:
    """A journey step's decision among ``action_ids``: the same filters, contact policy
    and arbitration as any decision; ``event`` is what the conditions see, ``trigger``
    (unique per run, node and visit) makes the action ids."""
    specs = [policy.action_for_journey(name) for name in action_ids]
    entries = tuple((spec, _NO_TRIGGER) for spec in specs if spec is not None)
    return _decide(state, event, entries, policy, now_ms, conditions, model, trigger, journey)


_NO_TRIGGER = Trigger(None, None, None)


def _decide(
    state: CustomerState,
    event: Event,
    entries: tuple[tuple[ActionSpec, Trigger], ...],
    policy: Policy,
    now_ms: int,
    conditions: Callable[[], Evaluator] | None,
    model: PropensityModel,
    trigger: TriggerRef | None = None,
    journey: JourneyRef | None = None,
) -> Decision:
    if trigger is None:
        trigger = TriggerRef(event.event_id, event.type, event.channel)
    zone = customer_zone(state.timezone, policy.contact.default_timezone)
    if conditions is None:
        conditions = condition_context(state, event, policy, now_ms)
    group: str | None = None  # the holdout group, hashed only when an action is picked
    seed = Seed(f"{state.customer_key}|{trigger.event_id}")
    scoring = _Scoring(state, policy, model, seed, now_ms)
    candidates, scored = _screen(state, entries, conditions, now_ms, scoring)
    actions: list[Action] = []
    held_out: list[Action] = []
    pending: list[dict[str, Any]] = []
    for item in scored:
        spec = item.spec
        if len(actions) + len(held_out) >= policy.max_actions:
            candidates.append(
                _removed(spec, Reason.OUTRANKED, "another action ranked higher", item)
            )
            continue
        taken = {a.channel for a in (*actions, *held_out)}
        pick = _pick_channel(state, item, policy, now_ms, zone, pending, taken)
        if pick.channel is None:
            candidates.append(_candidate(item, pick.reason, pick.detail, None, pick.checks))
            continue
        if group is None:
            group = group_of(state.customer_key, policy.holdout)
        held = holds_out(policy.holdout, group, spec.category)
        action = _action(state, item, trigger, policy, now_ms, pick, group if held else "treatment")
        if journey is not None:
            action = dataclasses.replace(action, journey=journey)
        pending.append(action.to_contact())
        if held:
            held_out.append(action)
            detail = f"control group ({policy.holdout.control_share:.0%}): decided, not sent"
            candidates.append(_candidate(item, Reason.HOLDOUT, detail, pick.channel, pick.checks))
        else:
            actions.append(action)
            candidates.append(_candidate(item, Reason.CHOSEN, "", pick.channel, pick.checks))
    group = group or group_of(state.customer_key, policy.holdout)
    chance = _chance(state, scored, policy, now_ms, zone, scoring, (*actions, *held_out), group)
    return Decision(
        decision_id=stable_id(state.customer_key, trigger.event_id, "decision"),
        customer_id=state.customer_key,
        trigger=trigger,
        stage=state.stage,
        policy_version=policy.version,
        decided_at_ms=now_ms,
        candidates=tuple(candidates),
        actions=tuple(actions),
        group=group,
        held_out=tuple(held_out),
        strategy=policy.learning.strategy,
        journey=journey,
        choice=chance.choice,
        probability=chance.probability,
        choices=chance.choices,
    )


@dataclass(frozen=True, slots=True)
class _Chance:
    choice: str
    probability: float
    choices: tuple[tuple[str, float], ...]


def _chance(
    state: CustomerState,
    scored: list[_Scored],
    policy: Policy,
    now_ms: int,
    zone: Any,
    scoring: _Scoring,
    chosen: tuple[Action, ...],
    group: str,
) -> _Chance:
    """The choice made, and how likely the policy was to make it (``probability``):
    the Thompson draws' share (``choice_distribution``) x the experiment arms' shares x
    the holdout group's share, when they apply."""
    choice = choice_key((action.action, action.channel) for action in chosen)
    factor = _assignment_share(state, policy, chosen, group)
    if policy.learning.strategy != "thompson":
        return _Chance(choice, factor, ())
    in_order = sorted(scored, key=lambda item: (item.spec.order, item.spec.id))  # ties
    history = state.counted_contacts()  # what the caps count (a first pick: nothing pending)
    options = [_option(state, item, policy, now_ms, zone, scoring, history) for item in in_order]
    if not needs_draws(options):
        return _Chance(choice, factor, ())
    distribution = choice_distribution(
        options, scoring.seed.text, policy.max_actions, policy.one_per_channel
    )
    selection = probability_of(distribution, choice)
    return _Chance(choice, selection * factor, top_choices(distribution))


def _option(
    state: CustomerState,
    item: _Scored,
    policy: Policy,
    now_ms: int,
    zone: Any,
    scoring: _Scoring,
    history: list[dict[str, Any]],
) -> Option:
    """A scored action as the probability's draws see it (feasibility of a first pick)."""
    estimates = dict(item.estimates)
    cells = []
    for channel in item.channels:
        failure, _ = _check_channel(state, item.spec, channel, policy, now_ms, zone, history, set())
        scale, shift = personal_terms(policy.learning, scoring.history(channel), channel)
        posterior = estimates[channel]
        cells.append(Cell(channel, posterior.alpha, posterior.beta, scale, shift, failure is None))
    scores = item.scores
    multiplier = scores.context_weight * scores.value * scores.lever
    return Option(item.spec.id, multiplier, tuple(cells), item.fixed_order)


def _assignment_share(
    state: CustomerState, policy: Policy, chosen: tuple[Action, ...], group: str
) -> float:
    """The share of customers the holdout group and experiment arms of ``chosen`` give."""
    holdout = policy.holdout
    share = 1.0
    if holdout.control_share > 0 and any(a.category in holdout.categories for a in chosen):
        share *= holdout.control_share if group == CONTROL else 1.0 - holdout.control_share
    experiments = {holdout.by_action[a.action] for a in chosen if a.action in holdout.by_action}
    for experiment in sorted(experiments, key=lambda e: e.name):
        share *= variant_of(state.customer_key, experiment, holdout.salt).share
    return share


def _screen(
    state: CustomerState,
    entries: tuple[tuple[ActionSpec, Trigger], ...],
    conditions: Callable[[], Evaluator],
    now_ms: int,
    scoring: _Scoring,
) -> tuple[list[Candidate], list[_Scored]]:
    """The actions ``_filter`` removed (as candidates), and the rest ranked best first."""
    candidates: list[Candidate] = []
    scored: list[_Scored] = []
    for spec, action_trigger in entries:
        outcome = _filter(state, spec, action_trigger, conditions, now_ms, scoring)
        if isinstance(outcome, Candidate):
            candidates.append(outcome)
        else:
            scored.append(outcome)
    scored.sort(key=lambda s: (-s.scores.priority, s.spec.order, s.spec.id))
    return candidates, scored


class _Scoring:
    """What scoring a candidate's channels needs, shared by the candidates of a decision."""

    def __init__(
        self, state: CustomerState, policy: Policy, model: PropensityModel, seed: Seed, now_ms: int
    ) -> None:
        self.state = state
        self.policy = policy
        self.model = model
        self.seed = seed
        self.now_ms = now_ms
        self._histories: dict[str, ChannelHistory] | None = None

    def history(self, channel: str) -> ChannelHistory:
        """The customer's record on ``channel``, built once per decision."""
        if self._histories is None:
            self._histories = channel_histories(self.state, self.policy.learning, self.now_ms)
        return self._histories.get(channel, NO_HISTORY)

    def channels(
        self, spec: ActionSpec, channels: tuple[str, ...], fixed_order: bool = False
    ) -> tuple[tuple[str, Estimate], ...]:
        """Each channel's estimate, best first (ties: the policy's order).

        ``fixed_order`` (an experiment arm's channels) keeps the given order: learning
        must not blur what the test compares.
        """
        learning = self.policy.learning
        evidence = spec.evidence if spec.evidence is not None else learning.evidence
        stage = self.state.stage
        estimates = [
            (
                channel,
                estimate(
                    learning,
                    Prior(spec.prior(channel), evidence),
                    self.model.evidence(spec.id, stage, channel),
                    self.history(channel),
                    self.seed,
                    channel,
                ),
            )
            for channel in channels
        ]
        if fixed_order:
            return tuple(estimates)
        order = {channel: index for index, channel in enumerate(channels)}
        estimates.sort(key=lambda item: (-item[1].propensity, order[item[0]]))
        return tuple(estimates)


def channel_histories(
    state: CustomerState, learning: LearningPolicy, now_ms: int
) -> dict[str, ChannelHistory]:
    """Per channel: messages that had their chance to be answered, responses, streak.

    A message sent less than ``learning.response_window_ms`` ago and not yet answered is
    not evidence either way, so one fresh message does not demote its channel.
    """
    pending: dict[str, int] = {}
    for contact in state.counted_contacts():
        if (
            contact.get("group") != "control"
            and now_ms - contact["send_at_ms"] < learning.response_window_ms
            and not learning.rewards.intersection(contact.get("outcomes", ()))
        ):
            pending[contact["channel"]] = pending.get(contact["channel"], 0) + 1
    histories = {}
    for channel in {*state.sent_by_channel, *state.responses, *state.unanswered}:
        sent = state.sent_by_channel.get(channel, 0)
        responded = state.responses.get(channel, 0)
        histories[channel] = ChannelHistory(
            max(responded, sent - pending.get(channel, 0)),
            responded,
            state.unanswered.get(channel, 0),
        )
    return histories


def _candidate(
    item: _Scored,
    reason: Reason,
    detail: str,
    channel: str | None,
    checks: tuple[tuple[str, str], ...],
) -> Candidate:
    spec = item.spec
    return Candidate(
        spec.id,
        spec.category,
        reason,
        detail,
        channel,
        item.scores,
        checks,
        item.estimates,
        item.variant,
    )


def _removed(
    spec: ActionSpec, reason: Reason, detail: str, item: _Scored | None = None
) -> Candidate:
    if item is not None:
        return _candidate(item, reason, detail, None, ())
    return Candidate(spec.id, spec.category, reason, detail)


def _filter(
    state: CustomerState,
    spec: ActionSpec,
    trigger: Trigger,
    conditions: Callable[[], Evaluator],
    now_ms: int,
    scoring: _Scoring,
) -> Candidate | _Scored:
    """Cheap checks on the state first, then the policy's CEL conditions, then scoring."""
    channels, variant, fixed_order = spec.channels, "", False
    experiment = scoring.policy.holdout.by_action.get(spec.id)
    if experiment is not None:
        arm = variant_of(state.customer_key, experiment, scoring.policy.holdout.salt)
        variant = f"{experiment.name}={arm.name}"
        if experiment.action is None and arm.action != spec.id:
            return Candidate(
                spec.id,
                spec.category,
                Reason.EXPERIMENT_ARM,
                f"experiment {experiment.name}: customer in arm {arm.name} ({arm.action})",
                variant=variant,
            )
        if arm.channels is not None:
            channels, fixed_order = arm.channels, True
    if spec.category == "marketing" and state.open_cases:
        cases = ", ".join(sorted(state.open_cases))
        return _removed(spec, Reason.OPEN_SERVICE_CASE, f"open case(s): {cases}")
    sent = state.sent_counts.get(spec.id, 0)
    if spec.max_per_customer is not None and sent >= spec.max_per_customer:
        return _removed(
            spec, Reason.ALREADY_SENT, f"sent {sent} time(s), max {spec.max_per_customer}"
        )
    if spec.cooldown_ms is not None:
        last = max(
            (c["at_ms"] for c in state.counted_contacts() if c["action"] == spec.id), default=None
        )
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
        payload = {name: conditions().value(expression) for name, expression in spec.payload}
    except ConditionError as exc:
        return _removed(spec, Reason.CONDITION_ERROR, str(exc))
    estimates = scoring.channels(spec, channels, fixed_order)
    scores = Scores(estimates[0][1].propensity, weight, spec.value, spec.lever)
    return _Scored(spec, scores, payload, estimates, variant, channels, fixed_order)


def _pick_channel(
    state: CustomerState,
    item: _Scored,
    policy: Policy,
    now_ms: int,
    zone: Any,
    pending: list[dict[str, Any]],
    taken: set[str],
) -> _ChannelPick:
    history = [*state.counted_contacts(), *pending]  # what the caps count, for every channel
    checks: list[tuple[str, str]] = []
    best_failure = (Reason.UNREACHABLE, "")
    for channel, _ in item.estimates:
        failure, send_after_ms = _check_channel(
            state, item.spec, channel, policy, now_ms, zone, history, taken
        )
        if failure is None:
            checks.append((channel, Reason.CHOSEN.value))
            return _ChannelPick(channel, send_after_ms, Reason.CHOSEN, "", tuple(checks))
        checks.append((channel, failure[0].value))
        if _CHANNEL_REASON_RANK.get(failure[0], 3) >= _CHANNEL_REASON_RANK.get(best_failure[0], 3):
            best_failure = failure
    return _ChannelPick(None, None, best_failure[0], best_failure[1], tuple(checks))


def _check_channel(
    state: CustomerState,
    spec: ActionSpec,
    channel: str,
    policy: Policy,
    now_ms: int,
    zone: Any,
    history: list[dict[str, Any]],
    taken: set[str],
) -> tuple[tuple[Reason, str] | None, int | None]:
    """Why ``spec`` cannot go out on ``channel`` now (None if it can), and its send time."""
    contact = policy.contact
    exempt = is_exempt(contact, spec.category)
    if policy.one_per_channel and channel in taken:
        return (Reason.CHANNEL_TAKEN, f"{channel} already used in this decision"), None
    if not state.is_reachable(channel):
        return (Reason.UNREACHABLE, f"no address for {channel}"), None
    if not state.may_contact(channel, spec.category):
        return (Reason.NO_CONSENT, f"no consent on {channel}"), None
    if exempt:
        return None, None
    resting = _resting_until(state, policy.learning.fatigue, channel, now_ms)
    if resting is not None:
        detail = (
            f"{state.unanswered.get(channel, 0)} unanswered on {channel}; "
            f"resting until {format_ms(resting)}"
        )
        return (Reason.FATIGUED, detail), None
    send_after_ms = None
    if contact.quiet_hours is not None and channel in contact.quiet_hours.channels:
        send_after_ms = quiet_release_ms(now_ms, zone, contact.quiet_hours)
    send_at = send_after_ms if send_after_ms is not None else now_ms
    cap = cap_breached(contact.caps, history, channel, spec.category, send_at)
    if cap is not None:
        detail = f"cap {cap.name}: {cap.max} per {cap.window_ms // HOUR_MS} h"
        return (Reason.CONTACT_CAP, detail), send_after_ms
    return None, send_after_ms


def _resting_until(
    state: CustomerState, fatigue: FatiguePolicy | None, channel: str, now_ms: int
) -> int | None:
    if fatigue is None:
        return None
    until = resting_until_ms(
        fatigue, channel, state.unanswered.get(channel, 0), state.last_sent_ms(channel)
    )
    return until if until is not None and now_ms < until else None


def _action(
    state: CustomerState,
    item: _Scored,
    trigger: TriggerRef,
    policy: Policy,
    now_ms: int,
    pick: _ChannelPick,
    group: str,
) -> Action:
    assert pick.channel is not None
    spec = item.spec
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
        payload=item.payload,
        group=group,
        variant=item.variant if group != CONTROL else "",  # control: no arm, nothing sent
    )
