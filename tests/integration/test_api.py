"""The Customer 360 API on the real broker, across two workers.

Two workers share the partitions; every call is made to both, so half of them are
forwarded to the owner (with the caller's token). Then schemathesis generates requests
from the served OpenAPI document and checks for server errors and schema violations.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from openapi_spec_validator import validate

from tests.integration.conftest import API_TOKEN, Deployment, WorkerProcess, fuzz_api, http_get
from tests.integration.events import event, order

RAW_EMAIL = "Jeanne.Martin@Example.com"
RAW_PHONE = "+33 6 12 34 56 78"
BROWSERS = [f"C60000{n}" for n in range(1, 5)]  # page views only: awareness
CARTS = [f"C60001{n}" for n in range(1, 4)]  # a cart: acquisition
BUYERS = [f"C60002{n}" for n in range(1, 3)]  # an order: onboarding
STAR = "C600099"  # every channel, raw email and phone


@pytest.fixture(scope="module")
async def pair(deployment: Deployment) -> AsyncIterator[tuple[WorkerProcess, WorkerProcess]]:
    first, second = deployment.worker("api-1"), deployment.worker("api-2")
    await asyncio.to_thread(first.start)
    await asyncio.to_thread(second.start)
    await asyncio.to_thread(first.wait_ready)  # the rebalance that gave it one partition
    yield first, second
    second.stop()
    first.stop()


def get(worker: WorkerProcess, path: str, token: str | None = API_TOKEN) -> tuple[int, Any]:
    status, body = http_get(f"{worker.url}{path}", token)
    return status, orjson.loads(body) if body else None


def journeys() -> list[tuple[str, list[dict[str, Any]]]]:
    def cart(cid: str) -> dict[str, Any]:
        props = {"product_id": "P1", "price": 30.0, "category": "shoes"}
        return event("web", "add_to_cart", {"customer_id": cid}, props)

    view = {"url": "https://shop.example.com/"}
    star = {"customer_id": STAR, "email": RAW_EMAIL, "phone": RAW_PHONE}
    return [
        ("web", [event("web", "page_view", {"customer_id": c}, view) for c in BROWSERS]),
        ("web", [cart(c) for c in CARTS]),
        ("web", [order(c, f"O-{c}") for c in BUYERS]),
        ("web", [event("web", "page_view", star, view), cart(STAR)]),
        ("app", [event("app", "app_installed", {"customer_id": STAR}, {"platform": "ios"})]),
        ("web", [order(STAR, "O-star")]),
        (
            "call_center",
            [event("call_center", "complaint_opened", star, {"case_id": "K9", "reason": "late"})],
        ),
    ]


@pytest.fixture(scope="module")
async def loaded(deployment: Deployment, pair: tuple[WorkerProcess, WorkerProcess]) -> None:
    for channel, events in journeys():
        await deployment.produce(channel, events)
    first, _ = pair
    everyone = len(BROWSERS) + len(CARTS) + len(BUYERS) + 1
    await deployment.wait_for(
        lambda: (
            get(first, "/journey/funnel")[1].get("total") == everyone
            and get(first, f"/customers/{STAR}")[1].get("open_cases")
        ),
        what=f"{everyone} customers in the funnel",
    )


async def test_profiles_answer_on_every_worker_and_hold_no_raw_email_or_phone(
    pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    answers = [get(worker, f"/customers/{STAR}") for worker in pair]
    assert answers[0] == answers[1]  # one answered, the other forwarded with the token
    status, profile = answers[0]
    assert status == 200
    assert profile["stage"] == "onboarding" and profile["orders"]["count"] == 1
    assert [c["case_id"] for c in profile["open_cases"]] == ["K9"]
    assert set(profile["engagement"]) == {"web", "app", "call_center"}
    assert {"email_sha256", "phone_sha256"} <= set(profile["identifiers"])
    text = orjson.dumps(profile).decode().lower()
    assert "jeanne" not in text and "12 34 56" not in text and "612345678" not in text
    types = [e["type"] for e in profile["recent_events"]]  # ordered within a topic only
    assert types.index("page_view") < types.index("add_to_cart") < types.index("order_completed")
    assert {"app_installed", "complaint_opened"} <= set(types)
    assert [h["to"] for h in profile["stage_history"]] == ["acquisition", "onboarding"]


async def test_every_customer_answers_on_both_workers(
    pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    owners = set()
    for cid in [*BROWSERS, *CARTS, *BUYERS, STAR]:
        answers = [get(worker, f"/customers/{cid}") for worker in pair]
        assert answers[0] == answers[1] and answers[0][0] == 200, cid
        owners.add(pair[0].customer(cid) is not None)  # the raw state is only on the owner
    assert owners == {True, False}  # both workers own some: half the calls were forwarded


async def test_decisions_explain_why_newest_first(
    pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    results = [get(worker, f"/customers/{STAR}/decisions") for worker in pair]
    assert results[0] == results[1]
    status, body = results[0]
    assert status == 200
    records = body["decisions"]
    [complaint] = [r for r in records if r["trigger"]["type"] == "complaint_opened"]
    [recovery] = [c for c in complaint["candidates"] if c["action"] == "service_recovery"]
    assert recovery["outcome"] == "chosen"
    times = [r["decided_at"] for r in records]
    assert times == sorted(times, reverse=True)


async def test_funnel_and_transitions_sum_every_worker(
    pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    funnels = [get(worker, "/journey/funnel")[1] for worker in pair]
    assert funnels[0] == funnels[1]
    counts = {s["stage"]: s["customers"] for s in funnels[0]["stages"]}
    assert counts == {
        "awareness": len(BROWSERS),
        "acquisition": len(CARTS),
        "onboarding": len(BUYERS) + 1,
        "engagement": 0,
        "advocacy": 0,
    }
    transitions = {
        (t["from"], t["to"]): t["count"]
        for t in get(pair[1], "/journey/transitions")[1]["transitions"]
    }
    assert transitions[("awareness", "acquisition")] == len(CARTS) + 1
    assert transitions[("acquisition", "onboarding")] == 1
    assert transitions[("awareness", "onboarding")] == len(BUYERS)


async def test_performance_sums_every_workers_share_of_the_messages_sent(
    deployment: Deployment, pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    reports = [get(worker, "/journey/performance?days=7")[1] for worker in pair]
    for report in reports:
        del report["as_of"]  # each worker's own clock reading
    assert reports[0] == reports[1]  # each adds the other's share to its own
    sent = {row["action"]: row["sent"] for row in reports[0]["actions"] if row["sent"]}
    assert sent, "the module's events sent actions"
    # The action topics hold exactly what the table counts (both workers' partitions).
    actions = await deployment.actions(
        lambda actions: Counter(a["action"] for a in actions) == sent
    )
    # The shipped journeys' sends (the onboarding's invitation at a first order) are
    # counted per journey too.
    by_journey = Counter(a["journey"]["id"] for a in actions if "journey" in a)
    assert by_journey, "the module's first orders started the onboarding journey"
    journeys = {row["journey"]: row["sent"] for row in reports[0]["journeys"] if row["sent"]}
    assert journeys == by_journey
    assert get(pair[0], "/journey/performance?days=91")[0] == 400


async def test_errors_are_json_with_proper_status(
    pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    worker = pair[0]
    assert get(worker, f"/customers/{STAR}", token=None)[0] == 401
    status, body = get(worker, f"/customers/{STAR}", token="wrong")
    assert (status, body["error"]) == (401, "unauthorized")
    assert get(worker, "/journey/funnel", token=None)[0] == 401
    status, body = get(worker, "/customers/not%20an%20id")
    assert (status, body["error"]) == (400, "bad_request")
    status, body = get(worker, "/customers/C000000")
    assert (status, body["error"]) == (404, "not_found")
    assert http_get(f"{worker.url}/metrics")[0] == 200  # monitoring and health stay open
    assert http_get(f"{worker.url}/ready")[0] == 200


async def test_the_cli_prints_the_same_profile(
    deployment: Deployment, pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    env = {**os.environ, **deployment.env}
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stream", "customer", STAR, "--url", pair[1].url],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr.decode()
    assert orjson.loads(run.stdout) == get(pair[0], f"/customers/{STAR}")[1]
    missing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stream", "customer", "C000000", "--url", pair[1].url],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert missing.returncode == 1 and b"no customer" in missing.stderr


async def test_the_openapi_document_is_valid_and_schemathesis_finds_no_violation(
    deployment: Deployment, pair: tuple[WorkerProcess, WorkerProcess], loaded: None
) -> None:
    status, document = get(pair[0], "/openapi.json")
    assert status == 200
    validate(document)
    assert get(pair[0], "/openapi.json", token=None)[0] == 401
    # Real customers as examples, so generated calls also reach existing profiles.
    for route in ("/customers/{customer_id}", "/customers/{customer_id}/decisions"):
        document["paths"][route]["get"]["parameters"][0]["examples"] = {
            "known": {"value": STAR},
            "merged_or_other": {"value": BUYERS[0]},
        }
    path = deployment.tmp / "openapi.json"
    path.write_bytes(orjson.dumps(document))
    await fuzz_api(path, pair[0].url, API_TOKEN)
