"""What a table holds locally: every item of a partition, and a key count."""

from __future__ import annotations

from types import SimpleNamespace

from stream.shell.faust import estimated_keys, partition_items


class FakeDb:
    def __init__(self, items: dict[bytes, bytes]) -> None:
        self.items = items

    def property_int_value(self, name: str) -> int:
        assert name == "rocksdb.estimate-num-keys"
        return len(self.items)


class FakeRocksStore:
    """The two parts of faust's RocksDB store the helpers read: ``_dbs`` and its items."""

    def __init__(self, dbs: dict[int, FakeDb]) -> None:
        self._dbs = dbs

    def _visible_items(self, db: FakeDb) -> list[tuple[bytes, bytes]]:
        return sorted(db.items.items())


def test_partition_items_reads_only_the_partitions_database() -> None:
    store = FakeRocksStore({0: FakeDb({b"a": b"1"}), 1: FakeDb({b"b": b"2", b"c": b"3"})})
    table = SimpleNamespace(data=store)
    assert list(partition_items(table, 1)) == [(b"b", b"2"), (b"c", b"3")]
    assert list(partition_items(table, 7)) == []
    assert estimated_keys(table, {0, 1, 7}) == 3


def test_the_memory_store_yields_every_item_for_every_partition() -> None:
    store = SimpleNamespace(items=lambda: {b"a": b"1"}.items(), data={b"a": b"1"})
    table = SimpleNamespace(data=store)
    assert list(partition_items(table, 0)) == list(partition_items(table, 3)) == [(b"a", b"1")]
    assert estimated_keys(table, {0}) == 1
