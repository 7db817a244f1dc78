"""The worker's web page (/ui/) in a real browser, against a real worker on the broker.

Debian's Chromium, driven by Playwright (no browser download), opens the pages the worker
serves. The journey map shows the funnel and the stage transitions of the customers this
module produces, and each action's performance (sent, the senders' outcomes, revenue,
treated and control conversion) for the messages this module's traffic caused and the
outcomes and purchases it reports, refreshing by itself; the customer page shows one
customer's cross-channel history as a single timeline, newest first, with filters, the
stage changes and the actions and why in plain words, one date format and amounts with
their currency; a missing or wrong token, an unknown or malformed id, get a readable
message instead of a blank page. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from playwright.async_api import Page, expect

from stream.core.decide import load_policy_file
from stream.core.decide.holdout import group_of
from stream.core.timestamps import format_ms
from tests.integration.browser import ARTIFACTS, data
from tests.integration.conftest import BROKER, Deployment, WorkerProcess, http_get
from tests.integration.events import BASE, event, order

TOKEN = "ui-test-token"
STAGES = ["awareness", "acquisition", "onboarding", "engagement", "advocacy"]

BROWSER_ONLY = "C800001"  # page views: awareness
CART = "C800002"  # a cart: acquisition
BUYER = "C800003"  # one order: onboarding
REGULAR = "C800004"  # two orders: engagement
FAN = "C800005"  # five orders, no complaint: advocacy
STAR = "C800099"  # every channel; ends in onboarding with an open complaint
EXPECTED_STAGES = {
    "awareness": 1,
    "acquisition": 1,
    "onboarding": 2,  # BUYER and STAR
    "engagement": 1,
    "advocacy": 1,
}
EXPECTED_TRANSITIONS = {
    ("awareness", "acquisition"): 2,  # CART, STAR
    ("awareness", "onboarding"): 3,  # BUYER, REGULAR, FAN: a first order skips acquisition
    ("acquisition", "onboarding"): 1,  # STAR
    ("onboarding", "engagement"): 2,  # REGULAR, FAN
    ("engagement", "advocacy"): 1,  # FAN
}

# The performance table's traffic: a first page view shows the welcome banner (a
# marketing action on web) to treated customers and holds it out for the control group.
WELCOME = "welcome_content"
TREATED = ["C800101", "C800102", "C800103"]
CONTROL = ["C800134", "C800149"]  # in the shipped policy's control group (checked below)
ANSWERS = {  # what the web sender reports for each treated customer's banner
    "C800101": ["delivered", "opened", "clicked", "converted"],
    "C800102": ["delivered", "opened"],
    "C800103": ["delivered"],
}
BUY_AFTER = ["C800101", "C800134"]  # a treated and a control customer buy after the banner
ORDER_VALUE = 89.9  # EUR
MODULE_DAY = BASE.date().isoformat()  # the workers' pinned clock is on the test events' day
ONE_DATE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
_MONTH = (
    r"(Jan(uary)?|Feb(ruary)?|Mar(ch)?|Apr(il)?|May|June?|July?|Aug(ust)?|Sep(tember)?|"
    r"Oct(ober)?|Nov(ember)?|Dec(ember)?)"
)
OTHER_DATE_FORMATS = re.compile(  # "23 Nov 2026", "Nov 23", "23/11/2026", RFC 3339
    rf"\b\d{{1,2}} {_MONTH}\b|\b{_MONTH} \d{{1,2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|"
    r"\d{4}-\d{2}-\d{2}T\d{2}"
)

expect.set_options(timeout=15_000)


def star_journey() -> list[tuple[str, list[dict[str, Any]]]]:
    """STAR's steps, channel by channel, in time order (event times increase as built)."""
    who = {"customer_id": STAR}
    return [
        (
            "web",
            [
                event("web", "page_view", who, {"url": "https://shop.example.com/shoes"}),
                event("web", "add_to_cart", who, {"product_id": "P1", "price": 30.0}),
            ],
        ),
        ("app", [event("app", "app_installed", who, {"platform": "ios"})]),
        (
            "store",
            [
                event(
                    "store",
                    "store_purchase",
                    {**who, "loyalty_id": "L800099"},
                    {"store_id": "S1", "order_id": "O-star", "value": 40.0, "category": "beauty"},
                )
            ],
        ),
        (
            "call_center",
            [
                event(
                    "call_center",
                    "complaint_opened",
                    who,
                    {"case_id": "K-star", "reason": "late delivery", "severity": "high"},
                )
            ],
        ),
        ("email", [event("email", "email_opened", who, {"campaign": "fall"})]),
        (
            "social",
            [
                event(
                    "social",
                    "direct_message",
                    {**who, "social_handle": "instagram:@Star_800099"},
                    {
                        "platform": "instagram",
                        "post_id": "m-star",
                        "thread_id": "t-star",
                        "text": "Is the parcel on its way?",
                        "language": "en",
                    },
                )
            ],
        ),
    ]


STAR_JOURNEY = star_journey()
STAR_EVENTS = [e for _, events in STAR_JOURNEY for e in events]


def api(worker: WorkerProcess, path: str) -> Any:
    """The JSON body of a 200 answer from the worker's API, or None."""
    status, body = http_get(f"{worker.url}{path}", TOKEN)
    return orjson.loads(body) if status == 200 else None


@pytest.fixture(scope="module")
async def ui_worker(deployment: Deployment) -> AsyncIterator[WorkerProcess]:
    """One worker whose API answers to this module's token."""
    deployment.env["JOURNEY_API_TOKEN"] = TOKEN
    process = deployment.worker("ui")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def loaded(deployment: Deployment, ui_worker: WorkerProcess) -> None:
    """The module's customers, applied and counted in the funnel."""
    view = {"url": "https://shop.example.com/"}
    cart = {"product_id": "P2", "price": 25.0, "category": "shoes"}
    await deployment.produce(
        "web",
        [
            event("web", "page_view", {"customer_id": BROWSER_ONLY}, view),
            event("web", "page_view", {"customer_id": BROWSER_ONLY}, view),
            event("web", "page_view", {"customer_id": CART}, view),
            event("web", "add_to_cart", {"customer_id": CART}, cart),
            order(BUYER, "O-buyer"),
            *[order(REGULAR, f"O-regular-{n}") for n in range(2)],
            *[order(FAN, f"O-fan-{n}", "beauty") for n in range(5)],
        ],
    )
    # Topics are not ordered with each other: each channel's events are applied before
    # the next channel speaks, as a real customer's steps are apart in time.
    applied = 0
    for channel, events in STAR_JOURNEY:
        await deployment.produce(channel, events)
        applied += len(events)
        await deployment.wait_for(
            lambda n=applied: (p := api(ui_worker, f"/customers/{STAR}")) and p["event_count"] == n,
            what=f"{applied} events of {STAR} applied",
        )

    def counted() -> bool:
        funnel = api(ui_worker, "/journey/funnel")
        return bool(funnel) and {s["stage"]: s["customers"] for s in funnel["stages"]} == (
            EXPECTED_STAGES
        )

    await deployment.wait_for(counted, what=f"the funnel to count {EXPECTED_STAGES}")


async def actions_on_the_topics(deployment: Deployment) -> list[dict[str, Any]]:
    """Every action message on the action topics now: read from the start to the end."""
    topics = deployment.settings.topics.all_actions
    partitions = [
        TopicPartition(topic, p) for topic in topics for p in range(deployment.settings.partitions)
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=BROKER, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + 30
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "the action topics were not read to their end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(orjson.loads(record.value) for record in batch)
        return records
    finally:
        await consumer.stop()


async def report_outcomes(
    deployment: Deployment, action: dict[str, Any], kinds: list[str], at_ms: int
) -> None:
    """The web sender's outcomes for one action, on the outcomes topic."""
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all")
    await producer.start()
    try:
        for kind in kinds:
            outcome = {
                "outcome_id": f"{action['action_id']}-{kind}",
                "action_id": action["action_id"],
                "customer_id": action["customer_id"],
                "channel": action["channel"],
                "outcome": kind,
                "occurred_at": format_ms(at_ms),
            }
            await producer.send_and_wait(
                deployment.settings.topics.outcomes,
                orjson.dumps(outcome),
                key=action["customer_id"].encode(),
            )
    finally:
        await producer.stop()


def welcome_row(worker: WorkerProcess) -> dict[str, Any] | None:
    """The welcome banner's row of today's performance table, from the API."""
    report = api(worker, "/journey/performance?days=1")
    rows = [row for row in (report or {}).get("actions", []) if row["action"] == WELCOME]
    return rows[0] if rows else None


@pytest.fixture(scope="module")
async def campaign(
    deployment: Deployment, ui_worker: WorkerProcess, loaded: None
) -> dict[str, dict[str, Any]]:
    """Welcome banners for treated and control customers, the sender's outcomes and two
    purchases after the banner; returns the treated customers' banner actions."""
    policy = load_policy_file(deployment.settings.policy_file, deployment.catalog)
    everyone = [BROWSER_ONLY, CART, BUYER, REGULAR, FAN, STAR, *TREATED, *CONTROL]
    control = [c for c in everyone if group_of(c, policy.holdout) == "control"]
    assert control == CONTROL, "the shipped policy's control group moved: pick CONTROL again"
    view = {"url": "https://shop.example.com/welcome"}
    visits = [event("web", "page_view", {"customer_id": c}, view) for c in [*TREATED, *CONTROL]]
    await deployment.produce("web", visits)
    actions = await deployment.actions(
        lambda sent: {a["customer_id"] for a in sent if a["action"] == WELCOME} >= set(TREATED)
    )
    banners = {a["customer_id"]: a for a in actions if a["action"] == WELCOME}
    now_ms = deployment.clock().now_ms()  # after every banner was decided
    for customer_id, kinds in ANSWERS.items():
        await report_outcomes(deployment, banners[customer_id], kinds, now_ms)
    purchase = {"value": ORDER_VALUE, "currency": "EUR", "category": "shoes"}
    await deployment.produce(
        "web",
        [
            event(
                "web",
                "order_completed",
                {"customer_id": c},
                {**purchase, "order_id": f"O-{c}"},
                at_ms=now_ms,
            )
            for c in BUY_AFTER
        ],
    )

    def counted() -> bool:
        row = welcome_row(ui_worker)
        return bool(row) and (
            row["delivered"],
            row["treatment"]["conversions"],
            row["control"]["conversions"],
            row["control"]["exposures"],
        ) == (3, 1, 1, len(CONTROL))

    await deployment.wait_for(counted, what="the banners' outcomes and purchases counted")
    return {c: banners[c] for c in TREATED}


async def test_journey_map_shows_every_stage_count_and_the_transitions(
    ui_worker: WorkerProcess, loaded: None, page: Page
) -> None:
    await page.goto(f"{ui_worker.url}/ui/#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")

    stages = await data(page, "#funnel [data-stage]")
    assert [s["stage"] for s in stages] == STAGES
    assert {s["stage"]: int(s["count"]) for s in stages} == EXPECTED_STAGES
    for stage, count in EXPECTED_STAGES.items():  # the number a person reads, too
        await expect(page.locator(f'#funnel [data-stage="{stage}"] .count')).to_have_text(
            str(count)
        )
    await expect(page.locator("#total")).to_have_text(str(sum(EXPECTED_STAGES.values())))

    rows = await data(page, "#transitions tr.transition")
    shown = {(r["from"], r["to"]): int(r["count"]) for r in rows}
    assert shown == EXPECTED_TRANSITIONS
    assert {
        (t["from"], t["to"]): t["count"]
        for t in api(ui_worker, "/journey/transitions")["transitions"]
    } == shown
    await expect(page.locator("#flow")).to_have_attribute("data-chart", "sankey")
    await expect(page.locator("#flow-chart")).to_be_visible()
    stayed = await data(page, "#not-moved-on tbody tr")
    assert [r["stage"] for r in stayed] == STAGES
    funnel = api(ui_worker, "/journey/funnel")["stages"]
    assert [float(r["notMovedOn"]) if r["notMovedOn"] else None for r in stayed] == [
        s["not_moved_on"] for s in funnel
    ]
    await expect(page.locator("#not-moved-on thead")).to_contain_text("Not moved on")
    assert "token" not in page.url  # the fragment left the address bar for sessionStorage
    await page.screenshot(path=ARTIFACTS / "ui-journey-map.png", full_page=True)


def shown(text: str) -> str:
    """Text as a person reads it (Intl puts a no-break space between code and amount)."""
    return text.replace("\u00a0", " ").strip()


async def test_action_performance_shows_the_traffics_numbers_and_refreshes_by_itself(
    deployment: Deployment,
    ui_worker: WorkerProcess,
    campaign: dict[str, dict[str, Any]],
    page: Page,
) -> None:
    on_the_topics = await actions_on_the_topics(deployment)
    sent = Counter(action["action"] for action in on_the_topics)
    # the shipped journeys' steps (the onboarding's invitation at a first order)
    by_journey = Counter(a["journey"]["id"] for a in on_the_topics if "journey" in a)
    assert sent[WELCOME] >= len(TREATED)  # theirs, and the module's other first visits
    await page.goto(f"{ui_worker.url}/ui/?refresh=1#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    card = page.locator("#performance-card")
    await expect(card).to_have_attribute("data-days", "7")  # the default range
    await expect(page.locator("#performance-range")).to_have_attribute("data-to", MODULE_DAY)

    rows = {r["action"]: r for r in await data(page, "#performance tr.performance-row")}
    assert {action: int(row["sent"]) for action, row in rows.items() if int(row["sent"])} == sent
    welcome = page.locator(f'#performance tr[data-action="{WELCOME}"]')
    answered = Counter(kind for kinds in ANSWERS.values() for kind in kinds)
    for measure in ("sent", "delivered", "opened", "clicked", "converted"):
        expected = sent[WELCOME] if measure == "sent" else answered[measure]
        await expect(welcome.locator(f'td[data-measure="{measure}"]')).to_have_text(str(expected))
    # One treated and one control customer bought within the window after their banner.
    revenue = shown(await welcome.locator('td[data-measure="revenue"]').inner_text())
    assert revenue == f"EUR {ORDER_VALUE:.2f}"
    treated_rate = 1 / sent[WELCOME]
    control_rate = 1 / len(CONTROL)
    row = rows[WELCOME]
    assert float(row["treatedRate"]) == pytest.approx(treated_rate, abs=1e-4)
    assert float(row["controlRate"]) == pytest.approx(control_rate, abs=1e-4)
    assert float(row["uplift"]) == pytest.approx(treated_rate - control_rate, abs=2e-4)
    control_text = f"{control_rate * 100:.1f} % (1 of {len(CONTROL)})".replace(".0 %", " %")
    await expect(welcome.locator('td[data-measure="control"]')).to_have_text(control_text)
    journeys = await data(page, "#journey-performance tr.performance-row")
    assert {row["journey"]: int(row["sent"]) for row in journeys} == by_journey
    assert by_journey, "the module's first orders started the onboarding journey"

    # Another range: the same day's numbers (every count of this module is today's).
    await page.click('#range button[data-days="1"]')
    await expect(card).to_have_attribute("data-days", "1")
    await expect(page.locator('#range button[data-days="1"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    assert "days=1" in page.url
    await expect(welcome).to_have_attribute("data-sent", str(sent[WELCOME]))

    # A click reported now reaches the open page without a reload.
    refreshes = int(await page.locator("body").get_attribute("data-refreshes") or 0)
    await report_outcomes(deployment, campaign["C800102"], ["clicked"], deployment.clock().now_ms())
    await expect(welcome).to_have_attribute("data-clicked", str(answered["clicked"] + 1))
    assert int(await page.locator("body").get_attribute("data-refreshes") or 0) > refreshes
    await page.screenshot(path=ARTIFACTS / "ui-performance.png", full_page=True)


async def test_customer_page_shows_one_timeline_across_channels_in_time_order(
    ui_worker: WorkerProcess, loaded: None, page: Page
) -> None:
    # Open the customer from the journey map's form: the token stays in the tab.
    await page.goto(f"{ui_worker.url}/ui/#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await page.fill("#lookup-id", STAR)
    await page.press("#lookup-id", "Enter")
    await page.wait_for_url(f"**/ui/customer.html?id={STAR}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#customer-id")).to_have_text(STAR)
    await expect(page.locator("#customer-badges [data-stage]")).to_have_attribute(
        "data-stage", "onboarding"
    )
    await expect(page.locator('[data-identifier="loyalty_id"] dd')).to_have_text("L800099")
    await expect(page.locator('[data-case="K-star"]')).to_contain_text("late delivery")
    handle = page.locator('[data-identifier="social_sha256"] dd')
    await expect(handle).to_have_text(re.compile(r"^[0-9a-f]{8}…$"))  # hashed, shortened
    social = page.locator('[data-card="social"]')
    await expect(social.locator('[data-fact="posts"] dd')).to_have_text("Direct message 1")
    await expect(social.locator('.chip[data-sentiment="neutral"]')).to_have_text("Neutral 1")
    await expect(social.locator('[data-fact="latest"]')).to_contain_text(
        "Direct message on instagram: neutral (computed from the text)"
    )

    items = await data(page, "#timeline > li[data-kind]")
    events = [(i["type"], i["channel"]) for i in items if i["kind"] == "event"]
    assert events == [(e["type"], e["channel"]) for e in reversed(STAR_EVENTS)]  # newest first
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times, reverse=True)

    kinds = [i["kind"] for i in items]
    changes = [(i["from"], i["to"]) for i in items if i["kind"] == "stage"]
    assert changes == [("acquisition", "onboarding"), ("awareness", "acquisition")]
    types = [i.get("type") for i in items]
    # Each stage change reads just above the event that caused it.
    assert kinds[types.index("add_to_cart") - 1] == "stage"
    assert kinds[types.index("store_purchase") - 1] == "stage"

    actions = [i for i in items if i["kind"] == "action"]
    assert actions, "the complaint at least was answered"
    reasons = await data(page, "#timeline > li[data-kind=action] .tl-reason")
    assert all(r["text"].removeprefix("Why:").strip() not in ("", "\u2013") for r in reasons)
    recovery = page.locator('#timeline > li[data-kind=action][data-type="service_recovery"]')
    await expect(recovery).to_have_count(1)
    await expect(recovery.locator(".tl-reason")).to_contain_text("Complaint opened on Call center")

    complaint = page.locator('#decisions [data-trigger-type="complaint_opened"]')
    recovery_row = complaint.locator('tr[data-action="service_recovery"]')
    await expect(recovery_row).to_have_attribute("data-outcome", "chosen")
    # Reasons in plain words, the code beside them.
    await expect(recovery_row.locator(".reason")).to_have_text(
        "Chosen: the best action for this customer now (chosen)"
    )
    await expect(recovery.locator(".tl-decision")).to_contain_text("Chosen: the best action")
    suppressed = await data(page, "#decisions tr[data-outcome=suppressed] .reason")
    assert suppressed, "the complaint's other candidates were suppressed, each with its reason"
    for reason in suppressed:
        code = reason["reasonCode"]
        assert reason["text"].endswith(f"({code})") and len(reason["text"]) > len(code) + 3

    # One date format everywhere on the page.
    stamps = await data(page, "time")
    assert len(stamps) > len(items)  # the timeline's, the decisions', the header's, ...
    assert all(ONE_DATE_FORMAT.match(stamp["text"]) for stamp in stamps), stamps
    assert not OTHER_DATE_FORMATS.search(await page.locator("#content").inner_text())
    # Amounts with their currency: the store purchase named none, so EUR.
    revenue = shown(await page.locator('[data-fact="revenue"] dd').inner_text())
    assert revenue == "EUR 40.00"
    await page.screenshot(path=ARTIFACTS / "ui-customer.png", full_page=True)


async def test_the_customer_timeline_filters_by_kind_and_by_channel(
    ui_worker: WorkerProcess, loaded: None, page: Page
) -> None:
    await page.goto(f"{ui_worker.url}/ui/customer.html?id={STAR}#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    entries = page.locator("#timeline > li[data-kind]")
    total = await entries.count()
    visible = page.locator("#timeline > li[data-kind]:visible")
    await expect(visible).to_have_count(total)
    await expect(page.locator("#timeline-count")).to_have_attribute("data-shown", str(total))

    await page.uncheck("#timeline-filters input[name=kind][value=event]")
    events = await page.locator("#timeline > li[data-kind=event]").count()
    assert events == len(STAR_EVENTS)
    await expect(visible).to_have_count(total - events)
    await expect(page.locator("#timeline > li[data-kind=event]:visible")).to_have_count(0)

    await page.check("#timeline-filters input[name=kind][value=event]")
    await page.uncheck("#timeline-filters input[name=channel][value=call_center]")
    calls = page.locator("#timeline > li[data-channel=call_center]")
    assert await calls.count() >= 2  # the complaint and the callback it caused
    await expect(page.locator("#timeline > li[data-channel=call_center]:visible")).to_have_count(0)
    await expect(visible).to_have_count(total - await calls.count())
    await expect(page.locator("#timeline-count")).to_have_attribute(
        "data-shown", str(total - await calls.count())
    )

    # The social channel: the direct message and the community team's private reply task.
    await page.check("#timeline-filters input[name=channel][value=call_center]")
    await page.uncheck("#timeline-filters input[name=channel][value=social]")
    posts = page.locator("#timeline > li[data-channel=social]")
    assert await posts.count() >= 2
    await expect(page.locator("#timeline > li[data-channel=social]:visible")).to_have_count(0)
    task = page.locator('#timeline > li[data-kind=action][data-type="social_reply_private"]')
    await expect(task).to_have_count(1)


async def test_without_a_valid_token_the_page_asks_for_one(
    ui_worker: WorkerProcess, loaded: None, page: Page
) -> None:
    message = page.locator("#message")
    await page.goto(f"{ui_worker.url}/ui/")
    await expect(message).to_have_attribute("data-kind", "auth")
    await expect(message).to_contain_text("Authentication required")
    await expect(page.locator("#auth-token")).to_be_visible()

    await page.goto(f"{ui_worker.url}/ui/customer.html?id={STAR}#token=wrong-token")
    await expect(message).to_have_attribute("data-kind", "auth")
    await expect(message).to_contain_text("Authentication failed")
    await expect(message).to_contain_text("401")
    await expect(page.locator("#content")).to_be_hidden()

    await page.fill("#auth-token", TOKEN)  # the right token, typed in: the page loads
    await page.press("#auth-token", "Enter")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#customer-id")).to_have_text(STAR)


async def test_unknown_and_malformed_ids_get_a_readable_message(
    ui_worker: WorkerProcess, loaded: None, page: Page
) -> None:
    message = page.locator("#message")
    await page.goto(f"{ui_worker.url}/ui/customer.html?id=C899999#token={TOKEN}")
    await expect(message).to_have_attribute("data-kind", "not_found")
    await expect(message).to_contain_text("Customer not found")
    await page.goto(f"{ui_worker.url}/ui/customer.html?id=not%20an%20id!")
    await expect(message).to_have_attribute("data-kind", "bad_request")
    await expect(message).to_contain_text("not a customer id")
