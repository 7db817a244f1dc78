"""The collector's HTTP answers, with a stand-in for the broker (no Kafka): the order of
checks, status codes, CORS, what is produced and what is dead-lettered."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.config import load_settings
from stream.shell.collector.broker import BrokerUnavailable, Record
from stream.shell.collector.keys import parse_keys, signature_of
from stream.shell.collector.server import Collector, build_app, new_collector
from tests.unit.core.test_collect import NOW_MS, event, outcome

WEB = "web-token-0123456789"
SENDER = "sender-token-0123456789"
HOOK = "hook-token-0123456789"
BEACON = "beacon-token-0123456789"
SECRET = "hook-secret-0123456789"
KEYS = {
    "keys": [
        {"name": "web", "token": WEB, "channels": ["web", "app"], "rate": 1000},
        {"name": "sender", "token": SENDER, "channels": ["outcomes"], "rate": 1000},
        {"name": "hook", "token": HOOK, "channels": ["store"], "rate": 1000, "hmac_secret": SECRET},
        {
            "name": "beacon",
            "token": BEACON,
            "channels": ["web"],
            "rate": 1,
            "burst": 3,
            "per": "events",
            "max_body_bytes": 2000,
            "query_token": True,
        },
    ]
}


class FakeLink:
    """The broker link's face: up or down, and the records it was asked to produce."""

    def __init__(self) -> None:
        self.up, self.reason = True, ""
        self.produced: list[Record] = []
        self.fail: str | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def produce(self, records: Sequence[Record], timeout_s: float) -> float:
        if self.fail is not None:
            raise BrokerUnavailable(self.fail)
        self.produced.extend(records)
        return 0.001

    def sent(self, topic: str) -> list[Any]:
        return [orjson.loads(value) for t, _, value in self.produced if t == topic]


@pytest.fixture
async def collector() -> Collector:
    settings = load_settings(
        {
            "JOURNEY_TOPIC_PREFIX": "t.",
            "JOURNEY_HASH_SALT": "pepper",
            "JOURNEY_DEFAULT_REGION": "FR",
            "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
            "JOURNEY_CLOCK_START_MS": str(NOW_MS),
            "JOURNEY_COLLECTOR_CORS_ORIGINS": "https://shop.example.com",
            "JOURNEY_COLLECTOR_MAX_RECORDS": "5",
        }
    )
    c = new_collector(settings, parse_keys(KEYS, "keys", ("web", "app", "store"), 10**6))
    c.link = FakeLink()  # type: ignore[assignment]
    return c


@pytest.fixture
async def client(collector: Collector) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(collector))) as test_client:
        yield test_client


def bearer(token: str, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


async def post(
    client: TestClient[Any, Any], path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any, Any]:
    response = await client.post(path, data=body, headers=headers)
    return response.status, orjson.loads(await response.read()), response.headers


async def test_valid_events_are_produced_keyed_and_answered_200(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    events = [event(event_id="a"), event(event_id="b", customer={"customer_id": "C2"})]
    status, body, headers = await post(client, "/events", orjson.dumps(events), bearer(WEB))
    assert status == 200 and body["accepted"] == 2 and body["rejected"] == 0
    assert [(r["id"], r["channel"]) for r in body["results"]] == [("a", "web"), ("b", "web")]
    link: FakeLink = collector.link  # type: ignore[assignment]
    web = "t.events.web"
    assert [(t, k) for t, k, _ in link.produced] == [(web, b"C1"), (web, b"C2")]
    assert headers["X-Request-Id"]


async def test_some_refused_is_207_and_the_refused_go_to_the_dlq_naming_the_collector(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body = b"\n".join([orjson.dumps(event()), b"{oops", orjson.dumps(event(type="nope"))])
    status, answer, headers = await post(
        client, "/events", body, bearer(WEB, "application/x-ndjson")
    )
    assert status == 207 and (answer["accepted"], answer["rejected"]) == (1, 2)
    assert [r.get("reason") for r in answer["results"]] == [
        None,
        "invalid_json",
        "unknown_event_type",
    ]
    link: FakeLink = collector.link  # type: ignore[assignment]
    dead = link.sent("t.dlq")
    assert [d["reason"] for d in dead] == ["invalid_json", "unknown_event_type"]
    assert dead[1]["source"]["topic"] == "t.events.web"
    assert dead[0]["source"]["topic"] == "collector"
    assert dead[0]["source"]["collector"] == {
        "route": "/events",
        "key_name": "web",
        "request_id": headers["X-Request-Id"],
        "index": 1,
        "line": 2,
    }
    assert all(collector.catalog.message_error("dlq", d) is None for d in dead)


async def test_none_accepted_is_400(client: TestClient[Any, Any]) -> None:
    status, answer, _ = await post(client, "/events", b"[1, 2]", bearer(WEB))
    assert status == 400 and answer["rejected"] == 2


async def test_the_key_decides_401_and_403(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body = orjson.dumps(event())
    for headers in (
        {"Content-Type": "application/json"},
        bearer("wrong-token-0123456789"),
        {"Authorization": f"Basic {WEB}", "Content-Type": "application/json"},
    ):
        status, answer, response_headers = await post(client, "/events", body, headers)
        assert (status, answer["error"]) == (401, "unauthorized")
        assert response_headers["WWW-Authenticate"] == "Bearer"
    status, answer, _ = await post(
        client, "/events", orjson.dumps(event(channel="store")), bearer(WEB)
    )
    assert (status, answer["error"], answer["channels"]) == (403, "forbidden", ["store"])
    assert (await post(client, "/outcomes", orjson.dumps(outcome()), bearer(WEB)))[0] == 403
    assert (await post(client, "/events", body, bearer(SENDER)))[0] == 403
    link: FakeLink = collector.link  # type: ignore[assignment]
    assert link.produced == []  # nothing of a refused request is written


async def test_a_key_in_the_url_only_where_the_key_allows_it(client: TestClient[Any, Any]) -> None:
    body = orjson.dumps(event())
    plain = {"Content-Type": "text/plain;charset=UTF-8"}
    assert (await post(client, f"/events?key={BEACON}", body, plain))[0] == 200
    status, answer, _ = await post(client, f"/events?key={WEB}", body, plain)
    assert status == 401 and "may not be sent in the URL" in answer["detail"]


async def test_a_signing_key_needs_a_good_fresh_signature(client: TestClient[Any, Any]) -> None:
    body = orjson.dumps(event(channel="store", type="store_visit", properties={"store_id": "S1"}))
    timestamp = str(int(time.time()))
    signed = bearer(HOOK) | {
        "X-Journey-Timestamp": timestamp,
        "X-Journey-Signature": "sha256=" + signature_of(SECRET.encode(), timestamp, body),
    }
    status, answer, _ = await post(client, "/events", body, signed)
    assert status in (200, 400), answer  # signature accepted (the record judged on its own)
    assert "error" not in answer
    for headers in (
        bearer(HOOK),
        signed | {"X-Journey-Signature": signature_of(b"x" * 20, timestamp, body)},
        signed | {"X-Journey-Timestamp": str(int(time.time()) - 3600)},
    ):
        status, answer, _ = await post(client, "/events", body, headers)
        assert (status, answer["error"]) == (401, "bad_signature")


async def test_sizes_counts_and_media_types_have_their_errors(client: TestClient[Any, Any]) -> None:
    big = orjson.dumps([event(properties={"url": "/" + "x" * 3000})])
    status, answer, _ = await post(client, f"/events?key={BEACON}", big, {})
    assert (status, answer["error"]) == (415, "unsupported_media_type")
    status, answer, _ = await post(
        client, f"/events?key={BEACON}", big, {"Content-Type": "text/plain"}
    )
    assert (status, answer["error"]) == (413, "too_large")
    six = orjson.dumps([event(event_id=str(n)) for n in range(6)])
    assert (await post(client, "/events", six, bearer(WEB)))[0] == 413
    status, answer, _ = await post(client, "/events", b"  ", bearer(WEB))
    assert (status, answer["error"]) == (400, "empty")


async def test_a_rate_limited_key_gets_429_with_retry_after(client: TestClient[Any, Any]) -> None:
    three = orjson.dumps([event(event_id=str(n)) for n in range(3)])
    plain = {"Content-Type": "text/plain"}
    assert (await post(client, f"/events?key={BEACON}", three, plain))[0] == 200
    status, answer, headers = await post(client, f"/events?key={BEACON}", three, plain)
    assert (status, answer["error"]) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 3
    four = orjson.dumps([event(event_id=str(n)) for n in range(4)])
    assert (await post(client, f"/events?key={BEACON}", four, plain))[0] == 413  # never fits


async def test_a_broker_that_is_away_or_late_is_503_with_retry_after(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    link: FakeLink = collector.link  # type: ignore[assignment]
    link.up, link.reason = False, "cannot reach the broker"
    status, answer, headers = await post(client, "/events", orjson.dumps(event()), bearer(WEB))
    assert (status, answer["error"], headers["Retry-After"]) == (503, "unavailable", "5")
    assert (await client.get("/ready")).status == 503
    link.up, link.fail = True, "not acknowledged within 10 s"
    status, answer, headers = await post(client, "/events", orjson.dumps(event()), bearer(WEB))
    assert status == 503 and "not acknowledged" in answer["detail"] and headers["Retry-After"]
    assert (await client.get("/ready")).status == 200


async def test_a_full_collector_answers_429(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    collector.inflight.requests = collector.inflight.max_requests
    status, answer, headers = await post(client, "/events", orjson.dumps(event()), bearer(WEB))
    assert (status, answer["error"], headers["Retry-After"]) == (429, "busy", "1")


async def test_outcomes_go_to_the_outcomes_topic_keyed_by_customer(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body = orjson.dumps([outcome(), outcome(outcome_id="o2", outcome="teleported")])
    status, answer, _ = await post(client, "/outcomes", body, bearer(SENDER))
    assert status == 207 and answer["results"][1]["reason"] == "schema_violation"
    link: FakeLink = collector.link  # type: ignore[assignment]
    assert link.produced[0][:2] == ("t.outcomes", b"C1")
    assert link.sent("t.dlq")[0]["source"]["topic"] == "t.outcomes"


async def test_cors_preflight_and_answers_for_allowed_origins_only(
    client: TestClient[Any, Any],
) -> None:
    preflight = {
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    response = await client.options("/events", headers=preflight)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    allow_headers = response.headers["Access-Control-Allow-Headers"]
    allowed = {h.strip().lower() for h in allow_headers.split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    other = await client.options("/events", headers=preflight | {"Origin": "https://evil.example"})
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers
    headers = bearer(WEB) | {"Origin": "https://shop.example.com"}
    response = await client.post("/events", data=orjson.dumps(event()), headers=headers)
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


async def test_probes_metrics_and_the_openapi_document(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    from openapi_spec_validator import validate

    assert (await client.get("/live")).status == 200
    await post(client, "/events", orjson.dumps([event(), 1]), bearer(WEB))
    text = await (await client.get("/metrics")).text()
    assert 'journey_collector_accepted_total{channel="web"} 1.0' in text
    assert 'journey_collector_rejected_total{reason="not_an_object"} 1.0' in text
    assert 'journey_collector_requests_total{route="/events",status="207"} 1.0' in text
    document = await (await client.get("/openapi.json")).json()
    validate(document)
    assert {"/events", "/outcomes", "/ready", "/live", "/metrics"} <= set(document["paths"])
    missing = await client.get("/nowhere")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
