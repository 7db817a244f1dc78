"""Every policy any worker ran, kept on a compacted topic: the journey versions runs are
pinned to survive restarts, rebalances and reloads on any worker.

A customer's journey run is pinned to the version it entered (``Policy.journey_versions``).
The version lives in the customer's state, which moves between workers with its partition,
so every worker must know every version still running. Each worker publishes the text of
the policy it runs (at start and after each reload) to ``<prefix>internal.policies``, keyed
by the policy version, and reads that topic from the beginning for as long as it runs:
every text it reads is checked and loaded again, and its journey versions are kept. A text
that no longer loads (a schema change) is logged and skipped; a run of a version no worker
knows is held until its max duration ends it (``journeys.runs``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from stream.core.decide import PolicyError, load_policy
from stream.shell.model_view import RETRY_S, caught_up, end_offsets, whole_topic_consumer
from stream.shell.policy_source import PolicySource

log = logging.getLogger(__name__)
WAIT_S = 30.0  # how long the process step waits for the archive at start, at most


class JourneyArchive:
    """Publishes this worker's policy texts and learns the other workers' (``run``)."""

    def __init__(
        self,
        broker: str,
        topic: str,
        policy: PolicySource,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.policy = policy
        self.security = security or {}
        self.known: set[str] = {policy.current.version}
        self._published: set[str] = set()
        self._producer: AIOKafkaProducer | None = None
        self.loaded = asyncio.Event()  # set once the topic was read to its end at start
        self._gave_up = False

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one archived policy text: its journey versions become known."""
        version = key.decode(errors="replace") if key else "?"
        if value is None or version in self.known:
            return
        try:
            earlier = load_policy(value.decode(), self.policy.catalog, f"archive:{version}")
        except (PolicyError, UnicodeDecodeError) as exc:
            log.warning("archived policy %s skipped: it does not load any more: %s", version, exc)
            return
        self.known.add(version)
        self.policy.remember(earlier)
        log.info("journey versions of archived policy %s known", version)

    async def ready(self, wait_s: float = WAIT_S) -> None:
        """Return once the archive was read to its end at start (so a run's version is
        known before an event or a firing moves it), or once ``wait_s`` was spent waiting:
        an unreadable archive must not stop the stream (runs of an unknown version are
        held, see ``journeys.runs``)."""
        if self.loaded.is_set() or self._gave_up:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.loaded.wait()), wait_s)
        except TimeoutError:
            self._gave_up = True
            log.warning("journey archive not read within %.0f s; processing goes on", wait_s)

    async def publish(self) -> None:
        """Archive the current policy's text, once per version."""
        version = self.policy.current.version
        if version in self._published:
            return
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.broker, acks="all", **self.security
            )
            await self._producer.start()
        await self._producer.send_and_wait(
            self.topic, self.policy.text.encode(), key=version.encode()
        )
        self._published.add(version)
        self.known.add(version)

    async def run(self) -> None:
        """Publish, then follow the archive until cancelled; a failure is retried."""
        try:
            while True:
                try:
                    await self.publish()
                    await self._follow()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("journey archive failed; retrying in %.0f s", RETRY_S)
                    await asyncio.sleep(RETRY_S)
        finally:
            if self._producer is not None:
                await self._producer.stop()

    async def _follow(self) -> None:
        consumer = whole_topic_consumer(self.broker, self.topic, security=self.security)
        await consumer.start()
        try:
            end = await end_offsets(consumer, deadline_s=None)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for messages in batches.values():
                    for message in messages:
                        self.apply(message.key, message.value)
                if not self.loaded.is_set() and await caught_up(consumer, end):
                    self.loaded.set()
                await self.publish()  # after a reload
        finally:
            await consumer.stop()
