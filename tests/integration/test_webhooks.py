"""Email-provider webhooks through real processes: a worker sends an email action, the
provider's documented webhook events for that message (SendGrid's signed Event Webhook,
Mailgun's signed webhook), carrying the action's identifiers as the sender put them into
the message, are posted to a real collector, become outcomes on the real broker, and the
worker's learning counts the click."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import yaml

from stream.shell.topics import ensure_topics
from stream.shell.watch import by_label
from tests.integration.conftest import Deployment, WorkerProcess
from tests.integration.events import event
from tests.integration.test_collector import CollectorProcess, post_events, request
from tests.integration.test_feedback import samples
from tests.unit.core.webhooks.helpers import copied, sample
from tests.unit.core.webhooks.test_mailgun import SIGNING_KEY, signed
from tests.unit.core.webhooks.test_sendgrid import REFERENCE, Signer

EVENTS_TOKEN = "it-events-token-0123456789"
SENDGRID_TOKEN = "it-sendgrid-token-0123456789"
MAILGUN_TOKEN = "it-mailgun-token-0123456789"
SIGNER = Signer()
POLICY = """
format: 1
name: webhooks-it
learning: {strategy: thompson, evidence: 10, rewards: [clicked, converted]}
actions:
  - id: newsletter
    category: marketing
    channels: [email]
    propensity: 0.2
    value: 10
    reason: browsing
    triggers: [{event: page_view}]
"""


def keys(directory: Any) -> str:
    path = directory / "webhook-keys.yaml"
    entries = [
        {"name": "site", "token": EVENTS_TOKEN, "channels": ["web"], "rate": 1000},
        {
            "name": "sendgrid",
            "token": SENDGRID_TOKEN,
            "channels": ["outcomes"],
            "rate": 1000,
            "webhook": "sendgrid",
            "webhook_secret": SIGNER.public_key,
        },
        {
            "name": "mailgun",
            "token": MAILGUN_TOKEN,
            "channels": ["outcomes"],
            "rate": 1000,
            "webhook": "mailgun",
            "webhook_secret": SIGNING_KEY,
        },
    ]
    path.write_text(yaml.safe_dump({"keys": entries}))
    return str(path)


@pytest.fixture(scope="module")
async def worker(deployment: Deployment) -> AsyncIterator[WorkerProcess]:
    path = deployment.tmp / "webhooks-policy.yaml"
    path.write_text(POLICY)
    deployment.env["JOURNEY_POLICY_FILE"] = str(path)
    process = deployment.worker("webhooks")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def collector(
    deployment: Deployment, worker: WorkerProcess
) -> AsyncIterator[CollectorProcess]:
    await ensure_topics(deployment.settings)
    env = {**deployment.env, "JOURNEY_COLLECTOR_KEYS_FILE": keys(deployment.tmp)}
    process = CollectorProcess(env, deployment.tmp / "webhooks-collector.log")
    process.start()
    await process.wait_status("/ready", 200)
    yield process
    process.stop()


async def email_action(
    deployment: Deployment, collector: CollectorProcess, customer_id: str
) -> dict[str, Any]:
    """The email action the worker decides at this customer's page view (posted over HTTP)."""
    view = event("web", "page_view", {"customer_id": customer_id}, {"url": "https://shop/x"})
    status, answer, _ = await post_events(collector, [view], EVENTS_TOKEN)
    assert status == 200, answer
    actions = await deployment.actions(lambda a: any(x["customer_id"] == customer_id for x in a))
    [action] = [a for a in actions if a["customer_id"] == customer_id]
    assert action["channel"] == "email"
    return action


async def outcomes_of(worker: WorkerProcess, customer_id: str, count: int) -> list[str]:
    """The outcomes recorded on the customer's last contact, once there are ``count``."""

    def recorded() -> list[str] | None:
        state = worker.customer(customer_id)
        contacts = state["contacts"] if state else []
        found = contacts[-1].get("outcomes", []) if contacts else []
        return found if len(found) >= count else None

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(recorded)
        if found is not None:
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"{customer_id}: {count} outcomes never recorded")


async def test_sendgrid_events_for_our_email_become_outcomes_the_learning_counts(
    deployment: Deployment, worker: WorkerProcess, collector: CollectorProcess
) -> None:
    action = await email_action(deployment, collector, "C730001")
    ours = {"action_id": action["action_id"], "customer_id": action["customer_id"]}
    documented = {e["event"]: e for e in copied(sample(REFERENCE))}
    events = [{**documented[name], **ours} for name in ("processed", "delivered", "open", "click")]
    body = orjson.dumps(events)
    headers = {
        "Content-Type": "application/json",
        **SIGNER.headers(body, str(int(time.time()))),
    }
    path = f"/webhooks/sendgrid?key={SENDGRID_TOKEN}"
    status, answer, _ = await request(collector, "POST", path, body, headers)
    assert status == 200 and answer["accepted"] == 3, answer
    assert [i["reason"] for i in answer["ignored"]] == ["no_outcome"]  # processed

    assert await outcomes_of(worker, "C730001", 3) == ["delivered", "opened", "clicked"]
    await deployment.wait_for(
        lambda: (
            by_label(samples(worker), "journey_model_successes", "channel").get("email", 0) >= 1
        ),
        what="the learnt model to count the click on email",
    )
    # The provider retries the same call: the same outcomes, recorded as repeats.
    status, answer, _ = await request(collector, "POST", path, body, headers)
    assert status == 200 and answer["accepted"] == 3
    await deployment.wait_for(
        lambda: (
            by_label(samples(worker), "journey_outcomes_total", "status").get("duplicate", 0) >= 3
        ),
        what="the retried outcomes counted as repeats",
    )
    assert await outcomes_of(worker, "C730001", 3) == ["delivered", "opened", "clicked"]
    successes = by_label(samples(worker), "journey_model_successes", "channel")
    assert successes["email"] == 1


async def test_a_mailgun_bounce_closes_email_for_the_customer(
    deployment: Deployment, worker: WorkerProcess, collector: CollectorProcess
) -> None:
    action = await email_action(deployment, collector, "C730002")
    payload = copied(sample("mailgun/failed_permanent.json"))
    payload["event-data"]["user-variables"] = {
        "action_id": action["action_id"],
        "customer_id": action["customer_id"],
    }
    body = signed(payload, int(time.time()))
    status, answer, _ = await request(
        collector,
        "POST",
        f"/webhooks/mailgun?key={MAILGUN_TOKEN}",
        body,
        {"Content-Type": "application/json"},
    )
    assert status == 200 and answer["accepted"] == 1, answer
    assert await outcomes_of(worker, "C730002", 1) == ["bounced"]
    state = await asyncio.to_thread(worker.customer, "C730002")
    assert state is not None and state["consent"]["email"] is False
    # Signed with another key: refused, nothing produced.
    forged = signed(payload, int(time.time()), key="key-forged-0000000000000000000000000")
    status, answer, _ = await request(
        collector,
        "POST",
        f"/webhooks/mailgun?key={MAILGUN_TOKEN}",
        forged,
        {"Content-Type": "application/json"},
    )
    assert (status, answer["error"]) == (401, "bad_signature")
