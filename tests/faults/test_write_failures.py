"""A failed write at any point stops the worker before a commit can pass it; nothing is lost.

For each place a worker writes (dead letters, the internal re-keying topics, actions,
explain records, learning updates, and the changelogs of the customer and identity
tables), a worker runs with ``JOURNEY_FAULT_SEND`` failing one send there. It must exit
with code 75 and a log line naming the topic, and a restarted worker (same state
directory, same group) must then account for every input: every customer's events
counted once, the poison message dead-lettered, every complaint answered.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from stream.shell.faust import EXIT_WRITE_FAILED
from tests.integration.conftest import Deployment, WorkerProcess, new_deployment
from tests.integration.events import complaint, event

CUSTOMERS = [f"C72{n:05d}" for n in range(4)]
VIEWS_PER_CUSTOMER = 4
EVENTS_PER_CUSTOMER = VIEWS_PER_CUSTOMER + 2  # and a login and a complaint
POISON = b"<event id='e1' type='page_view'/>"

POINTS = [
    ".dlq:1",  # the dead letter of the poison message
    ".internal.identity-events:3",  # ingest's re-keyed events
    ".internal.customer-events:3",  # resolve's events by customer id
    ".actions.call_center:1",  # an action for a sender
    ".decisions:2",  # an explain record
    ".internal.learning:1",  # a learning update
    "-customers-changelog:2",  # a customer's state
    "-aliases-changelog:2",  # an identity link
]


async def produce_traffic(deployment: Deployment) -> None:
    """Page views, a login and a complaint per customer; one poison message on the web topic."""
    for customer_id in CUSTOMERS:
        who = {"customer_id": customer_id}
        views = [
            event("web", "page_view", who, {"url": f"/{n}"}) for n in range(VIEWS_PER_CUSTOMER)
        ]
        # A login with an e-mail address links a second identifier: an identity-table write.
        views.append(event("web", "login", {**who, "email": f"{customer_id}@example.com"}))
        await deployment.produce("web", views)
        await deployment.produce(
            "call_center", [complaint(customer_id, f"K-{customer_id}", "late")]
        )
    await deployment.produce_raw(deployment.settings.topics.events("web"), [POISON])


def wait_for_exit(worker: WorkerProcess, timeout_s: float = 90.0) -> int:
    """The worker's exit code, once it has exited (fails at the deadline)."""
    assert worker.process is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = worker.process.poll()
        if code is not None:
            return code
        time.sleep(0.1)
    worker.stop()
    pytest.fail(f"the worker did not stop on the failed write:\n{worker.log_tail()}")


def everyone_complete(worker: WorkerProcess) -> bool:
    """True once every customer's events and open case are in their state."""
    for customer_id in CUSTOMERS:
        state = worker.customer(customer_id)
        if not state or state["event_count"] != EVENTS_PER_CUSTOMER:
            return False
    return True


@pytest.mark.parametrize("point", POINTS)
async def test_a_failed_write_stops_the_worker_and_a_restart_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, point: str
) -> None:
    deployment = new_deployment(tmp_path_factory)
    faulty = deployment.worker("w1")
    faulty.env["JOURNEY_FAULT_SEND"] = point
    await asyncio.to_thread(faulty.start)
    await produce_traffic(deployment)
    assert await asyncio.to_thread(wait_for_exit, faulty) == EXIT_WRITE_FAILED
    assert f"{point.rpartition(':')[0]} failed" in faulty.log_path.read_text()

    restarted = deployment.worker("w1")  # the same state directory and group
    await asyncio.to_thread(restarted.start)
    try:
        await deployment.wait_for(lambda: everyone_complete(restarted), what="every event counted")
        for customer_id in CUSTOMERS:
            state = restarted.customer(customer_id)
            assert state is not None and state["event_count"] == EVENTS_PER_CUSTOMER, state
        dlq = await deployment.collect(
            [deployment.settings.topics.dlq],
            lambda rs: any(orjson.loads(r.value)["reason"] == "invalid_json" for r in rs),
        )
        assert {orjson.loads(r.value)["source"]["offset"] for r in dlq} == {
            orjson.loads(dlq[0].value)["source"]["offset"]
        }
        answered = await deployment.actions(
            lambda a: (
                {x["customer_id"] for x in a if x["action"] == "service_recovery"} >= set(CUSTOMERS)
            )
        )
        keys = {a["idempotency_key"] for a in answered if a["action"] == "service_recovery"}
        assert len(keys) == len(CUSTOMERS)
    finally:
        restarted.stop()
