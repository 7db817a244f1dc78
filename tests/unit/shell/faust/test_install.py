"""``install``: every patch once per process, the knobs from the latest settings, and a
refusal on a faust-streaming other than the pinned one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

from stream.config import load_settings
from stream.shell.faust import PINNED_FAUST, UnsupportedFaust, install
from stream.shell.faust.patches import (
    bulk_restore,
    commit_guard,
    drain_loop,
    fetch_wait,
    idempotent_producer,
    restore_loop,
    send_guard,
)


def installed() -> tuple[object, ...]:
    """What each patched Faust attribute holds now."""
    return (
        AIOKafkaConsumerThread._create_worker_consumer,
        Consumer._drain_messages,
        Consumer._new_offset,
        Recovery._slurp_changelogs,
        Recovery._build_offsets,
        Producer._settings_extra,
        Producer.send,
    )


def test_install_puts_every_patch_in_once_and_the_latest_knobs() -> None:
    settings = load_settings({})
    install(settings)
    first = installed()
    assert first == (
        fetch_wait.create_worker_consumer,
        drain_loop.drain_messages,
        commit_guard.new_offset,
        restore_loop.RESTORE_TASK,
        bulk_restore.build_offsets,
        idempotent_producer.settings_extra,
        send_guard.guarded_send,
    )
    assert bulk_restore.options.min_records == settings.bulk_restore_min_records
    install(replace(settings, fast_drain=False, fetch_max_wait_ms=20, bulk_restore_min_records=0))
    assert installed() == first  # not wrapped twice
    assert drain_loop.options.fast is restore_loop.options.fast is False
    assert fetch_wait.options.max_wait_ms == 20
    assert bulk_restore.options.min_records == 0
    install(settings)
    assert drain_loop.options.fast is restore_loop.options.fast is True
    assert fetch_wait.options.max_wait_ms == settings.fetch_max_wait_ms


def test_the_same_fault_keeps_its_count_and_another_starts_afresh() -> None:
    settings = load_settings({"JOURNEY_FAULT_SEND": "-changelog:2"})
    try:
        install(settings)
        rule = send_guard.faults.rule
        assert rule is not None and not send_guard.faults.trips("a-changelog")
        install(settings)
        assert send_guard.faults.rule is rule and send_guard.faults.trips("a-changelog")
        install(replace(settings, fault_send=("-changelog", 3)))
        assert send_guard.faults.rule is not rule
    finally:
        install(load_settings({}))
    assert send_guard.faults.rule is None


@pytest.mark.parametrize(
    ("patch", "install_patch"),
    [
        ("fetch_wait", lambda: fetch_wait.install(50)),
        ("drain_loop", lambda: drain_loop.install(True)),
        ("commit_guard", commit_guard.install),
        ("restore_loop", lambda: restore_loop.install(True)),
        ("bulk_restore", lambda: bulk_restore.install(1, None)),
        ("idempotent_producer", idempotent_producer.install),
        ("send_guard", lambda: send_guard.install(None)),
    ],
)
def test_every_patch_refuses_a_faust_it_was_not_checked_against(
    patch: str, install_patch: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with pytest.raises(UnsupportedFaust, match=f"patches.{patch} patches faust-streaming"):
        install_patch()
    with pytest.raises(UnsupportedFaust, match=f"0.16.0 is installed.*{PINNED_FAUST}"):
        install(load_settings({}))
