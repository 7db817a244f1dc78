"""create_app(settings): the Faust app, its topics, the customer table and the two agents.

Agents are thin: read a micro-batch, call the core, write what the core returned.

    cjo.events.<channel> --ingest--> cjo.internal.customer-events --process--> actions, decisions
                            \\--> cjo.dlq                              \\--> customers table
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.config import Settings
from stream.core.decide import Decision, Policy
from stream.core.dlq import SourcePosition, dlq_record
from stream.core.events import DecodeOptions, DlqReason, Event, Rejection, decode_event
from stream.core.pipeline import step
from stream.core.schemas import SchemaCatalog, load_catalog
from stream.core.state import CustomerState, Limits
from stream.shell.faust_compat import group_by_partition, partition_context
from stream.shell.metrics import Metrics
from stream.shell.policy_source import PolicySource

log = logging.getLogger(__name__)


def timestamp_ms(message: Any) -> int | None:
    """Kafka timestamp of a consumed message in epoch ms (Faust keeps seconds)."""
    return int(message.timestamp * 1000) if message.timestamp else None


def processing_error(exc: Exception) -> Rejection:
    """The DLQ rejection of an event the worker failed on (a bug, not bad input)."""
    return Rejection(DlqReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")


def now_ms() -> int:
    """Wall clock in epoch milliseconds (the shell's only clock)."""
    return int(time.time() * 1000)


@dataclass
class JourneyApp:
    """The Faust app and the parts tests and the CLI need to reach."""

    app: faust.App
    settings: Settings
    catalog: SchemaCatalog
    metrics: Metrics
    customers: Any  # faust Table[bytes, bytes]
    policy: PolicySource

    def is_ready(self) -> bool:
        """True when partitions are assigned, no rebalance runs and tables are recovered."""
        app = self.app
        try:
            assigned = bool(app.consumer.assignment())
        except Exception:  # consumer not started yet
            return False
        return assigned and not app.rebalancing and app.tables.recovery.completed.is_set()


def create_faust_app(settings: Settings) -> faust.App:
    """The bare Faust app configured from settings."""
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        key_serializer="raw",
        value_serializer="raw",
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_buffer_maxsize=8192,
        autodiscover=False,
    )


def create_app(settings: Settings, catalog: SchemaCatalog | None = None) -> JourneyApp:
    """The worker: topics, the customer table, the ingest and process agents, web views.

    Raises PolicyError if the policy file is invalid: a worker never starts without one.
    """
    catalog = catalog or load_catalog()
    policy_source = PolicySource(settings.policy_file, catalog)
    app = create_faust_app(settings)
    metrics = Metrics()
    metrics.set_policy(policy_source.current.version)
    topics = settings.topics
    limits = Limits(settings.dedupe_window, settings.recent_events)
    decode_options = DecodeOptions(
        catalog, settings.max_event_bytes, settings.hash_salt, settings.default_region
    )
    channel_of_topic = {topics.events(channel): channel for channel in catalog.event_types}

    ingress = app.topic(*topics.all_events)
    customer_events = app.topic(topics.customer_events, partitions=settings.partitions)
    customers = app.Table(
        "customers",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
    )
    journey = JourneyApp(app, settings, catalog, metrics, customers, policy_source)

    async def send(topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        await app.producer.send(topic, key, orjson.dumps(value), None, None, None)

    async def dead_letter(event: EventT, rejection: Rejection, received_at_ms: int) -> None:
        message = event.message
        source = SourcePosition(
            message.topic, message.partition, message.offset, timestamp_ms(message), message.key
        )
        log.info("DLQ %s at %s: %s", rejection.reason.value, source, rejection.detail)
        metrics.invalid_events.labels(rejection.reason.value).inc()
        await send(
            topics.dlq, message.key, dlq_record(rejection, message.value, source, received_at_ms)
        )

    async def ingest_one(event: EventT, received_at_ms: int) -> None:
        message = event.message
        decoded = decode_event(message.value, channel_of_topic.get(message.topic), decode_options)
        if isinstance(decoded, Rejection):
            await dead_letter(event, decoded, received_at_ms)
            return
        metrics.events.labels(decoded.channel, decoded.type).inc()
        record = {"event": decoded.to_record(), "ingress_ts_ms": timestamp_ms(message)}
        await send(topics.customer_events, decoded.customer_key.encode(), record)

    @app.agent(ingress, name="ingest")
    async def ingest(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            received_at_ms = now_ms()
            for event in batch:
                try:
                    await ingest_one(event, received_at_ms)
                except Exception as exc:  # decode never raises on input; this is a bug
                    log.exception("ingest failed at offset %s", event.message.offset)
                    await dead_letter(event, processing_error(exc), received_at_ms)
            metrics.batch_size.labels("ingest").observe(len(batch))
            metrics.batch_duration.labels("ingest").observe(time.perf_counter() - started)

    async def emit_decision(decision: Decision) -> None:
        key = decision.customer_id.encode()
        for candidate in decision.candidates:
            if not candidate.chosen:
                metrics.suppressions.labels(candidate.action, candidate.reason.value).inc()
        for action in decision.actions:
            metrics.actions.labels(action.action, action.channel).inc()
            await send(topics.actions(action.channel), key, action.to_message())
        await send(topics.decisions, key, decision.to_message())

    async def process_partition(events: list[EventT], decided_at_ms: int, policy: Policy) -> None:
        states: dict[bytes, CustomerState | None] = {}
        dirty: set[bytes] = set()
        for item in events:
            try:
                record = orjson.loads(item.message.value)
                event = Event.from_record(record["event"])
                key = event.customer_key.encode()
                if key not in states:
                    stored = customers.get(key)
                    states[key] = (
                        None if stored is None else CustomerState.from_dict(orjson.loads(stored))
                    )
                result = step(states[key], event, decided_at_ms, limits, policy)
            except Exception as exc:  # a bug must not stop the stream: park the event
                log.exception("processing failed at offset %s", item.message.offset)
                await dead_letter(item, processing_error(exc), decided_at_ms)
                continue
            if result.duplicate:
                metrics.duplicates.inc()
                continue
            states[key] = result.state
            dirty.add(key)
            if result.stage_change is not None:
                metrics.stage_transitions.labels(
                    result.stage_change.from_stage, result.stage_change.to_stage
                ).inc()
            if result.decision is not None:
                await emit_decision(result.decision)
            ingress_ts_ms = record.get("ingress_ts_ms")
            if ingress_ts_ms:
                metrics.event_latency.observe(max(0.0, (now_ms() - ingress_ts_ms) / 1000))
        for key in dirty:
            state = states[key]
            assert state is not None
            customers[key] = state.to_json()

    @app.agent(customer_events, name="process")
    async def process(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            decided_at_ms = now_ms()
            policy = policy_source.current  # one policy per batch, even across a reload
            for events in group_by_partition(batch).values():
                with partition_context(events[0]):
                    await process_partition(events, decided_at_ms, policy)
            metrics.batch_size.labels("process").observe(len(batch))
            metrics.batch_duration.labels("process").observe(time.perf_counter() - started)

    def reload_policy(changed_only: bool) -> None:
        reloaded = policy_source.reload_if_changed() if changed_only else policy_source.reload()
        if reloaded:
            metrics.set_policy(policy_source.current.version)
        metrics.policy_reload_failures.set(policy_source.failed_reloads)

    @app.timer(settings.policy_poll_s)
    async def watch_policy_file() -> None:
        reload_policy(changed_only=True)

    @app.task
    async def reload_policy_on_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_policy, False)

    _add_web_views(journey)
    return journey


def _add_web_views(journey: JourneyApp) -> None:
    app, metrics, customers = journey.app, journey.metrics, journey.customers

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        metrics.ready.set(1 if journey.is_ready() else 0)
        # aiohttp refuses parameters in content_type=; the full type goes in the header.
        return web.bytes(
            generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready = journey.is_ready()
        return web.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/customers/{customer_id}")
    async def customer_view(web: Any, request: Any, customer_id: str) -> Any:
        stored = customers.get(customer_id.encode())
        if stored is None:
            return web.json(
                {"error": "not_found", "detail": f"no customer {customer_id!r} on this worker"},
                status=404,
            )
        return web.bytes(stored, content_type="application/json")
