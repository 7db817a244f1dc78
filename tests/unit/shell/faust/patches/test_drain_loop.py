"""The drain loop: a record past a hole is read again, an interrupted delivery too, and
the patch goes in once with the fast path as a knob."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer
from intervaltree import IntervalTree
from mode.utils.queues import FlowControlEvent

from stream.shell.faust import deliveries
from stream.shell.faust.patches import commit_guard, drain_loop
from stream.shell.faust.patches.direct_delivery import never

TP = ("events", 0)


class FakeConsumer:
    """The parts of Faust's consumer a ``Drain`` reads: offsets, seeks, the callback."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.delivered: list[int] = []
        self.sought: list[int] = []
        self.suspend_flow = asyncio.Event()
        self.should_stop = False
        self.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
        self.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
            flow_control=FlowControlEvent(initially_suspended=False),
        )
        self._read_offset: defaultdict[Any, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._acked_index: defaultdict[Any, set[int]] = defaultdict(set)
        self._committed_offset: defaultdict[Any, int | None] = defaultdict(lambda: None)
        self._gap: defaultdict[Any, IntervalTree] = defaultdict(IntervalTree)

    async def callback(self, message: Any) -> None:
        self.delivered.append(message.offset)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109
        for offset in self.batches.pop(0):
            yield TP, SimpleNamespace(topic=TP[0], offset=offset)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _seek(self, tp: Any, offset: int) -> None:
        self.sought.append(offset)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return dict.fromkeys(tps, 0)

    async def wait_first(self, *coros: Coroutine[Any, Any, Any]) -> SimpleNamespace:
        """mode's race, decided in advance: a set ``suspend_flow`` wins it (once)."""
        delivery, suspended = coros
        suspended.close()
        if self.suspend_flow.is_set():
            self.suspend_flow.clear()  # the rebalance is over
            delivery.close()
            return SimpleNamespace(done=[])
        await delivery
        return SimpleNamespace(done=[delivery])


async def drain(consumer: FakeConsumer, can_deliver_now: Callable[[Any], bool]) -> dict[str, int]:
    """Run a ``Drain`` over every batch; the delivery counts it added."""
    before = dict(deliveries)
    loop = drain_loop.Drain(consumer, can_deliver_now)
    while consumer.batches:
        await loop.fetch()
    return {
        path: deliveries[path] - before[path]
        for path in deliveries
        if deliveries[path] > before[path]
    }


async def test_a_record_past_a_hole_is_not_delivered_and_the_hole_is_read_again() -> None:
    consumer = FakeConsumer([[0, 1, 2], [5, 6], [3, 4, 5, 6]])
    counts = await drain(consumer, lambda tp: True)
    assert consumer.delivered == [0, 1, 2, 3, 4, 5, 6]
    assert consumer.sought == [3]  # 5 arrived where 3 was owed; 6 was stale
    assert consumer._read_offset[TP] == 6
    assert counts == {"direct": 7, "resought": 1}


async def test_a_delivery_a_rebalance_interrupts_is_read_again() -> None:
    consumer = FakeConsumer([[0, 1], [0, 1]])
    consumer.suspend_flow.set()
    counts = await drain(consumer, never)
    assert consumer.delivered == [0, 1] and consumer.sought == [0]  # 1 was stale at first
    assert counts == {"waited": 3, "suspended": 1}


def test_install_keeps_the_continuity_checks_with_the_fast_path_off() -> None:
    assert drain_loop.install(False) is True
    assert drain_loop.options.fast is False
    assert Consumer._drain_messages is drain_loop.drain_messages
    assert Consumer._new_offset is commit_guard.new_offset
    assert drain_loop.install(True) is True
    assert drain_loop.options.fast is True
