"""The Faust adaptation: table writes go to the partition of the group being processed."""

from __future__ import annotations

from pathlib import Path
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


def test_the_worker_producer_is_idempotent_with_acks_all() -> None:
    import faust

    from stream.shell.faust_compat import enable_idempotent_producer

    enable_idempotent_producer()
    app = faust.App("idempotent-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    settings = app.producer._settings_extra()
    assert settings == {"acks": "all", "enable_idempotence": True}


class FakeQueue:
    def __init__(self, full: bool = False) -> None:
        self._full = full

    def full(self) -> bool:
        return self._full


def fake_consumer(**overrides: object) -> SimpleNamespace:
    """The parts of Faust's consumer and app that ``delivery_check`` reads."""
    import asyncio

    from mode.utils.queues import FlowControlEvent

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
    import asyncio

    from mode.utils.queues import FlowControlEvent

    from stream.shell.faust_compat import delivery_check

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


def test_the_drain_loop_keeps_its_continuity_checks_with_the_fast_path_off() -> None:
    from faust.transport.consumer import Consumer

    from stream.shell import faust_compat

    assert faust_compat.install_drain_loop(False) is True
    assert faust_compat._drain_options["fast"] is False
    assert Consumer._drain_messages is faust_compat._drain_messages
    assert Consumer._new_offset is faust_compat._new_offset
    assert faust_compat.install_drain_loop(True) is True
    assert faust_compat._drain_options["fast"] is True


class CommitBook:
    """The offset bookkeeping of Faust's consumer that ``_new_offset`` reads, for real."""

    def __init__(self, committed: int | None, acked: list[int], gaps=()) -> None:
        from collections import defaultdict

        from intervaltree import IntervalTree

        self._committed_offset = defaultdict(lambda: None, {"tp": committed})
        self._acked = defaultdict(list, {"tp": sorted(acked)})
        self._acked_index = defaultdict(set, {"tp": set(acked)})
        self._gap = defaultdict(IntervalTree)
        for begin, end in gaps:
            self._gap["tp"].addi(begin, end)


def test_faust_commits_over_an_owed_offset_and_the_guard_does_not() -> None:
    from stream.shell.faust_compat import _faust_new_offset, _new_offset

    # Offset 14 is committed (owed next) and was never acked; 15 and 16 were.
    assert _faust_new_offset(CommitBook(14, [15, 16]), "tp") == 17  # 14 is lost
    assert _new_offset(CommitBook(14, [15, 16]), "tp") is None


def test_the_guard_commits_a_run_that_starts_at_the_owed_offset_or_a_gap() -> None:
    from stream.shell.faust_compat import _new_offset

    assert _new_offset(CommitBook(14, [14, 15, 17]), "tp") == 16
    assert _new_offset(CommitBook(14, [15, 16], gaps=[(14, 15)]), "tp") == 17
    assert _new_offset(CommitBook(None, [3, 4]), "tp") == 5  # nothing committed yet
    assert _new_offset(CommitBook(14, []), "tp") is None


def test_the_recovery_fast_path_is_a_service_task_of_faust_recovery() -> None:
    from faust.tables.recovery import Recovery
    from mode.services import ServiceTask

    from stream.shell import faust_compat

    assert faust_compat.install_recovery_fast_path(False) is False
    assert Recovery._slurp_changelogs is faust_compat._faust_slurp_changelogs
    assert faust_compat.install_recovery_fast_path(True) is True
    task = Recovery._slurp_changelogs
    assert isinstance(task, ServiceTask) and task.fun is faust_compat._slurp_changelogs


def test_the_drain_loop_counts_every_path_the_metric_documents() -> None:
    from stream.shell.faust_compat import DELIVERY_PATHS, deliveries

    assert (
        set(deliveries)
        == set(DELIVERY_PATHS)
        == {
            "direct",
            "waited",
            "behind",
            "dropped",
            "resought",
            "gap",
            "suspended",
        }
    )
    catalogue = (Path(__file__).resolve().parents[3] / "docs" / "metrics.md").read_text()
    row = next(line for line in catalogue.splitlines() if "journey_consumer_deliveries" in line)
    assert all(f"`{path}`" in row for path in DELIVERY_PATHS)


def test_a_flow_control_resume_is_noted_once_and_still_resumes() -> None:
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    from stream.shell.faust_compat import watch_flow_resumes

    flow = FlowControlEvent()
    queue = FlowControlQueue(maxsize=10, flow_control=flow, clear_on_resume=True)
    queue.put_nowait("delivered before the resume")
    resumes = watch_flow_resumes(flow)
    assert watch_flow_resumes(flow) is resumes  # wrapped once
    assert resumes.pop() is False
    flow.resume()
    assert flow.is_active() and queue.empty()  # what makes the drain loop read again
    assert resumes.pop() is True and resumes.pop() is False
