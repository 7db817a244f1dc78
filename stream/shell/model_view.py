"""Every worker's copy of the learned model: the compacted model topic, read whole.

The learn step owns the rows (one per action, in its ``propensity`` table, on the
partition of the action) and publishes each row it changes to the compacted model topic.
Every worker reads all partitions of that topic from the beginning, outside any consumer
group, and swaps in a new immutable ``PropensityModel`` per row. Decisions read
``ModelView.current`` once per batch.

Freshness: a row reaches the other workers one learn batch (``JOURNEY_BATCH_WITHIN_S``)
plus one fetch (``JOURNEY_FETCH_MAX_WAIT_MS``) after its learning update is consumed,
well under a second on an idle broker; ``journey_model_age_seconds`` shows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from stream.core.propensity import EMPTY_MODEL, PropensityModel
from stream.shell.clock import wall_ms
from stream.shell.metrics import Metrics

log = logging.getLogger(__name__)
RETRY_S = 5.0


async def caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """True once the consumer's position reached ``end`` on every partition."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


class ModelView:
    """The latest learned rows, kept current by ``run``."""

    def __init__(
        self,
        broker: str,
        topic: str,
        metrics: Metrics,
        fetch_max_wait_ms: int,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.metrics = metrics
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.security = security or {}  # kafka_security.client_kwargs of the settings
        self.current: PropensityModel = EMPTY_MODEL
        self.loaded = asyncio.Event()  # set once the topic was read up to its end once
        self._newest_ts_ms = 0

    def apply(self, value: bytes | None, timestamp_ms: int) -> None:
        """Take one published row into the view (a malformed one is logged and skipped)."""
        if value is None:
            return
        try:
            row: dict[str, Any] = orjson.loads(value)
            action = str(row["action"])
            cells = row["cells"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("model row skipped: %s", exc)
            return
        self.current = self.current.with_row(row, int(row.get("updated_at_ms", 0)))
        self._newest_ts_ms = max(self._newest_ts_ms, timestamp_ms)
        for cell, (trials, successes) in cells.items():
            stage, _, channel = cell.partition("/")
            self.metrics.model_trials.labels(action, stage, channel).set(trials)
            self.metrics.model_successes.labels(action, stage, channel).set(successes)

    async def run(self) -> None:
        """Follow the model topic until cancelled; a failure is logged and retried.

        The worker keeps deciding with the view it has (at worst the policy's priors):
        a broken model feed must not stop the stream.
        """
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("model view failed; retrying in %.0f s", RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        consumer = whole_topic_consumer(
            self.broker, self.topic, self.fetch_max_wait_ms, security=self.security
        )
        await consumer.start()
        try:
            end = await end_offsets(consumer, deadline_s=None)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        self.apply(message.value, message.timestamp)
                if not self.loaded.is_set() and await caught_up(consumer, end):
                    self.loaded.set()
                if self._newest_ts_ms:
                    self.metrics.model_age.set(max(0.0, (wall_ms() - self._newest_ts_ms) / 1000))
        finally:
            await consumer.stop()


def whole_topic_consumer(
    broker: str,
    topic: str,
    fetch_max_wait_ms: int = 500,
    security: Mapping[str, Any] | None = None,
) -> AIOKafkaConsumer:
    """A consumer of every partition of ``topic`` from the beginning, outside any group.

    (Without a group id, aiokafka assigns a subscribed topic's partitions all to us.)
    ``security``: the SASL/TLS arguments of ``kafka_security.client_kwargs``.
    """
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        metadata_max_age_ms=5_000,
        **(security or {}),
    )


async def end_offsets(
    consumer: AIOKafkaConsumer, deadline_s: float | None
) -> dict[TopicPartition, int]:
    """The end offsets of the consumer's partitions, once it has been assigned them."""
    loop = asyncio.get_running_loop()
    give_up = None if deadline_s is None else loop.time() + deadline_s
    while not consumer.assignment():
        if give_up is not None and loop.time() > give_up:
            raise TimeoutError("no partitions assigned: does the topic exist?")
        await asyncio.sleep(0.1)
    partitions = sorted(consumer.assignment())
    return dict(await consumer.end_offsets(partitions))
