"""Durable timers on the real broker: fire once, cancel, survive kill -9 and rebalances.

The workers run a sped-up clock (1 real second = 2 clock minutes), shared with this module
through JOURNEY_CLOCK_ANCHOR_MS, so minutes-long waits pass in seconds. Absence is proven
without sleeping: timers fire in deadline order, so once a later "sentinel" timer has
fired, every earlier deadline has been handled.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from stream.config import Clock, clock_from
from tests.integration.conftest import Deployment, WorkerProcess
from tests.integration.events import event

SPEED = 120.0
PARIS = ZoneInfo("Europe/Paris")

POLICY = """
format: 1
name: timers-it
contact_policy:
  default_timezone: Europe/Paris
  quiet_hours: {start: "%(quiet_start)s", end: "%(quiet_end)s", channels: [email]}
timers:
  - name: cart_abandonment
    delay: 2m
    start: [{event: add_to_cart}]
    cancel: [{event: order_completed}]
  - name: long_wait
    delay: 40m
    start: [{event: login}]
actions:
  - id: cart_reminder
    category: marketing
    channels: [sms]
    triggers: [{timer: cart_abandonment}]
    eligibility: customer.cart.items > 0
  - id: long_follow_up
    category: marketing
    channels: [sms]
    triggers: [{timer: long_wait}]
  - id: night_promo
    category: marketing
    channels: [email]
    triggers: [{event: search}]
"""


@pytest.fixture(scope="module")
def clock() -> Clock:
    """Runs at wall-clock time, sped up (quiet hours are placed around it)."""
    return clock_from(SPEED, None)


@pytest.fixture(scope="module")
def timer_deployment(deployment: Deployment, clock: Clock) -> Deployment:
    """The module's deployment with a sped-up clock and a policy with short timers.

    Quiet hours on email start an hour (clock time) ago and end 25 clock minutes from now,
    about 12 real seconds: a message decided in that window is held, then released.
    """
    now = datetime.fromtimestamp(clock.now_ms() / 1000, tz=PARIS)
    policy = deployment.tmp / "timers.yaml"
    policy.write_text(
        POLICY
        % {
            "quiet_start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "quiet_end": (now + timedelta(minutes=25)).strftime("%H:%M"),
        }
    )
    deployment.env.update(
        {
            "JOURNEY_CLOCK_SPEED": str(SPEED),
            "JOURNEY_CLOCK_ANCHOR_MS": str(clock.anchor_ms),
            "JOURNEY_CLOCK_START_MS": "",
            "JOURNEY_POLICY_FILE": str(policy),
            "JOURNEY_TIMER_TICK_S": "0.05",
        }
    )
    return deployment


@pytest.fixture(scope="module")
async def w1(timer_deployment: Deployment):
    process = timer_deployment.worker("w1")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


def cart(cid: str, clock: Clock) -> dict[str, Any]:
    return event(
        "web",
        "add_to_cart",
        {"customer_id": cid},
        {"product_id": "P1", "price": 20.0},
        at_ms=clock.now_ms(),
    )


def login(cid: str, clock: Clock) -> dict[str, Any]:
    return event("web", "login", {"customer_id": cid}, at_ms=clock.now_ms())


def checkout(cid: str, clock: Clock) -> dict[str, Any]:
    return event(
        "web",
        "order_completed",
        {"customer_id": cid},
        {"order_id": f"O-{cid}", "value": 20.0, "currency": "EUR"},
        at_ms=clock.now_ms(),
    )


def count(actions: list[dict[str, Any]], name: str) -> Counter[str]:
    return Counter(a["customer_id"] for a in actions if a["action"] == name)


def index_size(worker: WorkerProcess) -> float:
    for line in worker.metrics().splitlines():
        if line.startswith("journey_timer_index_customers "):
            return float(line.split()[1])
    return 0.0


async def pending(worker: WorkerProcess, deployment: Deployment, cid: str, timer: str) -> None:
    await deployment.wait_for(
        lambda: timer in ((worker.customer(cid) or {}).get("timers") or {}),
        what=f"{timer} pending for {cid}",
    )


async def test_abandonment_fires_once_and_a_checkout_cancels_it(
    timer_deployment: Deployment, w1: WorkerProcess, clock: Clock
) -> None:
    d = timer_deployment
    await d.produce("web", [cart("C300001", clock), cart("C300002", clock)])
    await d.produce("web", [checkout("C300002", clock)])
    await pending(w1, d, "C300001", "cart_abandonment")
    assert "cart_abandonment" not in (w1.customer("C300002") or {}).get("timers", {})
    await d.produce("web", [cart("C300003", clock)])  # the sentinel: its deadline is later
    actions = await d.actions(lambda a: count(a, "cart_reminder")["C300003"] >= 1)
    reminders = count(actions, "cart_reminder")
    assert reminders == Counter({"C300001": 1, "C300003": 1})
    [reminder] = [a for a in actions if a["customer_id"] == "C300001"]
    assert reminder["trigger"]["channel"] == "timer"
    assert reminder["trigger"]["type"] == "cart_abandonment"
    assert d.catalog.message_error("action", reminder) is None
    assert 'journey_timers_fired_total{timer="cart_abandonment"} 2.0' in w1.metrics()
    # The state that records the firing is written once its action is acknowledged.
    await d.wait_for(
        lambda: not ((w1.customer("C300001") or {}).get("timers") or {}).get("cart_abandonment"),
        timeout_s=30,
        what="the fired timer gone from the state",
    )


async def test_a_message_held_by_quiet_hours_is_released_when_they_end(
    timer_deployment: Deployment, w1: WorkerProcess, clock: Clock
) -> None:
    d = timer_deployment
    search = event(
        "web", "search", {"customer_id": "C300010"}, {"query": "boots"}, at_ms=clock.now_ms()
    )
    await d.produce("web", [search])
    decisions = await d.collect(
        [d.settings.topics.decisions],
        lambda rs: any(b'"C300010"' in r.value and b"night_promo" in r.value for r in rs),
    )
    [decision] = [orjson.loads(r.value) for r in decisions if b'"C300010"' in r.value]
    assert decision["candidates"][0]["outcome"] == "chosen"
    # The decision is acknowledged before the state that holds the promotion is written
    # (outputs before state): the state follows within the commit.
    await d.wait_for(
        lambda: (w1.customer("C300010") or {}).get("held"),
        timeout_s=30,
        what="the promotion waiting in the state",
    )
    records = await d.collect(
        [d.settings.topics.actions("email")],
        lambda rs: any(b'"C300010"' in r.value for r in rs),
        timeout_s=90,
    )
    [record] = [r for r in records if b'"C300010"' in r.value]
    action = orjson.loads(record.value)
    send_after = datetime.fromisoformat(action["send_after"]).timestamp() * 1000
    released_at = clock.to_clock_ms(record.timestamp)
    assert released_at >= send_after, "released no earlier than send_after on the clock"
    await d.wait_for(
        lambda: (w1.customer("C300010") or {"held": True})["held"] == [],
        timeout_s=30,
        what="the released promotion gone from the state",
    )
    assert 'journey_held_releases_total{channel="email",reason="chosen"} 1.0' in w1.metrics()


async def test_a_pending_timer_survives_kill_9_and_fires_exactly_once(
    timer_deployment: Deployment, w1: WorkerProcess, clock: Clock
) -> None:
    d = timer_deployment
    await d.produce("web", [login("C300020", clock)])
    await pending(w1, d, "C300020", "long_wait")
    w1.stop(signal.SIGKILL)
    await asyncio.to_thread(w1.start)
    await d.produce("web", [login("C300021", clock)])  # sentinel, armed after the restart
    actions = await d.actions(lambda a: count(a, "long_follow_up")["C300021"] >= 1, timeout_s=120)
    assert count(actions, "long_follow_up") == Counter({"C300020": 1, "C300021": 1})


async def test_timers_fire_exactly_once_across_a_rebalance(
    timer_deployment: Deployment, w1: WorkerProcess, clock: Clock
) -> None:
    d = timer_deployment
    customers = [f"C3001{i:02d}" for i in range(8)]  # spread over both partitions
    await d.produce("web", [login(cid, clock) for cid in customers])
    for cid in customers:
        await pending(w1, d, cid, "long_wait")
    w2 = d.worker("w2")
    try:
        await asyncio.to_thread(w2.start)  # takes a partition and its pending timers
        await d.wait_for(lambda: index_size(w2) > 0, what="w2 indexed the timers it took over")
    finally:
        await asyncio.to_thread(w2.stop)  # and gives it back
    await d.produce("web", [login("C300199", clock)])  # sentinel
    actions = await d.actions(lambda a: count(a, "long_follow_up")["C300199"] >= 1, timeout_s=150)
    fired = count(actions, "long_follow_up")
    assert {cid: fired[cid] for cid in customers} == dict.fromkeys(customers, 1)
