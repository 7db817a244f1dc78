"""The collector's link to Kafka: one idempotent producer, and whether it reaches the broker.

``produce`` sends a request's records (acks=all, idempotence on) and returns only once the
broker has acknowledged every one of them, within a deadline; otherwise it raises
``BrokerUnavailable`` and the collector answers 503: nothing is buffered beyond the
request that waits for it.

A supervisor task keeps ``up`` true while the broker answers: it starts the producer
(retrying while the broker is away), then asks for the cluster's metadata every few
seconds and checks that the topics the collector writes exist (a producer's metadata
request would create a missing one on a broker that auto-creates topics; this one creates
nothing). A failed or late acknowledgement marks the link down and wakes the supervisor,
which marks it up again as soon as the broker answers: the collector accepts again by
itself after an outage, and answers 503 at once while it lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError, KafkaTimeoutError  # type: ignore[import-untyped]
from aiokafka.protocol.metadata import MetadataRequest  # type: ignore[import-untyped]

from stream.config import Settings
from stream.shell.collector.metrics import CollectorMetrics
from stream.shell.kafka_security import client_kwargs

log = logging.getLogger(__name__)

PROBE_EVERY_S = 2.0  # while up: how often the broker is asked for metadata
RETRY_EVERY_S = 1.0  # while down: how often the producer start or the probe is retried
PROBE_TIMEOUT_S = 3.0

Record = tuple[str, bytes | None, bytes]  # topic, key, value


class BrokerUnavailable(Exception):
    """The records were not (all) acknowledged, or the broker is known to be away."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _retrieve(future: asyncio.Future[object]) -> None:
    """Read a send's outcome once nobody waits for it (no "never retrieved" warning)."""
    if not future.cancelled():
        future.exception()


class BrokerLink:
    """The producer, its supervisor and the broker's state as the collector sees it."""

    def __init__(
        self, settings: Settings, required_topics: Sequence[str], metrics: CollectorMetrics
    ) -> None:
        self.settings = settings
        self.required_topics = frozenset(required_topics)
        self.metrics = metrics
        self.up = False
        self.reason = "starting: the producer has not reached the broker yet"
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the supervisor (it starts the producer; this returns at once)."""
        self._task = asyncio.create_task(self._supervise(), name="collector-broker-link")

    async def stop(self) -> None:
        """Stop the supervisor, then the producer (which sends what it still holds)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def produce(self, records: Sequence[Record], timeout_s: float) -> float:
        """Send ``records`` and wait for every acknowledgement; the seconds it took.

        Raises ``BrokerUnavailable`` at once while the link is down, and when a record
        fails or is not acknowledged within ``timeout_s`` (some may still be written:
        the caller resends, and the worker drops duplicate event ids)."""
        producer = self._producer
        if not self.up or producer is None:
            raise BrokerUnavailable(self.reason)
        started = time.monotonic()
        futures: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(timeout_s):
                for topic, key, value in records:
                    futures.append(await producer.send(topic, value, key=key))
                await asyncio.gather(*futures)
        except TimeoutError:
            self.mark_down(f"the broker did not acknowledge within {timeout_s:g} s")
            raise BrokerUnavailable(self.reason) from None
        except KafkaError as exc:
            if exc.retriable or isinstance(exc, KafkaTimeoutError):  # an outage, not a bad record
                self.mark_down(f"a record was not acknowledged ({exc!r})")
            raise BrokerUnavailable(f"a record was not acknowledged ({exc!r})") from None
        finally:
            for future in futures:
                if not future.done():
                    future.add_done_callback(_retrieve)
        return time.monotonic() - started

    def mark_down(self, reason: str) -> None:
        """Refuse requests (503) until the supervisor reaches the broker again."""
        if self.up:
            log.warning("collector: broker unavailable: %s", reason)
        self.up, self.reason = False, reason
        self.metrics.broker_up.set(0)
        self._wake.set()

    def _mark_up(self) -> None:
        if not self.up:
            log.info("collector: broker reachable, topics present: accepting")
        self.up, self.reason = True, ""
        self.metrics.broker_up.set(1)

    async def _supervise(self) -> None:
        """Start the producer, then probe the broker for as long as the collector runs."""
        while True:
            try:
                if self._producer is None:
                    self._producer = await self._started_producer()
                await asyncio.wait_for(self._probe(self._producer), PROBE_TIMEOUT_S)
                self._mark_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever the reason, the collector refuses (503)
                self.mark_down(str(exc) or repr(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), PROBE_EVERY_S if self.up else RETRY_EVERY_S
                )

    async def _started_producer(self) -> AIOKafkaProducer:
        """An idempotent producer that has reached the broker; raises if it cannot."""
        settings = self.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.broker,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(settings.collector_ack_timeout_s * 1000),
            compression_type=settings.compression_type,
            client_id="journey-collector",
            **client_kwargs(settings),
        )
        try:
            await producer.start()
        except BaseException as exc:
            await producer.stop()
            if isinstance(exc, Exception):
                raise BrokerUnavailable(
                    f"cannot reach the broker at {settings.broker} ({exc!r})"
                ) from None
            raise
        return producer

    async def _probe(self, producer: AIOKafkaProducer) -> None:
        """Return if the broker answers a metadata request and every topic exists.

        The request names the collector's own topics: the whole cluster's metadata (5,000
        topics on a busy development broker) took 130-190 ms to decode on the event loop,
        every probe, which every request in flight waited for (the bench's p99)."""
        client = producer.client
        request = MetadataRequest(sorted(self.required_topics), allow_auto_topic_creation=False)
        try:
            node_id = client.get_random_node()
            if node_id is None:
                raise KafkaError("no broker known")
            response = await client.send(node_id, request)
        except (TimeoutError, KafkaError) as exc:
            broker = self.settings.broker
            raise BrokerUnavailable(f"the broker at {broker} does not answer ({exc})") from None
        present = {topic[1] for topic in response.topics if topic[0] == 0}  # no error code
        missing = sorted(self.required_topics - present)
        if missing:
            raise BrokerUnavailable(
                f"topics missing: {', '.join(missing[:3])}"
                + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                + " (run `journey topics`, or check JOURNEY_TOPIC_PREFIX)"
            )
