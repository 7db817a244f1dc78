"""How a batch's table changes are written, once its outputs are acknowledged.

Two writers behind ``Outputs.commit``'s ``StateWriter`` seam:

- ``BatchedWriter`` (RocksDB store, at-least-once; ``JOURNEY_BATCHED_WRITES``): the
  changelog records of every change go out with the batch's outputs and are
  acknowledged with them; then each table's changes of the partition become one RocksDB
  write batch that also carries the partition's changelog offset (Faust's offset key).
  The database and its offset change together, and Faust's recovery (or the bulk
  restore) reads the changelog after that offset as it would after its own writes.
  Quix Streams' checkpoint orders its state the same way (produce, flush, then commit
  the state store).
- ``TableWriter`` (the memory store, exactly-once, or batched writes off): through
  Faust's tables, a RocksDB put and a changelog record per change, in the partition of
  the batch's source records (Faust's transactions cover its changelog sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.base import Collection

from stream.core.batch import Writes
from stream.core.stored import Tables
from stream.shell.faust.partitions import partition_context
from stream.shell.faust.stores import write_batch

#: The Faust code ``BatchedWriter`` stands in for or relies on (hashed in the upstream
#: test): a table's changelog send and its persisted offset, the store's put and
#: per-partition databases.
UPSTREAM = (
    Collection._on_changelog_sent,
    Collection.send_changelog,
    RocksDBStore._set,
    RocksDBStore._del,
    RocksDBStore._db_for_partition,
    RocksDBStore.set_persisted_offset,
)


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    """One change of a table, as its changelog topic keeps it (None: a tombstone)."""

    table: str
    topic: str
    partition: int
    key: bytes
    value: bytes | None


class TableWriter:
    """Writes through Faust's tables: each change a RocksDB put and a changelog record."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def changelog(self, writes: Mapping[str, Writes], partition: int) -> list[ChangelogRecord]:
        """No records: Faust's tables send their own changelog records."""
        return []

    def write(self, writes: Mapping[str, Writes], source: Any, logged: Mapping[str, int]) -> None:
        """Apply the writes in the partition of ``source`` (a consumed record)."""
        with partition_context(source):
            self.tables.write(writes)


class BatchedWriter:
    """One RocksDB write batch per table and partition, its changelog sent beforehand."""

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self.stores: dict[str, RocksDBStore] = {name: t.data for name, t in tables.items()}
        self.topics = {name: t.changelog_topic_name for name, t in tables.items()}

    def changelog(self, writes: Mapping[str, Writes], partition: int) -> list[ChangelogRecord]:
        """Every change of the batch's partition, for its table's changelog."""
        return [
            ChangelogRecord(name, self.topics[name], partition, key, value)
            for name, changes in writes.items()
            for key, value in changes.items()
        ]

    def write(self, writes: Mapping[str, Writes], source: Any, logged: Mapping[str, int]) -> None:
        """Each table's changes in one write batch with ``logged[table]``: the offset of
        the last of its changelog records, acknowledged."""
        partition = source.message.partition
        for name, changes in writes.items():
            if changes:
                write_batch(self.stores[name], partition, changes.items(), logged[name])


def batched(tables: Mapping[str, Any], guarantee: str, enabled: bool) -> bool:
    """Whether ``BatchedWriter`` can write these tables: on, every table on RocksDB, and
    at-least-once (exactly-once needs Faust's transactional changelog sends)."""
    on_rocksdb = all(isinstance(table.data, RocksDBStore) for table in tables.values())
    return enabled and on_rocksdb and guarantee == "at_least_once"
