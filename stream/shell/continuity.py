"""Offset continuity: no consumed record may be skipped and then committed over.

Faust (0.15.3) loses records around rebalances. Records fetched while a partition's flow
is paused, or prefetched before a seek, are dropped; a delivery a rebalance interrupts
never reaches the stream, yet the read offset moves past it (and the flow-control resume
that ends a rebalance clears the stream queues, which the drain loop answers with a seek).
The next record then arrives past a hole, Faust marks the hole (and the record after it)
as acked "gap", and its next commit moves the group's offset over records no agent has
seen. Measured: a second worker joining and leaving under load lost events in 4 of 17
runs, up to 20 customers short.

``Continuity`` decides, for every record the drain loop is about to hand to the streams,
whether it is the next one the partition owes. A record past a hole is not delivered:
the partition is sought back to the first missing offset, and the records after the hole
come again. Only when the re-read starts at the same place is the hole real (a compacted
topic, a transaction marker) and accepted as a gap. Pure bookkeeping, no Faust import.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What to do with one consumed record."""

    DELIVER = "deliver"  # the next record of its partition (or nothing known yet)
    BEHIND = "behind"  # re-read before the expected offset, not yet acked: deliver again
    DROP = "drop"  # re-read before the expected offset and already acked
    RESEEK = "reseek"  # past a hole: seek back to ``expected`` and do not deliver
    STALE = "stale"  # after a re-seek, the rest of the fetched batch: do not deliver
    GAP = "gap"  # past a hole a re-read confirmed: mark [expected, offset) done, deliver


@dataclass(frozen=True)
class Judgement:
    """A verdict and the offset the partition owed (None when nothing is known)."""

    verdict: Verdict
    expected: int | None


@dataclass
class Continuity:
    """Per consumer: the last offset delivered per partition and the holes being probed."""

    delivered: dict[Hashable, int] = field(default_factory=dict)
    probing: dict[Hashable, tuple[int, int]] = field(default_factory=dict)
    resought: set[Hashable] = field(default_factory=set)

    def new_fetch(self) -> None:
        """A new batch of fetched records begins: re-sought partitions read afresh."""
        self.resought.clear()

    def expected(
        self, tp: Hashable, read_offset: int | None, start: int | None = None
    ) -> int | None:
        """The offset ``tp`` owes next, from Faust's read offset.

        Faust's read offset is the last record delivered, or, right after a seek, the
        offset sought to (not read yet); ``delivered`` tells the two apart. It has none
        for a partition the group never committed (or committed at 0): then the
        partition owes ``start``, its earliest offset (the worker resets to earliest).
        """
        if read_offset is None:
            return start
        return read_offset + 1 if self.delivered.get(tp) == read_offset else read_offset

    def judge(
        self,
        tp: Hashable,
        offset: int,
        read_offset: int | None,
        redeliverable: Callable[[Hashable, int], bool],
        start: int | None = None,
    ) -> Judgement:
        """The verdict for a record at ``offset`` of ``tp``.

        ``redeliverable(tp, offset)`` says whether a record behind the expected offset is
        still owed (not acked and not before the committed offset). ``start`` is the
        partition's earliest offset, needed only when ``read_offset`` is None.
        """
        if tp in self.resought:
            return Judgement(Verdict.STALE, None)
        expected = self.expected(tp, read_offset, start)
        if expected is None or offset == expected:
            self.probing.pop(tp, None)
            return Judgement(Verdict.DELIVER, expected)
        if offset < expected:
            return Judgement(
                Verdict.BEHIND if redeliverable(tp, offset) else Verdict.DROP, expected
            )
        if self.probing.get(tp) == (expected, offset):
            del self.probing[tp]
            return Judgement(Verdict.GAP, expected)
        self.probing[tp] = (expected, offset)
        self.resought.add(tp)
        return Judgement(Verdict.RESEEK, expected)

    def undelivered(self, tp: Hashable) -> None:
        """A delivery of ``tp`` was interrupted and the partition sought back to it: the
        rest of the fetched batch of ``tp`` is stale."""
        self.resought.add(tp)

    def forget_positions(self) -> None:
        """Every partition was sought (to its committed or earliest offset): what was
        delivered before says nothing about what comes next."""
        self.delivered.clear()
        self.probing.clear()

    def on_delivered(self, tp: Hashable, offset: int) -> None:
        """``offset`` of ``tp`` was handed to the streams (and is Faust's read offset)."""
        self.delivered[tp] = offset
