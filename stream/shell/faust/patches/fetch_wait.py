"""A shorter fetch wait for the worker's Kafka consumer (``JOURNEY_FETCH_MAX_WAIT_MS``).

Faust hard-codes 1,500 ms. aiokafka leaves a partition with unconsumed buffered records
out of the next fetch request, so under steady traffic new records on it wait for the
in-flight request to time out on the idle partitions: up to 1.5 s of latency for events
and timer firings (measured: 1.4 s median firing lag).

Wraps ``AIOKafkaConsumerThread._create_worker_consumer`` and sets the aiokafka
consumer's ``_fetch_max_wait_ms``, which its ``start`` hands to the fetcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from stream.shell.faust.pinned import require_pinned_faust

faust_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer

#: Wrapped (Faust's), and read (aiokafka's ``start`` passes ``_fetch_max_wait_ms`` on).
UPSTREAM = (faust_create_worker_consumer, AIOKafkaConsumer.start)


@dataclass
class FetchWaitOptions:
    """The knob: read when a worker consumer is created (at an app's start)."""

    max_wait_ms: int | None = None


options = FetchWaitOptions()


def create_worker_consumer(self: Any, transport: Any) -> Any:
    """Faust's worker consumer, with the fetch wait of ``options``."""
    consumer = faust_create_worker_consumer(self, transport)
    if options.max_wait_ms is not None:
        consumer._fetch_max_wait_ms = options.max_wait_ms
    return consumer


def install(max_wait_ms: int) -> None:
    """Make every worker consumer created from now on wait at most ``max_wait_ms`` in a
    fetch request (the wrapper goes in once per process; the value is the latest)."""
    require_pinned_faust(__name__)
    options.max_wait_ms = max_wait_ms
    if AIOKafkaConsumerThread._create_worker_consumer is not create_worker_consumer:
        AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
