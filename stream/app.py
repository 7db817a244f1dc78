"""create_app(settings): the Faust app, its topics and tables, the five steps, wired.

Wiring only: the steps are ``stream/shell/steps/``, the rules they apply ``stream/core/``,
and every message leaves through ``stream/shell/outputs.py``.

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
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.config import Settings
from stream.core import census
from stream.core.schemas import SchemaCatalog, load_catalog
from stream.core.stored import ALIASES, CENSUS, CUSTOMERS, DECISIONS, DUE, PROPENSITY, Tables
from stream.core.timer_index import TimerIndex
from stream.shell import faust as faust_adaptations
from stream.shell.api import add_api, census_total
from stream.shell.condition_errors import ConditionErrors
from stream.shell.faust import deliveries, estimated_keys
from stream.shell.faust.state_writers import BatchedWriter, TableWriter, batched
from stream.shell.journey_archive import JourneyArchive
from stream.shell.kafka_security import broker_credentials, client_kwargs
from stream.shell.lag import LagMonitor
from stream.shell.metrics import Metrics
from stream.shell.model_view import ModelView
from stream.shell.outputs import Outputs, StateWriter
from stream.shell.policy_source import PolicySource
from stream.shell.scheduler import Scheduler
from stream.shell.steps import (
    IngestStep,
    LearnStep,
    OutcomesStep,
    ProcessStep,
    ResolveStep,
    Step,
    StepContext,
    run_step,
)

TABLES = (CUSTOMERS, DUE, ALIASES, DECISIONS, CENSUS, PROPENSITY)
GAUGED_TABLES = (CUSTOMERS, DUE, ALIASES, PROPENSITY)  # journey_table_keys{table}


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


def create_app(settings: Settings, catalog: SchemaCatalog | None = None) -> JourneyApp:
    """The worker: topics, tables, the five steps, the scheduler, web views.

    Raises PolicyError if the policy file is invalid: a worker never starts without one.
    """
    catalog = catalog or load_catalog()
    policy = PolicySource(settings.policy_file, catalog)
    app = create_faust_app(settings)
    metrics = Metrics()
    metrics.consumer_deliveries = deliveries  # counted by the drain loop, process-wide
    topics, clock = settings.topics, settings.clock()
    tables = {name: _table(app, settings, name) for name in TABLES}
    outputs = Outputs(app, topics, metrics, _state_writer(tables, settings))
    context = StepContext(settings, metrics, outputs, clock)
    model_view = ModelView(
        settings.broker, topics.model, metrics, settings.fetch_max_wait_ms, client_kwargs(settings)
    )
    condition_errors = ConditionErrors(metrics.condition_errors)
    index = TimerIndex(int(settings.timer_horizon_s * 1000))
    owned = lambda: owned_partitions(app, topics.customer_events)  # noqa: E731
    process_tables = {name: tables[name].data for name in (CUSTOMERS, DUE, DECISIONS, CENSUS)}
    archive = JourneyArchive(settings.broker, topics.policies, policy, client_kwargs(settings))
    process = ProcessStep(
        context, process_tables, policy, model_view, index, condition_errors, archive
    )
    for topic, step in _steps(app, context, catalog, tables, policy, process):
        _add_agent(app, topic, step, settings)
    scheduler = Scheduler(index, tables[DUE], clock, metrics, outputs.send, owned)
    _add_tasks(app, settings, metrics, model_view, scheduler)
    _watch_policy(app, settings, policy, metrics, condition_errors, archive)
    journey = JourneyApp(
        app, settings, catalog, metrics, tables[CUSTOMERS], policy, tables[ALIASES], model_view
    )
    journey.refresh_gauges = _gauges(app, metrics, tables, owned)
    _add_web_views(journey)
    add_api(
        app,
        settings,
        tables[CUSTOMERS],
        tables[ALIASES],
        tables[DECISIONS],
        tables[CENSUS],
        policy,
        clock,
        owned,
    )
    return journey


def _steps(
    app: faust.App,
    context: StepContext,
    catalog: SchemaCatalog,
    tables: dict[str, Any],
    policy: PolicySource,
    process: ProcessStep,
) -> list[tuple[faust.TopicT, Step]]:
    """Each step with the topic it reads.

    Steps read through the tables' stores: a Faust table's ``get`` looks a key up twice
    (``in``, then the value), its store once. They write through the state writer.
    """
    settings, topics = context.settings, context.settings.topics
    return [
        (app.topic(*topics.all_events), IngestStep(context, catalog)),
        (app.topic(topics.outcomes), OutcomesStep(context, catalog)),
        (
            _internal(app, settings, topics.identity_events),
            ResolveStep(context, tables[ALIASES].data, policy),
        ),
        (_internal(app, settings, topics.customer_events), process),
        (_internal(app, settings, topics.learning), LearnStep(context, tables[PROPENSITY].data)),
    ]


def create_faust_app(settings: Settings) -> faust.App:
    """The bare Faust app configured from settings."""
    faust_adaptations.install(settings)
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


def _state_writer(tables: dict[str, Any], settings: Settings) -> StateWriter:
    """RocksDB write batches after their changelog, where they can be; else Faust's tables."""
    if batched(tables, settings.processing_guarantee, settings.batched_writes):
        return BatchedWriter(tables)
    return TableWriter(Tables(tables))


def _internal(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    """An internal topic, with as many partitions as the tables it feeds."""
    return app.topic(name, partitions=settings.partitions)


def _table(app: faust.App, settings: Settings, name: str) -> Any:
    """A bytes-to-bytes table co-partitioned with the customer-events topic."""
    options = settings.rocksdb_options(name) if settings.store.startswith("rocksdb") else None
    return app.Table(
        name, partitions=settings.partitions, key_type=bytes, value_type=bytes, options=options
    )


def _add_agent(app: faust.App, topic: faust.TopicT, step: Step, settings: Settings) -> None:
    """One Faust agent running a step over its topic."""

    async def agent(stream: StreamT) -> None:
        await run_step(step, stream, settings)

    app.agent(topic, name=step.name)(agent)


def _add_tasks(
    app: faust.App,
    settings: Settings,
    metrics: Metrics,
    model_view: ModelView,
    scheduler: Scheduler,
) -> None:
    """The background tasks: the model follower, the scheduler, lag, rebalance counts."""
    topics = settings.topics
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
    app.task(model_view.run)
    app.task(lambda: scheduler.run(settings.timer_tick_s))
    app.task(lambda: lag_monitor.run(settings.lag_interval_s))

    @app.on_partitions_assigned.connect
    async def count_rebalance(sender: Any, assigned: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()


def _watch_policy(
    app: faust.App,
    settings: Settings,
    policy: PolicySource,
    metrics: Metrics,
    condition_errors: ConditionErrors,
    archive: JourneyArchive,
) -> None:
    """Reload the policy when its file changes (polled) and on SIGHUP; publish it (the
    metrics, and the archive of the journey versions every worker must know)."""

    def published() -> None:
        metrics.set_policy(policy.current.version, policy.current.marketing_actions())
        condition_errors.track(policy.current)

    def reload(changed_only: bool) -> None:
        if policy.reload_if_changed() if changed_only else policy.reload():
            published()
        metrics.policy_reload_failures.set(policy.failed_reloads)

    async def watch_file() -> None:
        reload(changed_only=True)

    async def on_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload, False)

    published()
    app.timer(settings.policy_poll_s)(watch_file)
    app.task(on_sighup)
    app.task(archive.run)


def _gauges(
    app: faust.App, metrics: Metrics, tables: dict[str, Any], owned: Callable[[], set[int] | None]
) -> Callable[[], None]:
    """The census and table-size gauges, for the partitions this worker owns."""

    def refresh() -> None:
        partitions = owned()
        if partitions is None:
            return
        total = census_total(tables[CENSUS], partitions)
        metrics.set_census(*census.totals([total]), census.runs_at(total))
        for name in GAUGED_TABLES:
            metrics.table_keys.labels(name).set(estimated_keys(tables[name], partitions))

    return refresh


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
