"""The outcome feedback loop on the real broker: learning, the control group, bounces.

A loopback sender (``stream.simulate.sender``) runs in the test, answering the worker's
actions as customers who respond only on push would. The module's policy offers one
marketing action on email or push (email first, equal priors) at every page view, with
Thompson sampling and a 30 % universal control group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from stream.core.decide.holdout import CONTROL, HoldoutPolicy, group_of
from stream.shell.watch import Samples, by_label, total
from stream.simulate.preferences import preferences_for
from stream.simulate.sender import run_sender
from tests.integration.conftest import Deployment, WorkerProcess
from tests.integration.events import event

SALT = "feedback-it"
CONTROL_SHARE = 0.3
POLICY = f"""
format: 1
name: feedback-it
learning: {{strategy: thompson, evidence: 10, rewards: [clicked, converted]}}
holdout: {{control_share: {CONTROL_SHARE}, salt: {SALT}}}
actions:
  - id: nudge
    category: marketing
    channels: [email, push]
    propensity: 0.2
    value: 10
    reason: browsing
    triggers: [{{event: page_view}}]
"""
CUSTOMERS = [f"C7{index:05d}" for index in range(60)]
HOLDOUT = HoldoutPolicy(control_share=CONTROL_SHARE, salt=SALT)
TREATED = [c for c in CUSTOMERS if group_of(c, HOLDOUT) != CONTROL]
HELD_OUT = [c for c in CUSTOMERS if group_of(c, HOLDOUT) == CONTROL]
ROUNDS = 6


@pytest.fixture(scope="module")
def policy_env(deployment: Deployment) -> None:
    path = deployment.tmp / "feedback-policy.yaml"
    path.write_text(POLICY)
    deployment.env["JOURNEY_POLICY_FILE"] = str(path)


@pytest.fixture(scope="module")
async def fw(deployment: Deployment, policy_env: None) -> AsyncIterator[WorkerProcess]:
    process = deployment.worker("feedback")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def sender(deployment: Deployment, fw: WorkerProcess) -> AsyncIterator[None]:
    """Customers who answer only on push (never on email), for the whole module."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_sender(
            deployment.settings.broker,
            deployment.settings.topics.prefix,
            preferences_for("push-only", 1),
            stop=stop,
            clock_now_ms=deployment.clock().now_ms,  # outcomes stamped on the workers' clock
        )
    )
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)


def page_view(customer_id: str) -> dict[str, Any]:
    return event("web", "page_view", {"customer_id": customer_id}, {"url": "https://shop/x"})


def samples(worker: WorkerProcess) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(worker.metrics())
        for s in family.samples
    ]


async def decisions(deployment: Deployment, until: Any, timeout_s: float = 60.0) -> list[dict]:
    records = await deployment.collect(
        [deployment.settings.topics.decisions],
        lambda rs: until([orjson.loads(r.value) for r in rs]),
        timeout_s,
    )
    return [orjson.loads(r.value) for r in records]


async def test_push_share_rises_when_customers_answer_only_on_push(
    deployment: Deployment, fw: WorkerProcess, sender: None
) -> None:
    installs = [
        event("app", "app_installed", {"customer_id": c}, {"platform": "ios"}) for c in CUSTOMERS
    ]
    await deployment.produce("app", installs)
    shares = []
    seen = 0
    for _ in range(ROUNDS):
        views = [page_view(c) for c in CUSTOMERS]
        await deployment.produce("web", views)
        seen += len(TREATED)
        actions = await deployment.actions(lambda a, n=seen: len(a) >= n)
        round_ids = {view["event_id"] for view in views}
        this_round = [a for a in actions if a["trigger"]["event_id"] in round_ids]
        assert len(this_round) == len(TREATED)
        shares.append(sum(a["channel"] == "push" for a in this_round) / len(this_round))
        # Next round only once every worker's model view counts this round's sends.
        await deployment.wait_for(
            lambda n=seen: total(samples(fw), "journey_model_trials") >= n,
            what=f"the model view to count {seen} sends",
        )
    assert shares[0] < 0.8, f"push should not dominate before anything is learnt: {shares}"
    assert min(shares[-2:]) >= 0.85, f"push share per round: {shares}"
    learnt = samples(fw)
    trials = by_label(learnt, "journey_model_trials", "channel")
    successes = by_label(learnt, "journey_model_successes", "channel")
    assert successes.get("email", 0) == 0 and trials["email"] > 0
    assert successes["push"] / trials["push"] > 0.3  # the push-only customers answer 60%

    # The control group got decisions, explained, and never an action.
    all_actions = await deployment.actions(lambda a: len(a) >= seen)
    assert not {a["customer_id"] for a in all_actions} & set(HELD_OUT)
    explained = await decisions(
        deployment,
        lambda ds: sum(d["customer_id"] in HELD_OUT for d in ds) >= ROUNDS * len(HELD_OUT),
    )
    for record in (d for d in explained if d["customer_id"] in HELD_OUT):
        assert record["group"] == "control" and record["chosen"] == []
        [candidate] = record["candidates"]
        assert candidate["reason"] == "holdout" and candidate["channel"] in ("email", "push")
        assert set(candidate["propensities"]) == {"email", "push"}
        assert deployment.catalog.message_error("decision", record) is None
    exposures = total(learnt, "journey_uplift_exposures_total", group="control")
    assert exposures == ROUNDS * len(HELD_OUT)


async def test_a_bounce_stops_email_for_that_customer(
    deployment: Deployment, fw: WorkerProcess
) -> None:
    customer = "C7900001"  # no app: email is the only channel that reaches them
    await deployment.produce("web", [page_view(customer)])
    [action] = [
        a
        for a in await deployment.actions(lambda a: any(x["customer_id"] == customer for x in a))
        if a["customer_id"] == customer
    ]
    assert action["channel"] == "email"
    bounce = {
        "outcome_id": "it-bounce-1",
        "action_id": action["action_id"],
        "customer_id": customer,
        "channel": "email",
        "outcome": "bounced",
        "occurred_at": "2026-11-23T10:00:05.000Z",
        "detail": {"bounce_type": "hard"},
    }
    unknown = {**bounce, "outcome_id": "it-unknown", "action_id": "no-such-action"}
    outcomes = deployment.settings.topics.outcomes
    await deployment.produce_raw(
        outcomes,
        [orjson.dumps(bounce), orjson.dumps(bounce), orjson.dumps(unknown), b"{not json"],
        key=customer.encode(),
    )
    await deployment.wait_for(
        lambda: (fw.customer(customer) or {}).get("opt_outs", {}).get("email") == "hard_bounce",
        what="the hard bounce to close email",
    )
    await deployment.produce("web", [page_view(customer)])
    explained = await decisions(
        deployment, lambda ds: sum(d["customer_id"] == customer for d in ds) >= 2
    )
    last = [d for d in explained if d["customer_id"] == customer][-1]
    assert last["chosen"] == []
    [candidate] = last["candidates"]
    assert candidate["reason"] == "no_consent" and candidate["channels"]["email"] == "no_consent"

    metrics = samples(fw)
    assert total(metrics, "journey_outcomes_total", outcome="bounced", status="applied") == 1
    assert total(metrics, "journey_outcomes_total", outcome="bounced", status="duplicate") == 1
    assert total(metrics, "journey_outcomes_total", status="unknown_action") >= 1
    dlq = await deployment.collect(
        [deployment.settings.topics.dlq],
        lambda rs: any(orjson.loads(r.value)["source"]["topic"] == outcomes for r in rs),
    )
    [bad] = [
        orjson.loads(r.value) for r in dlq if orjson.loads(r.value)["source"]["topic"] == outcomes
    ]
    assert bad["reason"] == "invalid_json"
