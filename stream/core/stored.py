"""The stored forms of the process step's tables, and the rules for rewriting them.

- ``customers``: a profile (``CustomerState`` JSON), the stub a merged profile leaves
  (``{"merged_into": key}``: ``Moved``), or nothing;
- ``due``: a customer's earliest deadline in epoch ms, as ASCII digits (``due_entry``);
- ``decisions``: a ring of a customer's latest explain records: under the customer key,
  how many were ever written (``{"written": n}``); under ``ring_key(key, n % kept)``, the
  record numbered n (``[n, record]``). Each decision costs one small write, not a rewrite of
  the whole history (``decision_writes``, ``read_decisions``). A value that is a JSON list
  is the format before 2026-12 (the whole history, newest first): it is read as it is and
  folded into the ring at the customer's next decision;
- ``census``: a partition's counts (``stream.core.census``), JSON, under ``census_key``;
  beside it the partition's per-day performance rows and their list of days
  (``stream.core.performance``: ``p<n>/day/<YYYY-MM-DD>``, ``p<n>/days``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from stream.core.batch import Writes
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


def ring_key(key: bytes, slot: int) -> bytes:
    """The decisions-table key of one slot of a customer's ring."""
    return b"%s\x00%d" % (key, slot)


def _ring_head(stored: bytes | None) -> tuple[int, list[dict[str, Any]]]:
    """(records written so far, records of the old list format to carry, oldest first)."""
    if stored is None:
        return 0, []
    head = orjson.loads(stored)
    if isinstance(head, list):  # the whole history, newest first (before 2026-12)
        return 0, list(reversed(head))
    return int(head["written"]), []


def decision_writes(
    key: bytes, new: list[dict[str, Any]], stored: bytes | None, kept: int
) -> Writes:
    """The writes that add ``new`` (oldest first) to a customer's ring of ``kept``."""
    written, carried = _ring_head(stored)
    records = [*carried, *new]
    total = written + len(records)
    writes: Writes = {
        ring_key(key, number % kept): orjson.dumps([number, records[number - written]])
        for number in range(max(written, total - kept), total)
    }
    writes[key] = orjson.dumps({"written": total})
    return writes


def decision_deletes(key: bytes, stored: bytes | None, kept: int) -> Writes:
    """The writes that delete a customer's ring (its erasure)."""
    if stored is None:
        return {}
    written, _ = _ring_head(stored)
    deletes: Writes = {ring_key(key, slot): None for slot in range(min(written, kept))}
    deletes[key] = None
    return deletes


def read_decisions(
    get: Callable[[bytes], bytes | None], key: bytes, kept: int
) -> list[dict[str, Any]] | None:
    """A customer's latest explain records, newest first; None if it has none stored."""
    stored = get(key)
    if stored is None:
        return None
    written, carried = _ring_head(stored)
    if carried:
        return list(reversed(carried))
    numbered = []
    for slot in range(min(written, kept)):
        value = get(ring_key(key, slot))
        if value is not None:
            numbered.append(orjson.loads(value))
    return [record for _, record in sorted(numbered, key=lambda item: -item[0])]


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


class Tables:
    """The tables by name (Faust tables in the worker, dicts in replays and tests): read
    as the fold's ``StoredView``, written as the state writer of ``Outputs.commit``."""

    def __init__(self, tables: Mapping[str, Any] | None = None) -> None:
        self.tables: Mapping[str, Any] = (
            tables
            if tables is not None
            else {name: {} for name in (CUSTOMERS, DUE, DECISIONS, CENSUS)}
        )

    def profile(self, key: bytes) -> bytes | None:
        """The customers-table value of a key."""
        return self.tables[CUSTOMERS].get(key)  # type: ignore[no-any-return]

    def due(self, key: bytes) -> bytes | None:
        """The due-table value of a key."""
        return self.tables[DUE].get(key)  # type: ignore[no-any-return]

    def decisions(self, key: bytes) -> bytes | None:
        """The decisions-table value of a key."""
        return self.tables[DECISIONS].get(key)  # type: ignore[no-any-return]

    def census(self, partition: int) -> bytes | None:
        """The census row of a partition."""
        return self.tables[CENSUS].get(census_key(partition))  # type: ignore[no-any-return]

    def census_row(self, key: bytes) -> bytes | None:
        """The census-table value of a key."""
        return self.tables[CENSUS].get(key)  # type: ignore[no-any-return]

    def write(self, writes: Mapping[str, Mapping[bytes, bytes | None]]) -> None:
        """Apply a batch's writes: a value, or None to delete the key (a tombstone in a
        changelog). A key already gone (a ring slot never filled after
        ``JOURNEY_DECISIONS_KEPT`` grew) is not an error."""
        for name, changes in writes.items():
            table = self.tables[name]
            for key, value in changes.items():
                if value is None:
                    with contextlib.suppress(KeyError):
                        del table[key]
                else:
                    table[key] = value
