"""Table writes go to the partition of the group being processed."""

from __future__ import annotations

from types import SimpleNamespace

from faust.streams import current_event

from stream.shell.faust import group_by_partition, partition_context


class FakeEvent:
    """Stands in for faust's Event: only ``message.partition`` is read (weakref-able)."""

    def __init__(self, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(partition=partition, offset=offset)


def test_partition_context_sets_and_restores_fausts_current_event() -> None:
    outer, inner = FakeEvent(0, 1), FakeEvent(1, 7)
    with partition_context(outer):  # type: ignore[arg-type]
        assert current_event() is outer
        with partition_context(inner):  # type: ignore[arg-type]
            assert current_event() is inner
            assert current_event().message.partition == 1  # type: ignore[union-attr]
        assert current_event() is outer
    assert current_event() is None


def test_group_by_partition_keeps_offset_order_within_each_partition() -> None:
    events = [FakeEvent(p, o) for p, o in [(1, 5), (0, 3), (1, 6), (0, 4), (2, 9)]]
    groups = group_by_partition(events)  # type: ignore[arg-type]
    assert {p: [e.message.offset for e in g] for p, g in groups.items()} == {
        1: [5, 6],
        0: [3, 4],
        2: [9],
    }
