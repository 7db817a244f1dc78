"""Create the contract topics idempotently (an existing topic is left as it is), and check
that the topics a CLI command needs exist without ever creating one.

aiokafka's consumers and producers ask the broker for a topic's metadata with "create it if
missing" and offer no option against it (0.14), so a broker with
``auto.create.topics.enable=true`` (the local one) would create a mistyped prefix's topics.
The commands therefore look first, with a request for every topic, which creates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.config import Settings, Topics
from stream.shell.kafka_security import check_broker_access, client_kwargs

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


class MissingTopicsError(Exception):
    """Topics a command needs do not exist; ``missing`` names them."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        names = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        subject = f"topic {names} does" if len(missing) == 1 else f"topics {names} do"
        super().__init__(f"{subject} not exist")


def every_topic(topics: Topics) -> list[str]:
    """Every topic the package creates: the contract and the internal topics."""
    return [
        *topics.contract,
        topics.identity_events,
        topics.customer_events,
        topics.erasures,
        topics.learning,
        topics.model,
        topics.policies,
    ]


async def _connected_admin(settings: Settings, timeout_s: float) -> AIOKafkaAdminClient:
    """A started admin client, once the broker accepted these settings (an unreachable one
    is retried until ``timeout_s``; see ``check_broker_access``)."""
    await check_broker_access(settings, timeout_s)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.broker, request_timeout_ms=15000, **client_kwargs(settings)
    )
    await admin.start()
    return admin


async def require_topics(settings: Settings, names: list[str], timeout_s: float = 10.0) -> None:
    """Return if every topic in ``names`` exists; else raise ``MissingTopicsError``
    (``BrokerAccessError`` if the broker cannot be reached within ``timeout_s``)."""
    admin = await _connected_admin(settings, timeout_s)
    try:
        existing = set(await admin.list_topics())  # all topics: a request that creates none
    finally:
        await admin.close()
    missing = [name for name in names if name not in existing]
    if missing:
        raise MissingTopicsError(missing)


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create every missing topic of the contract; returns the names it created."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    admin = await _connected_admin(settings, timeout_s)
    try:
        existing = set(await admin.list_topics())
        topics = settings.topics
        wanted = every_topic(topics)
        missing = [name for name in wanted if name not in existing]
        if missing:
            new_topics = [
                NewTopic(
                    name,
                    settings.partitions,
                    settings.replication,
                    # the latest row per action / the text per policy, whatever its age
                    topic_configs={"cleanup.policy": "compact"}
                    if name in (topics.model, topics.policies)
                    else None,
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
