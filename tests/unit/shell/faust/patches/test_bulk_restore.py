"""The bulk restore's plan, its writes, and how Faust's recovery goes on after it (the
restore itself runs against the broker: tests/integration/test_recovery.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import Options, Rdict

from stream.shell.faust.patches import bulk_restore
from stream.shell.faust.patches.bulk_restore import Span, _write, behind


class TP(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    key: bytes
    value: bytes | None
    offset: int


A, B, C = TP("changelog", 0), TP("changelog", 1), TP("changelog", 2)


class Store:
    """What ``_write`` needs of Faust's RocksDB store: its offset key and databases."""

    offset_key = b"__faust\x00offset__"

    def __init__(self, path: Path) -> None:
        self.dbs: dict[int, Rdict] = {}
        self.path = path

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.path / str(partition)), Options(raw_mode=True))
        return self.dbs[partition]


def test_only_partitions_at_least_min_records_behind_are_planned() -> None:
    stores: dict[Any, Any] = {A: "a", B: "b", C: "c"}
    offsets = {A: 99, B: -1}  # C: never applied (None)
    highwaters = {A: 199, B: 49, C: 9}
    spans = behind(stores, offsets, highwaters, min_records=50)
    assert spans == {A: Span("a", 100, 199), B: Span("b", 0, 49)}
    assert spans[A].records == 100


def test_a_store_at_its_highwater_or_a_zero_threshold_plans_nothing() -> None:
    stores: dict[Any, Any] = {A: "a"}
    assert behind(stores, {A: 199}, {A: 199}, min_records=1) == {}
    assert behind(stores, {A: -1}, {A: 199}, min_records=0) == {}
    assert behind(stores, {}, {}, min_records=1) == {}  # an empty changelog


def test_a_batch_is_written_with_its_deletes_and_the_partitions_offset(tmp_path: Path) -> None:
    store = Store(tmp_path)
    db = store._db_for_partition(1)
    db[b"gone"] = b"old"
    db[b"kept"] = b"old"
    _write(
        store, B, [Message(b"kept", b"v1", 7), Message(b"gone", None, 8), Message(b"new", b"v", 9)]
    )
    assert dict(db.items()) == {b"kept": b"v1", b"new": b"v", store.offset_key: b"9"}
    assert 0 not in store.dbs  # only the partition's own database
    for database in store.dbs.values():
        database.close()


class Recovery:
    """What ``build_offsets`` reads of Faust's recovery."""

    def __init__(self, tables: dict[Any, Any], highwaters: dict[Any, int]) -> None:
        self.tp_to_table = tables
        self.active_highwaters = highwaters
        self.app = SimpleNamespace(conf=SimpleNamespace(broker_request_timeout=90.0))


def far_behind() -> tuple[Recovery, dict[Any, Any]]:
    """A recovery whose one active partition, on RocksDB, is 100 records behind."""
    table = SimpleNamespace(data=RocksDBStore.__new__(RocksDBStore))  # the type is what counts
    return Recovery({A: table}, {A: 149}), {A: 49}


@pytest.fixture
def faust_offsets(monkeypatch: pytest.MonkeyPatch) -> list[dict[Any, Any]]:
    """Faust's own offset building, replaced: records the offsets it starts from."""
    seen: list[dict[Any, Any]] = []

    async def faust_build_offsets(
        self: Any, consumer: Any, tps: Any, dest: Any, title: str
    ) -> None:
        seen.append(dict(dest))

    monkeypatch.setattr(bulk_restore, "faust_build_offsets", faust_build_offsets)
    monkeypatch.setattr(bulk_restore.options, "min_records", 50)
    monkeypatch.setattr(bulk_restore.options, "client", lambda: None)
    return seen


async def test_faust_starts_after_what_the_bulk_restore_wrote(
    faust_offsets: list[dict[Any, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def restored(client: Any, spans: Any, budget_s: float) -> Any:
        assert spans == {A: Span(spans[A].store, 50, 149)} and budget_s == 45.0
        return bulk_restore.Progress(100, {A: 149}, complete=True)

    monkeypatch.setattr(bulk_restore, "_timed_restore", restored)
    recovery, offsets = far_behind()
    await bulk_restore.build_offsets(recovery, None, {A}, offsets, "active")
    assert faust_offsets == [{A: 149}]


async def test_a_failed_bulk_restore_leaves_every_record_to_faust(
    faust_offsets: list[dict[Any, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails(client: Any, spans: Any, budget_s: float) -> Any:
        raise ConnectionError("broker gone")

    monkeypatch.setattr(bulk_restore, "_timed_restore", fails)
    recovery, offsets = far_behind()
    await bulk_restore.build_offsets(recovery, None, {A}, offsets, "active")
    assert faust_offsets == [{A: 49}]  # from the offset it knew
    assert "Bulk restore failed (ConnectionError('broker gone'))" in caplog.text


async def test_standbys_are_left_to_faust(
    faust_offsets: list[dict[Any, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(client: Any, spans: Any, budget_s: float) -> Any:
        raise AssertionError("a standby was bulk-restored")

    monkeypatch.setattr(bulk_restore, "_timed_restore", never)
    recovery, offsets = far_behind()
    await bulk_restore.build_offsets(recovery, None, {A}, offsets, "standby")
    assert faust_offsets == [{A: 49}]
