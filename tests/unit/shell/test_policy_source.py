"""The worker's policy holder: reload on change, keep the last good policy on a bad one."""

from __future__ import annotations

import os
import shutil

import pytest

from stream.core.decide import PolicyError
from stream.shell.policy_source import PolicySource
from tests.unit.core.decide.helpers import CATALOG, ROOT


def test_reload_if_changed_picks_up_an_edit_and_keeps_the_last_good(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    first = source.current.version
    assert not source.reload_if_changed()

    path.write_text(path.read_text().replace("value: 100", "value: 120"))
    os.utime(path, ns=(1, 1))  # a distinct mtime even within the clock's resolution
    assert source.reload_if_changed()
    second = source.current.version
    assert second != first

    path.write_text("format: 1\nname: broken\nactions: []\n")
    os.utime(path, ns=(2, 2))
    assert not source.reload_if_changed()
    assert source.current.version == second and source.failed_reloads == 1


def test_a_reload_with_a_misspelled_field_keeps_the_last_good_and_counts(tmp_path, caplog) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    good = source.current.version
    text = path.read_text()
    path.write_text(text.replace("customer.stage == 'awareness'", "customer.stag == 'awareness'"))
    os.utime(path, ns=(1, 1))
    assert not source.reload_if_changed()
    assert source.current.version == good and source.failed_reloads == 1
    assert "customer.stag: unknown field; did you mean customer.stage?" in caplog.text


def test_an_invalid_policy_at_start_is_refused(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("format: 1\nname: x\n")
    with pytest.raises(PolicyError, match="actions"):
        PolicySource(path, CATALOG)


def test_a_reload_keeps_the_journey_versions_running_customers_entered(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    [before] = [j.version for j in source.current.journeys if j.id == "cart_abandonment"]
    path.write_text(path.read_text().replace("wait_30m: {wait: 30m", "wait_30m: {wait: 45m"))
    os.utime(path, ns=(1, 1))
    assert source.reload_if_changed()
    [after] = [j.version for j in source.current.journeys if j.id == "cart_abandonment"]
    assert after != before
    assert {before, after} <= set(source.current.journey_versions)
    assert source.text == path.read_text()


def test_the_archive_teaches_a_worker_the_versions_other_workers_ran(tmp_path, caplog) -> None:
    from stream.shell.journey_archive import JourneyArchive

    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    earlier_text = path.read_text().replace("wait_30m: {wait: 30m", "wait_30m: {wait: 20m")
    path.write_text(path.read_text().replace("timeout: 1d", "timeout: 2d"))
    source = PolicySource(path, CATALOG)
    archive = JourneyArchive("unused:9092", "t", source)
    known = set(source.current.journey_versions)
    archive.apply(b"default@earlier", earlier_text.encode())
    learnt = set(source.current.journey_versions) - known
    assert [v.partition("@")[0] for v in learnt] == ["cart_abandonment"]
    archive.apply(b"default@broken", b"format: 1\nname: broken\nactions: []\n")
    assert "archived policy default@broken skipped" in caplog.text
    assert set(source.current.journey_versions) == known | learnt


async def test_the_process_step_waits_for_the_archive_once_and_not_for_ever(
    tmp_path, caplog
) -> None:
    import asyncio

    from stream.shell.journey_archive import JourneyArchive

    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    source = PolicySource(path, CATALOG)
    read = JourneyArchive("unused:9092", "t", source)
    read.loaded.set()
    await asyncio.wait_for(read.ready(), 0.5)  # read to its end: no wait
    unreadable = JourneyArchive("unused:9092", "t", source)
    await unreadable.ready(wait_s=0.05)
    assert "journey archive not read within" in caplog.text
    await asyncio.wait_for(unreadable.ready(wait_s=60), 0.5)  # given up once: no more waits
