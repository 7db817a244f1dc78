"""Per-partition counts of customers by stage, pending timers and held actions.

Kept exactly by deltas: whenever a batch changes a customer, the shell adds
``summary(after) - summary(before)`` to its partition's census row (one table write per
partition per batch), so the counts need no scan, survive restarts and move with their
partition in a rebalance. Merged stubs and erased profiles count for nothing. The row
also sums each stage's ``stage_since`` (for the average time in stage) and counts, for
ever, profiles created, profiles merged into another (two profiles found to be one
person: ``people``) and stage transitions (``moved:<from>><to>``): the funnel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from stream.core.stages import Stage
from stream.core.state import CustomerState
from stream.core.stored import Moved

DAY_MS = 86_400_000


def summary(state: object) -> Counter[str]:
    """What one stored profile adds to its partition's census (a stub or None: nothing)."""
    counts: Counter[str] = Counter()
    if not isinstance(state, CustomerState):
        return counts
    counts[f"stage:{state.stage}"] += 1
    counts[f"since:{state.stage}"] += state.stage_since_ms
    for name in state.timers:
        counts[f"timer:{name}"] += 1
    if state.held:
        counts["held"] += len(state.held)
    for run in state.journeys.values():
        counts[at_node(run["version"], run["node"])] += 1
    return counts


def at_node(version: str, node: str) -> str:
    """The census key counting the runs of a journey version at a node now."""
    return f"at:{version}|{node}"


def journey_move(version: str, node: str, move: str, detail: str, group: str) -> str:
    """The census key counting, for ever, a move of a journey run (see ``JourneyCount``)."""
    return f"run:{version}|{node}|{move}|{detail}|{group}"


def runs_at(total: Mapping[str, int]) -> dict[tuple[str, str], int]:
    """Runs now at each (journey version, node)."""
    found = {}
    for key, count in total.items():
        if key.startswith("at:"):
            version, _, node = key.removeprefix("at:").partition("|")
            found[(version, node)] = int(count)
    return found


def journey_moves(total: Mapping[str, int]) -> list[dict[str, Any]]:
    """Every journey move counted: [{"version", "node", "move", "detail", "group", "count"}]."""
    found = []
    for key, count in total.items():
        if key.startswith("run:"):
            version, node, move, detail, group = key.removeprefix("run:").split("|")
            found.append(
                {
                    "version": version,
                    "node": node,
                    "move": move,
                    "detail": detail,
                    "group": group,
                    "count": int(count),
                }
            )
    return found


def delta(before: object, after: object) -> Counter[str]:
    """The change a customer's new state makes to the census (may be negative)."""
    return delta_from(summary(before), after)


def delta_from(before: Counter[str], after: object) -> Counter[str]:
    """``delta`` when the earlier summary is already known."""
    change = summary(after)
    change.subtract(before)
    return Counter({key: value for key, value in change.items() if value})


def people(before: Counter[str], after: object, fresh: bool) -> Counter[str]:
    """How a profile a batch changed changes the count of people who entered the funnel.

    ``before``: its summary before the batch; ``fresh``: it had no profile then. A new
    profile counts as ``created``; a profile counted before that merged into another
    counts as ``merged``, since the two were one person (an anonymous visitor who signed
    up). A profile created and merged within one batch counts as neither.
    """
    if fresh and isinstance(after, CustomerState):
        return Counter({"created": 1})
    if before and isinstance(after, Moved):
        return Counter({"merged": 1})
    return Counter()


def apply(row: Mapping[str, int] | None, changes: Iterable[Counter[str]]) -> dict[str, int]:
    """The census row with ``changes`` added; zero counts are dropped."""
    total: Counter[str] = Counter(row or {})
    for change in changes:
        total.update(change)
    return {key: value for key, value in sorted(total.items()) if value}


def totals(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, int], int]:
    """(customers by stage, pending timers by name, held actions) over census rows."""
    total = apply(None, [Counter(row) for row in rows])
    stages = {k.removeprefix("stage:"): v for k, v in total.items() if k.startswith("stage:")}
    timers = {k.removeprefix("timer:"): v for k, v in total.items() if k.startswith("timer:")}
    return stages, timers, total.get("held", 0)


def moved(from_stage: str, to_stage: str) -> str:
    """The census key counting transitions from one stage to another."""
    return f"moved:{from_stage}>{to_stage}"


def transitions(total: Mapping[str, int]) -> list[dict[str, Any]]:
    """Every transition counted: [{"from", "to", "count"}], most frequent first."""
    found = []
    for key, count in total.items():
        if key.startswith("moved:"):
            from_stage, _, to_stage = key.removeprefix("moved:").partition(">")
            found.append({"from": from_stage, "to": to_stage, "count": int(count)})
    return sorted(found, key=lambda t: (-t["count"], t["from"], t["to"]))


def funnel(total: Mapping[str, int], now_ms: int) -> list[dict[str, Any]]:
    """Per stage, in journey order: customers now, entered and moved on (ever), the share
    not moved on (of those who entered, the share that has not moved to another stage:
    still there, or gone by erasure or merge) and the average days in stage.

    Entering awareness is being created, once per person: profiles created minus profiles
    merged into another. ``drop_off`` is the old name of ``not_moved_on`` (same value).
    """
    moves = transitions(total)
    stages = []
    for stage in Stage:
        name = stage.value
        customers = int(total.get(f"stage:{name}", 0))
        entered = sum(t["count"] for t in moves if t["to"] == name)
        if stage is Stage.AWARENESS:
            entered += max(0, int(total.get("created", 0)) - int(total.get("merged", 0)))
        moved_on = sum(t["count"] for t in moves if t["from"] == name)
        since = total.get(f"since:{name}")
        average = (now_ms - since / customers) / DAY_MS if customers and since else None
        not_moved_on = (
            None
            if stage is Stage.ADVOCACY or not entered
            else round(max(0.0, 1 - moved_on / entered), 4)
        )
        stages.append(
            {
                "stage": name,
                "customers": customers,
                "entered": entered,
                "moved_on": moved_on,
                "not_moved_on": not_moved_on,
                "drop_off": not_moved_on,  # deprecated: the same share under its old name
                "avg_days_in_stage": None if average is None else round(max(0.0, average), 2),
            }
        )
    return stages
