"""The learn step: fold learning updates into the per-action ``propensity`` table.

Learning updates arrive keyed by action, so each action's row lives on one partition
and is written by one worker. Every row a batch changed is published to the compacted
model topic, from which every worker's ``ModelView`` reads.

At least once: a redelivered update is counted again. The model is a statistical
estimate and one extra trial in thousands does not move it; uplift counts are exact
metrics on the process step (``journey_uplift_*``). The row is published before the
table is written (the commit order of every step), so a worker stopping in between
publishes it again with the batch's redelivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream.core.batch import BatchResult
from stream.core.intake import learn_partition
from stream.shell.steps.batch import PartitionedStep, Record, StepContext


class LearnStep(PartitionedStep):
    """The owner side of the learned model."""

    name = "learn"

    def __init__(self, context: StepContext, propensity: Any) -> None:
        super().__init__(context)
        self.table = propensity  # the propensity table's store (read only): action -> row

    def fold(self, partition: int, records: Sequence[Record]) -> BatchResult:
        """Count the partition's updates into their rows (``stream.core.intake``)."""
        return learn_partition(records, self.table.get, self.context.clock.now_ms())
