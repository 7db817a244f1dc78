"""The bulk restore's plan and its writes (the restore itself runs against the broker:
tests/integration/test_recovery.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from rocksdict import Options, Rdict

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
