"""Prometheus metrics of the collector, on a registry of its own (served at ``/metrics``).

Label values are bounded: routes, HTTP statuses, channels, DLQ reasons and the names of
the keys file (never a token, never a customer)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.core.collect import OUTCOMES
from stream.core.events import DlqReason
from stream.shell.metrics import LATENCY_BUCKETS


class CollectorMetrics:
    """Every metric the collector exports."""

    def __init__(self, channels: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "journey_collector_requests_total",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "journey_collector_request_seconds",
            "Time to answer a request, by route (acknowledgement included)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.accepted = Counter(
            "journey_collector_accepted_total",
            "Records acknowledged by the broker, by channel (outcomes: `outcomes`)",
            ["channel"],
            registry=r,
        )
        for channel in (*channels, OUTCOMES):
            self.accepted.labels(channel)
        self.rejected = Counter(
            "journey_collector_rejected_total",
            "Records refused and written to the DLQ, by reason",
            ["reason"],
            registry=r,
        )
        for reason in DlqReason:
            self.rejected.labels(reason.value)
        self.webhook_ignored = Counter(
            "journey_collector_webhook_ignored_total",
            "Items of email-provider webhook calls that became no outcome, by provider and "
            "reason (not_ours, no_outcome, machine_event, unknown_event)",
            ["provider", "reason"],
            registry=r,
        )
        self._add_broker(r)

    def _add_broker(self, r: CollectorRegistry) -> None:
        """The producer side: acknowledgement time, what is held, the broker's state."""
        self.ack_seconds = Histogram(
            "journey_collector_ack_seconds",
            "From a request's first send to the broker's acknowledgement of its last record",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight_requests = Gauge(
            "journey_collector_inflight_requests",
            "Requests being read, validated or awaiting acknowledgement",
            registry=r,
        )
        self.inflight_bytes = Gauge(
            "journey_collector_inflight_bytes",
            "Bytes of the requests in flight (their Content-Length, or the key's limit)",
            registry=r,
        )
        self.broker_up = Gauge(
            "journey_collector_broker_up",
            "1 while the producer reaches the broker and the topics exist (the collector "
            "accepts), 0 while it answers 503",
            registry=r,
        )
        self.rate_limited = Counter(
            "journey_collector_rate_limited_total",
            "Requests refused with 429 by a key's rate limit, by key name",
            ["key_name"],
            registry=r,
        )
        self.keys_reloads = Counter(
            "journey_collector_keys_reloads_total",
            "Reloads of the keys file after a change, by result (ok, failed: old keys kept)",
            ["result"],
            registry=r,
        )
