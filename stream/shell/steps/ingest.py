"""The ingest step: validate what upstream systems produce, address it to the resolve step."""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.intake import ingest_batch
from stream.core.schemas import SchemaCatalog
from stream.shell.outputs import Consumed, timestamp_ms
from stream.shell.steps.batch import Step, StepContext


class IngestStep(Step):
    """Ingress events -> identity-events (keyed by identifier), or the DLQ with a reason."""

    name = "ingest"

    def __init__(self, context: StepContext, catalog: SchemaCatalog) -> None:
        super().__init__(context)
        self.options = context.settings.decode_options(catalog)
        topics = context.settings.topics
        self.channel_of_topic = {topics.events(channel): channel for channel in catalog.event_types}

    async def handle(self, batch: Sequence[Consumed]) -> None:
        """Decode and validate each event; occurred_at is judged on the processing clock."""
        records = [
            (self.channel_of_topic.get(e.message.topic), e.message.value, timestamp_ms(e.message))
            for e in batch
        ]
        result = ingest_batch(records, self.options, self.context.clock.now_ms())
        await self.commit([(result, batch)])
