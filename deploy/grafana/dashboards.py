"""The Grafana dashboards, as code: the one source of truth for deploy/grafana/dashboards/*.json.

    .venv/bin/python deploy/grafana/dashboards.py          # write the JSON files
    .venv/bin/python deploy/grafana/dashboards.py --check  # exit 1 if they are stale

Every query selects ``env=~"$env", instance=~"$worker"`` (the dashboard variables) and
uses ``$__rate_interval`` for rates; the tests run every query against a real Prometheus
scraping a real worker (tests/integration/test_observability.py).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from generated import write_or_check

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
SEL = 'env=~"$env", instance=~"$worker"'
RATE = "$__rate_interval"


def q(expr: str) -> str:
    """A query with the dashboard's selector (``SEL``) and rate window (``RATE``) filled in."""
    return expr.replace("SEL", SEL).replace("[RATE]", f"[{RATE}]")


def quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = f"p{{q}} {{{{{by}}}}}" if by else "p{q}"
    return [
        (
            q(f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket{{SEL}}[RATE])))"),
            legend.format(q=round(p * 100)),
        )
        for p in (0.5, 0.95, 0.99)
    ]


def _rate_of(group: str) -> str:
    """Conversions / exposures per action over 24 h, for one holdout group."""
    return " / ".join(
        f'sum by (action) (increase(journey_uplift_{kind}_total{{SEL, group="{group}"}}[24h]))'
        for kind in ("conversions", "exposures")
    )


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its queries (expression, legend) and how to show them."""

    title: str
    targets: list[tuple[str, str]]
    description: str
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | bargauge | table
    width: int = 12
    options: dict[str, Any] = field(default_factory=dict)


OPERATIONS = [
    Panel(
        "Events ingested per second, by channel",
        [(q("sum by (channel) (rate(journey_events_total{SEL}[RATE]))"), "{{channel}}")],
        "Valid events the ingest agent accepted.",
        "ops",
    ),
    Panel(
        "Rejected to the DLQ per second, by reason",
        [(q("sum by (reason) (rate(journey_events_invalid_total{SEL}[RATE]))"), "{{reason}}")],
        "Input sent to cjo.dlq; processing_error means a bug, the rest bad input.",
        "ops",
    ),
    Panel(
        "Duplicates dropped per second",
        [(q("sum(rate(journey_events_duplicate_total{SEL}[RATE]))"), "duplicates")],
        "Events whose event_id the customer's dedupe window already holds.",
        "ops",
    ),
    Panel(
        "Consumer lag by topic",
        [(q("sum by (topic) (journey_consumer_lag_messages{SEL})"), "{{topic}}")],
        "End offset minus the group's committed offset, summed over partitions.",
    ),
    Panel(
        "Consumer lag, top 10 partitions",
        [
            (
                q("topk(10, journey_consumer_lag_messages{SEL})"),
                "{{topic}}/{{partition}} {{instance}}",
            )
        ],
        "The partitions furthest behind, and which worker owns them.",
    ),
    Panel(
        "Ingress to decision latency",
        quantiles("journey_event_processing_latency_seconds"),
        "From the ingress message's Kafka timestamp to its state update and decision.",
        "s",
    ),
    Panel(
        "Event to action latency, p99",
        [
            (
                q(
                    "histogram_quantile(0.99, sum by (le, source) "
                    "(rate(journey_event_to_action_seconds_bucket{SEL}[RATE])))"
                ),
                "p99 from {{source}}",
            )
        ],
        "From the event (its Kafka timestamp, or its occurred_at) to the action it caused.",
        "s",
    ),
    Panel(
        "Decision time, p99 by kind",
        [
            (
                q(
                    "histogram_quantile(0.99, sum by (le, kind) "
                    "(rate(journey_decision_seconds_bucket{SEL}[RATE])))"
                ),
                "{{kind}}",
            )
        ],
        "The core step for one record: an event, a timer firing or an outcome.",
        "s",
    ),
    Panel(
        "Micro-batch duration, p99 by agent",
        [
            (
                q(
                    "histogram_quantile(0.99, sum by (le, agent) "
                    "(rate(journey_batch_duration_seconds_bucket{SEL}[RATE])))"
                ),
                "{{agent}}",
            )
        ],
        "Time to process one micro-batch in each agent.",
        "s",
    ),
    Panel(
        "Timer firing lag",
        quantiles("journey_timer_fire_lag_seconds"),
        "Real time from a timer's deadline to its firing being processed (target p99 < 1 s).",
        "s",
    ),
    Panel(
        "Workers up and ready",
        [
            (q('up{job="journey", SEL}'), "up {{instance}}"),
            (q("journey_worker_ready{SEL}"), "ready {{instance}}"),
        ],
        "up: Prometheus reaches the worker; ready: partitions assigned, tables recovered.",
        kind="stat",
    ),
    Panel(
        "Rebalances in the last hour",
        [(q("sum by (instance) (increase(journey_rebalances_total{SEL}[1h]))"), "{{instance}}")],
        "Partition assignments each worker received.",
        kind="stat",
    ),
    Panel(
        "Table keys, by table",
        [(q("sum by (table) (journey_table_keys{SEL})"), "{{table}}")],
        "Keys in the local tables (RocksDB estimate) of the partitions the workers own.",
    ),
    Panel(
        "Policy in force and reload failures",
        [
            (q("max by (version) (journey_policy_info{SEL})"), "{{version}}"),
            (q("max by (instance) (journey_policy_reload_failures{SEL})"), "failed {{instance}}"),
        ],
        "The policy version each worker decides with, and reloads it refused.",
        kind="stat",
    ),
    Panel(
        "Learned model age",
        [(q("max by (instance) (journey_model_age_seconds{SEL})"), "{{instance}}")],
        "Seconds since the newest row of each worker's view of the learned model.",
        "s",
    ),
]

JOURNEY = [
    Panel(
        "Customers by stage",
        [(q("sum by (stage) (journey_customers{SEL})"), "{{stage}}")],
        "The funnel: customers in each of the five stages (all owned partitions).",
        kind="bargauge",
        options={"orientation": "horizontal"},
    ),
    Panel(
        "Stage transitions in the last hour",
        [
            (
                q(
                    "sum by (from_stage, to_stage) "
                    "(increase(journey_stage_transitions_total{SEL}[1h]))"
                ),
                "{{from_stage}} → {{to_stage}}",
            )
        ],
        "How customers move between stages (advocacy → engagement is a complaint).",
        kind="table",
    ),
    Panel(
        "Moving on: share of a stage's customers who left it in the last hour",
        [
            (
                q(
                    "sum by (from_stage) (increase(journey_stage_transitions_total{SEL}[1h])) "
                    "/ on (from_stage) label_replace(sum by (stage) (journey_customers{SEL}), "
                    '"from_stage", "$1", "stage", "(.*)")'
                ),
                "{{from_stage}}",
            )
        ],
        "The rest have not moved on: most of them are still in the stage.",
        "percentunit",
    ),
    Panel(
        "Actions sent per second, by action",
        [(q("sum by (action) (rate(journey_actions_total{SEL}[RATE]))"), "{{action}}")],
        "Next-best-actions published to the channel topics.",
        "ops",
    ),
    Panel(
        "Channel mix",
        [(q("sum by (channel) (rate(journey_actions_total{SEL}[RATE]))"), "{{channel}}")],
        "Actions per second by channel.",
        "ops",
        options={"stacking": "percent"},
    ),
    Panel(
        "Social posts per second, by sentiment",
        [
            (
                q("sum by (sentiment) (rate(journey_social_posts_total{SEL}[RATE]))"),
                "{{sentiment}}",
            )
        ],
        "Mentions, reviews, direct messages and replies from the listening tool, by the "
        "sentiment the tool gave or the worker computed (unknown: a language it cannot read).",
        "ops",
        options={"stacking": "normal"},
    ),
    Panel(
        "Community team's tasks per second, public vs private",
        [
            (
                q('sum by (action) (rate(journey_actions_total{SEL, channel="social"}[RATE]))'),
                "{{action}}",
            ),
            (q("sum(rate(journey_social_posts_total{SEL}[RATE]))"), "posts"),
        ],
        "Replies asked of the community team on cjo.actions.social, beside the posts: in "
        "public (positive and neutral posts, reviews rated 3-5) or in private (direct "
        "messages, negative posts, reviews rated 1-2). A post without a task: look at "
        "journey_suppressions_total.",
        "ops",
    ),
    Panel(
        "Suppressions per second, by reason",
        [(q("sum by (reason) (rate(journey_suppressions_total{SEL}[RATE]))"), "{{reason}}")],
        "Candidates not sent: caps, consent, cooldown, fatigue, holdout, eligibility...",
        "ops",
    ),
    Panel(
        "Held by quiet hours",
        [
            (
                q("sum by (channel) (rate(journey_actions_held_total{SEL}[RATE]))"),
                "held {{channel}}",
            ),
            (q("sum(journey_actions_held_pending{SEL})"), "waiting"),
        ],
        "Messages held until the customer's morning, and how many wait now.",
    ),
    Panel(
        "Timers pending, by timer",
        [(q("sum by (timer) (journey_timers_pending{SEL})"), "{{timer}}")],
        "Durable per-customer timers waiting for their deadline.",
    ),
    Panel(
        "Timer changes per second, by timer and change",
        [
            (
                q(
                    "sum by (timer, change) (rate(journey_timer_updates_total{SEL}[RATE])) or "
                    "label_replace(sum by (timer) (rate(journey_timers_fired_total{SEL}[RATE])), "
                    '"change", "fired", "", "")'
                ),
                "{{change}} {{timer}}",
            ),
        ],
        "Timers armed, re-armed, cancelled by a customer's action, and fired at their "
        "deadline (journey waits are counted with the journey moves).",
        "ops",
    ),
    Panel(
        "Identity links per second, by outcome",
        [
            (q("sum by (outcome) (rate(journey_identity_links_total{SEL}[RATE]))"), "{{outcome}}"),
            (q("sum(rate(journey_identity_merges_total{SEL}[RATE]))"), "merges"),
        ],
        "Identifiers linked to profiles; conflicts are links refused between known customers.",
        "ops",
    ),
    Panel(
        "Outcomes per second, by outcome",
        [(q("sum by (outcome) (rate(journey_outcomes_total{SEL}[RATE]))"), "{{outcome}}")],
        "What the channel senders reported back.",
        "ops",
    ),
    Panel(
        "Learned response rate, by channel",
        [
            (
                q(
                    "sum by (channel) (max by (action, stage, channel) "
                    "(journey_model_successes{SEL})) / sum by (channel) "
                    "(max by (action, stage, channel) (journey_model_trials{SEL}))"
                ),
                "{{channel}}",
            )
        ],
        "Rewarded sends / sends in the learned model (every worker holds the whole model).",
        "percentunit",
    ),
    Panel(
        "Conversion after exposure, treated vs control (24 h)",
        [
            (
                q(
                    "sum by (group) (increase(journey_uplift_conversions_total{SEL}[24h])) "
                    "/ sum by (group) (increase(journey_uplift_exposures_total{SEL}[24h]))"
                ),
                "{{group}}",
            )
        ],
        "Exposures followed by a purchase within the window; the gap is the uplift.",
        "percentunit",
    ),
    Panel(
        "Uplift by action (24 h)",
        [
            (
                q(f"{_rate_of('treatment')} - on (action) ({_rate_of('control')})"),
                "{{action}}",
            )
        ],
        "Treated minus control conversion rate per action (empty while one group has none).",
        "percentunit",
        kind="bargauge",
        options={"orientation": "horizontal"},
    ),
    Panel(
        "Journey runs waiting, by journey and node",
        [(q("sum by (journey, node) (journey_runs_active{SEL})"), "{{journey}} / {{node}}")],
        "Customers in a journey now, at the node where they wait (all versions together).",
        kind="bargauge",
        options={"orientation": "horizontal"},
    ),
    Panel(
        "Journey moves per second, by journey and move",
        [
            (
                q("sum by (journey, move) (rate(journey_run_moves_total{SEL}[RATE]))"),
                "{{journey}} {{move}}",
            )
        ],
        "Runs entered, moving along an edge, suppressed, exited and converted.",
    ),
    Panel(
        "Journey exits (24 h), by journey and reason",
        [
            (
                q(
                    'sum by (journey, detail) (increase(journey_run_moves_total{SEL, move="exited"}'
                    "[24h]))"
                ),
                "{{journey}}: {{detail}}",
            )
        ],
        "Why runs ended: an exit node, the goal, an exit rule, max_duration, journey_removed.",
        kind="bargauge",
        options={"orientation": "horizontal"},
    ),
    Panel(
        "Journey conversion (24 h), treated vs control",
        [
            (
                q(
                    "sum by (journey, group) (increase(journey_run_moves_total"
                    '{SEL, move="converted"}[24h])) / sum by (journey, group) '
                    '(increase(journey_run_moves_total{SEL, move="entered"}[24h]))'
                ),
                "{{journey}} {{group}}",
            )
        ],
        "Goal reached per run entered, for the treated customers and the control group.",
        "percentunit",
        kind="bargauge",
        options={"orientation": "horizontal"},
    ),
]


COLLECTOR = [
    Panel(
        "Requests per second, by route and status",
        [
            (
                q("sum by (route, status) (rate(journey_collector_requests_total{SEL}[RATE]))"),
                "{{route}} {{status}}",
            )
        ],
        "Every answer of the collector: 200/207/400 per-record answers; 401/403 keys; "
        "413 limits; 429 rate limits and backpressure; 503 the broker unavailable.",
        "reqps",
    ),
    Panel(
        "Records accepted and refused per second",
        [
            (
                q("sum by (channel) (rate(journey_collector_accepted_total{SEL}[RATE]))"),
                "accepted {{channel}}",
            ),
            (
                q("sum by (reason) (rate(journey_collector_rejected_total{SEL}[RATE]))"),
                "refused {{reason}}",
            ),
        ],
        "Accepted: acknowledged by the broker on the channel's topic (or outcomes); refused: "
        "written to the DLQ with the reason.",
        "ops",
    ),
    Panel(
        "Answer time, by route",
        quantiles("journey_collector_request_seconds", "route"),
        "From the request's arrival to its answer, the broker's acknowledgement included.",
        "s",
    ),
    Panel(
        "Broker acknowledgement time",
        quantiles("journey_collector_ack_seconds"),
        "From a request's first send to the acknowledgement of its last record (acks=all).",
        "s",
    ),
    Panel(
        "Collectors up and reaching the broker",
        [
            (q('up{job="collector", SEL}'), "up {{instance}}"),
            (q("journey_collector_broker_up{SEL}"), "broker {{instance}}"),
        ],
        "up: Prometheus reaches the collector; broker: the producer reaches the broker and "
        "the topics exist (0: every request is answered 503).",
        kind="stat",
    ),
    Panel(
        "Requests held in flight",
        [(q("sum by (instance) (journey_collector_inflight_requests{SEL})"), "{{instance}}")],
        "Requests being read, validated or awaiting acknowledgement; at the bound "
        "(JOURNEY_COLLECTOR_MAX_INFLIGHT_REQUESTS) new ones get 429.",
    ),
]


def _panel(panel: Panel, index: int, y: int, x: int) -> dict[str, Any]:
    height = 8
    options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    if panel.kind == "bargauge":
        options = {"orientation": panel.options.get("orientation", "auto"), "displayMode": "basic"}
    custom: dict[str, Any] = {}
    if panel.options.get("stacking"):
        custom["stacking"] = {"mode": panel.options["stacking"], "group": "A"}
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, "custom": custom}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
                "instant": panel.kind in ("stat", "bargauge", "table"),
                "range": panel.kind == "timeseries",
            }
            for n, (expr, legend) in enumerate(panel.targets)
        ],
    }


def _variables(ready_metric: str, label: str) -> list[dict[str, Any]]:
    def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name},
            "definition": query,
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "sort": 1,
        }

    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"},
        },
        query_variable("env", "Environment", f"label_values({ready_metric}, env)"),
        query_variable("worker", label, f'label_values({ready_metric}{{env=~"$env"}}, instance)'),
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    instances: tuple[str, str] = ("journey_worker_ready", "Worker"),
) -> dict[str, Any]:
    """A Grafana dashboard (schema 39) laying the panels out two by two; ``instances``: the
    metric whose instances the instance variable lists, and its label."""
    laid_out = []
    for index, panel in enumerate(panels):
        laid_out.append(_panel(panel, index, (index // 2) * 8, (index % 2) * 12))
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["journey-stream"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": _variables(*instances)},
        "annotations": {"list": []},
        "panels": laid_out,
    }


DASHBOARDS = {
    "operations.json": dashboard(
        "journey-operations",
        "Journey Stream: Operations",
        "Throughput, lag, latency, errors, rebalances and worker health.",
        OPERATIONS,
    ),
    "customer-journey.json": dashboard(
        "journey-customer",
        "Journey Stream: Customer journey",
        "The funnel, transitions, actions and suppressions, channel mix, learning and uplift.",
        JOURNEY,
    ),
    "collector.json": dashboard(
        "journey-collector",
        "Journey Stream: Collector",
        "The HTTP collector: answers by status, records accepted and refused, answer and "
        "acknowledgement time, the broker link, backpressure.",
        COLLECTOR,
        ("journey_collector_broker_up", "Collector"),
    ),
}


def render(document: dict[str, Any]) -> str:
    """The committed text of a dashboard."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    files = {OUT / name: render(document) for name, document in DASHBOARDS.items()}
    return write_or_check(files, argv, "deploy/grafana/dashboards.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
