"""`journey collector` as a real process on the real broker: events posted over HTTP reach
a real worker and cause actions; a batch with bad records gets per-record answers, the bad
ones land on the DLQ and none of the good ones is lost; keys, signatures, CORS and rate
limits answer as documented; outcomes reach their topic; schemathesis fuzzes the API from
its OpenAPI document. The broker-outage test runs on a private broker it stops itself.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from openapi_spec_validator import validate

from stream.config import CHANNELS_IN, load_settings
from stream.shell.collector.keys import signature_of
from stream.shell.topics import ensure_topics
from tests.integration.conftest import (
    Deployment,
    ServiceProcess,
    WorkerProcess,
    fuzz_api,
)
from tests.integration.events import complaint, event
from tests.integration.private_broker import PrivateBroker

ALL = "it-all-token-0123456789"
WEB_ONLY = "it-web-token-0123456789"
SIGNED = "it-signed-token-0123456789"
SLOW = "it-slow-token-0123456789"
SECRET = "it-hmac-secret-0123456789"
SHOP = "https://shop.example.com"
READY_TIMEOUT_S = 60.0


def keys_file(directory: Path) -> Path:
    """The keys of these tests: one for everything, one per behaviour under test."""
    path = directory / "collector-keys.yaml"
    keys = [
        {"name": "all", "token": ALL, "channels": [*CHANNELS_IN, "outcomes"], "rate": 100000},
        {"name": "web-only", "token": WEB_ONLY, "channels": ["web"], "rate": 1000},
        {
            "name": "signed",
            "token": SIGNED,
            "channels": ["store"],
            "rate": 1000,
            "hmac_secret": SECRET,
        },
        {"name": "slow", "token": SLOW, "channels": ["web"], "rate": 0.01, "burst": 2},
    ]
    path.write_text(yaml.safe_dump({"keys": keys}))
    return path


@dataclass
class CollectorProcess(ServiceProcess):
    """A `journey collector` subprocess on its own port (``start`` does not wait)."""

    command: ClassVar[str] = "collector"
    port_setting: ClassVar[str] = "JOURNEY_COLLECTOR_PORT"

    def start(self) -> None:
        self.launch()

    async def wait_status(self, path: str, status: int, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until GET ``path`` answers ``status`` (the process must stay up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"collector exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if (await request(self, "GET", path))[0] == status:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        pytest.fail(f"{path} never answered {status} in {timeout_s} s:\n{self.log_tail()}")


async def request(
    collector: CollectorProcess,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    """Status, decoded JSON body (None if not JSON) and headers of one request."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.request(method, collector.url + path, data=body, headers=headers) as response,
    ):
        raw = await response.read()
        decoded = orjson.loads(raw) if response.content_type == "application/json" else None
        return response.status, decoded, response.headers


async def _text(collector: CollectorProcess, path: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(collector.url + path) as response,
    ):
        return await response.text()


def bearer(token: str, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


async def post_events(
    collector: CollectorProcess, events: Any, token: str = ALL
) -> tuple[int, Any, Any]:
    return await request(collector, "POST", "/events", orjson.dumps(events), bearer(token))


async def read_topics(
    bootstrap: str, topics: list[str], until: Any, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Records of ``topics`` from the start, once ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            if until(records):
                return records
    finally:
        await consumer.stop()
    pytest.fail(f"not found in {topics} within {timeout_s} s ({len(records)} records read)")


def collector_env(deployment: Deployment, **overrides: str) -> dict[str, str]:
    return {
        **deployment.env,
        "JOURNEY_COLLECTOR_KEYS_FILE": str(keys_file(deployment.tmp)),
        "JOURNEY_COLLECTOR_CORS_ORIGINS": SHOP,
        **overrides,
    }


@pytest.fixture(scope="module")
async def collector(deployment: Deployment) -> AsyncIterator[CollectorProcess]:
    """One collector for the module, once the deployment's topics exist."""
    await ensure_topics(deployment.settings)
    process = CollectorProcess(collector_env(deployment), deployment.tmp / "collector.log")
    process.start()
    await process.wait_status("/ready", 200)
    yield process
    process.stop()


# --- through a real worker -------------------------------------------------------------


async def test_events_posted_reach_a_worker_and_cause_actions_and_a_repeat_is_harmless(
    deployment: Deployment, worker: WorkerProcess, collector: CollectorProcess
) -> None:
    cid = "C710001"
    opened = complaint(cid, "K71", "broken item")
    for _ in range(2):  # a client that resends after a lost answer: the worker drops the copy
        status, answer, _ = await post_events(collector, opened)
        assert status == 200 and answer["results"] == [
            {"index": 0, "status": "accepted", "id": opened["event_id"], "channel": "call_center"}
        ]
    marker = event("web", "page_view", {"customer_id": cid}, {"url": "/after"})
    assert (await post_events(collector, [marker]))[0] == 200
    actions = await deployment.actions(
        lambda a: any(x["customer_id"] == cid for x in a), timeout_s=90
    )
    mine = [a for a in actions if a["customer_id"] == cid]
    assert [(a["action"], a["trigger"]["event_id"]) for a in mine] == [
        ("service_recovery", opened["event_id"])
    ]
    state = await deployment.wait_for(
        lambda: (s := worker.customer(cid)) and marker["event_id"] in s["seen_event_ids"] and s,
        what="the marker event processed",
    )
    assert state["event_count"] == 2  # the complaint once, the marker


# --- per-record answers, the DLQ, nothing lost ----------------------------------------------


async def test_a_batch_with_bad_records_answers_each_dead_letters_the_bad_and_loses_no_good(
    deployment: Deployment, collector: CollectorProcess
) -> None:
    topics = deployment.settings.topics
    good_web = event("web", "page_view", {"customer_id": "C720001"}, {"url": "/a"})
    good_app = event("app", "app_opened", {"email": "Ana@Example.com"})
    lines = [
        orjson.dumps(good_web),
        b'{"event_id": "broken", ',
        orjson.dumps(event("web", "teleported", {"customer_id": "C720001"})),
        orjson.dumps(good_app),
        orjson.dumps({**good_web, "event_id": "no-customer", "customer": {}}),
    ]
    body = b"\n".join(lines) + b"\n"
    status, answer, headers = await request(
        collector, "POST", "/events", body, bearer(ALL, "application/x-ndjson")
    )
    assert status == 207, answer
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    assert [(r["line"], r["status"], r.get("reason")) for r in answer["results"]] == [
        (1, "accepted", None),
        (2, "rejected", "invalid_json"),
        (3, "rejected", "unknown_event_type"),
        (4, "accepted", None),
        (5, "rejected", "missing_identifier"),
    ]
    request_id = headers["X-Request-Id"]

    def sent_by(dead_letter: dict[str, Any]) -> str | None:
        return dead_letter["source"].get("collector", {}).get("request_id")

    def mine(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
        decoded = [orjson.loads(r.value) for r in records]
        return [d for d in decoded if sent_by(d) == request_id]

    dead = mine(
        await read_topics(deployment.settings.broker, [topics.dlq], lambda rs: len(mine(rs)) == 3)
    )
    assert sorted((d["source"]["collector"]["line"], d["reason"]) for d in dead) == [
        (2, "invalid_json"),
        (3, "unknown_event_type"),
        (5, "missing_identifier"),
    ]
    assert all(deployment.catalog.message_error("dlq", d) is None for d in dead)
    assert {d["source"]["topic"] for d in dead} == {"collector", topics.events("web")}
    wanted = {good_web["event_id"], good_app["event_id"]}

    def found(records: list[ConsumerRecord]) -> dict[str, ConsumerRecord]:
        decoded = ((orjson.loads(r.value)["event_id"], r) for r in records)
        return {event_id: r for event_id, r in decoded if event_id in wanted}

    ingress = [topics.events("web"), topics.events("app")]
    records = found(
        await read_topics(deployment.settings.broker, ingress, lambda rs: len(found(rs)) == 2)
    )
    web_record, app_record = records[good_web["event_id"]], records[good_app["event_id"]]
    assert (web_record.topic, web_record.key, web_record.value) == (
        topics.events("web"),
        b"C720001",
        lines[0],
    )
    assert app_record.topic == topics.events("app") and app_record.value == lines[3]
    assert app_record.key.startswith(b"email:") and b"Example" not in app_record.key


async def test_outcomes_reach_the_outcomes_topic_keyed_by_customer(
    deployment: Deployment, collector: CollectorProcess
) -> None:
    outcomes = [
        {
            "outcome_id": f"it-o-{n}",
            "action_id": "a-1",
            "customer_id": "C730001",
            "channel": "email",
            "outcome": "opened",
            "occurred_at": "2026-11-23T09:30:00Z",
        }
        for n in range(2)
    ]
    status, answer, _ = await request(
        collector, "POST", "/outcomes", orjson.dumps(outcomes), bearer(ALL)
    )
    assert status == 200 and answer["accepted"] == 2
    ids = {o["outcome_id"] for o in outcomes}

    def found(records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        return [r for r in records if orjson.loads(r.value)["outcome_id"] in ids]

    topic = deployment.settings.topics.outcomes
    records = found(
        await read_topics(deployment.settings.broker, [topic], lambda rs: len(found(rs)) == 2)
    )
    assert {r.key for r in records} == {b"C730001"}


# --- keys, signatures, CORS, rate limits --------------------------------------------------


async def test_a_wrong_key_is_401_and_a_key_for_another_channel_is_403(
    collector: CollectorProcess,
) -> None:
    call = complaint("C740001", "K74", "late")
    status, answer, headers = await post_events(collector, call, "not-a-key-0123456789")
    assert (status, answer["error"], headers["WWW-Authenticate"]) == (401, "unauthorized", "Bearer")
    assert (await request(collector, "POST", "/events", orjson.dumps(call)))[0] == 401
    status, answer, _ = await post_events(collector, call, WEB_ONLY)
    assert (status, answer["error"], answer["channels"]) == (403, "forbidden", ["call_center"])
    assert "web-only" in answer["detail"] and WEB_ONLY not in answer["detail"]
    status, _, _ = await request(collector, "POST", "/outcomes", b"{}", bearer(WEB_ONLY))
    assert status == 403
    log = collector.log_path.read_text(errors="replace")
    assert WEB_ONLY not in log and ALL not in log  # keys are never logged


async def test_a_signing_key_needs_its_signature(collector: CollectorProcess) -> None:
    visit = event("store", "store_visit", {"loyalty_id": "L7501"}, {"store_id": "S1"})
    body = orjson.dumps(visit)
    timestamp = str(int(time.time()))
    signature = signature_of(SECRET.encode(), timestamp, body)
    signed = bearer(SIGNED) | {"X-Journey-Timestamp": timestamp, "X-Journey-Signature": signature}
    assert (await request(collector, "POST", "/events", body, signed))[0] == 200
    tampered = body.replace(b"S1", b"S2")
    for bad_body, headers in (
        (body, bearer(SIGNED)),
        (tampered, signed),
        (body, signed | {"X-Journey-Timestamp": str(int(time.time()) - 3600)}),
    ):
        status, answer, _ = await request(collector, "POST", "/events", bad_body, headers)
        assert (status, answer["error"]) == (401, "bad_signature"), answer


async def test_cors_preflight_is_answered_for_allowed_origins(collector: CollectorProcess) -> None:
    preflight = {
        "Origin": SHOP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, _, headers = await request(collector, "OPTIONS", "/events", headers=preflight)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == SHOP
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    status, _, headers = await request(
        collector, "OPTIONS", "/events", headers=preflight | {"Origin": "https://other.example"}
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


async def test_a_key_over_its_rate_gets_429_with_retry_after(collector: CollectorProcess) -> None:
    view = event("web", "page_view", {"anonymous_id": "a-76"}, {"url": "/"})
    assert [(await post_events(collector, view, SLOW))[0] for _ in range(2)] == [200, 200]
    status, answer, headers = await post_events(collector, view, SLOW)
    assert (status, answer["error"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1


# --- the API document, fuzzed ---------------------------------------------------------------


async def test_the_openapi_document_is_valid_and_schemathesis_finds_no_violation(
    deployment: Deployment, collector: CollectorProcess
) -> None:
    status, document, _ = await request(collector, "GET", "/openapi.json")
    assert status == 200
    validate(document)
    path = deployment.tmp / "collector-openapi.json"
    path.write_bytes(orjson.dumps(document))
    await fuzz_api(path, collector.url, ALL)
    # It reached the routes' own answers, not only their refusals.
    text = await _text(collector, "/metrics")
    for route in ("/events", "/outcomes"):
        answered = re.findall(
            rf'journey_collector_requests_total{{route="{route}",status="(200|207|400)"}} (\d+)',
            text,
        )
        assert sum(float(count) for _, count in answered) > 0, (route, text[-3000:])


# --- a broker outage, on a private broker ----------------------------------------------------


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


async def test_with_the_broker_stopped_it_answers_503_and_accepts_again_losing_nothing(
    deployment: Deployment, private_broker: PrivateBroker
) -> None:
    env = collector_env(
        deployment,
        JOURNEY_BROKER=private_broker.bootstrap,
        JOURNEY_COLLECTOR_ACK_TIMEOUT_S="3",
    )
    await ensure_topics(load_settings(env))
    collector = CollectorProcess(env, deployment.tmp / "collector-outage.log")
    collector.start()
    try:
        await collector.wait_status("/ready", 200)
        acknowledged: set[str] = set()

        async def send() -> tuple[int, Any, Any]:
            view = event("web", "page_view", {"anonymous_id": "a-outage"}, {"url": "/"})
            answer = await post_events(collector, view)
            if answer[0] == 200:
                acknowledged.add(view["event_id"])
            return answer

        assert [(await send())[0] for _ in range(3)] == [200] * 3
        await asyncio.to_thread(private_broker.stop)
        deadline = time.monotonic() + 30
        while (answer := await send())[0] != 503:
            assert time.monotonic() < deadline, "still accepting 30 s after the broker stopped"
            await asyncio.sleep(0.1)
        _, body, headers = answer
        assert body["error"] == "unavailable" and int(headers["Retry-After"]) >= 1
        assert (await send())[0] == 503  # at once now, while it lasts
        assert (await request(collector, "GET", "/ready"))[0] == 503
        await asyncio.to_thread(private_broker.start)
        deadline = time.monotonic() + 90
        while (await send())[0] != 200:
            assert time.monotonic() < deadline, f"not accepting again:\n{collector.log_tail()}"
            await asyncio.sleep(0.5)
        assert [(await send())[0] for _ in range(2)] == [200] * 2
        topic = load_settings(env).topics.events("web")

        def ids(records: list[ConsumerRecord]) -> set[str]:
            return {orjson.loads(r.value)["event_id"] for r in records}

        records = await read_topics(
            private_broker.bootstrap, [topic], lambda rs: acknowledged <= ids(rs)
        )
        assert acknowledged <= ids(records) and len(acknowledged) >= 6
    finally:
        collector.stop()
