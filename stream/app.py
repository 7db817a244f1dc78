"""create_app(settings): the Faust app, its topics, tables and the five agents.

Agents are thin: read a micro-batch, call the core, write what the core returned.

    cjo.events.<channel> --ingest--> internal.identity-events --resolve--> internal.customer-events
                            \\--> cjo.dlq     (keyed by identifier)  (aliases)   (keyed by customer)
    cjo.outcomes --outcomes (validate, DLQ)----------------------------------> (same topic)
    internal.customer-events --process--> actions, decisions       (customers, due tables)
                                    \\--> links back to identity-events, merges, erasures
                                    \\--> internal.learning (keyed by action)
    internal.learning --learn--> internal.model (compacted; every worker's ModelView reads it)
                                 (propensity table)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.config import Settings
from stream.core import census
from stream.core.decide import Policy
from stream.core.dlq import SourcePosition, dlq_key, dlq_record
from stream.core.events import DecodeOptions, DlqReason, Event, Rejection, decode_event
from stream.core.holds import RELEASE_TRIGGER
from stream.core.outcomes import Outcome, decode_outcome
from stream.core.pipeline import StepResult, fire, observe, step
from stream.core.propensity import PropensityModel, UpdateKind
from stream.core.schemas import SchemaCatalog, load_catalog
from stream.core.state import CustomerState, Limits
from stream.core.timer_index import TimerIndex
from stream.shell import delivery_guard
from stream.shell.api import add_api, census_total
from stream.shell.clock import wall_ms
from stream.shell.condition_errors import ConditionErrors
from stream.shell.faust_compat import (
    deliveries,
    enable_idempotent_producer,
    estimated_keys,
    group_by_partition,
    install_drain_loop,
    install_recovery_fast_path,
    partition_context,
    set_fetch_max_wait_ms,
)
from stream.shell.identity_stage import IdentityStage, Moved, load_profile
from stream.shell.kafka_security import broker_credentials, client_kwargs
from stream.shell.lag import LagMonitor
from stream.shell.learn_stage import LearnStage
from stream.shell.metrics import Metrics
from stream.shell.model_view import ModelView
from stream.shell.policy_source import PolicySource
from stream.shell.scheduler import Scheduler

log = logging.getLogger(__name__)


def timestamp_ms(message: Any) -> int | None:
    """Kafka timestamp of a consumed message in epoch ms (Faust keeps seconds)."""
    return int(message.timestamp * 1000) if message.timestamp else None


def processing_error(exc: Exception) -> Rejection:
    """The DLQ rejection of an event the worker failed on (a bug, not bad input)."""
    return Rejection(DlqReason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")


@dataclass
class JourneyApp:
    """The Faust app and the parts tests and the CLI need to reach."""

    app: faust.App
    settings: Settings
    catalog: SchemaCatalog
    metrics: Metrics
    customers: Any  # faust Table[bytes, bytes]
    policy: PolicySource
    aliases: Any  # faust Table[bytes, bytes]: identifier token -> customer key
    model_view: ModelView
    refresh_gauges: Callable[[], None] = lambda: None

    def is_ready(self) -> bool:
        """True when partitions are assigned, no rebalance runs, tables are recovered and
        the learned model has been read once."""
        return app_ready(self.app) and self.model_view.loaded.is_set()


def app_ready(app: faust.App) -> bool:
    """True when partitions are assigned, no rebalance runs and tables are recovered."""
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:  # consumer not started yet
        return False
    return assigned and not app.rebalancing and app.tables.recovery.completed.is_set()


def owned_partitions(app: faust.App, topic: str) -> set[int] | None:
    """Partitions of ``topic`` this worker actively owns; None while not ready."""
    if not app_ready(app):
        return None
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


def create_faust_app(settings: Settings) -> faust.App:
    """The bare Faust app configured from settings."""
    set_fetch_max_wait_ms(settings.fetch_max_wait_ms)
    install_drain_loop(settings.fast_drain)
    install_recovery_fast_path(settings.fast_drain)
    enable_idempotent_producer()
    delivery_guard.install(settings.fault_send)
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
        canonical_url=settings.web_url,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
        consumer_auto_offset_reset="earliest",
        # Faust's 5 minutes: a worker that joined before its topics were visible (a broker
        # just started) would sit with no partitions that long; it rejoins within 10 s.
        consumer_metadata_max_age_ms=10_000,
        producer_acks=-1,
        # aiokafka sends one request per broker at a time; a send to a partition whose
        # batch is full waits for that request to return. Faust's 16 KiB batches made
        # every agent wait on broker round trips; 512 KiB keeps a micro-batch's output in
        # one batch per partition (the broker's message.max.bytes is 1 MiB).
        producer_max_batch_size=512 * 1024,
        producer_compression_type=settings.compression_type,
        stream_buffer_maxsize=8192,
        # Static membership (a StatefulSet pod's name): a restart within the session
        # timeout gets its partitions back without a rebalance.
        consumer_group_instance_id=settings.group_instance_id or None,
        broker_credentials=broker_credentials(settings),  # SASL/TLS; None for PLAINTEXT
        processing_guarantee=settings.processing_guarantee,
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
    metrics.consumer_deliveries = deliveries  # counted by the drain loop, process-wide
    metrics.set_policy(policy_source.current.version, marketing_actions(policy_source.current))
    condition_errors = ConditionErrors(metrics.condition_errors)
    condition_errors.track(policy_source.current)
    topics = settings.topics
    limits = Limits(settings.dedupe_window, settings.recent_events)
    decode_options = DecodeOptions(
        catalog, settings.max_event_bytes, settings.hash_salt, settings.default_region
    )
    channel_of_topic = {topics.events(channel): channel for channel in catalog.event_types}

    ingress = app.topic(*topics.all_events)
    outcomes_in = app.topic(topics.outcomes)
    learning_topic = app.topic(topics.learning, partitions=settings.partitions)
    identity_events = app.topic(topics.identity_events, partitions=settings.partitions)
    customer_events = app.topic(topics.customer_events, partitions=settings.partitions)

    def table(name: str) -> Any:
        """A bytes-to-bytes table co-partitioned with the customer-events topic."""
        options = settings.rocksdb_options(name) if settings.store.startswith("rocksdb") else None
        return app.Table(
            name, partitions=settings.partitions, key_type=bytes, value_type=bytes, options=options
        )

    customers = table("customers")
    due_table = table("due")
    aliases = table("aliases")
    decisions_table = table("decisions")  # per customer: the latest explain records
    census_table = table("census")  # per partition: customers by stage, timers, held
    propensity = table("propensity")  # per action: the learned model's row

    model_view = ModelView(
        settings.broker, topics.model, metrics, settings.fetch_max_wait_ms, client_kwargs(settings)
    )
    clock = settings.clock()
    index = TimerIndex(int(settings.timer_horizon_s * 1000))

    async def send_tick(key: bytes, value: bytes) -> None:
        # Keyed like the events, so the default partitioner puts it on the owner's partition.
        await app.producer.send(topics.customer_events, key, value, None, None, None)

    scheduler = Scheduler(
        index,
        due_table,
        clock,
        metrics,
        send_tick,
        lambda: owned_partitions(app, topics.customer_events),
    )
    journey = JourneyApp(
        app, settings, catalog, metrics, customers, policy_source, aliases, model_view
    )

    async def send(topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        await app.producer.send(topic, key, orjson.dumps(value), None, None, None)

    async def dead_letter(event: EventT, rejection: Rejection, received_at_ms: int) -> None:
        message = event.message
        source = SourcePosition(
            message.topic, message.partition, message.offset, timestamp_ms(message), message.key
        )
        log.info("DLQ %s at %s: %s", rejection.reason.value, source, rejection.detail)
        metrics.invalid_events.labels(rejection.reason.value).inc()
        record = dlq_record(rejection, message.value, source, received_at_ms)
        await send(topics.dlq, dlq_key(message.key), record)

    async def ingest_one(event: EventT, received_at_ms: int, now_ms: int) -> None:
        message = event.message
        channel = channel_of_topic.get(message.topic)
        decoded = decode_event(message.value, channel, decode_options, now_ms)
        if isinstance(decoded, Rejection):
            await dead_letter(event, decoded, received_at_ms)
            return
        metrics.events.labels(decoded.channel, decoded.type).inc()
        record = {"event": decoded.to_record(), "ingress_ts_ms": timestamp_ms(message)}
        # Keyed by the strongest identifier: the resolve stage owns its alias there.
        await send(topics.identity_events, decoded.customer_key.encode(), record)

    @app.agent(ingress, name="ingest")
    async def ingest(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            received_at_ms = wall_ms()
            now_ms = clock.now_ms()  # occurred_at is judged against the processing clock
            for event in batch:
                try:
                    await ingest_one(event, received_at_ms, now_ms)
                except Exception as exc:  # decode never raises on input; this is a bug
                    log.exception("ingest failed at offset %s", event.message.offset)
                    await dead_letter(event, processing_error(exc), received_at_ms)
            metrics.batch_size.labels("ingest").observe(len(batch))
            metrics.batch_duration.labels("ingest").observe(time.perf_counter() - started)

    @app.agent(outcomes_in, name="outcomes")
    async def outcomes(stream: StreamT) -> None:
        """Validate senders' outcomes and re-key them to the customer's partition."""
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            received_at_ms = wall_ms()
            for event in batch:
                decoded = decode_outcome(event.message.value, catalog, settings.max_event_bytes)
                if isinstance(decoded, Outcome):
                    key = decoded.customer_id.encode()
                    await send(topics.customer_events, key, {"outcome": decoded.to_record()})
                else:
                    await dead_letter(event, decoded, received_at_ms)
            metrics.batch_size.labels("outcomes").observe(len(batch))
            metrics.batch_duration.labels("outcomes").observe(time.perf_counter() - started)

    learner = LearnStage(propensity, send, topics.model, metrics, clock)

    @app.agent(learning_topic, name="learn")
    async def learn(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            for events in group_by_partition(batch).values():
                with partition_context(events[0]):
                    refused = learner.fold_partition(events)
                for item, exc in refused:  # not an update our process stage wrote: a bug
                    await dead_letter(item, processing_error(exc), wall_ms())
            await learner.publish()
            metrics.batch_size.labels("learn").observe(len(batch))
            metrics.batch_duration.labels("learn").observe(time.perf_counter() - started)

    @app.task
    async def follow_model() -> None:
        await model_view.run()

    identity = IdentityStage(aliases, send, topics, metrics, limits, clock)

    @app.agent(identity_events, name="resolve")
    async def resolve(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            policy = policy_source.current
            for events in group_by_partition(batch).values():
                with partition_context(events[0]):
                    for item in events:
                        try:
                            await identity.resolve(
                                item.message.key, orjson.loads(item.message.value), policy
                            )
                        except Exception as exc:  # a bug must not stop the stream
                            log.exception("resolve failed at offset %s", item.message.offset)
                            await dead_letter(item, processing_error(exc), wall_ms())
            metrics.batch_size.labels("resolve").observe(len(batch))
            metrics.batch_duration.labels("resolve").observe(time.perf_counter() - started)

    async def emit(result: StepResult, explained: dict[bytes, list[dict[str, Any]]]) -> None:
        """Write what one step produced: actions due now, explain records, metrics.

        Each explain record sent is also added to ``explained`` (by customer), which the
        batch keeps for the API's latest-decisions table.
        """
        for update in result.timer_updates:
            metrics.timer_updates.labels(update.timer, update.change.value).inc()
        for timer in result.fired:
            metrics.timers_fired.labels(timer.name).inc()
        for action in result.held:
            metrics.actions_held.labels(action.channel).inc()
        for decision in result.decisions:
            key = decision.customer_id.encode()
            if decision.trigger.type == RELEASE_TRIGGER:
                candidate = decision.candidates[0]
                channel = decision.actions[0].channel if decision.actions else "none"
                again = bool(decision.actions) and decision.actions[0] in result.held
                reason = "held_again" if again else candidate.reason.value
                metrics.held_releases.labels(channel, reason).inc()
            else:
                for candidate in decision.candidates:
                    if not candidate.chosen:
                        metrics.suppressions.labels(candidate.action, candidate.reason.value).inc()
                condition_errors.record(decision)
            record = decision.to_message()
            explained.setdefault(key, []).append(record)
            await send(topics.decisions, key, record)
        for action in result.send:
            metrics.actions.labels(action.action, action.channel).inc()
            await send(
                topics.actions(action.channel), action.customer_id.encode(), action.to_message()
            )
        for update in result.learning:
            metrics.learning_updates.labels(update.kind.value).inc()
            if update.kind is UpdateKind.EXPOSURE:
                metrics.uplift_exposures.labels(update.action, update.group).inc()
            elif update.kind is UpdateKind.CONVERSION:
                metrics.uplift_conversions.labels(update.action, update.group).inc()
            await send(topics.learning, update.action.encode(), update.to_message())
        await identity.send_links(result.state, result.links, result.unlinks)

    async def handle(
        record: dict[str, Any],
        key: bytes,
        state: CustomerState | Moved | None,
        now: int,
        policy: Policy,
        model: PropensityModel,
    ) -> StepResult | CustomerState | Moved | None:
        """One record of the customer-events topic.

        Returns a step result, or the profile's new stored form (state, stub, or None
        for deleted) when the record was an identity operation.
        """
        if isinstance(state, Moved):
            if "erase_stub" in record:
                return None  # the profile it merged into is erased: the stub goes too
            await identity.redirect(record, state)
            return state
        tick = record.get("tick")
        if tick is not None:
            if state is None:
                return None
            started = time.perf_counter()
            result = fire(state, now, policy, model)
            metrics.decision_seconds.labels("firing").observe(time.perf_counter() - started)
            if result.fired or result.decisions:
                lag_ms = max(0, now - int(tick["due_ms"]))
                metrics.timer_fire_lag.observe(clock.real_seconds(lag_ms))
            return result
        if "event" in record:
            started = time.perf_counter()
            stepped = step(state, Event.from_record(record["event"]), now, limits, policy, model)
            metrics.decision_seconds.labels("event").observe(time.perf_counter() - started)
            return stepped
        if "outcome" in record:
            outcome = Outcome.from_record(record["outcome"])
            if state is None:  # never decided for: nothing to match it with
                metrics.outcomes.labels(outcome.channel, outcome.outcome, "unknown_customer").inc()
                return None
            started = time.perf_counter()
            result = observe(state, outcome, policy)
            metrics.decision_seconds.labels("outcome").observe(time.perf_counter() - started)
            status = result.outcome.value if result.outcome else "applied"
            metrics.outcomes.labels(outcome.channel, outcome.outcome, status).inc()
            return result
        return await identity.operate(record, key, state)

    async def process_partition(
        events: list[EventT], now: int, policy: Policy, model: PropensityModel
    ) -> None:
        states: dict[bytes, CustomerState | Moved | None] = {}
        counted: dict[bytes, Counter[str]] = {}  # each profile's census share before the batch
        flows: Counter[str] = Counter()  # profiles created and stage transitions
        explained: dict[bytes, list[dict[str, Any]]] = {}  # decision records by customer
        fresh: set[bytes] = set()
        dirty: set[bytes] = set()
        retry_later: set[bytes] = set()
        for item in events:
            key = item.message.key
            record: dict[str, Any] = {}
            try:
                record = orjson.loads(item.message.value)
                if key not in states:
                    states[key] = load_profile(customers.get(key))
                    counted[key] = census.summary(states[key])
                    if states[key] is None:
                        fresh.add(key)  # no profile yet: counted as created if it gets one
                result = await handle(record, key, states[key], now, policy, model)
            except Exception as exc:  # a bug must not stop the stream: park the event
                log.exception("processing failed at offset %s", item.message.offset)
                await dead_letter(item, processing_error(exc), wall_ms())
                if "tick" in record:
                    retry_later.add(key)  # the deadlines stay; retry them later, not at once
                continue
            if not isinstance(result, StepResult):
                if result is not states[key] and not (result is None and states[key] is None):
                    states[key] = result
                    dirty.add(key)
                continue
            if result.duplicate:
                metrics.duplicates.inc()
                continue
            if result.state is not states[key]:
                states[key] = result.state
                dirty.add(key)
            if result.stage_change is not None:
                change = result.stage_change
                metrics.stage_transitions.labels(change.from_stage, change.to_stage).inc()
                flows[census.moved(change.from_stage, change.to_stage)] += 1
            await emit(result, explained)
            ingress_ts_ms = record.get("ingress_ts_ms")
            if ingress_ts_ms:
                latency_s = max(0.0, (wall_ms() - ingress_ts_ms) / 1000)
                metrics.event_latency.observe(latency_s)
                if result.send:
                    metrics.event_to_action.labels("kafka").observe(latency_s)
            if result.send and "event" in record:
                since_ms = max(0, clock.now_ms() - int(record["event"]["occurred_at_ms"]))
                metrics.event_to_action.labels("occurred_at").observe(clock.real_seconds(since_ms))
        if dirty or explained:
            # Outputs before state: RocksDB keeps a table write at once and survives a
            # kill -9, so a state written while its actions and explain records still sat
            # in the producer would be re-read as done after a crash and never sent.
            # Measured: the kill -9 test lost 1 to 18 actions in 3 of 6 runs without this.
            flush_started = time.perf_counter()
            await app.producer.flush()
            metrics.output_flush.observe(time.perf_counter() - flush_started)
        partition = events[0].message.partition
        changes = [census.delta_from(counted[key], states[key]) for key in dirty if key in counted]
        created = sum(1 for key in fresh if isinstance(states[key], CustomerState))
        flows = Counter({k: v for k, v in flows.items() if v})
        if created:
            flows["created"] = created
        changes.append(flows)
        if any(changes):
            census_key = f"p{partition}".encode()
            stored = census_table.get(census_key)
            row = census.apply(orjson.loads(stored) if stored is not None else None, changes)
            census_table[census_key] = orjson.dumps(row)
        for key, records in explained.items():
            stored = decisions_table.get(key)
            kept = [*reversed(records), *(orjson.loads(stored) if stored is not None else [])]
            decisions_table[key] = orjson.dumps(kept[: settings.decisions_kept])
        for key, state in states.items():
            if key in dirty:
                if state is None:
                    del customers[key]  # erased: a tombstone in the changelog
                    if decisions_table.get(key) is not None:
                        del decisions_table[key]
                elif isinstance(state, Moved):
                    customers[key] = orjson.dumps({"merged_into": state.into})
                else:
                    customers[key] = state.to_json()
            due_ms = state.next_due_ms() if isinstance(state, CustomerState) else None
            sync_due(key, partition, due_ms, now, erased=key in dirty and state is None)
            if key in retry_later and due_ms is not None:
                index.update(key, partition, max(due_ms, now + retry_ms))

    # A firing that failed (a bug) is retried after a minute of real time, not in a loop.
    retry_ms = int(60_000 * clock.speed)

    def sync_due(key: bytes, partition: int, due_ms: int | None, now: int, erased: bool) -> None:
        """Keep the due table (and the scheduler's index) no later than the state's next deadline.

        It is written when the deadline comes earlier, when the stored one has passed (it
        fired, or was early), and on erasure. A deadline that only moved later (the 30-day
        inactivity timer, re-armed by every event) keeps the earlier entry: one early
        firing later finds nothing due and corrects it, instead of a table and changelog
        write per event. Checked for every customer a batch touched, so a crash between
        the state and due writes heals on the customer's next message.
        """
        stored = due_table.get(key)
        stored_ms = int(stored) if stored is not None else None
        passed = stored_ms is not None and stored_ms <= now
        if erased or (passed and due_ms is None):
            if stored is not None:
                del due_table[key]
            stored_ms = None
        elif (
            due_ms is not None
            and due_ms != stored_ms
            and (stored_ms is None or due_ms < stored_ms or passed)
        ):
            due_table[key] = str(due_ms).encode()
            stored_ms = due_ms
        index.update(key, partition, stored_ms)

    @app.agent(customer_events, name="process")
    async def process(stream: StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_s):
            started = time.perf_counter()
            now = clock.now_ms()
            policy = policy_source.current  # one policy per batch, even across a reload
            model = model_view.current  # and one view of the learned model
            for events in group_by_partition(batch).values():
                with partition_context(events[0]):
                    await process_partition(events, now, policy, model)
            metrics.batch_size.labels("process").observe(len(batch))
            metrics.batch_duration.labels("process").observe(time.perf_counter() - started)

    @app.task
    async def run_scheduler() -> None:
        await scheduler.run(settings.timer_tick_s)

    def reload_policy(changed_only: bool) -> None:
        reloaded = policy_source.reload_if_changed() if changed_only else policy_source.reload()
        if reloaded:
            metrics.set_policy(
                policy_source.current.version, marketing_actions(policy_source.current)
            )
            condition_errors.track(policy_source.current)
        metrics.policy_reload_failures.set(policy_source.failed_reloads)

    @app.timer(settings.policy_poll_s)
    async def watch_policy_file() -> None:
        reload_policy(changed_only=True)

    @app.task
    async def reload_policy_on_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_policy, False)

    lag_monitor = LagMonitor(
        app,
        settings.broker,
        settings.app_id,
        [
            *topics.all_events,
            topics.outcomes,
            topics.identity_events,
            topics.customer_events,
            topics.learning,
        ],
        metrics,
        lambda: set(app.consumer.assignment()) if app_ready(app) else None,
    )

    @app.task
    async def measure_lag() -> None:
        await lag_monitor.run(settings.lag_interval_s)

    @app.on_partitions_assigned.connect
    async def count_rebalance(sender: Any, assigned: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()

    tables = {
        "customers": customers,
        "due": due_table,
        "aliases": aliases,
        "propensity": propensity,
    }

    def refresh_gauges() -> None:
        """The census and table-size gauges, for the partitions this worker owns."""
        owned = owned_partitions(app, topics.customer_events)
        if owned is None:
            return
        metrics.set_census(*census.totals([census_total(census_table, owned)]))
        for name, table in tables.items():
            metrics.table_keys.labels(name).set(estimated_keys(table, owned))

    journey.refresh_gauges = refresh_gauges
    _add_web_views(journey)
    add_api(
        app,
        settings,
        customers,
        aliases,
        decisions_table,
        census_table,
        policy_source,
        clock,
        lambda: owned_partitions(app, topics.customer_events),
    )
    return journey


def marketing_actions(policy: Policy) -> list[str]:
    """The policy's actions a control group can be held out of (uplift is counted for)."""
    return [a.id for a in policy.actions if a.category in policy.holdout.categories]


def _add_web_views(journey: JourneyApp) -> None:
    app, metrics = journey.app, journey.metrics

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        metrics.ready.set(1 if journey.is_ready() else 0)
        journey.refresh_gauges()
        # aiohttp refuses parameters in content_type=; the full type goes in the header.
        return web.bytes(
            generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/live")
    async def live_view(web: Any, request: Any) -> Any:
        return web.json({"live": True})  # the event loop answers: liveness, nothing more

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        ready = journey.is_ready()
        return web.json({"ready": ready}, status=200 if ready else 503)
