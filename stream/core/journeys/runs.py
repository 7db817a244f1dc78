"""Journey runs: enter, move through the nodes, wait, exit. Pure, on a state the caller owns.

A customer has at most one active run per journey (``state.journeys[journey id]``). A run
is pinned to the version it entered (``policy.journey_versions``). It moves on:

- ``on_event``: an arriving event first reaches the goal and the exit rules of every
  active run (applied at once: the run ends, its wait is dropped), then a ``wait_for``
  it matches; then it enters the journeys it starts, where re-entry allows.
- ``on_clock``: a run whose wait is over moves on (a ``wait_for`` by its timeout edge); a
  run past its max duration ends (``max_duration``); so does it if an event or an
  outcome reaches it first.
- ``on_outcome``: a sender's outcome for the run's last message moves a ``wait_for`` of
  that outcome on.

Between waits a run goes through its instant nodes at once: ``send``/``decide`` hand
their actions to the arbiter (``Decide``, which applies the contact policy and records
the contact), ``branch`` takes its first case that holds, ``split`` the customer's
stable arm, ``exit`` ends the run. A run's deadline is the earlier of its wait's end and
its max duration: ``CustomerState.next_due_ms`` includes it, so the durable due index
and the scheduler fire it like any timer.

Every move is a ``JourneyCount`` (entered, an edge taken, suppressed, exited, converted)
for the census and the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stream.core.decide.conditions import ConditionError, Evaluator
from stream.core.decide.contact import customer_zone
from stream.core.decide.holdout import bucket, group_of
from stream.core.decide.policy import Condition, Policy
from stream.core.decide.records import Decision, JourneyRef, TriggerRef, stable_id
from stream.core.events import Event
from stream.core.journeys.graph import NodeKind
from stream.core.journeys.spec import (
    OUTCOMES,
    Arm,
    EventMatch,
    Journey,
    Node,
    Reentry,
    SendResult,
)
from stream.core.state import CustomerState

JOURNEY_CHANNEL = "journey"
VERSION_RETRY_MS = 60_000  # a run of a version not known yet is looked at again then
MAX_MOVES = 64  # instant nodes one run may pass at once; the check forbids cycles anyway
_ANSWERS = {outcome: frozenset(OUTCOMES[OUTCOMES.index(outcome) :]) for outcome in OUTCOMES}


@dataclass(frozen=True, slots=True)
class JourneyCount:
    """One thing that happened to a run: what the census and metrics count.

    ``what``: ``entered`` (node: the start), ``edge`` (detail: the edge's label),
    ``suppressed`` (detail: the reason), ``exited`` (detail: the reason), ``converted``.
    """

    journey: str
    version: str
    node: str
    what: str
    detail: str = ""
    group: str = ""


# Decide(actions, the event the run started on, trigger, journey step) -> the decision,
# its chosen actions already recorded as contacts on the state.
Decide = Callable[[tuple[str, ...], Event, TriggerRef, JourneyRef], Decision]
Conditions = Callable[[Event], Callable[[], Evaluator]]  # an evaluator for an event


@dataclass
class JourneyStep:
    """What the journeys did for one event, clock tick or outcome."""

    decisions: list[Decision] = field(default_factory=list)
    counts: list[JourneyCount] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.decisions or self.counts)


@dataclass
class _Context:
    state: CustomerState
    policy: Policy
    now_ms: int
    decide: Decide
    conditions: Conditions
    step: JourneyStep


def on_event(
    state: CustomerState,
    event: Event,
    policy: Policy,
    now_ms: int,
    decide: Decide,
    conditions: Conditions,
) -> JourneyStep:
    """Goals, exits and ``wait_for``s of the active runs, then entries, for one event."""
    context = _Context(state, policy, now_ms, decide, conditions, JourneyStep())
    arriving = conditions(event)
    for journey, run in _going_on(context):
        _on_event_in_run(context, journey, run, event, arriving)
    _enter(context, event, arriving)
    return context.step


def on_clock(
    state: CustomerState, policy: Policy, now_ms: int, decide: Decide, conditions: Conditions
) -> JourneyStep:
    """Move on every run whose wait is over; end those past their max duration."""
    context = _Context(state, policy, now_ms, decide, conditions, JourneyStep())
    for journey, run in _going_on(context, lambda run: run["due_ms"] <= now_ms):
        node = journey.nodes[run["node"]]
        if node.kind is NodeKind.WAIT_FOR:
            _move(context, journey, run, "timeout", node.on_timeout)
        else:
            _move(context, journey, run, "next", node.next)
    return context.step


def on_outcome(
    state: CustomerState,
    action_id: str,
    outcome: str,
    policy: Policy,
    now_ms: int,
    decide: Decide,
    conditions: Conditions,
) -> JourneyStep:
    """Move on the runs waiting for this outcome of their last message."""
    context = _Context(state, policy, now_ms, decide, conditions, JourneyStep())
    for journey, run in _going_on(context, lambda run: run.get("last_action") == action_id):
        node = journey.nodes[run["node"]]
        awaited = node.outcome if node.kind is NodeKind.WAIT_FOR else None
        if awaited is not None and outcome in _ANSWERS[awaited]:
            _move(context, journey, run, "next", node.next)
    return context.step


def _going_on(
    context: _Context, wanted: Callable[[dict[str, Any]], bool] = lambda run: True
) -> Iterator[tuple[Journey, dict[str, Any]]]:
    """The active runs ``wanted`` picks that go on now, with their version (``_pinned``
    ends or holds the others)."""
    for journey_id, run in list(context.state.journeys.items()):
        if wanted(run):
            journey = _pinned(context, journey_id, run)
            if journey is not None:
                yield journey, run


def entry_event(run: dict[str, Any], customer_key: str) -> Event:
    """The event that started a run, as its nodes' conditions and sends see it."""
    entry = run["entry"]
    return Event(
        event_id=entry["id"],
        type=entry["type"],
        channel=entry["channel"],
        occurred_at_ms=entry["at_ms"],
        customer_key=customer_key,
        identifiers={},
        properties=entry["properties"],
        context={},
    )


def _pinned(context: _Context, journey_id: str, run: dict[str, Any]) -> Journey | None:
    """The version the run entered, if the run goes on now.

    A run of a journey removed from the policy ends (``journey_removed``); so does one
    past its max duration (an event or an outcome can come before the firing that ends it:
    it must not move the run on). A version this worker does not know (yet: the archive of
    earlier policies is still being read) holds the run as it is, retried a minute later,
    until its max duration ends it (``version_unavailable``).
    """
    if journey_id not in context.policy.journey_ids:
        _finish(context, journey_id, run["version"], run, "journey_removed")
        return None
    journey = context.policy.journey_versions.get(run["version"])
    if run["ends_ms"] <= context.now_ms:
        reason = "max_duration" if journey is not None else "version_unavailable"
        _finish(context, journey_id, run["version"], run, reason)
        return None
    if journey is None:
        if run["due_ms"] <= context.now_ms:
            run["due_ms"] = min(context.now_ms + VERSION_RETRY_MS, run["ends_ms"])
        return None
    return journey


def _on_event_in_run(
    context: _Context,
    journey: Journey,
    run: dict[str, Any],
    event: Event,
    arriving: Callable[[], Evaluator],
) -> None:
    goal = journey.goal
    if goal is not None and _matches(goal.match, event, arriving):
        context.step.counts.append(_count(journey, run, "converted"))
        if goal.exits:
            _end(context, journey, run, "goal")
            return
    for rule in journey.exits:
        hit = _matches(rule.event, event, arriving) if rule.event is not None else False
        if rule.condition is not None:
            hit = _holds(rule.condition, arriving)
        if hit:
            _end(context, journey, run, rule.reason)
            return
    node = journey.nodes[run["node"]]
    if node.kind is NodeKind.WAIT_FOR and node.event is not None:
        same = all(
            event.properties.get(key) == run["entry"]["properties"].get(key) for key in node.match
        )
        if same and _matches(node.event, event, arriving):
            _move(context, journey, run, "next", node.next)


def _enter(context: _Context, event: Event, arriving: Callable[[], Evaluator]) -> None:
    state = context.state
    held: list[str] = []
    for journey in context.policy.journeys_entered_by(event.type):
        if journey.entries:
            starts = any(_matches(entry, event, arriving) for entry in journey.entries)
        else:
            assert journey.entry_condition is not None
            now_true = _holds(journey.entry_condition, arriving)
            starts = now_true and journey.id not in state.journey_conditions
            if now_true:
                held.append(journey.id)
        if starts and _may_enter(context, journey, event):
            _start(context, journey, event)
    state.journey_conditions = held


def _may_enter(context: _Context, journey: Journey, event: Event) -> bool:
    """No active run, re-entry allows, and the event is not older than the journey lasts."""
    if journey.id in context.state.journeys:
        return False
    if event.occurred_at_ms + journey.max_duration_ms < context.now_ms:
        return False  # replayed history starts no journey
    ended = context.state.journey_ends.get(journey.id)
    if ended is None or journey.reentry is Reentry.AFTER_EXIT:
        return True
    if journey.reentry is Reentry.NEVER:
        return False
    return bool(context.now_ms - ended["at_ms"] >= journey.cooldown_ms)


def _start(context: _Context, journey: Journey, event: Event) -> None:
    state = context.state
    run: dict[str, Any] = {
        "run": stable_id(state.customer_key, "journey", journey.id, event.event_id),
        "version": journey.version,
        "node": journey.start,
        "since_ms": context.now_ms,
        "entered_at_ms": context.now_ms,
        "ends_ms": context.now_ms + journey.max_duration_ms,
        "due_ms": context.now_ms + journey.max_duration_ms,
        "visits": {},
        "last_action": None,
        "group": group_of(state.customer_key, context.policy.holdout),
        "entry": {
            "id": event.event_id,
            "type": event.type,
            "channel": event.channel,
            "at_ms": event.occurred_at_ms,
            "properties": event.properties,
        },
    }
    state.journeys[journey.id] = run
    context.step.counts.append(_count(journey, run, "entered"))
    _advance(context, journey, run)


def _move(context: _Context, journey: Journey, run: dict[str, Any], label: str, to: str) -> None:
    """Take an edge out of the run's node, then go on to the next wait."""
    context.step.counts.append(_count(journey, run, "edge", label))
    _arrive(context, run, to)
    _advance(context, journey, run)


def _arrive(context: _Context, run: dict[str, Any], node: str) -> None:
    run["node"] = node
    run["since_ms"] = context.now_ms
    run["due_ms"] = run["ends_ms"]
    run.pop("wait_until_ms", None)


def _advance(context: _Context, journey: Journey, run: dict[str, Any]) -> None:
    """Pass the instant nodes until the run waits or ends."""
    for _ in range(MAX_MOVES):
        node = journey.nodes[run["node"]]
        if node.kind is NodeKind.EXIT:
            _end(context, journey, run, node.reason, finished=True)
            return
        if node.kind.waits:
            _wait(context, journey, node, run)
            return
        label, to = _instant(context, journey, node, run)
        context.step.counts.append(_count(journey, run, "edge", label))
        _arrive(context, run, to)
    _end(context, journey, run, "too_many_moves")


def _instant(
    context: _Context, journey: Journey, node: Node, run: dict[str, Any]
) -> tuple[str, str]:
    """The edge a send, decide, branch or split node takes: (label, next node)."""
    if node.kind is NodeKind.SPLIT:
        arm = _arm(context, journey, node)
        return arm.name, arm.next
    started = entry_event(run, context.state.customer_key)
    if node.kind is NodeKind.BRANCH:
        evaluator = context.conditions(started)
        for case in node.cases:
            if _holds(case.when, evaluator):
                return case.name, case.next
        return "else", node.next
    result = _send(context, journey, node, run, started)
    return result.value, node.after_send(result)


def _arm(context: _Context, journey: Journey, node: Node) -> Arm:
    """The customer's arm of a split: stable, from a hash of the customer (holdout salt)."""
    key = context.state.customer_key
    point = bucket(context.policy.holdout.salt, "journey", journey.id, node.name, key) * 100
    total = 0
    for arm in node.arms:
        total += arm.weight
        if point < total:
            return arm
    return node.arms[-1]


def _send(
    context: _Context, journey: Journey, node: Node, run: dict[str, Any], started: Event
) -> SendResult:
    visits = run["visits"]
    visits[node.name] = visit = visits.get(node.name, 0) + 1
    step = JourneyRef(journey.id, journey.version, node.name, run["run"])
    # unique per run, node and visit: the action ids are the same if the step is replayed
    trigger = TriggerRef(stable_id(run["run"], node.name, str(visit)), journey.id, JOURNEY_CHANNEL)
    decision = context.decide(node.actions, started, trigger, step)
    context.step.decisions.append(decision)
    chosen = (*decision.actions, *decision.held_out)
    if chosen:
        run["last_action"] = chosen[0].action_id
        send_after = chosen[0].send_after_ms
        held = send_after is not None and send_after > context.now_ms and decision.actions
        return SendResult.HELD if held else SendResult.SENT
    reason = decision.candidates[0].reason.value if decision.candidates else "no_candidate"
    context.step.counts.append(_count(journey, run, "suppressed", reason))
    return SendResult.SUPPRESSED


def _wait(context: _Context, journey: Journey, node: Node, run: dict[str, Any]) -> None:
    """Set the run's deadline: the wait's end, or its max duration if that comes first."""
    until = _wait_until_ms(context, node, run)
    if until is None:  # a time from the data that is not there: go on at once
        until = context.now_ms
    run["wait_until_ms"] = until
    run["due_ms"] = min(until, run["ends_ms"])


def _wait_until_ms(context: _Context, node: Node, run: dict[str, Any]) -> int | None:
    now_ms = context.now_ms
    if node.kind is NodeKind.WAIT_FOR:
        return now_ms + node.timeout_ms
    if node.wait_ms is not None:
        return now_ms + node.wait_ms
    if node.until_local is not None:
        return _next_local_time(context, node.until_local)
    assert node.until is not None
    try:
        started = entry_event(run, context.state.customer_key)
        return max(now_ms, int(context.conditions(started)().number(node.until, now_ms)))
    except (ConditionError, ValueError, OverflowError):
        return None


def _next_local_time(context: _Context, minute_of_day: int) -> int:
    """The next moment the customer's clock shows ``minute_of_day`` (later than now)."""
    zone = customer_zone(context.state.timezone, context.policy.contact.default_timezone)
    local = datetime.fromtimestamp(context.now_ms / 1000, tz=zone)
    target = local.replace(
        hour=minute_of_day // 60, minute=minute_of_day % 60, second=0, microsecond=0
    )
    if target <= local:
        target = (target.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return int(target.timestamp() * 1000)


def _end(
    context: _Context,
    journey: Journey,
    run: dict[str, Any],
    reason: str,
    *,
    finished: bool = False,
) -> None:
    _finish(context, journey.id, journey.version, run, reason, finished=finished)


def _finish(
    context: _Context,
    journey_id: str,
    version: str,
    run: dict[str, Any],
    reason: str,
    *,
    finished: bool = False,
) -> None:
    """End the run: it leaves the state (its wait with it); re-entry remembers the exit.

    ``finished``: the run reached an exit node, and a message its last steps left held by
    quiet hours still goes; any other end (an exit rule, the goal, the max duration, the
    journey removed) stops them: released, they are withdrawn (``holds.release_due``).
    """
    state = context.state
    state.journeys.pop(journey_id, None)
    if not finished:
        for entry in state.held:
            step = entry["action"].get("journey")
            if step is not None and step["run"] == run["run"]:
                entry["journey_exit"] = reason
    ended = state.journey_ends.get(journey_id, {})
    state.journey_ends[journey_id] = {
        "at_ms": context.now_ms,
        "reason": reason,
        "runs": ended.get("runs", 0) + 1,
    }
    context.step.counts.append(
        JourneyCount(journey_id, version, run["node"], "exited", reason, run.get("group", ""))
    )


def _count(journey: Journey, run: dict[str, Any], what: str, detail: str = "") -> JourneyCount:
    return JourneyCount(journey.id, journey.version, run["node"], what, detail, run["group"])


def _matches(match: EventMatch, event: Event, arriving: Callable[[], Evaluator]) -> bool:
    if match.event != event.type:
        return False
    return match.when is None or _holds(match.when, arriving)


def _holds(condition: Condition, evaluator: Callable[[], Evaluator]) -> bool:
    """A condition that fails to evaluate counts as false (as for timers)."""
    try:
        return evaluator().holds(condition)
    except ConditionError:
        return False
