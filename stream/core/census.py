"""Per-partition counts of customers by stage, pending timers and held actions.

Kept exactly by deltas: whenever a batch changes a customer, the shell adds
``summary(after) - summary(before)`` to its partition's census row (one table write per
partition per batch), so the counts need no scan, survive restarts and move with their
partition in a rebalance. Merged stubs and erased profiles count for nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from stream.core.state import CustomerState


def summary(state: object) -> Counter[str]:
    """What one stored profile adds to its partition's census (a stub or None: nothing)."""
    counts: Counter[str] = Counter()
    if not isinstance(state, CustomerState):
        return counts
    counts[f"stage:{state.stage}"] += 1
    for name in state.timers:
        counts[f"timer:{name}"] += 1
    if state.held:
        counts["held"] += len(state.held)
    return counts


def delta(before: object, after: object) -> Counter[str]:
    """The change a customer's new state makes to the census (may be negative)."""
    return delta_from(summary(before), after)


def delta_from(before: Counter[str], after: object) -> Counter[str]:
    """``delta`` when the earlier summary is already known."""
    change = summary(after)
    change.subtract(before)
    return Counter({key: value for key, value in change.items() if value})


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
