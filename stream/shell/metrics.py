"""Prometheus metrics of a worker. Label values are bounded (channels, types, reasons)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream.core.events import DlqReason

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class CountsCollector(Collector):
    """A labelled counter read at scrape time from counts kept elsewhere (a hot loop)."""

    def __init__(
        self, name: str, documentation: str, label: str, counts: Callable[[], Mapping[str, int]]
    ) -> None:
        self.name, self.documentation, self.label, self.counts = name, documentation, label, counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in self.counts().items():
            family.add_metric([value], count)
        yield family


class Metrics:
    """Every metric the worker exports, on its own registry.

    The families are created group by group, in the order a scrape lists them.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._add_ingest(self.registry)
        self._add_decisions(self.registry)
        self._add_batches(self.registry)
        self._add_policy(self.registry)
        self._add_timers(self.registry)
        self._add_quiet_hours(self.registry)
        self._add_identity(self.registry)
        self._add_learning(self.registry)
        self._add_decision_latency(self.registry)
        self._add_census(self.registry)
        self._add_journeys(self.registry)
        self._add_consumer(self.registry)

    def _add_ingest(self, r: CollectorRegistry) -> None:
        """Input: events ingested, rejected to the DLQ or dropped as duplicates."""
        self.invalid_events = Counter(
            "journey_events_invalid_total", "Input messages sent to the DLQ", ["reason"], registry=r
        )
        for reason in DlqReason:  # every reason starts at zero: a rate of 0, not "no data"
            self.invalid_events.labels(reason.value)
        self.events = Counter(
            "journey_events_total", "Valid events ingested", ["channel", "type"], registry=r
        )
        self.social_posts = Counter(
            "journey_social_posts_total",
            "Social posts ingested, by type, sentiment and where the sentiment came from",
            ["type", "sentiment", "source"],
            registry=r,
        )
        self.duplicates = Counter(
            "journey_events_duplicate_total",
            "Events dropped as duplicates (same event_id)",
            registry=r,
        )

    def _add_decisions(self, r: CollectorRegistry) -> None:
        """Decisions: actions emitted, candidates suppressed, stage transitions."""
        self.actions = Counter(
            "journey_actions_total", "Next-best-actions emitted", ["action", "channel"], registry=r
        )
        self.suppressions = Counter(
            "journey_suppressions_total",
            "Candidate actions not sent",
            ["action", "reason"],
            registry=r,
        )
        self.condition_errors = Counter(
            "journey_condition_errors_total",
            "Candidate actions suppressed because a policy condition failed to evaluate "
            "(condition_error); every action of the policy in force starts at zero",
            ["action"],
            registry=r,
        )
        self.stage_transitions = Counter(
            "journey_stage_transitions_total",
            "Journey stage transitions",
            ["from_stage", "to_stage"],
            registry=r,
        )

    def _add_batches(self, r: CollectorRegistry) -> None:
        """Processing time: per event, per micro-batch and per output flush."""
        self.event_latency = Histogram(
            "journey_event_processing_latency_seconds",
            "From the ingress message's Kafka timestamp to its state update and decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "journey_batch_duration_seconds",
            "Processing time of one micro-batch",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.output_flush = Histogram(
            "journey_output_flush_seconds",
            "Wait for the broker to acknowledge a batch's outputs before its state is "
            "written, by step",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "journey_batch_events",
            "Events per micro-batch",
            ["agent"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=r,
        )

    def _add_policy(self, r: CollectorRegistry) -> None:
        """The policy in force and the reloads refused."""
        self.policy = Gauge(
            "journey_policy_info", "1 for the policy version in force", ["version"], registry=r
        )
        self.policy_reload_failures = Gauge(
            "journey_policy_reload_failures",
            "Policy reloads refused since start (last good kept)",
            registry=r,
        )

    def _add_timers(self, r: CollectorRegistry) -> None:
        """Timers: changes, firings, lag, and the scheduler's in-memory index."""
        self.timer_updates = Counter(
            "journey_timer_updates_total",
            "Timer changes made by events (armed, rearmed, cancelled, stale, condition_error)",
            ["timer", "change"],
            registry=r,
        )
        self.timers_fired = Counter(
            "journey_timers_fired_total",
            "Timers that came due and were decided",
            ["timer"],
            registry=r,
        )
        self.timer_fire_lag = Histogram(
            "journey_timer_fire_lag_seconds",
            "Real time from a deadline to its firing being processed",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.timer_index_size = Gauge(
            "journey_timer_index_customers",
            "Customers with a deadline inside the scheduler's in-memory window",
            registry=r,
        )
        self.timer_index_load = Histogram(
            "journey_timer_index_load_seconds",
            "Time to load the due table into the scheduler's index (assignment or window move)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.timer_ticks = Counter(
            "journey_timer_ticks_total", "Firing messages the scheduler sent", registry=r
        )

    def _add_quiet_hours(self, r: CollectorRegistry) -> None:
        """Actions held by quiet hours and their release."""
        self.actions_held = Counter(
            "journey_actions_held_total",
            "Actions held by quiet hours until their send_after",
            ["channel"],
            registry=r,
        )
        self.held_releases = Counter(
            "journey_held_releases_total",
            "Held actions at their release: reason chosen (sent) or why withdrawn",
            ["channel", "reason"],
            registry=r,
        )

    def _add_identity(self, r: CollectorRegistry) -> None:
        """Identity: links, merges, redirects and erasures."""
        self.identity_links = Counter(
            "journey_identity_links_total",
            "Identity links by outcome (linked, relinked, redirected, same, conflict, non_merging)",
            ["outcome"],
            registry=r,
        )
        self.identity_merges = Counter(
            "journey_identity_merges_total", "Profiles merged into another", registry=r
        )
        self.identity_redirects = Counter(
            "journey_identity_redirects_total",
            "Messages forwarded from a merged profile to the one it merged into",
            registry=r,
        )
        self.erasures = Counter(
            "journey_erasures_total", "Customers erased (right to erasure)", registry=r
        )

    def _add_learning(self, r: CollectorRegistry) -> None:
        """Outcomes, uplift and the learned model as this worker sees it."""
        self.outcomes = Counter(
            "journey_outcomes_total",
            "Outcomes reported by senders, by what became of them "
            "(applied, duplicate, unknown_action, unknown_customer)",
            ["channel", "outcome", "status"],
            registry=r,
        )
        self.learning_updates = Counter(
            "journey_learning_updates_total",
            "Counts sent to the learned model (trial, success, exposure, conversion)",
            ["kind"],
            registry=r,
        )
        self.uplift_exposures = Counter(
            "journey_uplift_exposures_total",
            "Marketing actions decided, by holdout group (control: decided, not sent)",
            ["action", "group"],
            registry=r,
        )
        self.uplift_conversions = Counter(
            "journey_uplift_conversions_total",
            "Exposures followed by a purchase within the conversion window, by group",
            ["action", "group"],
            registry=r,
        )
        self.model_trials = Gauge(
            "journey_model_trials",
            "Sends counted by the learned model, in this worker's view of it",
            ["action", "stage", "channel"],
            registry=r,
        )
        self.model_successes = Gauge(
            "journey_model_successes",
            "Rewarded sends counted by the learned model, in this worker's view of it",
            ["action", "stage", "channel"],
            registry=r,
        )
        self.model_age = Gauge(
            "journey_model_age_seconds",
            "Real seconds since the newest row of this worker's model view was published",
            registry=r,
        )

    def _add_decision_latency(self, r: CollectorRegistry) -> None:
        """Time of one decision, and from an event to the action it caused."""
        self.decision_seconds = Histogram(
            "journey_decision_seconds",
            "Time of the core step for one record (event, timer firing or outcome)",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_action = Histogram(
            "journey_event_to_action_seconds",
            "From an event to the action it caused being sent: from the ingress message's "
            "Kafka timestamp (source=kafka) or from the event's occurred_at (source=occurred_at)",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def _add_journeys(self, r: CollectorRegistry) -> None:
        """Journey runs: every move, and the runs now at each node."""
        self.journey_moves = Counter(
            "journey_run_moves_total",
            "Moves of journey runs: entered, edge (detail: its label), suppressed (detail: "
            "the reason), exited (detail: the reason), converted; by journey, pinned version, "
            "node and holdout group",
            ["journey", "version", "node", "move", "detail", "group"],
            registry=r,
        )
        self.journey_runs = Gauge(
            "journey_runs_active",
            "Journey runs now at each node (waiting there), in the partitions this worker owns",
            ["journey", "version", "node"],
            registry=r,
        )

    def _add_census(self, r: CollectorRegistry) -> None:
        """Customers, pending timers and held actions in this worker's partitions."""
        self.customers = Gauge(
            "journey_customers",
            "Customers by journey stage, in the partitions this worker owns",
            ["stage"],
            registry=r,
        )
        self.timers_pending = Gauge(
            "journey_timers_pending",
            "Pending timers by name, in the partitions this worker owns",
            ["timer"],
            registry=r,
        )
        self.held_pending = Gauge(
            "journey_actions_held_pending",
            "Actions held by quiet hours and not yet released, in this worker's partitions",
            registry=r,
        )

    def _add_consumer(self, r: CollectorRegistry) -> None:
        """The consumer: lag, rebalances, delivery paths, table sizes, readiness."""
        self.consumer_lag = Gauge(
            "journey_consumer_lag_messages",
            "End offset minus the group's committed offset, per input partition this worker owns",
            ["topic", "partition"],
            registry=r,
        )
        self.rebalances = Counter(
            "journey_rebalances_total",
            "Partition assignments this worker received (one per completed rebalance)",
            registry=r,
        )
        self.consumer_deliveries: Mapping[str, int] = {}  # the drain loop's, set by the app
        r.register(
            CountsCollector(
                "journey_consumer_deliveries",
                "Consumed messages by path: direct (nothing could block), waited (Faust's "
                "race against a rebalance); behind (of those, re-read behind the read offset "
                "and not yet acked, which Faust would drop), dropped (behind it, acked)",
                "path",
                lambda: self.consumer_deliveries,
            )
        )
        self.table_keys = Gauge(
            "journey_table_keys",
            "Keys in each table for the partitions this worker owns (RocksDB estimate)",
            ["table"],
            registry=r,
        )
        self.ready = Gauge(
            "journey_worker_ready",
            "1 when partitions are assigned and tables recovered",
            registry=r,
        )

    def set_policy(self, version: str, marketing_actions: list[str] | None = None) -> None:
        """Mark ``version`` as the policy in force (and no other).

        The uplift series of the policy's marketing actions start at zero, so a
        dashboard shows a rate of 0 rather than no data before the first conversion.
        """
        self.policy.clear()
        self.policy.labels(version).set(1)
        for action in marketing_actions or []:
            for group in ("treatment", "control"):
                self.uplift_exposures.labels(action, group)
                self.uplift_conversions.labels(action, group)

    def set_census(
        self,
        stages: dict[str, int],
        timers: dict[str, int],
        held: int,
        runs: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        """Replace the census gauges with this worker's current counts."""
        self.journey_runs.clear()
        for (version, node), count in (runs or {}).items():
            self.journey_runs.labels(version.partition("@")[0], version, node).set(count)
        self.customers.clear()
        for stage, count in stages.items():
            self.customers.labels(stage).set(count)
        self.timers_pending.clear()
        for timer, count in timers.items():
            self.timers_pending.labels(timer).set(count)
        self.held_pending.set(held)
