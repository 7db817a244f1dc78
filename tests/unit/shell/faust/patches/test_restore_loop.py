"""The table restore loop: Faust's records applied in Faust's order, with less overhead."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import Recovery
from mode.services import ServiceTask

from stream.shell.faust.patches import restore_loop

ACTIVE, STANDBY, UNKNOWN = ("t-changelog", 0), ("t-changelog", 1), ("gone-changelog", 0)


class FakeTable:
    recovery_buffer_size = 2
    standby_buffer_size = 3

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.applied: list[list[int]] = []

    async def on_changelog_event(self, event: Any) -> None:
        self.seen.append(event.message.offset)

    def apply_changelog_batch(self, batch: list[Any]) -> None:
        self.applied.append([event.message.offset for event in batch])


def fake_recovery(table: FakeTable) -> SimpleNamespace:
    """The parts of Faust's ``Recovery`` a ``Restore`` reads."""
    return SimpleNamespace(
        tables=SimpleNamespace(changelog_queue=None),
        tp_to_table={ACTIVE: table, STANDBY: table},
        active_tps={ACTIVE},
        standby_tps={STANDBY},
        active_offsets=Counter(),
        standby_offsets=Counter(),
        _active_events_received_at={},
        _standby_events_received_at={},
        buffers=defaultdict(list),
        buffer_sizes={},
        _processing_times=deque(),
        _last_active_event_processed_at=None,
        num_samples_required_for_estimate=1000,
        _last_flush_at=None,
    )


def event(tp: tuple[str, int], offset: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


async def test_records_are_buffered_flushed_by_buffer_size_and_seen_offsets_skipped() -> None:
    table = FakeTable()
    restore = restore_loop.Restore(fake_recovery(table))
    for tp, offset in [(ACTIVE, 0), (ACTIVE, 1), (ACTIVE, 1), (ACTIVE, 2), (STANDBY, 7)]:
        await restore.apply(event(tp, offset))
    assert table.seen == [0, 1, 2, 7]
    assert table.applied == [[0, 1]]
    assert restore.recovery.active_offsets[ACTIVE] == 2
    assert restore.recovery.standby_offsets[STANDBY] == 7
    assert len(restore.recovery._processing_times) == 2  # between the 3 active records


async def test_a_record_of_an_unknown_partition_goes_where_faust_puts_it() -> None:
    table = FakeTable()
    restore = restore_loop.Restore(fake_recovery(table))
    with pytest.raises(AttributeError):  # Faust: UnboundLocalError, logged by the loop
        await restore.apply(event(UNKNOWN, 4))
    await restore.apply(event(ACTIVE, 0))
    with pytest.raises(TypeError):  # no buffer size for it (logged by the loop, as in Faust)
        await restore.apply(event(UNKNOWN, 5))
    assert table.seen == [0, 5]  # upstream's bug, kept: the previous record's table
    assert restore.recovery.active_offsets[UNKNOWN] == 5


async def test_with_the_fast_path_off_the_restore_task_runs_fausts_own_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[object] = []

    async def fausts(recovery: object) -> None:
        ran.append(recovery)

    monkeypatch.setattr(restore_loop, "faust_slurp_changelogs", fausts)
    monkeypatch.setattr(restore_loop.options, "fast", False)
    recovery = object()
    await restore_loop.slurp_changelogs(recovery)
    assert ran == [recovery]


def test_the_restore_loop_is_installed_once_as_a_service_task_of_faust_recovery() -> None:
    restore_loop.install(False)
    assert restore_loop.options.fast is False
    task = Recovery._slurp_changelogs
    assert task is restore_loop.RESTORE_TASK
    assert isinstance(task, ServiceTask) and task.fun is restore_loop.slurp_changelogs
    restore_loop.install(True)
    assert restore_loop.options.fast is True and Recovery._slurp_changelogs is task
