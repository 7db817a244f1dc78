"""``POST /webhooks/{provider}`` with a stand-in for the broker: the providers' documented
samples, signed as each provider signs, become outcomes; everything else is refused,
dead-lettered or ignored as the route says."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.config import load_settings
from stream.shell.collector.keys import KeysError, parse_keys
from stream.shell.collector.server import Collector, build_app, new_collector
from tests.unit.core.webhooks.helpers import ACTION_ID, CUSTOMER_ID, OURS, copied, sample
from tests.unit.core.webhooks.test_mailgun import SIGNING_KEY, signed
from tests.unit.core.webhooks.test_sendgrid import REFERENCE, Signer
from tests.unit.shell.collector.test_server import FakeLink

SENDGRID_TOKEN = "wh-sendgrid-0123456789"
MAILGUN_TOKEN = "wh-mailgun-0123456789"
POSTMARK_TOKEN = "wh-postmark-0123456789"
SENDER_TOKEN = "sender-token-0123456789"
POSTMARK_LOGIN = "journey:s3cret-pass"
SIGNER = Signer()


def webhook_key(name: str, token: str, secret: str) -> dict[str, Any]:
    return {
        "name": name,
        "token": token,
        "channels": ["outcomes"],
        "rate": 1000,
        "webhook": name,
        "webhook_secret": secret,
    }


KEYS = {
    "keys": [
        webhook_key("sendgrid", SENDGRID_TOKEN, SIGNER.public_key),
        webhook_key("mailgun", MAILGUN_TOKEN, SIGNING_KEY),
        webhook_key("postmark", POSTMARK_TOKEN, POSTMARK_LOGIN),
        {"name": "sender", "token": SENDER_TOKEN, "channels": ["outcomes"], "rate": 1000},
    ]
}


@pytest.fixture
async def collector() -> Collector:
    settings = load_settings({"JOURNEY_TOPIC_PREFIX": "t.", "JOURNEY_HASH_SALT": "pepper"})
    c = new_collector(settings, parse_keys(KEYS, "keys", ("web",), 10**6))
    c.link = FakeLink()  # type: ignore[assignment]
    return c


@pytest.fixture
async def client(collector: Collector) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(collector))) as test_client:
        yield test_client


async def post(
    client: TestClient[Any, Any], path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    response = await client.post(path, data=body, headers=headers)
    return response.status, orjson.loads(await response.read())


def sendgrid_call(events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(events)
    return body, SIGNER.headers(body, str(int(time.time())))


def produced(collector: Collector, topic: str) -> list[Any]:
    link: FakeLink = collector.link  # type: ignore[assignment]
    return link.sent(topic)


async def test_a_signed_sendgrid_call_becomes_outcomes_and_the_rest_is_listed_as_ignored(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body, headers = sendgrid_call([{**event, **OURS} for event in copied(sample(REFERENCE))])
    status, answer = await post(client, f"/webhooks/sendgrid?key={SENDGRID_TOKEN}", body, headers)
    assert status == 200, answer
    outcomes = produced(collector, "t.outcomes")
    assert answer["accepted"] == len(outcomes) > 0 and answer["rejected"] == 0
    assert {o["outcome"] for o in outcomes} >= {"delivered", "opened", "clicked", "bounced"}
    assert {(o["action_id"], o["customer_id"], o["channel"]) for o in outcomes} == {
        (ACTION_ID, CUSTOMER_ID, "email")
    }
    assert {i["reason"] for i in answer["ignored"]} == {"no_outcome"}  # processed, deferred...
    assert len(outcomes) + len(answer["ignored"]) == len(sample(REFERENCE))
    link: FakeLink = collector.link  # type: ignore[assignment]
    assert {key for topic, key, _ in link.produced} == {CUSTOMER_ID.encode()}


async def test_other_peoples_messages_are_ignored_not_dead_lettered(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body, headers = sendgrid_call(sample(REFERENCE))
    status, answer = await post(client, f"/webhooks/sendgrid?key={SENDGRID_TOKEN}", body, headers)
    assert status == 200 and answer["accepted"] == answer["rejected"] == 0
    assert {i["reason"] for i in answer["ignored"]} == {"not_ours"}
    assert produced(collector, "t.outcomes") == produced(collector, "t.dlq") == []
    metrics = collector.metrics.webhook_ignored.labels("sendgrid", "not_ours")._value.get()
    assert metrics == len(sample(REFERENCE))


async def test_a_tampered_sendgrid_body_is_401_and_nothing_is_produced(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body, headers = sendgrid_call([{**sample(REFERENCE)[2], **OURS}])
    tampered = body.replace(b"delivered", b"open")
    status, answer = await post(
        client, f"/webhooks/sendgrid?key={SENDGRID_TOKEN}", tampered, headers
    )
    assert status == 401 and answer["error"] == "bad_signature"
    assert answer["detail"].startswith("sendgrid: ")
    link: FakeLink = collector.link  # type: ignore[assignment]
    assert link.produced == []


async def test_a_signed_mailgun_call_becomes_one_outcome(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    payload = copied(sample("mailgun/clicked.json"))
    payload["event-data"]["user-variables"] = dict(OURS)
    body = signed(payload, int(time.time()))
    status, answer = await post(client, f"/webhooks/mailgun?key={MAILGUN_TOKEN}", body)
    assert status == 200 and answer["accepted"] == 1, answer
    [outcome] = produced(collector, "t.outcomes")
    assert (outcome["outcome"], outcome["action_id"]) == ("clicked", ACTION_ID)


async def test_postmark_needs_its_basic_credentials(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    payload = copied(sample("postmark/open.json"))
    payload["Metadata"] = dict(OURS)
    path = f"/webhooks/postmark?key={POSTMARK_TOKEN}"
    login = base64.b64encode(POSTMARK_LOGIN.encode()).decode()
    wrong = base64.b64encode(b"journey:guess").decode()
    status, _ = await post(client, path, orjson.dumps(payload), {"Authorization": f"Basic {wrong}"})
    assert status == 401
    status, answer = await post(
        client, path, orjson.dumps(payload), {"Authorization": f"Basic {login}"}
    )
    assert status == 200 and answer["accepted"] == 1, answer
    assert [o["outcome"] for o in produced(collector, "t.outcomes")] == ["opened"]


async def test_a_malformed_item_of_ours_goes_to_the_dlq_and_its_neighbours_through(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    events = [{**event, **OURS} for event in copied(sample(REFERENCE))[2:4]]
    del events[0]["timestamp"]
    body, headers = sendgrid_call(events)
    status, answer = await post(client, f"/webhooks/sendgrid?key={SENDGRID_TOKEN}", body, headers)
    assert status == 200 and (answer["accepted"], answer["rejected"]) == (1, 1), answer
    assert (
        answer["results"][0]["status"] == "rejected"
        and "timestamp" in (answer["results"][0]["detail"])
    )
    [dead] = produced(collector, "t.dlq")
    assert dead["source"]["topic"] == "t.outcomes"
    assert dead["source"]["collector"]["index"] == 0
    assert dead["source"]["collector"]["route"] == "/webhooks/sendgrid"


async def test_an_unreadable_body_is_400_and_dead_lettered_whole(
    client: TestClient[Any, Any], collector: Collector
) -> None:
    body = b'{"not": "sendgrid"}'
    headers = SIGNER.headers(body, str(int(time.time())))
    status, answer = await post(client, f"/webhooks/sendgrid?key={SENDGRID_TOKEN}", body, headers)
    assert status == 400 and answer["rejected"] == 1
    [dead] = produced(collector, "t.dlq")
    assert base64.b64decode(dead["original_b64"]) == body


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/webhooks/sendgrid", 401, "unauthorized"),
        ("/webhooks/sendgrid?key=nobody-0123456789", 401, "unauthorized"),
        (f"/webhooks/sendgrid?key={MAILGUN_TOKEN}", 403, "forbidden"),
        (f"/webhooks/sendgrid?key={SENDER_TOKEN}", 403, "forbidden"),
        (f"/webhooks/sparkpost?key={SENDGRID_TOKEN}", 404, "unknown_provider"),
    ],
)
async def test_only_the_providers_own_key_opens_its_route(
    client: TestClient[Any, Any], path: str, status: int, error: str
) -> None:
    body, headers = sendgrid_call([{**sample(REFERENCE)[2], **OURS}])
    answer_status, answer = await post(client, path, body, headers)
    assert (answer_status, answer["error"]) == (status, error)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook": "sparkpost"}, "`webhook` must be one of sendgrid, mailgun, postmark"),
        ({"webhook_secret": "no-colon"}, "`webhook_secret` for postmark: expected user:password"),
        ({"channels": ["outcomes", "web"]}, "writes outcomes only"),
        ({"hmac_secret": "x" * 20}, "verified by its provider's signature"),
    ],
)
def test_a_webhook_key_is_checked_when_the_file_is_read(
    change: dict[str, Any], message: str
) -> None:
    entry = {**webhook_key("postmark", POSTMARK_TOKEN, POSTMARK_LOGIN), **change}
    with pytest.raises(KeysError, match=message):
        parse_keys({"keys": [entry]}, "keys", ("web",), 10**6)


def test_a_webhook_key_always_comes_in_the_url() -> None:
    ring = parse_keys({"keys": KEYS["keys"][:1]}, "keys", ("web",), 10**6)
    assert ring.keys[0].query_token and ring.keys[0].webhook == "sendgrid"
