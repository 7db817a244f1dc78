"""Create the contract topics idempotently (an existing topic is left as it is)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from stream.config import Settings
from stream.shell.kafka_security import client_kwargs

log = logging.getLogger(__name__)


async def _wait_visible(admin: AIOKafkaAdminClient, topics: list[str], deadline: float) -> None:
    """Wait until the broker's metadata lists every topic with its partitions.

    A broker that has just started can acknowledge a creation before its metadata shows
    the topic; a consumer joining then is assigned nothing.
    """
    loop = asyncio.get_running_loop()
    while True:
        described = await admin.describe_topics(topics)
        ready = {d["topic"] for d in described if d.get("error_code") == 0 and d["partitions"]}
        if ready >= set(topics):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics not visible: {sorted(set(topics) - ready)}")
        await asyncio.sleep(0.2)


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create every missing topic of the contract; returns the names it created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.broker, request_timeout_ms=15000, **client_kwargs(settings)
    )
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("broker %s not reachable yet, retrying", settings.broker)
            await asyncio.sleep(1.0)
    try:
        existing = set(await admin.list_topics())
        topics = settings.topics
        wanted = [
            *topics.contract,
            topics.identity_events,
            topics.customer_events,
            topics.erasures,
            topics.learning,
            topics.model,
        ]
        missing = [name for name in wanted if name not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    name,
                    settings.partitions,
                    settings.replication,
                    # the model topic keeps the latest row per action, whatever its age
                    topic_configs={"cleanup.policy": "compact"} if name == topics.model else None,
                )
                for name in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(new_topics)
            log.info("created topics: %s", ", ".join(missing))
        await _wait_visible(admin, wanted, deadline)
        return missing
    finally:
        await admin.close()
