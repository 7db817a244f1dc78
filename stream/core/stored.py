"""The stored forms of the process step's tables, and the rules for rewriting them.

- ``customers``: a profile (``CustomerState`` JSON), the stub a merged profile leaves
  (``{"merged_into": key}``: ``Moved``), or nothing;
- ``due``: a customer's earliest deadline in epoch ms, as ASCII digits (``due_entry``);
- ``decisions``: the latest explain records of a customer, newest first (``kept_decisions``);
- ``census``: a partition's counts (``stream.core.census``), JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from stream.core.state import CustomerState


@dataclass(frozen=True, slots=True)
class Moved:
    """What is left of a profile merged into another: where its messages go now."""

    into: str


Profile = CustomerState | Moved | None


def load_profile(stored: bytes | None) -> Profile:
    """A stored customer-table value: a profile, the stub of a merged one, or nothing."""
    if stored is None:
        return None
    data = orjson.loads(stored)
    if "merged_into" in data:
        return Moved(data["merged_into"])
    return CustomerState.from_dict(data)


def dump_profile(profile: Profile) -> bytes | None:
    """The stored value of a profile; None deletes it (a tombstone in the changelog)."""
    if profile is None:
        return None
    if isinstance(profile, Moved):
        return orjson.dumps({"merged_into": profile.into})
    return profile.to_json()


def kept_decisions(new: list[dict[str, Any]], stored: bytes | None, kept: int) -> bytes:
    """The decision history with ``new`` (oldest first) in front, at most ``kept`` long."""
    older = orjson.loads(stored) if stored is not None else []
    return orjson.dumps([*reversed(new), *older][:kept])


@dataclass(frozen=True, slots=True)
class DueEntry:
    """The due table's answer for one customer: what to write and what the index keeps."""

    write: bool  # the entry changes (``value`` None: delete it)
    value: bytes | None
    index_ms: int | None  # the deadline the scheduler's index holds for the customer


def due_entry(stored: bytes | None, due_ms: int | None, now_ms: int, erased: bool) -> DueEntry:
    """Keep the due entry no later than the state's next deadline.

    It is written when the deadline comes earlier, when the stored one has passed (it
    fired, or was early), and on erasure. A deadline that only moved later (the 30-day
    inactivity timer, re-armed by every event) keeps the earlier entry: one early firing
    later finds nothing due and corrects it, instead of a table and changelog write per
    event. Checked for every customer a batch touched, so a crash between the state and
    due writes heals on the customer's next message.
    """
    stored_ms = int(stored) if stored is not None else None
    passed = stored_ms is not None and stored_ms <= now_ms
    if erased or (passed and due_ms is None):
        return DueEntry(stored is not None, None, None)
    if (
        due_ms is not None
        and due_ms != stored_ms
        and (stored_ms is None or due_ms < stored_ms or passed)
    ):
        return DueEntry(True, str(due_ms).encode(), due_ms)
    return DueEntry(False, stored, stored_ms)


CUSTOMERS, DUE, DECISIONS, CENSUS = "customers", "due", "decisions", "census"
ALIASES, PROPENSITY = "aliases", "propensity"


def census_key(partition: int) -> bytes:
    """The census table's key for a partition's row."""
    return f"p{partition}".encode()


class MemoryTables:
    """The process step's tables as dicts: a ``StoredView`` for replays and tests."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {
            name: {} for name in (CUSTOMERS, DUE, DECISIONS, CENSUS)
        }

    def profile(self, key: bytes) -> bytes | None:
        """The customers-table value of a key."""
        return self.tables[CUSTOMERS].get(key)

    def due(self, key: bytes) -> bytes | None:
        """The due-table value of a key."""
        return self.tables[DUE].get(key)

    def decisions(self, key: bytes) -> bytes | None:
        """The decisions-table value of a key."""
        return self.tables[DECISIONS].get(key)

    def census(self, partition: int) -> bytes | None:
        """The census row of a partition."""
        return self.tables[CENSUS].get(census_key(partition))

    def write(self, writes: Mapping[str, Mapping[bytes, bytes | None]]) -> None:
        """Apply a batch's writes as the worker's state writer does (None deletes)."""
        for name, changes in writes.items():
            table = self.tables[name]
            for key, value in changes.items():
                if value is None:
                    del table[key]
                else:
                    table[key] = value
