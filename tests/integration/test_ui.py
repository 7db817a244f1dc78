"""The worker's web page (/ui/) in a real browser, against a real worker on the broker.

Debian's Chromium, driven by Playwright (no browser download), opens the pages the worker
serves. The journey map shows the funnel and the stage transitions of the customers this
module produces; the customer page shows one customer's cross-channel history as a single
timeline with the stage changes and the actions and why; a missing or wrong token, an
unknown or malformed id, get a readable message instead of a blank page. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.integration.conftest import ROOT, Deployment, WorkerProcess, http_get
from tests.integration.events import event, order

TOKEN = "ui-test-token"
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = ROOT / "stream" / "web" / "static" / "vendor"
ARTIFACTS = ROOT / "test-artifacts"
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


@pytest.fixture(scope="module")
def installed() -> None:
    """Debian's Chromium and the vendored chart library are there (fail loudly if not)."""
    if not CHROMIUM.exists():
        pytest.fail(f"no {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    if not (VENDOR / "chart.umd.js").exists():
        pytest.fail(f"no chart library in {VENDOR}: run deploy/local/ui_vendor.sh")
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
async def browser(installed: None) -> AsyncIterator[Browser]:
    """Headless Debian Chromium, one for the module."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    await context.close()
    assert errors == [], f"script errors in the page: {errors}"


async def data(page: Page, selector: str) -> list[dict[str, str]]:
    """The data-* attributes and text of every element matching ``selector``, in order."""
    return await page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => ({...n.dataset, text: n.innerText}))"
    )


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
    drop = await data(page, "#dropoff tbody tr")
    assert [r["stage"] for r in drop] == STAGES
    assert "token" not in page.url  # the fragment left the address bar for sessionStorage
    await page.screenshot(path=ARTIFACTS / "ui-journey-map.png", full_page=True)


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

    items = await data(page, "#timeline > li")
    events = [(i["type"], i["channel"]) for i in items if i["kind"] == "event"]
    assert events == [(e["type"], e["channel"]) for e in STAR_EVENTS]
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times)

    kinds = [i["kind"] for i in items]
    changes = [(i["from"], i["to"]) for i in items if i["kind"] == "stage"]
    assert changes == [("awareness", "acquisition"), ("acquisition", "onboarding")]
    types = [i.get("type") for i in items]
    # Each stage change follows the event that caused it.
    assert kinds[types.index("add_to_cart") + 1] == "stage"
    assert kinds[types.index("store_purchase") + 1] == "stage"

    actions = [i for i in items if i["kind"] == "action"]
    assert actions, "the complaint at least was answered"
    reasons = await data(page, "#timeline > li[data-kind=action] .tl-reason")
    assert all(r["text"].removeprefix("Why:").strip() not in ("", "\u2013") for r in reasons)
    recovery = page.locator('#timeline > li[data-kind=action][data-type="service_recovery"]')
    await expect(recovery).to_have_count(1)
    await expect(recovery.locator(".tl-reason")).to_contain_text("Complaint opened on Call center")

    complaint = page.locator('#decisions [data-trigger-type="complaint_opened"]')
    await expect(complaint.locator('tr[data-action="service_recovery"]')).to_have_attribute(
        "data-outcome", "chosen"
    )
    suppressed = await data(page, "#decisions tr[data-outcome=suppressed]")
    assert all(row["reason"] for row in suppressed)
    await page.screenshot(path=ARTIFACTS / "ui-customer.png", full_page=True)


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
