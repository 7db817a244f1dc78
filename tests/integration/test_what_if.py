"""What-if on the real broker: a worker decides live, then `journey simulate-policy` and
`journey evaluate-policy` read its log back from Kafka.

The module's policy offers one marketing action on email or web at every page view,
email first, at most two emails a day; learning is off (`fixed`), so the replay of the
policy in force must send exactly what the worker sent. The candidate allows one email a
day: the third and second page views of each customer move to web.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import ROOT, Deployment, WorkerProcess
from tests.integration.events import event

pytestmark = pytest.mark.integration

POLICY = """
format: 1
name: %(name)s
learning: {strategy: fixed}
contact_policy:
  caps:
    - {name: email_daily, channels: [email], max: %(cap)d, window: 24h}
actions:
  - id: nudge
    category: marketing
    channels: [email, web]
    propensity: 0.2
    reason: browsing
    triggers: [{event: page_view}]
"""
CUSTOMERS = [f"C8{index:05d}" for index in range(12)]
VIEWS = 3


@pytest.fixture(scope="module")
def policies(deployment: Deployment) -> dict[str, Path]:
    paths = {}
    for name, cap in (("in_force", 2), ("one_email_a_day", 1)):
        paths[name] = deployment.tmp / f"{name}.yaml"
        paths[name].write_text(POLICY % {"name": name, "cap": cap})
    deployment.env["JOURNEY_POLICY_FILE"] = str(paths["in_force"])
    return paths


@pytest.fixture(scope="module")
async def live(deployment: Deployment, policies: dict[str, Path]) -> AsyncIterator[list[Any]]:
    """The worker's actions for every page view; each customer clicks the first one."""
    process: WorkerProcess = deployment.worker("what-if")
    await asyncio.to_thread(process.start)
    try:
        views = [
            event("web", "page_view", {"customer_id": c}, {"url": "/p"})
            for _ in range(VIEWS)
            for c in CUSTOMERS
        ]
        await deployment.produce("web", views)
        actions = await deployment.actions(lambda got: len(got) >= len(views))
        first = {view["event_id"] for view in views[: len(CUSTOMERS)]}  # each one's first
        await deployment.produce_raw(
            deployment.settings.topics.outcomes,
            [orjson.dumps(clicked(a)) for a in actions if a["trigger"]["event_id"] in first],
        )
        await deployment.wait_for(
            lambda: (
                "journey_outcomes_total" in process.metrics()
                and outcomes_applied(process.metrics()) >= len(CUSTOMERS)
            ),
            what="the clicks applied",
        )
        yield actions
    finally:
        process.stop()


def clicked(action: dict[str, Any]) -> dict[str, Any]:
    return {
        "outcome_id": f"click-{action['action_id']}",
        "action_id": action["action_id"],
        "customer_id": action["customer_id"],
        "channel": action["channel"],
        "outcome": "clicked",
        "occurred_at": action["decided_at"],
    }


def outcomes_applied(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("journey_outcomes_total{") and 'status="applied"' in line
    )


def journey(deployment: Deployment, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream", *argv],
        env=deployment.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def simulate(deployment: Deployment, candidate: Path, out: Path, *extra: str) -> dict[str, Any]:
    done = journey(deployment, "simulate-policy", str(candidate), "--report-dir", str(out), *extra)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = orjson.loads((out / "report.json").read_bytes())
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    return report


async def test_the_replay_of_the_policy_in_force_sends_what_the_worker_sent(
    deployment: Deployment, policies: dict[str, Path], live: list[Any]
) -> None:
    report = simulate(deployment, policies["in_force"], deployment.tmp / "same")
    sent = Counter(action["channel"] for action in live)
    assert sent == {"email": 2 * len(CUSTOMERS), "web": len(CUSTOMERS)}
    for side in ("current", "candidate"):
        assert report["sides"][side]["channels"] == dict(sent)
        assert report["outcomes"][side] == {"kept": len(CUSTOMERS), "dropped": 0}
    assert report["differences"]["decisions_differ"] == 0
    assert report["window"]["customers"] == len(CUSTOMERS)


async def test_a_stricter_cap_moves_exactly_the_second_email_of_each_customer_to_web(
    deployment: Deployment, policies: dict[str, Path], live: list[Any]
) -> None:
    out = deployment.tmp / "strict"
    saved = deployment.tmp / "window.ndjson"
    report = simulate(deployment, policies["one_email_a_day"], out, "--save", str(saved))
    candidate = report["sides"]["candidate"]
    assert candidate["channels"] == {"email": len(CUSTOMERS), "web": 2 * len(CUSTOMERS)}
    assert candidate["cap_hits"] == {}  # web was always free
    differences = report["differences"]
    assert differences["decisions_differ"] == len(CUSTOMERS)
    assert differences["customers_differ"] == len(CUSTOMERS)
    example = differences["examples"][0]
    assert (example["before"], example["after"]) == ("nudge@email", "nudge@web")
    assert example["because"] == "nudge goes out on web instead: email: contact_cap"
    # the exported window replays to the same report, without the broker
    again = simulate(
        deployment,
        policies["one_email_a_day"],
        deployment.tmp / "again",
        "--log",
        str(saved),
        "--model",
        "latest",
    )
    assert again["sides"] == report["sides"]
    assert again["differences"] == report["differences"]


async def test_evaluate_policy_reads_the_logged_decisions_and_their_outcomes(
    deployment: Deployment, policies: dict[str, Path], live: list[Any]
) -> None:
    out = deployment.tmp / "estimate.json"
    done = journey(
        deployment, "evaluate-policy", str(policies["one_email_a_day"]), "--json", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "candidate, doubly robust" in done.stdout
    report = orjson.loads(out.read_bytes())
    clicks = report["estimates"]["clicks"]
    rounds = len(CUSTOMERS) * VIEWS
    assert clicks["rounds"] == rounds
    # one click per customer, on the first view's email: 12 of 36 decisions
    assert clicks["logged"]["value"] == pytest.approx(1 / VIEWS)
    # the candidate keeps the first email (weight 1, clicked) and moves the second to web,
    # which the deterministic policy in force never did there: support says so
    assert report["support"]["unsupported_choices"] == {"nudge@web": len(CUSTOMERS)}
    assert clicks["ips"]["value"] == pytest.approx(1 / VIEWS)


async def test_a_candidate_that_fails_the_policy_check_is_refused_with_its_errors(
    deployment: Deployment, policies: dict[str, Path]
) -> None:
    broken = deployment.tmp / "broken.yaml"
    broken.write_text((POLICY % {"name": "broken", "cap": 1}).replace("max: 1", "max: many"))
    for command in ("simulate-policy", "evaluate-policy"):
        done = journey(deployment, command, str(broken), "--log", str(broken))
        assert done.returncode == 1
        assert "the candidate does not pass `journey policy check`" in done.stderr
        assert "broken.yaml:7: contact_policy/caps/0/max" in done.stderr
