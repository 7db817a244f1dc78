"""The scheduler without a broker: assignment loads, window moves, firing messages."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from stream.config import Clock
from stream.core.batch import Destination, Output
from stream.core.timer_index import TimerIndex
from stream.shell.metrics import Metrics
from stream.shell.scheduler import Scheduler

HOUR_MS = 3_600_000
NOW_MS = 1_795_428_000_000


class PinnedClock(Clock):
    """A clock that stands still (speed 1, pinned start, no wall time involved)."""

    def now_ms(self) -> int:
        return self.start_ms or 0


def make(due: dict[bytes, bytes], owned: set[int] | None, now_ms: int = NOW_MS):
    sent: list[tuple[bytes, dict]] = []

    async def send(output: Output) -> None:
        assert output.destination is Destination.CUSTOMER_EVENTS
        sent.append((output.key, orjson.loads(output.value)))

    table = SimpleNamespace(data=due)  # a memory store: no partitions, every item yielded
    state = {"owned": owned}
    scheduler = Scheduler(
        TimerIndex(HOUR_MS),
        table,
        PinnedClock(1.0, now_ms, now_ms),
        Metrics(),
        send,
        lambda: state["owned"],
    )
    return scheduler, sent, state


async def test_nothing_happens_while_the_worker_is_not_ready() -> None:
    scheduler, sent, _ = make({b"a": str(NOW_MS - 1).encode()}, owned=None)
    assert await scheduler.tick() == 0 and sent == []


async def test_due_customers_from_the_table_get_one_firing_message_each() -> None:
    table = {
        b"a": str(NOW_MS - 5).encode(),
        b"b": str(NOW_MS + 10).encode(),
        b"far": str(NOW_MS + 5 * HOUR_MS).encode(),
    }
    scheduler, sent, _ = make(table, owned={0})
    assert await scheduler.tick() == 1
    assert sent == [(b"a", {"firing": {"due_ms": NOW_MS - 5, "sent_at_ms": NOW_MS}})]
    assert len(scheduler.index) == 1  # b waits in memory; far stays on disk
    assert await scheduler.tick() == 0  # a left the index until its owner updates it


async def test_the_agents_update_is_what_fires() -> None:
    scheduler, sent, _ = make({}, owned={0})
    await scheduler.tick()
    scheduler.index.update(b"c", 0, NOW_MS - 1)
    assert await scheduler.tick() == 1 and sent[0][0] == b"c"
