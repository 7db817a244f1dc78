"""What every step shares: its context, the batch loop, and recording a fold's tally."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from stream.config import Clock, Settings
from stream.core.batch import BatchResult, Tally
from stream.shell.faust import group_by_partition, partition_context
from stream.shell.metrics import Metrics
from stream.shell.outputs import Consumed, Outputs, Part

Record = tuple[bytes | None, bytes | None]  # (Kafka key, value)


@dataclass(frozen=True)
class StepContext:
    """The shared objects a step works with (instead of closures over ``create_app``)."""

    settings: Settings
    metrics: Metrics
    outputs: Outputs
    clock: Clock


class Step(ABC):
    """One pipeline step: handles a micro-batch of its input topic."""

    name: ClassVar[str]

    def __init__(self, context: StepContext) -> None:
        self.context = context

    @abstractmethod
    async def handle(self, batch: Sequence[Consumed]) -> None:
        """Process one micro-batch: call the core, commit what it returned."""

    async def commit(self, parts: Sequence[Part]) -> None:
        """Count what the folds returned, then send, dead-letter and write it.

        Counted first, as the messages leave: a metric never trails the action it counts.
        """
        for result, _ in parts:
            record_tally(self.context.metrics, result.tally)
        await self.context.outputs.commit(parts, self.name)


class PartitionedStep(Step):
    """A step with tables: each partition of a batch is folded on its own, then the
    whole batch is committed at once (one wait for its sends' acknowledgements before any
    of its state is written).

    Folding every partition before writing any is safe: a key, and so everything a
    fold reads, belongs to one partition. A fold runs with one of its partition's records
    as Faust's current event, so its table reads go to that partition's database (without
    one, a RocksDB store looks a key up in every partition it holds).
    """

    def before_batch(self) -> None:
        """Take what stays fixed for a whole batch (the clock, the policy)."""

    @abstractmethod
    def fold(self, partition: int, records: Sequence[Record]) -> BatchResult:
        """The core's answer for one partition's records, in offset order."""

    def after_commit(self, partition: int, result: BatchResult) -> None:
        """Follow-up once a partition's result is committed (indexes, metrics)."""

    async def handle(self, batch: Sequence[Consumed]) -> None:
        """Fold each partition's part of the batch, then commit them together."""
        self.before_batch()
        folded = []
        for partition, events in group_by_partition(batch).items():
            records = [(event.message.key, event.message.value) for event in events]
            with partition_context(events[0]):
                folded.append((partition, self.fold(partition, records), events))
        await self.commit([(result, events) for _, result, events in folded])
        for partition, result, _ in folded:
            self.after_commit(partition, result)


async def run_step(step: Step, stream: AsyncIterable[Any], settings: Settings) -> None:
    """The agent loop: micro-batches of the step's topic, each timed and counted."""
    metrics = step.context.metrics
    async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):  # type: ignore[attr-defined]
        started = time.perf_counter()
        await step.handle(batch)
        metrics.batch_size.labels(step.name).observe(len(batch))
        metrics.batch_duration.labels(step.name).observe(time.perf_counter() - started)


def record_tally(metrics: Metrics, tally: Tally) -> None:
    """Add a fold's counts and observations to the worker's metrics (named alike)."""
    for (name, *labels), amount in tally.counts.items():
        metric = getattr(metrics, name)
        (metric.labels(*labels) if labels else metric).inc(amount)
    for name, observed_labels, value in tally.observations:
        metric = getattr(metrics, name)
        (metric.labels(*observed_labels) if observed_labels else metric).observe(value)
