"""The Faust adaptation: table writes go to the partition of the group being processed."""

from __future__ import annotations

from types import SimpleNamespace

from faust.streams import current_event

from stream.shell.faust_compat import group_by_partition, partition_context


class FakeEvent:
    """Stands in for faust's Event: only ``message.partition`` is read (weakref-able)."""

    def __init__(self, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(partition=partition, offset=offset)


def fake_event(partition: int, offset: int) -> FakeEvent:
    return FakeEvent(partition, offset)


def test_partition_context_sets_and_restores_fausts_current_event() -> None:
    outer, inner = fake_event(0, 1), fake_event(1, 7)
    with partition_context(outer):
        assert current_event() is outer
        with partition_context(inner):
            assert current_event() is inner
            assert current_event().message.partition == 1
        assert current_event() is outer
    assert current_event() is None


def test_group_by_partition_keeps_offset_order_within_each_partition() -> None:
    events = [fake_event(p, o) for p, o in [(1, 5), (0, 3), (1, 6), (0, 4), (2, 9)]]
    groups = group_by_partition(events)
    assert {p: [e.message.offset for e in g] for p, g in groups.items()} == {
        1: [5, 6],
        0: [3, 4],
        2: [9],
    }


async def test_worker_consumer_fetch_wait_is_lowered_from_fausts_fixed_value() -> None:
    import faust

    from stream.shell.faust_compat import set_fetch_max_wait_ms

    app = faust.App("fetch-wait-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    thread = app.consumer._thread
    set_fetch_max_wait_ms(40)
    assert thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == 40
    set_fetch_max_wait_ms(50)
    assert thread._create_worker_consumer(app.transport)._fetch_max_wait_ms == 50
