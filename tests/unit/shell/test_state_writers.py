"""The batched state writer: changelog records go out and are acknowledged with the
outputs, then one RocksDB write batch per table and partition, with the offset of the
table's last changelog record (real RocksDB, a recording producer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import Options, Rdict

from stream.config import Settings
from stream.core.batch import BatchResult, Destination, Output
from stream.shell.faust.state_writers import BatchedWriter, ChangelogRecord, batched
from stream.shell.metrics import Metrics
from stream.shell.outputs import Outputs
from tests.unit.shell.steps.fakes import FakeApp, consumed

EVENTS = "cjo.internal.customer-events"
OFFSET_KEY = b"__faust\x00offset__"  # Faust's RocksDB store keeps the changelog offset here


class Store:
    """What the writer uses of Faust's RocksDB store: its offset key and databases."""

    offset_key = OFFSET_KEY

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dbs: dict[int, Rdict] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.path / str(partition)), Options(raw_mode=True))
        return self.dbs[partition]

    def items(self, partition: int) -> dict[bytes, bytes]:
        return dict(self._db_for_partition(partition).items())


class Table:
    def __init__(self, name: str, path: Path) -> None:
        self.data = Store(path / name)
        self.changelog_topic_name = f"app-{name}-changelog"


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[dict[str, Table]]:
    made = {name: Table(name, tmp_path) for name in ("customers", "due")}
    yield made
    for table in made.values():
        for db in table.data.dbs.values():
            db.close()


def outputs(log: list[Any], tables: dict[str, Table]) -> Outputs:
    writer = BatchedWriter(tables)
    return Outputs(FakeApp(log), Settings().topics, Metrics(), writer)  # type: ignore[arg-type]


def test_every_change_becomes_a_changelog_record_of_its_tables_partition(
    tables: dict[str, Table],
) -> None:
    writer = BatchedWriter(tables)
    records = writer.changelog({"customers": {b"a": b"1", b"b": None}, "due": {b"a": b"9"}}, 2)
    assert records == [
        ChangelogRecord("customers", "app-customers-changelog", 2, b"a", b"1"),
        ChangelogRecord("customers", "app-customers-changelog", 2, b"b", None),
        ChangelogRecord("due", "app-due-changelog", 2, b"a", b"9"),
    ]


async def test_changelogs_are_acknowledged_with_the_outputs_before_the_write_batch(
    tables: dict[str, Table],
) -> None:
    log: list[Any] = []
    customers = tables["customers"].data
    customers._db_for_partition(1)[b"gone"] = b"old"
    result = BatchResult(outputs=[Output(Destination.DECISIONS, b"a", b"explained")])
    result.writes["customers"] = {b"a": b"state-a", b"b": b"state-b", b"gone": None}
    result.writes["due"] = {b"a": b"123"}
    source = [consumed(EVENTS, b"{}", b"a", partition=1)]
    await outputs(log, tables).commit([(result, source)], "process")
    sends = [entry[1] for entry in log if entry[0] == "send"]
    assert sends == ["cjo.decisions", *["app-customers-changelog"] * 3, "app-due-changelog"]
    assert [entry[0] for entry in log] == ["send"] * 5 + ["ack"] * 5  # then the writes
    # The offsets of each table's last changelog record, kept with its writes.
    assert customers.items(1) == {b"a": b"state-a", b"b": b"state-b", OFFSET_KEY: b"2"}
    assert tables["due"].data.items(1) == {b"a": b"123", OFFSET_KEY: b"0"}
    assert customers.items(0) == {}  # only the source partition's database


async def test_each_partition_of_a_batch_gets_its_own_write_batch_and_offset(
    tables: dict[str, Table],
) -> None:
    log: list[Any] = []
    parts = []
    for partition, key in ((0, b"a"), (3, b"b"), (3, b"c")):
        result = BatchResult()
        result.writes["customers"] = {key: b"state"}
        parts.append((result, [consumed(EVENTS, b"{}", key, partition=partition)]))
    await outputs(log, tables).commit(parts, "process")
    customers = tables["customers"].data
    assert customers.items(0) == {b"a": b"state", OFFSET_KEY: b"0"}
    assert customers.items(3) == {b"b": b"state", b"c": b"state", OFFSET_KEY: b"1"}


class FaustTable:
    def __init__(self, data: Any) -> None:
        self.data = data


def test_batched_writes_need_rocksdb_and_at_least_once() -> None:
    rocksdb = FaustTable(RocksDBStore.__new__(RocksDBStore))  # the type is what counts
    memory = FaustTable({})
    assert batched({"customers": rocksdb}, "at_least_once", enabled=True)
    assert not batched({"customers": rocksdb}, "at_least_once", enabled=False)
    assert not batched({"customers": rocksdb}, "exactly_once", enabled=True)
    assert not batched({"customers": rocksdb, "due": memory}, "at_least_once", enabled=True)
