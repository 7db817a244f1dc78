"""Every dashboard panel and every alert shows data: a real Prometheus scrapes a real worker.

The worker runs the shipped policy on a clock sped up 14,400 times (timers fire, quiet
hours hold and release), under simulated multi-channel traffic, with the loopback sender
answering its actions and a few malformed messages. Prometheus (Debian's package, started
here on 127.0.0.1 with a temporary config that loads the repository's alert rules)
scrapes it every second. Then every PromQL expression of every dashboard panel, and the
query side of every alert rule, must return at least one series through Prometheus's
HTTP API: a panel that queries a metric the worker does not export fails here. A collector
runs beside the worker (a few records posted, one of them refused), scraped as the
`collector` job, for the collector's dashboard and alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from stream.config import Clock
from stream.simulate.preferences import preferences_for
from stream.simulate.producer import run_simulation
from stream.simulate.sender import run_sender
from tests.integration.conftest import (
    BROKER,
    ROOT,
    Deployment,
    WorkerProcess,
    free_port,
    http_get,
)
from tests.integration.events import event
from tests.integration.test_collector import CollectorProcess, keys_file, post_events

SPEED = 14_400.0
RATE_WINDOW = "20s"  # stands for $__rate_interval: 20 one-second scrapes
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
COMPARISON = re.compile(r"^(?P<query>.*?)\s*(==|!=|>=|<=|>|<)\s*[0-9.]+$", re.S)


@pytest.fixture(scope="module")
def clock(deployment: Deployment) -> Clock:
    anchor_ms = int(time.time() * 1000)
    deployment.env.update(
        {
            "JOURNEY_POLICY_FILE": str(ROOT / "policies" / "default.yaml"),
            "JOURNEY_CLOCK_SPEED": str(SPEED),
            "JOURNEY_CLOCK_ANCHOR_MS": str(anchor_ms),
            "JOURNEY_CLOCK_START_MS": "",
            "JOURNEY_LAG_INTERVAL_S": "1",
        }
    )
    return Clock(SPEED, anchor_ms, anchor_ms)


@pytest.fixture(scope="module")
async def observed(deployment: Deployment, clock: Clock) -> AsyncIterator[WorkerProcess]:
    process = deployment.worker("observed")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


class Prometheus:
    """A real Prometheus server scraping one worker and one collector every second."""

    def __init__(self, tmp: Path, worker: WorkerProcess, collector: CollectorProcess) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus not found: apt-get install prometheus (.ci/run installs it)")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": "journey",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{worker.port}"], "labels": {"env": "test"}}
                    ],
                },
                {
                    "job_name": "collector",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{collector.port}"], "labels": {"env": "test"}}
                    ],
                },
            ],
        }
        path = tmp / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url)
        assert status == 200, f"{url}: {status} {body[:300]!r}"
        document = json.loads(body)
        assert document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
async def collector(
    deployment: Deployment, observed: WorkerProcess
) -> AsyncIterator[CollectorProcess]:
    """A collector beside the worker, for the collector's dashboard and alert."""
    env = {**deployment.env, "JOURNEY_COLLECTOR_KEYS_FILE": str(keys_file(deployment.tmp))}
    process = CollectorProcess(env, deployment.tmp / "observed-collector.log")
    process.start()
    await process.wait_status("/ready", 200)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def prometheus(
    deployment: Deployment, observed: WorkerProcess, collector: CollectorProcess
) -> Iterator[Prometheus]:
    server = Prometheus(deployment.tmp, observed, collector)
    yield server
    server.stop()


def panel_queries() -> list[tuple[str, str]]:
    """(where, expression) of every dashboard target, variables filled in as for 'All'."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = (
                    target["expr"]
                    .replace("$__rate_interval", RATE_WINDOW)
                    .replace("$env", ".*")
                    .replace("$worker", ".*")
                )
                queries.append((f"{path.stem} / {panel['title']}", expr))
    return queries


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


async def traffic(deployment: Deployment, clock: Clock, collector: CollectorProcess) -> None:
    """Simulated journeys with the loopback sender answering, plus some bad input."""
    stop = asyncio.Event()
    sender = asyncio.create_task(
        run_sender(
            BROKER,
            deployment.settings.topics.prefix,
            preferences_for("default", 3),
            stop=stop,
            clock_now_ms=clock.now_ms,
        )
    )
    try:
        await run_simulation(
            BROKER,
            deployment.settings.topics.prefix,
            customers=400,
            rate=400,
            seed=5,
            max_events=6000,
            start_ms=clock.now_ms(),
            time_scale=SPEED,
            clock_now_ms=clock.now_ms,
            step_ms=180_000,
        )
        topics = deployment.settings.topics
        await deployment.produce_raw(topics.events("web"), [b"{not json", b"[1, 2]"])
        duplicate = event(
            "web",
            "page_view",
            {"customer_id": "C900001"},
            {"url": "https://x"},
            at_ms=clock.now_ms(),  # never judged too old, whatever day the suite runs
        )
        await deployment.produce("web", [duplicate, duplicate])
        status, answer, _ = await post_events(collector, [duplicate, {"bad": "record"}])
        assert status == 207, answer
    finally:
        await asyncio.sleep(0)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(sender, 60)


async def test_every_dashboard_panel_and_alert_query_returns_series(
    deployment: Deployment,
    clock: Clock,
    observed: WorkerProcess,
    collector: CollectorProcess,
    prometheus: Prometheus,
) -> None:
    await traffic(deployment, clock, collector)
    # Twenty seconds of scrapes after the traffic, and the sender's outcomes learnt.
    await deployment.wait_for(
        lambda: (
            prometheus.query('count_over_time(up{job="journey"}[1m]) >= 20')
            and prometheus.query("journey_model_trials")
        ),
        timeout_s=120,
        what="20 scrapes and the learned model in Prometheus",
    )
    empty = [(where, expr) for where, expr in panel_queries() if not prometheus.query(expr)]
    assert not empty, "panels without data:\n" + "\n".join(f"{w}: {e}" for w, e in empty)

    quiet = []
    for rule in alert_rules():
        query = COMPARISON.match(rule["expr"])
        assert query is not None, rule["alert"]
        if not prometheus.query(query["query"]):
            quiet.append(f"{rule['alert']}: {query['query']}")
    assert not quiet, "alert queries without series:\n" + "\n".join(quiet)
    loaded = prometheus.api("rules")["groups"]
    rules = [rule for group in loaded for rule in group["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

    # The census gauges agree with what the worker stores.
    stages = {
        s["metric"]["stage"]: float(s["value"][1])
        for s in prometheus.query("sum by (stage) (journey_customers)")
    }
    assert set(stages) >= {"awareness", "acquisition", "onboarding"} and sum(stages.values()) > 300
    dlq = prometheus.query('journey_events_invalid_total{reason="invalid_json"}')
    assert float(dlq[0]["value"][1]) >= 1
    metrics = observed.metrics()
    assert "journey_consumer_lag_messages{" in metrics
    rebalances = re.search(r"^journey_rebalances_total (\S+)$", metrics, re.M)
    assert rebalances is not None and float(rebalances[1]) >= 1
    assert orjson.loads(http_get(f"{observed.url}/live")[1]) == {"live": True}
