"""``journey simulate-policy``'s core: replay a window through two policies, side by side.

Every record of the window is decoded once and folded by both sides (``Side``): the
policy in force and the candidate, each on its own tables, at the same processing time,
with the same model, so the Thompson draws (seeded by customer and trigger) are the same
wherever the two policies score the same cells. Their decisions are compared record by
record (``Differences``), and the report says what each side sent, suppressed, capped and
held, how many messages each customer got, what the journeys did, and where and why the
decisions differ. Memory is bounded by the stores the caller gives (on disk for long
windows): the report keeps counts and a few examples only.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from stream.core.decide import Policy
from stream.core.fold import FoldContext
from stream.core.messages import Firing
from stream.core.replay.compare import Differences
from stream.core.replay.log import Clock, LogRecord, processing_ms
from stream.core.replay.side import MESSAGES_KEPT, Side, Summary, decoded
from stream.core.state import CustomerState
from stream.core.stored import CENSUS, CUSTOMERS, DECISIONS, DUE, Tables, load_profile
from stream.core.timestamps import format_ms

Progress = Callable[[int, int], None]  # (records done, the last record's timestamp ms)
PROGRESS_EVERY = 1_000
BUCKETS = ("0", "1", "2", "3", "4", "5+")

LIMITS = (
    "Outcomes after a changed decision are unknown: a recorded outcome is replayed only "
    "where the same action went out on the same channel (outcomes kept and dropped below).",
    "Customers do what the log says they did: a message the candidate sends or holds back "
    "does not change when they come back, click elsewhere or buy.",
    "Both policies decide with the same learned model, frozen for the window ({model}); "
    "the live worker learnt as it went, so the replay of the policy in force can differ "
    "from what was sent.",
    "Customers start the window with what the window itself tells: their state from before "
    "its first record is not replayed.",
)


@dataclass(frozen=True, slots=True)
class Window:
    """What was replayed: where the records came from, and how many."""

    source: str
    records: int
    first_ms: int | None
    last_ms: int | None


def simulate(
    records: Iterable[LogRecord],
    current: Side,
    candidate: Side,
    differences: Differences,
    clock: Clock,
    progress: Progress | None = None,
) -> tuple[int, int | None, int | None]:
    """Fold every record through both sides and compare; (records, earliest and latest
    record timestamps)."""
    count, first, last, now_ms = 0, None, None, None
    for record in records:
        message = decoded(record.value, current, candidate)
        if message is None:
            continue
        now_ms = processing_ms(record, message, clock)
        fire_due(current, candidate, differences, now_ms)
        if not isinstance(message, Firing):  # each side fires its own deadlines
            before = current.apply(record.partition, record.key, message, now_ms)
            after = candidate.apply(record.partition, record.key, message, now_ms)
            differences.compare(before, after)
        count += 1
        stamp = record.timestamp_ms
        first = stamp if first is None else min(first, stamp)
        last = stamp if last is None else max(last, stamp)
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count, stamp)
    if now_ms is not None:
        fire_due(current, candidate, differences, now_ms)
    return count, first, last


def fire_due(current: Side, candidate: Side, differences: Differences, now_ms: int) -> None:
    """Fire each side's deadlines due by ``now_ms`` at their due times, and compare what
    the two sides decided (the same timer due at the same time has the same id)."""
    decided = []
    for side in (current, candidate):
        decisions = []
        for partition, key, firing in side.due(now_ms):
            decisions += side.apply(partition, key, firing, firing.due_ms)
        decided.append(decisions)
    differences.compare(decided[0], decided[1])


def report(
    window: Window,
    current: Side,
    candidate: Side,
    differences: Differences,
    threshold: int,
    model: str,
) -> dict[str, Any]:
    """The replay's report (rendered by ``stream.core.replay.render``; JSON as it is)."""
    customers = _customers(current)
    return {
        "title": f"What if: {candidate.policy.name} instead of {current.policy.name}",
        "window": {
            "source": window.source,
            "records": window.records,
            "from": format_ms(window.first_ms) if window.first_ms is not None else None,
            "to": format_ms(window.last_ms) if window.last_ms is not None else None,
            "customers": customers,
        },
        "policies": {
            side.name: {"name": side.policy.name, "version": side.policy.version}
            for side in (current, candidate)
        },
        "limits": [line.format(model=model) for line in LIMITS] + _failures(current, candidate),
        "sides": {side.name: _side(side, customers, threshold) for side in (current, candidate)},
        "differences": differences.to_dict(),
        "outcomes": {
            side.name: {
                "kept": side.summary.outcomes_kept,
                "dropped": side.summary.outcomes_dropped,
            }
            for side in (current, candidate)
        },
        "failed_records": {
            side.name: {"records": side.summary.failed, "first": side.summary.failure}
            for side in (current, candidate)
        },
    }


def _failures(*sides: Side) -> list[str]:
    """A limit line per side that could not fold some records (the worker could not either)."""
    return [
        f"{side.summary.failed} record(s) could not be folded under the {side.name} policy "
        f"and were skipped, as the worker dead-letters them; the first: {side.summary.failure}"
        for side in sides
        if side.summary.failed
    ]


def _customers(side: Side) -> int:
    """The profiles the window built (merged-away stubs not counted)."""
    table = side.tables.tables[CUSTOMERS]
    return sum(isinstance(load_profile(value), CustomerState) for value in table.values())


def _side(side: Side, customers: int, threshold: int) -> dict[str, Any]:
    summary: Summary = side.summary
    buckets = dict.fromkeys(BUCKETS, 0)
    top: list[tuple[int, str]] = []  # the customers with the most messages, a min-heap
    reached = over = 0
    for customer, count in side.messages_per_customer():
        reached += 1
        buckets[BUCKETS[min(count, len(BUCKETS) - 1)]] += 1
        if count > threshold:
            over += 1
            push = heapq.heappush if len(top) < MESSAGES_KEPT else heapq.heappushpop
            push(top, (count, customer.decode()))
    buckets["0"] = max(0, customers - reached)
    top.sort(reverse=True)
    return {
        "decisions": summary.decisions,
        "messages": summary.messages,
        "actions": dict(summary.actions),
        "channels": dict(summary.channels),
        "stages": dict(summary.stages),
        "suppressions": dict(summary.suppressions),
        "cap_hits": dict(summary.cap_hits),
        "held": dict(summary.held),
        "messages_per_customer": buckets,
        "over_threshold": {
            "threshold": threshold,
            "customers": over,
            "examples": [customer for _, customer in top],
        },
        "journeys": {name: dict(counts) for name, counts in summary.journeys.items()},
    }


StoreFactory = Callable[[str], MutableMapping[bytes, bytes]]


def memory_stores(name: str) -> MutableMapping[bytes, bytes]:
    """A store in memory (tests, short windows)."""
    return {}


def new_side(
    name: str, policy: Policy, context: Callable[[int, Policy], FoldContext], stores: StoreFactory
) -> Side:
    """A side with its tables in the stores ``stores`` makes (one per table)."""
    tables = Tables(
        {
            CUSTOMERS: stores(f"{name}-customers"),
            DUE: stores(f"{name}-due"),
            DECISIONS: stores(f"{name}-decisions"),
            CENSUS: {},  # a row per partition and day: small
        }
    )
    return Side(name, policy, tables, stores(f"{name}-sent"), context)
