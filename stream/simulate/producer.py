"""Kafka shell of the simulator: produce ``generate_events`` output to the ingress topics, paced.

Pacing is a token bucket on the event loop's monotonic clock: event ``n`` is due
``n / rate`` seconds after the start, events go out in small batches (about 50 ms worth,
at most 500) and the producer sleeps only when it is ahead of schedule. ``rate <= 0`` sends
as fast as the broker accepts.

Event time: ``start_ms`` defaults to the wall clock at the call. When pacing, the generator's
``mean_gap_ms`` is set to ``customers * 1000 / rate`` so that the simulated stream carries about
``rate`` events per simulated second; simulated time then tracks real time loosely (event times
drift around "now" by the randomness of the journeys, not by a growing offset). When
``rate <= 0`` the generator's default gap (one event per customer per minute) is used and event
time simply runs ahead of the wall clock.

The Kafka record timestamp is left to the producer (send time); the event time is
``occurred_at`` in the value.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream.simulate.journeys import SimulatedEvent, generate_events, to_topic

DEFAULT_MEAN_GAP_MS = 60_000
MAX_BATCH = 500
BATCH_WINDOW_S = 0.05
PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class SimulationStats:
    """What a simulation run produced."""

    events_sent: int
    by_channel: dict[str, int]
    elapsed_s: float
    events_per_s: float

    @classmethod
    def of(cls, events_sent: int, by_channel: Counter[str], elapsed_s: float) -> SimulationStats:
        """The stats of a run that sent ``events_sent`` events in ``elapsed_s`` seconds."""
        return cls(
            events_sent=events_sent,
            by_channel=dict(sorted(by_channel.items())),
            elapsed_s=elapsed_s,
            events_per_s=events_sent / elapsed_s if elapsed_s > 0 else 0.0,
        )


def mean_gap_for(customers: int, rate: float) -> int:
    """Per-customer mean gap (ms) that makes the simulated stream carry ``rate`` events/s."""
    if rate <= 0:
        return DEFAULT_MEAN_GAP_MS
    return max(1, round(customers * 1000 / rate))


def batch_size_for(rate: float) -> int:
    """Events per batch: about 50 ms worth at the target rate, 1..500."""
    if rate <= 0:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(rate * BATCH_WINDOW_S)))


async def run_simulation(
    bootstrap: str,
    topic_prefix: str,
    customers: int,
    rate: float,
    seed: int,
    max_events: int | None = None,
    duration_s: float | None = None,
    start_ms: int | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    time_scale: float = 1.0,
    clock_now_ms: Callable[[], int] | None = None,
    step_ms: int | None = None,
    lapse_share: float = 0.0,
    security: Mapping[str, Any] | None = None,
    compression_type: str | None = None,
) -> SimulationStats:
    """Produce simulated journeys to ``<prefix>events.<channel>`` at ``rate`` events/s until done.

    Stops after ``max_events`` events or ``duration_s`` seconds, whichever comes first (neither:
    runs until cancelled; cancellation is re-raised after the producer is flushed and stopped).
    ``on_progress(events_sent, elapsed_s)`` is called about once a second and at the end.
    ``time_scale`` is the workers' clock speed: with 720, the events' simulated time runs
    720 times faster than the wall clock. With ``clock_now_ms`` (the workers' clock) the
    events are paced by their ``occurred_at`` on that clock instead of by count, so event
    time and the workers' processing time stay together; ``rate`` then only sets how busy
    customers are. ``step_ms`` and ``lapse_share``: see ``generate_events``. ``security``: the
    SASL/TLS arguments of ``kafka_security.client_kwargs`` (none for a PLAINTEXT broker);
    ``compression_type``: the producer's codec (JOURNEY_COMPRESSION; None: uncompressed).
    """
    if start_ms is None:
        start_ms = int(time.time() * 1000)
    mean_gap_ms = mean_gap_for(customers, rate / time_scale if rate > 0 else rate)
    events = generate_events(
        customers, seed, start_ms, mean_gap_ms, step_ms=step_ms, lapse_share=lapse_share
    )
    producer = _new_producer(bootstrap, security, compression_type)
    await _start(producer)
    pacer = _Pacer(rate, max_events, duration_s)
    by_channel: Counter[str] = Counter()
    last_progress = 0.0
    try:
        while (size := pacer.next_batch_size()) > 0:
            if clock_now_ms is None:
                await pacer.wait_for_turn()
            if pacer.out_of_time():
                break
            batch = _take(events, size)
            if clock_now_ms is not None:
                ahead_ms = batch[-1].occurred_at_ms - clock_now_ms()
                await pacer.sleep(ahead_ms / time_scale / 1000)
            await _send_batch(producer, topic_prefix, batch)
            pacer.sent += len(batch)
            by_channel.update(event.channel for event in batch)
            if on_progress is not None and pacer.elapsed() - last_progress >= PROGRESS_EVERY_S:
                last_progress = pacer.elapsed()
                on_progress(pacer.sent, last_progress)
    finally:
        await _close(producer)
    elapsed = pacer.elapsed()
    if on_progress is not None:
        on_progress(pacer.sent, elapsed)
    return SimulationStats.of(pacer.sent, by_channel, elapsed)


def _new_producer(
    bootstrap: str, security: Mapping[str, Any] | None, compression_type: str | None
) -> AIOKafkaProducer:
    """An idempotent producer that waits for every replica (not started)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        value_serializer=orjson.dumps,
        compression_type=compression_type,
        **(security or {}),
    )


class _Pacer:
    """Token bucket on the monotonic clock, plus the stop conditions."""

    def __init__(self, rate: float, max_events: int | None, duration_s: float | None) -> None:
        self.rate = rate
        self.max_events = max_events
        self.duration_s = duration_s
        self.batch_size = batch_size_for(rate)
        self.started = time.monotonic()
        self.sent = 0

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def out_of_time(self) -> bool:
        """Whether the duration is used up."""
        return self.duration_s is not None and self.elapsed() >= self.duration_s

    def next_batch_size(self) -> int:
        """How many events to send next; 0 when the run is over."""
        if self.out_of_time():
            return 0
        if self.max_events is None:
            return self.batch_size
        return max(0, min(self.batch_size, self.max_events - self.sent))

    async def sleep(self, seconds: float) -> None:
        """Sleep, but not past the end of the run."""
        if self.duration_s is not None:
            seconds = min(seconds, self.duration_s - self.elapsed())
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for_turn(self) -> None:
        """Sleep until the next event is due (no-op when unpaced or behind schedule)."""
        if self.rate <= 0:
            await asyncio.sleep(0)  # let other tasks run between batches
            return
        ahead_s = self.sent / self.rate - self.elapsed()
        if self.duration_s is not None:
            ahead_s = min(ahead_s, self.duration_s - self.elapsed())
        await asyncio.sleep(max(0.0, ahead_s))


def _take(events: Iterator[SimulatedEvent], size: int) -> list[SimulatedEvent]:
    """The next ``size`` events of the (infinite) generator."""
    return [next(events) for _ in range(size)]


async def _send_batch(
    producer: AIOKafkaProducer, topic_prefix: str, batch: list[SimulatedEvent]
) -> None:
    """Enqueue a batch and wait until the broker acknowledged all of it."""
    deliveries = [
        await producer.send(to_topic(topic_prefix, event.channel), event.value, key=event.key)
        for event in batch
    ]
    await asyncio.gather(*deliveries)


async def _start(producer: AIOKafkaProducer) -> None:
    """Start the producer; release its resources if it cannot connect."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise


async def _close(producer: AIOKafkaProducer) -> None:
    """Flush what is pending and stop, even if flushing fails."""
    try:
        await producer.flush()
    finally:
        await producer.stop()
