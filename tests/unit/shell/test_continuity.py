"""Offset continuity: a record past a hole is re-read before the hole is believed."""

from __future__ import annotations

from stream.shell.continuity import Continuity, Verdict


def owed(tp: object, offset: int) -> bool:
    return True


def settled(tp: object, offset: int) -> bool:
    return False


class Partition:
    """A partition as the drain loop sees it: Faust's read offset and the continuity."""

    def __init__(self, sought_to: int | None) -> None:
        self.read_offset = sought_to
        self.continuity = Continuity()
        self.delivered: list[int] = []

    def fetch(self, *offsets: int, redeliverable=owed) -> list[Verdict]:
        """Judge one fetched batch the way the drain loop does; deliver what it may."""
        self.continuity.new_fetch()
        verdicts = []
        for offset in offsets:
            verdict = self.continuity.judge("tp", offset, self.read_offset, redeliverable).verdict
            verdicts.append(verdict)
            if verdict in (Verdict.DELIVER, Verdict.GAP, Verdict.BEHIND):
                self.delivered.append(offset)
            if verdict in (Verdict.DELIVER, Verdict.GAP):
                self.read_offset = offset
                self.continuity.on_delivered("tp", offset)
        return verdicts


def test_records_in_order_are_delivered_from_the_offset_sought_to() -> None:
    partition = Partition(sought_to=10)
    assert partition.fetch(10, 11, 12) == [Verdict.DELIVER] * 3
    assert partition.fetch(13) == [Verdict.DELIVER]


def test_a_hole_makes_the_partition_seek_back_and_the_rest_of_the_batch_is_stale() -> None:
    partition = Partition(sought_to=10)
    assert partition.fetch(10, 11, 13, 14) == [
        Verdict.DELIVER,
        Verdict.DELIVER,
        Verdict.RESEEK,
        Verdict.STALE,
    ]
    # The re-read from 12 brings the lost record: nothing is skipped.
    assert partition.fetch(12, 13, 14) == [Verdict.DELIVER] * 3
    assert partition.delivered == [10, 11, 12, 13, 14]


def test_a_hole_right_after_a_seek_is_caught_too() -> None:
    # Faust's own check misses it: after a seek its read offset is the unread offset.
    partition = Partition(sought_to=10)
    assert partition.fetch(11) == [Verdict.RESEEK]
    assert partition.fetch(10, 11) == [Verdict.DELIVER, Verdict.DELIVER]


def test_a_hole_the_re_read_confirms_is_a_gap() -> None:
    partition = Partition(sought_to=10)
    assert partition.fetch(10, 13) == [Verdict.DELIVER, Verdict.RESEEK]
    partition.continuity.new_fetch()
    judgement = partition.continuity.judge("tp", 13, partition.read_offset, owed)
    assert judgement.verdict is Verdict.GAP and judgement.expected == 11


def test_a_narrower_hole_on_the_re_read_is_probed_again() -> None:
    partition = Partition(sought_to=10)
    assert partition.fetch(10, 14) == [Verdict.DELIVER, Verdict.RESEEK]
    assert partition.fetch(12) == [Verdict.RESEEK]  # 11 still missing, 12..13 came back
    assert partition.fetch(12, 13, 14) == [Verdict.GAP, Verdict.DELIVER, Verdict.DELIVER]
    assert partition.delivered == [10, 12, 13, 14]


def test_records_behind_are_delivered_while_owed_and_dropped_once_acked() -> None:
    partition = Partition(sought_to=10)
    partition.fetch(10, 11, 12)
    assert partition.fetch(11, redeliverable=owed) == [Verdict.BEHIND]
    assert partition.fetch(11, redeliverable=settled) == [Verdict.DROP]
    assert partition.read_offset == 12  # a record behind does not move the read offset


def test_a_seek_back_to_a_delivered_offset_re_reads_it() -> None:
    partition = Partition(sought_to=10)
    partition.fetch(10, 11)
    partition.read_offset = 11  # Faust sought to the committed offset 11 (not acked yet)
    assert partition.fetch(11, 12) == [Verdict.BEHIND, Verdict.DELIVER]


def test_after_every_partition_is_sought_the_offset_sought_to_is_owed_again() -> None:
    partition = Partition(sought_to=10)
    partition.fetch(10, 11)
    partition.read_offset = 11  # a resume: Faust sought back to the committed 11
    partition.continuity.forget_positions()
    assert partition.fetch(11, 12) == [Verdict.DELIVER, Verdict.DELIVER]
    partition.read_offset = None  # never committed: sought to the earliest offset
    partition.continuity.forget_positions()
    partition.continuity.new_fetch()
    assert partition.continuity.judge("tp", 0, None, owed, start=0).verdict is Verdict.DELIVER


def test_without_a_read_offset_nothing_is_judged() -> None:
    partition = Partition(sought_to=None)
    assert partition.fetch(7, 9) == [Verdict.DELIVER, Verdict.RESEEK]


def test_a_partition_never_committed_owes_its_earliest_offset() -> None:
    # Measured: a partition whose first records were read but not yet committed when a
    # rebalance came had no read offset after it; records fetched during the rebalance
    # were dropped by Faust and the next one went through unjudged.
    continuity = Continuity()
    continuity.new_fetch()
    judged = continuity.judge("tp", 5, None, owed, start=0)
    assert judged.verdict is Verdict.RESEEK and judged.expected == 0
    continuity.new_fetch()
    assert continuity.judge("tp", 0, None, owed, start=0).verdict is Verdict.DELIVER


def test_partitions_are_judged_apart() -> None:
    continuity = Continuity()
    continuity.new_fetch()
    assert continuity.judge("a", 5, 3, owed).verdict is Verdict.RESEEK
    assert continuity.judge("b", 3, 3, owed).verdict is Verdict.DELIVER
    assert continuity.judge("a", 6, 3, owed).verdict is Verdict.STALE


def test_an_interrupted_delivery_is_read_again_and_the_rest_of_its_batch_is_stale() -> None:
    partition = Partition(sought_to=10)
    partition.fetch(10)
    partition.continuity.undelivered("tp")  # 11 was interrupted; sought back to 11
    assert partition.continuity.judge("tp", 12, partition.read_offset, owed).verdict is (
        Verdict.STALE
    )
    assert partition.fetch(11, 12) == [Verdict.DELIVER, Verdict.DELIVER]
