"""What a table holds locally, read from its store: every item of a partition, a key
count; and ``write_batch``, the one way our code writes a RocksDB store.

Reads the RocksDB store's per-partition databases (``Store._dbs``) directly. The memory
store of unit tests has no partitions: there every item belongs to every partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from rocksdict import WriteBatch, WriteOptions

#: The Faust code these helpers read around; hashed in the upstream test.
UPSTREAM = (RocksDBStore._visible_items, RocksDBStore._db_for_partition)


def partition_items(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) a table holds locally for one partition.

    RocksDB keeps one database per partition; the memory store (unit tests) has no
    partitions, so there every item is yielded for every partition asked.
    """
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        yield from list(store.items())
        return
    db = dbs.get(partition)
    if db is None:
        return
    yield from store._visible_items(db)


def estimated_keys(table: Any, partitions: set[int]) -> int:
    """About how many keys a table holds for these partitions (RocksDB's own estimate,
    no scan; the memory store of unit tests counts exactly)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return len(store.data) if hasattr(store, "data") else 0
    total = 0
    for partition in partitions:
        db = dbs.get(partition)
        if db is not None:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
    return total


def write_batch(
    store: Any,
    partition: int,
    changes: Iterable[tuple[bytes, bytes | None]],
    offset: int,
    options: WriteOptions | None = None,
) -> None:
    """One RocksDB write batch into a partition's database of a RocksDB store: the
    changes (None deletes the key) and the changelog offset they reach, under Faust's
    persisted-offset key, so the data and the offset change together."""
    batch = WriteBatch(raw_mode=True)
    for key, value in changes:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    batch.put(store.offset_key, str(offset).encode())
    store._db_for_partition(partition).write(batch, options)
