"""Build and check the policy's ``journeys:`` section (called by ``load_policy``).

Every problem is reported with the path of the value, which the policy loader turns into
``file:line``: unknown events, actions or nodes (with the nearest name), CEL that reads
what its variables do not have, unreachable nodes, dangling edges, a cycle without a
wait, a wait longer than the journey's max duration, split weights not adding up to 100,
a ``match`` property one of the two events does not have.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from stream.core.decide.durations import close_name, lenient_duration_ms
from stream.core.decide.shapes import Record, Shape
from stream.core.journeys.graph import (
    Edge,
    NodeKind,
    NodeSpec,
    Path,
    check_graph,
    check_split_weights,
)
from stream.core.journeys.spec import (
    Arm,
    Case,
    EventMatch,
    ExitRule,
    Goal,
    Journey,
    Node,
    Reentry,
    SendResult,
)

if TYPE_CHECKING:
    from stream.core.decide.policy import Condition, _Build

DAY_MS = 86_400_000
TIMER_ENTRY = "timer:"
_KINDS = {kind.value: kind for kind in NodeKind}


def journey_actions(items: Any) -> dict[str, set[str]]:
    """Per action id, the event types that can start a journey run that sends it.

    Read before any check passed (the actions' conditions are checked against these
    events too); a journey entered by a condition can start on any event: ``*``.
    """
    found: dict[str, set[str]] = {}
    for journey in items if isinstance(items, list) else []:
        if not isinstance(journey, dict) or not isinstance(journey.get("nodes"), dict):
            continue
        given = journey.get("entry")
        entry: dict[str, Any] = given if isinstance(given, dict) else {}
        event = entry.get("event")
        events = [e for e in event if isinstance(e, str)] if isinstance(event, list) else [event]
        if isinstance(entry.get("timer"), str):
            events = [f"{TIMER_ENTRY}{entry['timer']}"]
        for node in journey["nodes"].values():
            if not isinstance(node, dict):
                continue
            named = [node.get("send"), *(node.get("decide") or [])]
            for action in named:
                if isinstance(action, str):
                    starts = {e if isinstance(e, str) else "*" for e in events}
                    found.setdefault(action, set()).update(starts)
    return found


def load_journeys(
    build: _Build, items: Iterable[tuple[int, dict[str, Any]]], action_ids: Iterable[str]
) -> tuple[Journey, ...]:
    """The policy's journeys, every problem reported through ``build.checker``.

    ``items``: each journey with its position in the policy (the schema check may have
    left some out), so that a problem names the journey's own line.
    """
    journeys: list[Journey] = []
    actions = frozenset(action_ids)
    for index, data in items:
        path: Path = ("journeys", index)
        if data["id"] in {journey.id for journey in journeys}:
            build.checker.problem((*path, "id"), f"duplicate journey id {data['id']!r}")
        journeys.append(_journey(build, data, path, actions, index))
    return tuple(journeys)


def journey_version(data: Mapping[str, Any]) -> str:
    """``<id>@<hash>``: the same definition always gives the same version."""
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{data['id']}@{digest[:10]}"


def _journey(
    build: _Build, data: dict[str, Any], path: Path, actions: frozenset[str], order: int
) -> Journey:
    entry_data = data["entry"]
    entries = _entries(build, entry_data, (*path, "entry"))
    node_scope = _entry_scope(build, entry_data)
    entry_condition = None
    if not entries:
        entry_condition = build.checker.condition(
            entry_data, "condition", (*path, "entry"), build.scope.variables(build.event_types)
        )
    max_duration_ms = lenient_duration_ms(data["max_duration"])
    nodes = {
        name: dataclasses.replace(
            _node(build, name, node, (*path, "nodes", name), node_scope, actions, entries),
            description=node.get("description", ""),
        )
        for name, node in data["nodes"].items()
    }
    _check_nodes(build, data, path, nodes, max_duration_ms)
    reentry, cooldown_ms = _reentry(data.get("reentry", "after_exit"))
    goal = data.get("goal")
    return Journey(
        id=data["id"],
        version=journey_version(data),
        description=data.get("description", ""),
        entries=entries,
        entry_timer="timer" in entry_data,
        entry_condition=entry_condition,
        reentry=reentry,
        cooldown_ms=cooldown_ms,
        max_duration_ms=max_duration_ms,
        exits=tuple(
            _exit(build, rule, (*path, "exit", position))
            for position, rule in enumerate(data.get("exit", []))
        ),
        goal=Goal(_event_match(build, goal, (*path, "goal")), bool(goal.get("exit")))
        if goal is not None
        else None,
        start=data["start"],
        nodes=nodes,
        order=order,
    )


def _reentry(value: Any) -> tuple[Reentry, int]:
    if isinstance(value, dict):
        return Reentry.COOLDOWN, lenient_duration_ms(value["cooldown"])
    return Reentry(value), 0


def _entries(build: _Build, data: dict[str, Any], path: Path) -> tuple[EventMatch, ...]:
    """The events (or the fired timer) that start a run; none for a condition entry."""
    if "event" in data:
        events = data["event"] if isinstance(data["event"], list) else [data["event"]]
        listed = isinstance(data["event"], list)
        for position, event in enumerate(events):
            if event not in build.event_types:
                where = (*path, "event", position) if listed else (*path, "event")
                build.unknown_event(where, event)
        scope = build.scope.variables(set(events) & build.event_types)
        when = build.checker.condition(data, "when", path, scope)
        return tuple(EventMatch(event, when) for event in events)
    timer = data.get("timer")
    if timer is None:
        return ()
    if timer not in build.timer_starts:
        known = ", ".join(sorted(build.timer_starts)) or "none"
        build.checker.problem((*path, "timer"), f"unknown timer {timer!r}; declared: {known}")
    scope = _entry_scope(build, data)
    return (EventMatch(timer, build.checker.condition(data, "when", path, scope)),)


def _entry_scope(build: _Build, data: dict[str, Any]) -> dict[str, Shape]:
    """The variables a run's nodes see: ``event`` is the one that started the run."""
    if "event" in data:
        events = data["event"] if isinstance(data["event"], list) else [data["event"]]
        return build.scope.variables(set(events) & build.event_types)
    timer = data.get("timer")
    if isinstance(timer, str) and timer in build.timer_starts:
        return build.scope.variables((), {timer: build.timer_starts[timer]})
    return build.scope.variables(build.event_types)


def _event_match(build: _Build, data: dict[str, Any], path: Path) -> EventMatch:
    """An event type (checked) and its condition, which sees that event."""
    event = data["event"]
    if event not in build.event_types:
        build.unknown_event((*path, "event"), event)
    variables = build.scope.variables({event} & build.event_types)
    return EventMatch(event, build.checker.condition(data, "when", path, variables))


def _exit(build: _Build, data: dict[str, Any], path: Path) -> ExitRule:
    if "event" in data:
        match = _event_match(build, data, path)
        return ExitRule(data.get("reason", match.event), event=match)
    variables = build.scope.variables(build.event_types)
    condition = build.checker.condition(data, "condition", path, variables)
    return ExitRule(data.get("reason", "condition"), condition=condition)


def _node(
    build: _Build,
    name: str,
    data: dict[str, Any],
    path: Path,
    scope: dict[str, Shape],
    actions: frozenset[str],
    entries: tuple[EventMatch, ...],
) -> Node:
    kind = next(_KINDS[key] for key in data if key in _KINDS)
    if kind in (NodeKind.SEND, NodeKind.DECIDE):
        return _send_node(build, name, kind, data, path, actions)
    if kind is NodeKind.WAIT:
        return _wait_node(build, name, data, path, scope)
    if kind is NodeKind.WAIT_FOR:
        return _wait_for_node(build, name, data, path, entries)
    if kind is NodeKind.BRANCH:
        cases = tuple(
            Case(case.get("name", f"case_{position + 1}"), when, case["next"])
            for position, case in enumerate(data["branch"])
            if (when := _condition(build, case, "when", (*path, "branch", position), scope))
        )
        return Node(name, kind, next=data["else"], cases=cases)
    if kind is NodeKind.SPLIT:
        arms = tuple(Arm(arm["arm"], arm["weight"], arm["next"]) for arm in data["split"])
        for problem in check_split_weights([arm.weight for arm in arms], (*path, "split")):
            build.checker.problem(problem.path, problem.message)
        return Node(name, kind, arms=arms)
    return Node(name, kind, reason=data["exit"])


def _condition(
    build: _Build, data: dict[str, Any], key: str, path: Path, scope: dict[str, Shape]
) -> Condition | None:
    return build.checker.condition(data, key, path, scope)


def _send_node(
    build: _Build,
    name: str,
    kind: NodeKind,
    data: dict[str, Any],
    path: Path,
    actions: frozenset[str],
) -> Node:
    named = [data["send"]] if kind is NodeKind.SEND else list(data["decide"])
    for position, action in enumerate(named):
        if action not in actions:
            where = (*path, "send") if kind is NodeKind.SEND else (*path, "decide", position)
            build.checker.problem(where, _unknown_action(action, actions))
    on_result = tuple((result, data[result.value]) for result in SendResult if result.value in data)
    return Node(name, kind, next=data["next"], actions=tuple(named), on_result=on_result)


def _unknown_action(action: str, actions: frozenset[str]) -> str:
    return f"unknown action {action!r}{close_name(action, actions)}"


def _wait_node(
    build: _Build, name: str, data: dict[str, Any], path: Path, scope: dict[str, Shape]
) -> Node:
    wait = data["wait"]
    if isinstance(wait, str):
        wait_ms = lenient_duration_ms(wait)
        if wait_ms <= 0:
            build.checker.problem((*path, "wait"), "a wait must be positive")
        return Node(name, NodeKind.WAIT, next=data["next"], wait_ms=wait_ms)
    if "until_local" in wait:
        hours, minutes = str(wait["until_local"]).split(":")
        local = int(hours) * 60 + int(minutes)
        return Node(name, NodeKind.WAIT, next=data["next"], until_local=local)
    until = _condition(build, wait, "until", (*path, "wait"), scope)
    return Node(name, NodeKind.WAIT, next=data["next"], until=until)


def _wait_for_node(
    build: _Build, name: str, data: dict[str, Any], path: Path, entries: tuple[EventMatch, ...]
) -> Node:
    wanted = data["wait_for"]
    match = tuple(wanted.get("match", []))
    event = None
    if "event" in wanted:
        event = _event_match(build, wanted, (*path, "wait_for"))
        _check_match(build, match, event.event, entries, (*path, "wait_for", "match"))
    elif match:
        build.checker.problem((*path, "wait_for", "match"), "match is only for an event")
    return Node(
        name,
        NodeKind.WAIT_FOR,
        next=data["next"],
        event=event,
        match=match,
        outcome=wanted.get("outcome"),
        timeout_ms=lenient_duration_ms(data["timeout"]),
        on_timeout=data["on_timeout"],
    )


def _check_match(
    build: _Build,
    keys: tuple[str, ...],
    event: str,
    entries: tuple[EventMatch, ...],
    path: Path,
) -> None:
    """Each matched property exists on the awaited event and on every entry event."""
    if not keys:
        return
    if not entries:
        build.checker.problem(path, "match needs a journey entered by an event")
        return
    for position, key in enumerate(keys):
        for type_ in (event, *(entry.event for entry in entries)):
            shape = build.scope.properties.get(type_)
            if isinstance(shape, Record) and key not in shape.fields:
                known = ", ".join(sorted(shape.fields))
                build.checker.problem(
                    (*path, position), f"{type_} has no property {key!r}; it has: {known}"
                )


def _check_nodes(
    build: _Build,
    data: dict[str, Any],
    path: Path,
    nodes: Mapping[str, Node],
    max_duration_ms: int,
) -> None:
    """The graph checks: dangling edges, reachability, cycles, waits vs max duration."""
    specs = {}
    for name, node in nodes.items():
        where = (*path, "nodes", name)
        edges = _edges(data["nodes"][name], where)
        specs[name] = NodeSpec(name, node.kind, edges, where, _longest_wait(node))
    for problem in check_graph(data["start"], specs, max_duration_ms, (*path, "start")):
        build.checker.problem(problem.path, problem.message)


_EDGE_KEYS = ("next", *(result.value for result in SendResult), "else", "on_timeout")


def _edges(data: dict[str, Any], path: Path) -> tuple[Edge, ...]:
    """Each edge the policy writes, with the path of the value that names its target."""
    edges = [Edge(key, data[key], (*path, key)) for key in _EDGE_KEYS if key in data]
    for position, case in enumerate(data.get("branch", [])):
        name = case.get("name", f"case_{position + 1}")
        edges.append(Edge(name, case["next"], (*path, "branch", position, "next")))
    for position, arm in enumerate(data.get("split", [])):
        edges.append(Edge(arm["arm"], arm["next"], (*path, "split", position, "next")))
    return tuple(edges)


def _longest_wait(node: Node) -> int | None:
    if node.kind is NodeKind.WAIT_FOR:
        return node.timeout_ms
    if node.wait_ms is not None:
        return node.wait_ms
    if node.until_local is not None:
        return DAY_MS
    return None


def journey_expressions(journeys: Iterable[Journey]) -> Iterable[str]:
    """The source of every condition of the journeys (what the decision views must hold)."""
    for journey in journeys:
        matches = [*journey.entries, journey.goal.match if journey.goal else None]
        matches += [rule.event for rule in journey.exits]
        conditions = [journey.entry_condition, *(rule.condition for rule in journey.exits)]
        for node in journey.nodes.values():
            matches.append(node.event)
            conditions += [node.until, *(case.when for case in node.cases)]
        conditions += [match.when for match in matches if match is not None]
        yield from (condition.source for condition in conditions if condition is not None)


def entry_index(journeys: Iterable[Journey]) -> dict[str, tuple[Journey, ...]]:
    """Per event type (or timer name), the journeys it may start, in policy order; under
    ``""`` those only a condition starts (they are in every other entry too)."""
    ordered = list(journeys)
    types = {entry.event for journey in ordered for entry in journey.entries}
    return {
        name: tuple(j for j in ordered if not j.entries or any(e.event == name for e in j.entries))
        for name in (*types, "")
    }
