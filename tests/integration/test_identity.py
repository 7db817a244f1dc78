"""Identity resolution on the real broker: anonymous -> known, online <-> offline, erasure.

The workers' clock runs 120 times faster from 11:00 in Paris, shared with this module, so
the 30-minute cart abandonment of the default policy passes in 15 seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.config import Clock
from stream.core.identity import hash_identifier, normalise_email
from tests.integration.conftest import API_TOKEN, Deployment, WorkerProcess, http_get
from tests.integration.events import BASE, event

SPEED = 120.0


SHARED_EMAIL = "front-desk@example.com"  # marked shared in the module's policy


@pytest.fixture(scope="module")
def clock(deployment: Deployment) -> Clock:
    start_ms = int(BASE.timestamp() * 1000) + 3_600_000  # 11:00 in Paris
    anchor_ms = int(deployment.env["JOURNEY_CLOCK_ANCHOR_MS"])
    deployment.env["JOURNEY_CLOCK_SPEED"] = str(SPEED)
    deployment.env["JOURNEY_CLOCK_START_MS"] = str(start_ms)
    # The shipped policy plus identity guards: three identifiers a profile, one shared email.
    shared = "email:" + hash_identifier(normalise_email(SHARED_EMAIL), "")
    policy = deployment.tmp / "identity-policy.yaml"
    policy.write_text(
        Path(deployment.env["JOURNEY_POLICY_FILE"]).read_text()  # shipped rules, learning off
        + f"\nidentity:\n  max_identifiers: 3\n  non_merging_identifiers: ['{shared}']\n"
    )
    deployment.env["JOURNEY_POLICY_FILE"] = str(policy)
    return Clock(SPEED, anchor_ms, start_ms)


@pytest.fixture(scope="module")
async def w(deployment: Deployment, clock: Clock):
    process = deployment.worker("identity")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


def at(clock: Clock, channel: str, type_: str, who: dict[str, str], **props: Any) -> dict[str, Any]:
    return event(channel, type_, who, props, at_ms=clock.now_ms())


def alias(worker: WorkerProcess, token: str) -> str | None:
    status, body = http_get(f"{worker.url}/debug/aliases/{token}", API_TOKEN)
    return orjson.loads(body)["customer_key"] if status == 200 else None


def customer_actions(actions: list[dict[str, Any]], cid: str, name: str) -> list[dict[str, Any]]:
    return [a for a in actions if a["customer_id"] == cid and a["action"] == name]


async def test_anonymous_cart_then_login_the_reminder_goes_to_the_known_customer(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    anon, cid = {"anonymous_id": "it-cookie-1"}, "C400001"
    await d.produce(
        "web",
        [
            at(clock, "web", "page_view", anon, url="/boots"),
            at(clock, "web", "add_to_cart", anon, product_id="P1", price=80.0, category="shoes"),
        ],
        key_field="anonymous_id",
    )
    await d.wait_for(lambda: w.customer("anon:it-cookie-1"), what="the anonymous profile")
    await d.produce("web", [at(clock, "web", "login", {"customer_id": cid, **anon}, method="pw")])
    known = await d.wait_for(
        lambda: (s := w.customer(cid)) and s.get("cart", {}).get("items") and s,
        what="the cart merged into the known profile",
    )
    assert "cart_abandonment" in known["journeys"] and known["event_count"] == 3
    assert w.customer("anon:it-cookie-1") == {"merged_into": cid}
    assert alias(w, "anon:it-cookie-1") == cid
    # Later events of the cookie land on the known profile.
    await d.produce("web", [at(clock, "web", "page_view", anon, url="/after")], "anonymous_id")
    await d.wait_for(lambda: (w.customer(cid) or {}).get("event_count") == 4, what="redirected")
    actions = await d.actions(lambda a: customer_actions(a, cid, "cart_reminder"), timeout_s=90)
    [reminder] = customer_actions(actions, cid, "cart_reminder")
    assert reminder["channel"] == "email" and reminder["trigger"]["channel"] == "journey"
    assert reminder["journey"]["id"] == "cart_abandonment"  # the run the cookie started
    assert "journey_identity_merges_total 1.0" in w.metrics()


async def test_events_of_both_identifiers_in_flight_during_the_merge_count_once(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    anon, cid = {"anonymous_id": "it-cookie-2"}, "C400006"
    before = [at(clock, "web", "page_view", anon, url=f"/p{i}") for i in range(5)]
    login = at(clock, "web", "login", {"customer_id": cid, **anon}, method="pw")
    known = [at(clock, "web", "page_view", {"customer_id": cid}, url=f"/k{i}") for i in range(3)]
    after = [at(clock, "web", "page_view", anon, url=f"/q{i}") for i in range(5)]
    # No waiting in between: the cookie's events race the login through both stages.
    await asyncio.gather(
        d.produce("web", before + after, key_field="anonymous_id"),
        d.produce("web", [login, *known]),
    )
    state = await d.wait_for(
        lambda: (s := w.customer(cid)) and s["event_count"] == 14 and s,
        what="all 14 events on the known profile",
    )
    assert w.customer("anon:it-cookie-2") in (None, {"merged_into": cid})
    ids = {e["event_id"] for e in [*before, login, *known, *after]}
    assert ids <= set(state["seen_event_ids"])
    assert len(state["recent_events"]) == 14


async def test_a_store_purchase_by_loyalty_card_joins_the_online_profile_and_ends_the_cart_journey(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    cid, card = "C400002", "L400002"
    await d.produce("web", [at(clock, "web", "login", {"customer_id": cid, "loyalty_id": card})])
    await d.wait_for(lambda: alias(w, f"loyalty:{card}") == cid, what="loyalty card linked")
    await d.produce(
        "web", [at(clock, "web", "add_to_cart", {"customer_id": cid}, product_id="P2", price=30.0)]
    )
    await d.wait_for(lambda: "cart_abandonment" in (w.customer(cid) or {}).get("journeys", {}))
    purchase = at(
        clock,
        "store",
        "store_purchase",
        {"loyalty_id": card},
        store_id="S1",
        order_id="O-st",
        value=30.0,
    )
    await d.produce("store", [purchase], key_field="loyalty_id")
    state = await d.wait_for(
        lambda: (s := w.customer(cid)) and s["orders"]["count"] == 1 and s, what="offline order"
    )
    assert "cart_abandonment" not in state["journeys"]  # bought in the store: it ended
    assert w.customer(f"loyalty:{card}") is None  # no separate offline profile
    # A sentinel cart armed after it fires: C400002's deadline has passed, unfired.
    sentinel = "C400009"
    await d.produce(
        "web",
        [at(clock, "web", "add_to_cart", {"customer_id": sentinel}, product_id="P9", price=5.0)],
    )
    actions = await d.actions(lambda a: customer_actions(a, sentinel, "cart_reminder"), 90)
    assert customer_actions(actions, cid, "cart_reminder") == []


async def test_a_complaint_from_a_known_phone_reaches_the_profile_and_pauses_marketing(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    cid = "C400003"
    first = at(
        clock, "call_center", "call_completed", {"customer_id": cid, "phone": "+33 6 12 34 56 78"}
    )
    first["properties"] = {"reason": "question", "sentiment": "neutral"}
    await d.produce("call_center", [first])
    phone_token = await d.wait_for(
        lambda: next(
            (t for t in (w.customer(cid) or {}).get("linked", []) if t.startswith("phone:")), None
        ),
        what="phone seen on the profile",
    )
    await d.wait_for(lambda: alias(w, phone_token) == cid, what="phone linked")
    complaint = at(clock, "call_center", "complaint_opened", {"phone": "+33612345678"})
    complaint["properties"] = {"case_id": "K400003", "reason": "late delivery"}
    await d.produce("call_center", [complaint], key_field="phone")
    await d.wait_for(
        lambda: "K400003" in (w.customer(cid) or {}).get("open_cases", {}), what="case on profile"
    )
    order = at(
        clock,
        "web",
        "order_completed",
        {"customer_id": cid},
        order_id="O3",
        value=40.0,
        category="beauty",
    )
    await d.produce("web", [order])
    records = await d.collect(
        [d.settings.topics.decisions],
        lambda rs: any(b"O3" in r.value or order["event_id"].encode() in r.value for r in rs),
    )
    [decision] = [orjson.loads(r.value) for r in records if order["event_id"].encode() in r.value]
    assert decision["chosen"] == []
    assert {c["reason"] for c in decision["candidates"]} == {"open_service_case"}


async def test_a_second_known_customer_with_the_same_email_is_a_conflict(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    shared = {"email": "family@example.com"}
    await d.produce(
        "email",
        [at(clock, "email", "email_opened", {"customer_id": "C400004", **shared}, campaign="x")],
    )
    await d.wait_for(lambda: (s := w.customer("C400004")) and s["linked"], what="email linked")
    await d.produce(
        "email",
        [at(clock, "email", "email_opened", {"customer_id": "C400005", **shared}, campaign="x")],
    )
    state = await d.wait_for(
        lambda: (s := w.customer("C400005")) and s["identity_conflicts"] and s,
        what="conflict recorded",
    )
    assert state["identity_conflicts"][0]["belongs_to"] == "C400004"
    assert 'journey_identity_links_total{outcome="conflict"} 1.0' in w.metrics()
    assert w.customer("C400004")["event_count"] == 1  # nothing merged


async def test_a_profile_keeps_its_three_latest_identifiers_and_shared_ones_never_link(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    cid = "C400007"
    for n in range(1, 5):  # four devices over time
        login = at(clock, "web", "login", {"customer_id": cid, "anonymous_id": f"it-dev-{n}"})
        await d.produce("web", [login])
        await d.wait_for(lambda n=n: alias(w, f"anon:it-dev-{n}") == cid, what=f"device {n}")
    state = w.customer(cid)
    assert state["linked"] == ["anon:it-dev-2", "anon:it-dev-3", "anon:it-dev-4"]
    await d.wait_for(lambda: alias(w, "anon:it-dev-1") is None, what="the oldest evicted")
    # A shared address links nobody: two customers using it stay apart, no conflict.
    for other in ("C400011", "C400012"):
        opened = at(clock, "email", "email_opened", {"customer_id": other, "email": SHARED_EMAIL})
        opened["properties"] = {"campaign": "x"}
        await d.produce("email", [opened])
    await d.wait_for(
        lambda: 'journey_identity_links_total{outcome="non_merging"} 2.0' in w.metrics(),
        what="both links refused as shared",
    )
    assert not w.customer("C400012")["identity_conflicts"]


async def test_erasure_leaves_nothing_readable(
    deployment: Deployment, w: WorkerProcess, clock: Clock
) -> None:
    d = deployment
    cid = "C400001"  # merged with an anonymous cookie in the first test
    assert w.customer(cid) is not None
    assert f"erased {cid}" in await d.forget(cid)
    await d.wait_for(
        lambda: w.customer("anon:it-cookie-1") is None and alias(w, "anon:it-cookie-1") is None,
        what="the merged cookie's stub and alias deleted",
    )
    assert w.customer(cid) is None
    # The cookie is a stranger now: a new visit starts a new, empty anonymous profile.
    await d.produce(
        "web",
        [at(clock, "web", "page_view", {"anonymous_id": "it-cookie-1"}, url="/")],
        "anonymous_id",
    )
    fresh = await d.wait_for(lambda: w.customer("anon:it-cookie-1"), what="a fresh profile")
    assert fresh["event_count"] == 1 and fresh["cart"]["items"] == {}
    assert "journey_erasures_total 1.0" in w.metrics()
