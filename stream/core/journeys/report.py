"""What the journeys API and page show: each journey's graph with the census's live counts.

Pure: from a census total (``census.runs_at`` and ``census.journey_moves``, summed over
every worker) and the policy's journeys to JSON-ready dicts. A journey is listed when the
policy in force has it or when the census still counts runs of it (a journey removed
from the policy, a version left behind by a reload); a version is listed when it is the
current one or has counts. A version this worker no longer knows the definition of (the
worker restarted since a reload) is reported from its counts alone (``known: false``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stream.core import census
from stream.core.decide.durations import DURATION_MS
from stream.core.journeys.graph import NodeKind
from stream.core.journeys.spec import Journey, Node

if TYPE_CHECKING:
    from stream.core.decide.policy import Condition

GROUPS = ("treatment", "control")


@dataclass
class VersionCounts:
    """The census's counts of one journey version."""

    runs_at: Counter[str] = field(default_factory=Counter)  # node -> runs there now
    moves: list[dict[str, Any]] = field(default_factory=list)  # census.journey_moves rows

    def total(self, move: str, node: str | None = None) -> int:
        """How often ``move`` happened (at ``node``, if given)."""
        return sum(
            row["count"]
            for row in self.moves
            if row["move"] == move and (node is None or row["node"] == node)
        )

    def by_detail(self, move: str, node: str | None = None) -> dict[str, int]:
        """Counts of ``move`` per detail (a reason), most frequent first."""
        found: Counter[str] = Counter()
        for row in self.moves:
            if row["move"] == move and (node is None or row["node"] == node):
                found[row["detail"]] += row["count"]
        return _ranked(found)

    def by_group(self, move: str) -> dict[str, int]:
        """Counts of ``move`` per universal control group (treatment, control)."""
        found = {group: 0 for group in GROUPS}
        for row in self.moves:
            if row["move"] == move and row["group"] in found:
                found[row["group"]] += row["count"]
        return found


def journey_of(version: str) -> str:
    """The journey id of a version (``<id>@<hash>``)."""
    return version.rpartition("@")[0] or version


def counts_by_version(total: Mapping[str, int]) -> dict[str, VersionCounts]:
    """The census's journey counts, per journey version."""
    found: dict[str, VersionCounts] = {}
    for (version, node), count in census.runs_at(total).items():
        found.setdefault(version, VersionCounts()).runs_at[node] += count
    for row in census.journey_moves(total):
        found.setdefault(row["version"], VersionCounts()).moves.append(row)
    return found


def journey_summaries(
    total: Mapping[str, int], journeys: Sequence[Journey], versions: Mapping[str, Journey]
) -> list[dict[str, Any]]:
    """Every journey of the policy (in its order), then every other one with counts (by id):
    its versions and their entered, active, converted, exited and conversion by group."""
    counted = counts_by_version(total)
    current = {journey.id: journey for journey in journeys}
    removed = sorted({journey_of(version) for version in counted} - set(current))
    return [
        _summary(journey_id, current.get(journey_id), counted, versions)
        for journey_id in [*current, *removed]
    ]


def journey_report(
    journey_id: str,
    total: Mapping[str, int],
    journeys: Sequence[Journey],
    versions: Mapping[str, Journey],
) -> dict[str, Any] | None:
    """One journey, per version: its nodes and edges with their counts; None if unknown."""
    counted = counts_by_version(total)
    current = next((journey for journey in journeys if journey.id == journey_id), None)
    listed = _versions_of(journey_id, current, counted)
    if not listed:
        return None
    return {
        **_heading(journey_id, current, listed, versions),
        "versions": [
            _version_report(version, current, versions.get(version), counted.get(version))
            for version in listed
        ],
    }


def _versions_of(
    journey_id: str, current: Journey | None, counted: Mapping[str, VersionCounts]
) -> list[str]:
    """The current version first, then every other one with counts, by name."""
    first = [current.version] if current is not None else []
    others = sorted(v for v in counted if journey_of(v) == journey_id and v not in first)
    return [*first, *others]


def _heading(
    journey_id: str, current: Journey | None, listed: Sequence[str], versions: Mapping[str, Journey]
) -> dict[str, Any]:
    known = current or next((versions[v] for v in listed if v in versions), None)
    return {
        "id": journey_id,
        "description": known.description if known is not None else "",
        "in_policy": current is not None,
        "current_version": current.version if current is not None else None,
    }


def _summary(
    journey_id: str,
    current: Journey | None,
    counted: Mapping[str, VersionCounts],
    versions: Mapping[str, Journey],
) -> dict[str, Any]:
    listed = _versions_of(journey_id, current, counted)
    rows = [
        {"version": v, "current": current is not None and v == current.version}
        | _totals(counted.get(v, VersionCounts()))
        for v in listed
    ]
    together = VersionCounts()
    for version in listed:
        counts = counted.get(version, VersionCounts())
        together.runs_at.update(counts.runs_at)
        together.moves.extend(counts.moves)
    return {
        **_heading(journey_id, current, listed, versions),
        **_totals(together),
        "versions": rows,
    }


def _totals(counts: VersionCounts) -> dict[str, Any]:
    """Entered, active now, converted, exited by reason, conversion treated vs control."""
    entered, converted = counts.by_group("entered"), counts.by_group("converted")
    return {
        "entered": counts.total("entered"),
        "active": sum(counts.runs_at.values()),
        "converted": counts.total("converted"),
        "exited": counts.by_detail("exited"),
        "conversion": {
            group: {
                "entered": entered[group],
                "converted": converted[group],
                "rate": round(converted[group] / entered[group], 4) if entered[group] else None,
            }
            for group in GROUPS
        },
    }


def _version_report(
    version: str, current: Journey | None, journey: Journey | None, counts: VersionCounts | None
) -> dict[str, Any]:
    counts = counts or VersionCounts()
    head = {
        "version": version,
        "current": current is not None and version == current.version,
        "known": journey is not None,
    }
    if journey is None:
        return head | _unknown_graph(counts) | _totals(counts)
    nodes = [_node_report(node, journey, counts) for node in journey.nodes.values()]
    edges = [
        _edge(node.name, label, target, counts)
        for node in journey.nodes.values()
        for label, target in node.edges()
    ]
    return head | _definition(journey) | {"nodes": nodes, "edges": edges} | _totals(counts)


def _unknown_graph(counts: VersionCounts) -> dict[str, Any]:
    """Nodes and edges as far as the counts tell (a version whose definition is gone)."""
    named = set(counts.runs_at) | {row["node"] for row in counts.moves}
    nodes = [_node_counts(name, counts) | {"name": name, "kind": None} for name in sorted(named)]
    taken = sorted({(row["node"], row["detail"]) for row in counts.moves if row["move"] == "edge"})
    edges = [_edge(node, label, None, counts) for node, label in taken]
    return {"start": None, "nodes": nodes, "edges": edges}


def _definition(journey: Journey) -> dict[str, Any]:
    """The journey's entry, exits, goal, maximum duration and start node."""
    entry: dict[str, Any] = {"condition": _source(journey.entry_condition)}
    if journey.entries:
        kind = "timer" if journey.entry_timer else "event"
        entry = {
            kind: ", ".join(match.event for match in journey.entries),
            "when": _source(journey.entries[0].when),
        }
    goal = journey.goal
    return {
        "description": journey.description,
        "entry": entry,
        "goal": {"event": goal.match.event, "when": _source(goal.match.when), "exits": goal.exits}
        if goal is not None
        else None,
        "exits": [
            {
                "reason": rule.reason,
                "event": rule.event.event if rule.event is not None else None,
                "when": _source(rule.event.when if rule.event is not None else rule.condition),
            }
            for rule in journey.exits
        ],
        "max_duration": duration_text(journey.max_duration_ms),
        "start": journey.start,
    }


def _node_report(node: Node, journey: Journey, counts: VersionCounts) -> dict[str, Any]:
    return (
        {"name": node.name, "kind": node.kind.value, "start": node.name == journey.start}
        | {"does": node_summary(node)}
        | ({"description": node.description} if node.description else {})
        | _node_fields(node)
        | _node_counts(node.name, counts)
    )


def _node_counts(name: str, counts: VersionCounts) -> dict[str, Any]:
    return {
        "runs_now": counts.runs_at.get(name, 0),
        "entered": counts.total("entered", name),
        "suppressed": counts.by_detail("suppressed", name),
        "exited": counts.by_detail("exited", name),
        "converted": counts.total("converted", name),
    }


def _edge(node: str, label: str, target: str | None, counts: VersionCounts) -> dict[str, Any]:
    taken = sum(
        row["count"]
        for row in counts.moves
        if row["move"] == "edge" and row["node"] == node and row["detail"] == label
    )
    return {"from": node, "label": label, "to": target, "count": taken}


def _node_fields(node: Node) -> dict[str, Any]:
    """What the node does, as data: actions, wait, awaited event or outcome, cases, arms."""
    kind = node.kind
    if kind in (NodeKind.SEND, NodeKind.DECIDE):
        return {"actions": list(node.actions)}
    if kind is NodeKind.WAIT:
        return {"wait": _wait_fields(node)}
    if kind is NodeKind.WAIT_FOR:
        awaits: dict[str, Any] = (
            {"event": node.event.event, "when": _source(node.event.when), "match": list(node.match)}
            if node.event is not None
            else {"outcome": node.outcome}
        )
        return {"awaits": awaits, "timeout": duration_text(node.timeout_ms)}
    if kind is NodeKind.BRANCH:
        return {"cases": [{"name": case.name, "when": case.when.source} for case in node.cases]}
    if kind is NodeKind.SPLIT:
        return {"arms": [{"name": arm.name, "weight": arm.weight} for arm in node.arms]}
    return {"reason": node.reason}


def _wait_fields(node: Node) -> dict[str, Any]:
    if node.wait_ms is not None:
        return {"duration": duration_text(node.wait_ms)}
    if node.until_local is not None:
        return {"until_local": _clock(node.until_local)}
    return {"until": _source(node.until)}


def node_summary(node: Node) -> str:
    """One line saying what a node does (``send app_invite``, ``wait 2d``...)."""
    kind = node.kind
    if kind is NodeKind.SEND:
        return f"send {node.actions[0]}"
    if kind is NodeKind.DECIDE:
        return f"decide among {', '.join(node.actions)}"
    if kind is NodeKind.WAIT:
        return f"wait {_wait_text(node)}"
    if kind is NodeKind.WAIT_FOR:
        return f"wait for {_awaited_text(node)}, up to {duration_text(node.timeout_ms)}"
    if kind is NodeKind.BRANCH:
        return f"branch: {', '.join([*(case.name for case in node.cases), 'else'])}"
    if kind is NodeKind.SPLIT:
        return f"split: {', '.join(f'{arm.name} {arm.weight} %' for arm in node.arms)}"
    return f"exit: {node.reason}"


def _wait_text(node: Node) -> str:
    if node.wait_ms is not None:
        return duration_text(node.wait_ms)
    if node.until_local is not None:
        return f"until {_clock(node.until_local)} local time"
    return f"until {_source(node.until)}"


def _awaited_text(node: Node) -> str:
    if node.event is None:
        return f"the last message to be {node.outcome}"
    text = node.event.event
    if node.match:
        text += f" (same {', '.join(node.match)})"
    if node.event.when is not None:
        text += f" where {node.event.when.source}"
    return text


def duration_text(ms: int) -> str:
    """A duration as the policy writes it, in its largest exact unit (``2d``, ``90m``)."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % DURATION_MS[unit] == 0:
            return f"{ms // DURATION_MS[unit]}{unit}"
    return f"{ms}ms"


def _clock(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def _source(condition: Condition | None) -> str | None:
    """The CEL source of a condition (None for none)."""
    return None if condition is None else condition.source


def _ranked(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
