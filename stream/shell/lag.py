"""Consumer lag per partition: the end offset minus the group's committed offset.

Every ``interval`` seconds each worker reports the lag of the input partitions it owns
(``journey_consumer_lag_messages{topic,partition}``): the end offsets come from the worker's own
consumer, the committed offsets from the group coordinator (an admin request), so the
number is what an operator's ``kafka-consumer-groups --describe`` would show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream.shell.kafka_security import credentials_client_kwargs
from stream.shell.metrics import Metrics

log = logging.getLogger(__name__)


class LagMonitor:
    """Exports the consumer lag of this worker's input partitions."""

    def __init__(
        self,
        app: Any,
        broker: str,
        group_id: str,
        topics: Collection[str],
        metrics: Metrics,
        owned: Callable[[], set[Any] | None],
    ) -> None:
        self.app = app
        self.broker = broker
        self.group_id = group_id
        self.topics = set(topics)
        self.metrics = metrics
        self.owned = owned

    async def measure(self, admin: AIOKafkaAdminClient) -> dict[tuple[str, int], int]:
        """Lag per (topic, partition) this worker owns now (empty while rebalancing)."""
        assigned = self.owned()
        if not assigned:
            return {}
        tps = sorted((tp for tp in assigned if tp.topic in self.topics), key=tuple)
        if not tps:
            return {}
        ends = await self.app.consumer.highwaters(*tps)
        committed = await admin.list_consumer_group_offsets(
            self.group_id, partitions=[TopicPartition(tp.topic, tp.partition) for tp in tps]
        )
        lag = {}
        for tp in tps:
            meta = committed.get(TopicPartition(tp.topic, tp.partition))
            offset = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[(tp.topic, tp.partition)] = max(0, int(ends.get(tp, 0)) - offset)
        return lag

    async def run(self, interval_s: float) -> None:
        """Measure forever; errors are logged and the next round tries again."""
        # authenticated as the worker's own consumer is: the app's broker credentials
        security = credentials_client_kwargs(self.app.conf.broker_credentials)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker, **security)
        await admin.start()
        try:
            while True:
                try:
                    lag = await self.measure(admin)
                    if lag or self.owned() is not None:
                        self.metrics.consumer_lag.clear()
                        for (topic, partition), value in lag.items():
                            self.metrics.consumer_lag.labels(topic, str(partition)).set(value)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("consumer lag measurement failed")
                await asyncio.sleep(interval_s)
        finally:
            await admin.close()
