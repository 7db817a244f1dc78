"""The outcomes step: validate what the channel senders report, re-key it to the customer."""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.intake import outcomes_batch
from stream.core.schemas import SchemaCatalog
from stream.shell.outputs import Consumed
from stream.shell.steps.batch import Step, StepContext


class OutcomesStep(Step):
    """Senders' outcomes -> customer-events (keyed by customer), or the DLQ."""

    name = "outcomes"

    def __init__(self, context: StepContext, catalog: SchemaCatalog) -> None:
        super().__init__(context)
        self.catalog = catalog

    async def handle(self, batch: Sequence[Consumed]) -> None:
        """Validate each outcome and re-key it to the customer's partition."""
        values = [event.message.value for event in batch]
        max_bytes = self.context.settings.max_event_bytes
        await self.commit([(outcomes_batch(values, self.catalog, max_bytes), batch)])
