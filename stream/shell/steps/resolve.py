"""The resolve step: events to their profile through the alias table; identity links."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream.core.batch import BatchResult
from stream.core.routing import resolve_partition
from stream.shell.policy_source import PolicySource
from stream.shell.steps.batch import PartitionedStep, Record, StepContext


class ResolveStep(PartitionedStep):
    """Owns the alias table (identifier token -> customer key), partitioned by token."""

    name = "resolve"

    def __init__(self, context: StepContext, aliases: Any, policy: PolicySource) -> None:
        super().__init__(context)
        self.aliases = aliases  # the aliases table's store (read only; one lookup a get)
        self.policy_source = policy
        self.policy = policy.current

    def before_batch(self) -> None:
        """One policy per batch, even across a reload."""
        self.policy = self.policy_source.current

    def fold(self, partition: int, records: Sequence[Record]) -> BatchResult:
        """Route events and apply links (``stream.core.routing``)."""
        now_ms = self.context.clock.now_ms()
        return resolve_partition(records, self.aliases.get, self.policy, now_ms)
