"""The drain loop's fast path: a delivery goes direct only when nothing could block it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from mode.utils.queues import FlowControlEvent

from stream.shell.faust.patches.direct_delivery import delivery_check


class FakeQueue:
    def __init__(self, full: bool = False) -> None:
        self._full = full

    def full(self) -> bool:
        return self._full


def fake_consumer(**overrides: object) -> SimpleNamespace:
    """The parts of Faust's consumer and app that ``delivery_check`` reads."""
    parts: dict[str, object] = {
        "suspend_flow": asyncio.Event(),
        "flow_control": FlowControlEvent(initially_suspended=False),
        "buffer": SimpleNamespace(size=0, max_messages=100),
        "channels": {"tp": [SimpleNamespace(queue=FakeQueue())]},
        "lock": asyncio.Lock(),
    }
    parts.update(overrides)
    topics = SimpleNamespace(_tp_index=parts["channels"], _tp_to_callback_lock=parts["lock"])
    app = SimpleNamespace(
        flow_control=parts["flow_control"],
        producer=SimpleNamespace(buffer=parts["buffer"]),
        topics=topics,
    )
    return SimpleNamespace(app=app, suspend_flow=parts["suspend_flow"])


async def test_delivery_is_direct_only_when_nothing_could_block() -> None:
    assert delivery_check(fake_consumer())("tp") is True
    suspended = asyncio.Event()
    suspended.set()
    assert delivery_check(fake_consumer(suspend_flow=suspended))("tp") is False
    flow = FlowControlEvent()  # suspended until Faust resumes it, as during a rebalance
    assert delivery_check(fake_consumer(flow_control=flow))("tp") is False
    full_buffer = SimpleNamespace(size=101, max_messages=100)
    assert delivery_check(fake_consumer(buffer=full_buffer))("tp") is False
    full = {"tp": [SimpleNamespace(queue=FakeQueue()), SimpleNamespace(queue=FakeQueue(True))]}
    assert delivery_check(fake_consumer(channels=full))("tp") is False
    assert delivery_check(fake_consumer())("unknown-tp") is False
    lock = asyncio.Lock()
    await lock.acquire()
    assert delivery_check(fake_consumer(lock=lock))("tp") is False
