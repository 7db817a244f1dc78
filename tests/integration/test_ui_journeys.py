"""The journeys API and page (/ui/journeys.html) against a real worker on the real broker.

The worker runs this module's policy (one journey, checked with `journey policy check`) on
a clock pinned to the test events' day and sped up 60 times (a clock minute per real
second), so the journey's 30-minute wait for a visit times out in half a minute of the
test, on any date. Five customers enter the journey and take five paths through it; the
API counts every move exactly, the page draws the graph with those counts on its nodes
and edges (in Debian's Chromium, driven by Playwright), the customer page names the
journey and node of the one customer still in it, and a policy reload that changes the
journey gives the page a version picker. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Page, expect

from stream.core.decide import load_policy_file
from stream.core.schemas import load_catalog
from tests.integration.browser import ARTIFACTS, data
from tests.integration.conftest import ROOT, Deployment, WorkerProcess, http_get
from tests.integration.events import event

TOKEN = "ui-journeys-token"
SPEED = 60.0  # one clock minute per real second

DESCRIPTION = "a cart left behind: a text message, then an email unless the customer comes back"
POLICY = f"""
format: 1
name: journeys-page-it
contact_policy: {{default_timezone: UTC}}
holdout: {{control_share: 0.0}}
actions:
  - {{id: cart_sms, category: marketing, channels: [sms]}}
  - {{id: cart_email, category: marketing, channels: [email]}}
journeys:
  - id: cart_rescue
    description: "{DESCRIPTION}"
    entry: {{event: add_to_cart}}
    reentry: never
    max_duration: 7d
    exit: [{{event: complaint_opened, reason: complaint}}]
    goal: {{event: order_completed, exit: true}}
    start: text
    nodes:
      text: {{send: cart_sms, next: wait_visit}}
      wait_visit:
        wait_for: {{event: page_view}}
        timeout: 30m
        next: check
        on_timeout: email
      check:
        branch: [{{name: big_cart, when: customer.cart.value >= 100.0, next: email}}]
        else: wait_more
      wait_more: {{wait: 1d, next: done}}
      email: {{send: cart_email, next: done}}
      done: {{exit: series_done}}
"""
RELOADED = POLICY.replace("wait_more: {wait: 1d,", "wait_more: {wait: 2d,")

TIMED_OUT = "C910001"  # a cart, then nothing: the wait times out, the email goes, done
BUYER = "C910002"  # a cart, then an order: the goal ends the run
NO_SMS = "C910003"  # no SMS consent (suppressed), comes back with a small cart: waits on
COMPLAINED = "C910004"  # a cart, then a complaint: the exit rule ends the run
BIG_CART = "C910005"  # comes back with a big cart: the branch sends the email, done
EVERYONE = [TIMED_OUT, BUYER, NO_SMS, COMPLAINED, BIG_CART]

NODES = {  # name: (kind, runs now, entered, suppressed, exited, converted)
    "text": ("send", 0, 5, {"no_consent": 1}, {}, 0),
    "wait_visit": ("wait_for", 0, 0, {}, {"complaint": 1, "goal": 1}, 1),
    "check": ("branch", 0, 0, {}, {}, 0),
    "wait_more": ("wait", 1, 0, {}, {}, 0),
    "email": ("send", 0, 0, {}, {}, 0),
    "done": ("exit", 0, 0, {}, {"series_done": 2}, 0),
}
EDGES = {  # (from, label, to): times taken
    ("text", "sent", "wait_visit"): 4,
    ("text", "held", "wait_visit"): 0,
    ("text", "suppressed", "wait_visit"): 1,
    ("wait_visit", "next", "check"): 2,
    ("wait_visit", "timeout", "email"): 1,
    ("check", "big_cart", "email"): 1,
    ("check", "else", "wait_more"): 1,
    ("wait_more", "next", "done"): 0,
    ("email", "sent", "done"): 2,
    ("email", "held", "done"): 0,
    ("email", "suppressed", "done"): 0,
}
TOTALS = {
    "entered": 5,
    "active": 1,
    "converted": 1,
    "exited": {"series_done": 2, "complaint": 1, "goal": 1},
    "conversion": {
        "treatment": {"entered": 5, "converted": 1, "rate": 0.2},
        "control": {"entered": 0, "converted": 0, "rate": None},
    },
}

expect.set_options(timeout=15_000)


def api(worker: WorkerProcess, path: str) -> Any:
    """The JSON body of a 200 answer from the worker's API, or None."""
    status, body = http_get(f"{worker.url}{path}", TOKEN)
    return orjson.loads(body) if status == 200 else None


def version_of(policy_file: Path) -> str:
    """The journey's version as the worker computes it."""
    return load_policy_file(policy_file, load_catalog()).journeys[0].version


def check_policy(path: Path) -> None:
    """`journey policy check` accepts the file."""
    checked = subprocess.run(
        [sys.executable, "-m", "stream", "policy", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ": OK," in checked.stdout


def replace_policy(policy_file: Path, text: str) -> str:
    """Check ``text`` with the CLI, then write it over the policy file (the worker polls
    it); the journey's new version."""
    checked = policy_file.with_suffix(".next.yaml")
    checked.write_text(text)
    check_policy(checked)
    checked.replace(policy_file)
    return version_of(policy_file)


@pytest.fixture(scope="module")
def policy_file(deployment: Deployment) -> Path:
    """This module's policy, checked by the CLI."""
    path = deployment.tmp / "journeys.yaml"
    path.write_text(POLICY)
    check_policy(path)
    return path


@pytest.fixture(scope="module")
async def worker(deployment: Deployment, policy_file: Path) -> AsyncIterator[WorkerProcess]:
    """One worker on the policy, its clock pinned to the events' day and sped up."""
    deployment.env.update(
        {
            "JOURNEY_API_TOKEN": TOKEN,
            "JOURNEY_POLICY_FILE": str(policy_file),
            "JOURNEY_CLOCK_SPEED": str(SPEED),  # anchor and start: pinned by conftest
            "JOURNEY_POLICY_POLL_S": "0.5",
        }
    )
    process = deployment.worker("journeys")
    await asyncio.to_thread(process.start)
    yield process
    process.stop()


def summary(worker: WorkerProcess) -> dict[str, Any] | None:
    """The journey's line in GET /journeys."""
    listed = api(worker, "/journeys")
    return listed["journeys"][0] if listed and listed["journeys"] else None


@pytest.fixture(scope="module")
async def walked(deployment: Deployment, worker: WorkerProcess) -> None:
    """Five customers in, then each on their own path, until the counts are final."""
    clock = deployment.clock()
    no_sms = {"email": True, "sms": False, "push": False}

    def cart(customer_id: str, price: float, **consent: Any) -> dict[str, Any]:
        properties = {"product_id": "P1", "price": price}
        who = {"customer_id": customer_id}
        return event("web", "add_to_cart", who, properties, at_ms=clock.now_ms(), **consent)

    entries = [cart(c, 30.0) for c in (TIMED_OUT, BUYER, COMPLAINED)]
    entries += [cart(NO_SMS, 30.0, consent=no_sms), cart(BIG_CART, 150.0)]
    await deployment.produce("web", entries)
    await deployment.wait_for(
        lambda: (s := summary(worker)) and s["entered"] == 5, what="five customers entered"
    )

    def visit(customer_id: str, **consent: Any) -> dict[str, Any]:
        who = {"customer_id": customer_id}
        url = {"url": "https://shop.example.com/cart"}
        return event("web", "page_view", who, url, at_ms=clock.now_ms(), **consent)

    order = {"order_id": "O-910002", "value": 30.0, "currency": "EUR"}
    await deployment.produce(
        "web",
        [
            visit(NO_SMS, consent=no_sms),
            visit(BIG_CART),
            event("web", "order_completed", {"customer_id": BUYER}, order, at_ms=clock.now_ms()),
        ],
    )
    complaint = {"case_id": "K-910004", "reason": "late delivery"}
    who = {"customer_id": COMPLAINED}
    await deployment.produce(
        "call_center",
        [event("call_center", "complaint_opened", who, complaint, at_ms=clock.now_ms())],
    )
    # The wait for a visit times out 30 clock minutes (30 s) after the entry.
    await deployment.wait_for(
        lambda: (s := summary(worker)) and {k: s[k] for k in TOTALS} == TOTALS,
        timeout_s=120,
        what=f"the journey's totals to be {TOTALS}",
    )


def node_counts(version: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """A version's nodes as NODES writes them."""
    return {
        n["name"]: (
            n["kind"],
            n["runs_now"],
            n["entered"],
            n["suppressed"],
            n["exited"],
            n["converted"],
        )
        for n in version["nodes"]
    }


async def test_the_api_counts_every_move_through_the_journey(
    worker: WorkerProcess, walked: None, policy_file: Path
) -> None:
    version = version_of(policy_file)
    heading = {
        "id": "cart_rescue",
        "description": DESCRIPTION,
        "in_policy": True,
        "current_version": version,
    }
    listed = api(worker, "/journeys")
    assert listed == {
        "journeys": [
            {**heading, **TOTALS, "versions": [{"version": version, "current": True, **TOTALS}]}
        ]
    }
    detail = api(worker, "/journeys/cart_rescue")
    (shown,) = detail.pop("versions")
    assert detail == heading
    assert {k: shown[k] for k in ("version", "current", "known", "start", *TOTALS)} == {
        "version": version,
        "current": True,
        "known": True,
        "start": "text",
        **TOTALS,
    }
    assert node_counts(shown) == NODES
    assert {(e["from"], e["label"], e["to"]): e["count"] for e in shown["edges"]} == EDGES
    does = {n["name"]: n["does"] for n in shown["nodes"]}
    assert does["wait_visit"] == "wait for page_view, up to 30m"
    assert does["text"] == "send cart_sms"


async def test_an_unknown_journey_is_a_readable_404_and_the_token_is_needed(
    worker: WorkerProcess,
) -> None:
    status, body = http_get(f"{worker.url}/journeys/nope", TOKEN)
    assert status == 404
    assert orjson.loads(body) == {
        "error": "not_found",
        "detail": "no journey 'nope' in the policy or the counts; the policy has: cart_rescue",
    }
    assert http_get(f"{worker.url}/journeys", None)[0] == 401


async def test_the_page_draws_the_journey_with_counts_on_nodes_and_edges(
    worker: WorkerProcess, walked: None, page: Page
) -> None:
    await page.goto(f"{worker.url}/ui/journeys.html#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#graph")).to_have_attribute("data-graph", "drawn")

    (row,) = await data(page, "#journey-list tr.journey-row")
    assert (row["journey"], row["entered"], row["active"], row["converted"]) == (
        "cart_rescue",
        "5",
        "1",
        "1",
    )
    nodes = {n["node"]: n for n in await data(page, "#graph .jg-node[data-kind]")}
    assert {name: n["kind"] for name, n in nodes.items()} == {
        name: kind for name, (kind, *_) in NODES.items()
    }
    assert {name: int(n["runsNow"]) for name, n in nodes.items()} == {
        name: now for name, (_, now, *_) in NODES.items()
    }
    assert int(nodes["text"]["entered"]) == 5 and int(nodes["text"]["suppressed"]) == 1
    assert int(nodes["wait_visit"]["converted"]) == 1
    assert int(nodes["done"]["exited"]) == 2
    lines = await data(page, "#graph .jg-edge-line")
    shown = {(e["from"], e["label"], e["to"]): int(e["count"]) for e in lines}
    assert shown == {**EDGES, ("__entry", "entered", "text"): 5}

    # What a person reads: kind, name, action, runs now; suppressed and exits by reason.
    text = page.locator('#graph .jg-node[data-node="text"]')
    for words in ("Send", "send cart_sms", "entered 5", "suppressed · no_consent 1"):
        await expect(text).to_contain_text(words)
    await expect(page.locator('#graph .jg-node[data-node="wait_more"]')).to_contain_text("now 1")
    waiting = page.locator('#graph .jg-node[data-node="wait_visit"]')
    for words in ("exited · complaint 1", "exited · goal 1", "converted 1"):
        await expect(waiting).to_contain_text(words)
    await expect(page.locator('#graph .jg-node[data-node="done"]')).to_contain_text(
        "exited · series_done 2"
    )
    await expect(
        page.locator('#graph .jg-edge-line[data-from="wait_visit"][data-label="timeout"]')
    ).to_have_text("timeout 1")
    await expect(page.locator("#version-choice")).to_be_hidden()  # one version only
    refreshes = int(await page.locator("body").get_attribute("data-refreshes") or 0)
    await expect(page.locator("body")).to_have_attribute("data-refreshes", str(refreshes + 1))
    await page.screenshot(path=ARTIFACTS / "ui-journeys.png", full_page=True)


async def test_the_customer_page_lists_the_journey_and_node_the_customer_is_at(
    worker: WorkerProcess, walked: None, page: Page
) -> None:
    await page.goto(f"{worker.url}/ui/customer.html?id={NO_SMS}#token={TOKEN}")
    await expect(page.locator("body")).to_have_attribute("data-state", "ready")
    section = page.locator("#customer-journeys")
    await expect(section).to_have_attribute("data-runs", "1")
    run = section.locator('tr[data-journey="cart_rescue"]')
    await expect(run).to_have_attribute("data-node", "wait_more")
    await expect(run).to_contain_text("cart_rescue")
    await expect(run).to_contain_text("wait_more")
    profile = api(worker, f"/customers/{NO_SMS}")
    (journey,) = profile["journeys"]
    await expect(run.locator("time").nth(1)).to_have_attribute("datetime", journey["next_step_at"])
    await page.screenshot(path=ARTIFACTS / "ui-customer-journeys.png", full_page=True)

    await page.goto(f"{worker.url}/ui/customer.html?id={TIMED_OUT}")
    await expect(section).to_have_attribute("data-runs", "0")
    await expect(section).to_contain_text("Not in any journey now.")


async def test_a_reload_that_changes_the_journey_adds_a_version_to_pick(
    deployment: Deployment, worker: WorkerProcess, walked: None, policy_file: Path, page: Page
) -> None:
    before = version_of(policy_file)
    await page.goto(f"{worker.url}/ui/journeys.html#token={TOKEN}")
    await expect(page.locator("#graph")).to_have_attribute("data-graph", "drawn")
    await expect(page.locator("#version-choice")).to_be_hidden()

    after = await asyncio.to_thread(replace_policy, policy_file, RELOADED)
    assert after != before
    await deployment.wait_for(
        lambda: (s := summary(worker)) and s["current_version"] == after,
        what="the reloaded journey version in force",
    )

    # The page, left open, picks the new version up by itself and offers both.
    picker = page.locator("#version-picker")
    await expect(page.locator("#version-choice")).to_be_visible()
    await expect(picker.locator("option")).to_have_count(2)
    await expect(page.locator("#graph svg")).to_have_attribute("data-version", after)
    wait_more = page.locator('#graph .jg-node[data-node="wait_more"]')
    await expect(wait_more).to_have_attribute("data-runs-now", "0")
    await expect(wait_more).to_contain_text("wait 2d")

    await picker.select_option(before)  # the customer still waiting is on the earlier one
    await expect(page.locator("#graph svg")).to_have_attribute("data-version", before)
    await expect(wait_more).to_have_attribute("data-runs-now", "1")
    await expect(wait_more).to_contain_text("wait 1d")
    await expect(page.locator('#graph .jg-edge-line[data-label="big_cart"]')).to_have_attribute(
        "data-count", "1"
    )
    assert f"version={before.replace('@', '%40')}" in page.url
    await page.screenshot(path=ARTIFACTS / "ui-journeys-versions.png", full_page=True)
