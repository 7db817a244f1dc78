"""The process step: a customer's events, firings and outcomes become state and actions.

The work is ``stream.core.fold.fold_partition``; this step reads the tables for it, keeps
the scheduler's index in step with the due table, and records latencies and condition
errors once the batch is committed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from stream.core.batch import BatchResult
from stream.core.fold import FoldContext, fold_partition
from stream.core.state import Limits
from stream.core.stored import Tables
from stream.core.timer_index import TimerIndex
from stream.shell.clock import wall_ms
from stream.shell.condition_errors import ConditionErrors
from stream.shell.journey_archive import JourneyArchive
from stream.shell.model_view import ModelView
from stream.shell.policy_source import PolicySource
from stream.shell.steps.batch import PartitionedStep, Record, StepContext


class ProcessStep(PartitionedStep):
    """Owns the customers, due, decisions and census tables."""

    name = "process"

    def __init__(
        self,
        context: StepContext,
        tables: Mapping[str, Any],
        policy: PolicySource,
        model: ModelView,
        index: TimerIndex,
        condition_errors: ConditionErrors,
        archive: JourneyArchive | None = None,
    ) -> None:
        super().__init__(context)
        self.archive = archive
        self.stored = Tables(tables)
        self.policy_source = policy
        self.model_view = model
        self.index = index
        self.condition_errors = condition_errors
        settings = context.settings
        self.limits = Limits(settings.dedupe_window, settings.recent_events)
        # A firing that failed (a bug) is retried after a minute of real time, not in a loop.
        self.retry_ms = int(60_000 * context.clock.speed)
        self.fold_context = self._fold_context()

    def _fold_context(self) -> FoldContext:
        return FoldContext(
            now_ms=self.context.clock.now_ms(),
            wall_ms=wall_ms(),
            policy=self.policy_source.current,  # one policy per batch, even across a reload
            model=self.model_view.current,  # and one view of the learned model
            limits=self.limits,
            decisions_kept=self.context.settings.decisions_kept,
            firing_retry_ms=self.retry_ms,
            clock_speed=self.context.clock.speed,
            stopwatch=time.perf_counter,
        )

    async def handle(self, batch: Sequence[Any]) -> None:
        """Fold the batch, once the journey versions runs are pinned to are known."""
        if self.archive is not None:
            await self.archive.ready()
        await super().handle(batch)

    def before_batch(self) -> None:
        """The batch's clock, policy and model."""
        self.fold_context = self._fold_context()

    def fold(self, partition: int, records: Sequence[Record]) -> BatchResult:
        """Apply the partition's records to its profiles (``stream.core.fold``)."""
        return fold_partition(partition, records, self.stored, self.fold_context)

    def after_commit(self, partition: int, result: BatchResult) -> None:
        """Index the new deadlines; record latencies and condition errors."""
        for key, due_ms in result.deadlines.items():
            self.index.update(key, partition, due_ms)
        for decision in result.decisions:
            self.condition_errors.record(decision)
        self._observe_latencies(result)

    def _observe_latencies(self, result: BatchResult) -> None:
        if not result.latencies:
            return
        metrics, clock = self.context.metrics, self.context.clock
        now_wall_ms, now_ms = wall_ms(), clock.now_ms()  # read once per batch, not per event
        for latency in result.latencies:
            if latency.ingress_ts_ms:
                latency_s = max(0.0, (now_wall_ms - latency.ingress_ts_ms) / 1000)
                metrics.event_latency.observe(latency_s)
                if latency.sent:
                    metrics.event_to_action.labels("kafka").observe(latency_s)
            if latency.occurred_at_ms is not None:
                since_ms = max(0, now_ms - latency.occurred_at_ms)
                metrics.event_to_action.labels("occurred_at").observe(clock.real_seconds(since_ms))
