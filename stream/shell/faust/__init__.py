"""Every adaptation of faust-streaming (pinned: 0.15.3): helpers that reach into its
internals, and the patches that change them.

Helpers: ``partition_context`` and ``group_by_partition`` (``partitions``: table writes
land on the partition being processed), ``partition_items`` and ``estimated_keys``
(``stores``: what a table holds locally), ``deliveries`` (the drain loop's counts),
``state_writers`` (a batch's table changes: RocksDB write batches after their changelog
records, or Faust's tables).

Patches (``patches/``, one module each): ``fetch_wait`` (a shorter consumer fetch wait),
``drain_loop`` (no record lost around a rebalance, and a fast delivery path),
``commit_guard`` (no commit over an owed offset), ``restore_loop`` (a faster table
restore), ``bulk_restore`` (a far-behind table restored in write batches first),
``idempotent_producer`` and ``send_guard`` (a failed write stops the worker).
``install(settings)`` installs them all.

Each module names the upstream code it copies, replaces or relies on in ``UPSTREAM``;
tests/unit/shell/faust/test_upstream_sources.py holds a hash of its source, so an
upgrade that changes any of it fails that test and names the patch to review.

On a faust-streaming other than the pinned release, installing a patch refuses
(``UnsupportedFaust``, naming the patch) and the worker does not start. Not a warning
and Faust's own code instead: three of the patches (drain loop, commit guard, send
guard) are what stops records from being lost or committed over, and a worker without
them would lose records again with one log line as the only sign. Not a warning and the
patches anyway: the copies would put 0.15.3's code into a newer Faust, unseen. The pin
in pyproject.toml is exact, so only a deliberate upgrade meets the refusal, and the
upstream test lists what that upgrade has to review.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

from stream.config import Settings
from stream.shell.faust.deliveries import DELIVERY_PATHS, deliveries
from stream.shell.faust.partitions import group_by_partition, partition_context
from stream.shell.faust.patches import (
    bulk_restore,
    commit_guard,
    drain_loop,
    fetch_wait,
    idempotent_producer,
    restore_loop,
    send_guard,
)
from stream.shell.faust.patches.send_guard import EXIT_WRITE_FAILED
from stream.shell.faust.pinned import PINNED_FAUST, UnsupportedFaust
from stream.shell.faust.stores import estimated_keys, partition_items
from stream.shell.kafka_security import client_kwargs

__all__ = [
    "DELIVERY_PATHS",
    "EXIT_WRITE_FAILED",
    "PINNED_FAUST",
    "UnsupportedFaust",
    "deliveries",
    "estimated_keys",
    "group_by_partition",
    "install",
    "partition_context",
    "partition_items",
]


def restore_consumer(settings: Settings) -> Callable[[], AIOKafkaConsumer]:
    """Consumers for the bulk restore: outside any group, the worker's broker and
    security, committed records only (a transactional changelog's aborted ones skipped)."""

    def create() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=settings.broker,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a compacted log may start after offset 0
            isolation_level="read_committed",
            fetch_max_bytes=bulk_restore.FETCH_MAX_BYTES,
            max_partition_fetch_bytes=bulk_restore.PARTITION_FETCH_MAX_BYTES,
            **client_kwargs(settings),
        )

    return create


def install(settings: Settings) -> None:
    """Install every patch (once per process) and set its knobs from ``settings``.

    Idempotent, and safe to call again with other settings: the patches go in on the
    first call only; every call sets the knobs again (``fetch_max_wait_ms``,
    ``fast_drain``, ``fault_send``; the same fault keeps its count). The knobs are
    process-wide: the fetch wait and fast drain are read when an app starts its consumer
    and its table restore, so an app runs with the settings of the last call before its
    start; the injected fault is read at every send. Raises
    ``UnsupportedFaust`` on a faust-streaming other than ``PINNED_FAUST``.
    """
    fetch_wait.install(settings.fetch_max_wait_ms)
    drain_loop.install(fast=settings.fast_drain)
    commit_guard.install()
    restore_loop.install(fast=settings.fast_drain)
    bulk_restore.install(settings.bulk_restore_min_records, restore_consumer(settings))
    idempotent_producer.install()
    send_guard.install(settings.fault_send)
