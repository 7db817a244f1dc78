"""Social media through a real worker on the real broker: the community team's tasks on
cjo.actions.social, a grievance's case pausing marketing until it is resolved, praise making
an advocate and asking for a referral, an anonymous author merged once the handle is linked.

The worker runs the shipped policy (learning off) on the pinned clock of the integration
tests: 11:00 in Paris on the day of the test events, outside quiet hours.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.core.identity import hash_identifier, normalise_social_handle
from tests.integration.conftest import API_TOKEN, Deployment, WorkerProcess, http_get
from tests.integration.events import event, order

NEGATIVE = "Still waiting for my parcel after three weeks. Worst service ever."


def post(
    type_: str, customer: dict[str, str], post_id: str, text: str, **properties: Any
) -> dict[str, Any]:
    """A post as the listening tool writes it (no sentiment: the worker computes it)."""
    platform = properties.pop("platform", "x")
    body = {"platform": platform, "post_id": post_id, "text": text, **properties}
    return event("social", type_, customer, body)


def token_of(handle: str, deployment: Deployment) -> str:
    """The token ingest makes of a raw handle."""
    salt = deployment.settings.hash_salt
    return "social:" + hash_identifier(normalise_social_handle(handle), salt)


def tasks_of(actions: list[dict[str, Any]], customer_id: str) -> list[dict[str, Any]]:
    return [a for a in actions if a["customer_id"] == customer_id and a["channel"] == "social"]


def alias(worker: WorkerProcess, token: str) -> str | None:
    status, body = http_get(f"{worker.url}/debug/aliases/{token}", API_TOKEN)
    return orjson.loads(body)["customer_key"] if status == 200 else None


async def decision_for(deployment: Deployment, event_id: str) -> dict[str, Any]:
    """The explain record of the decision an event triggered."""
    records = await deployment.collect(
        [deployment.settings.topics.decisions],
        lambda rs: any(orjson.loads(r.value)["trigger"]["event_id"] == event_id for r in rs),
    )
    decisions = [orjson.loads(r.value) for r in records]
    return next(d for d in decisions if d["trigger"]["event_id"] == event_id)


async def test_every_post_gets_a_community_task_public_or_private_with_its_reason(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    fan = {"customer_id": "C500001", "social_handle": "instagram:@Fan_500001"}
    dm = {"platform": "instagram", "thread_id": "t-500001"}
    posts = [
        post("direct_message", fan, "m1", "Is the jacket available in size M?", **dm),
        post("mention", fan, "p1", "Love my new boots, best shop ever!", platform="instagram"),
        post("reply", fan, "c1", "Die Schuhe sind super", language="de", platform="instagram"),
    ]
    await deployment.produce("social", posts)
    actions = await deployment.actions(lambda sent: len(tasks_of(sent, "C500001")) == 3)
    tasks = {a["trigger"]["event_id"]: a for a in tasks_of(actions, "C500001")}
    replies = [
        (tasks[p["event_id"]]["action"], tasks[p["event_id"]]["payload"]["reply"]) for p in posts
    ]
    assert replies == [
        ("social_reply_private", "private"),
        ("social_reply_public", "public"),
        ("social_reply_public", "public"),
    ]
    dm_task, praise, german = (tasks[p["event_id"]] for p in posts)
    assert dm_task["payload"]["why"] == "direct message (neutral): answer in private"
    assert dm_task["payload"]["thread_id"] == "t-500001"
    assert praise["payload"]["why"] == "positive mention: thank or answer in public"
    assert praise["payload"]["sentiment_source"] == "computed"
    assert german["payload"]["sentiment"] == "unknown"
    assert all(t["category"] == "service" and t["reason"] for t in tasks.values())
    # The raw handle never leaves ingest: not in an action, not in the stored profile.
    state = await deployment.wait_for(
        lambda: (s := worker.customer("C500001")) and s["event_count"] == 3 and s,
        what="the three posts stored",
    )
    assert b"fan_500001" not in orjson.dumps(state).lower()
    assert b"fan_500001" not in orjson.dumps(actions).lower()
    assert token_of("instagram:@Fan_500001", deployment) in state["linked"]
    assert 'journey_social_posts_total{sentiment="unknown",source="none",type="reply"} 1.0' in (
        worker.metrics()
    )


async def test_a_negative_mention_by_a_known_customer_pauses_marketing_until_resolved(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    who = {"customer_id": "C500002"}
    author = {**who, "social_handle": "x:@Unhappy_500002"}
    cart = {"product_id": "P7", "price": 40.0, "category": "shoes"}
    complaint = post("mention", author, "p500002", NEGATIVE, url="https://x.com/u/p500002")
    first_cart = event("web", "add_to_cart", who, cart)
    await deployment.produce("social", [complaint])
    await deployment.wait_for(
        lambda: (worker.customer("C500002") or {}).get("open_cases"), what="the case opened"
    )
    await deployment.produce("web", [first_cart])
    actions = await deployment.actions(lambda sent: tasks_of(sent, "C500002"))
    [task] = tasks_of(actions, "C500002")
    assert (task["action"], task["payload"]["reply"]) == ("social_reply_private", "private")
    assert task["payload"]["case_id"] == "social-x-p500002"
    assert task["payload"]["url"] == "https://x.com/u/p500002"
    state = worker.customer("C500002")
    assert list(state["open_cases"]) == ["social-x-p500002"]
    assert state["journeys"]["complaint_recovery"]["node"] == "wait_resolution"
    paused = await decision_for(deployment, first_cart["event_id"])
    reasons = {c["action"]: c["reason"] for c in paused["candidates"]}
    assert reasons["loyalty_signup_nudge"] == "open_service_case"

    # The community team settles it; marketing goes on.
    resolved = event("social", "complaint_resolved", who, {"case_id": "social-x-p500002"})
    await deployment.produce("social", [resolved])
    await deployment.wait_for(
        lambda: (s := worker.customer("C500002")) and not s["open_cases"] and s,
        what="the case closed",
    )
    assert worker.customer("C500002")["journeys"]["complaint_recovery"]["node"] == "settle"
    second_cart = event("web", "add_to_cart", who, {**cart, "product_id": "P8"})
    await deployment.produce("web", [second_cart])
    actions = await deployment.actions(
        lambda sent: any(a["trigger"]["event_id"] == second_cart["event_id"] for a in sent)
    )
    [nudge] = [a for a in actions if a["trigger"]["event_id"] == second_cart["event_id"]]
    assert nudge["action"] == "loyalty_signup_nudge" and nudge["category"] == "marketing"


async def test_a_high_review_by_a_buyer_makes_an_advocate_and_asks_for_a_referral(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    who = {"customer_id": "C500003"}
    # The app first: the onboarding's email invitation then has nothing to invite to, so
    # the day's email is free for the referral request.
    await deployment.produce("app", [event("app", "app_installed", who, {"platform": "ios"})])
    await deployment.wait_for(  # topics are not ordered with each other
        lambda: (worker.customer("C500003") or {}).get("app_installed"), what="the app"
    )
    await deployment.produce("web", [order("C500003", "O-500003")])
    await deployment.wait_for(
        lambda: (worker.customer("C500003") or {}).get("stage") == "onboarding", what="a buyer"
    )
    review = event(
        "social",
        "review",
        {**who, "social_handle": "trustpilot:Reviewer500003"},
        {"platform": "trustpilot", "post_id": "r500003", "rating": 5, "text": "Great boots!"},
    )
    await deployment.produce("social", [review])
    actions = await deployment.actions(
        lambda sent: (
            {a["action"] for a in sent if a["trigger"]["event_id"] == review["event_id"]}
            | {a["action"] for a in sent if a.get("journey", {}).get("id") == "social_advocacy"}
            >= {"social_reply_public", "referral_request"}
        )
    )
    [task] = tasks_of(actions, "C500003")
    assert task["payload"]["why"] == "review rated 5 of 5: thank in public"
    [referral] = [a for a in actions if a.get("journey", {}).get("id") == "social_advocacy"]
    assert (referral["customer_id"], referral["action"]) == ("C500003", "referral_request")
    assert referral["category"] == "marketing"
    state = await deployment.wait_for(
        lambda: (s := worker.customer("C500003")) and s["stage"] == "advocacy" and s,
        what="an advocate",
    )
    assert state["stage_history"][-1]["event_id"] == review["event_id"]
    assert state["social"]["reviews"] == {"count": 1, "stars": 5}


async def test_an_anonymous_author_linked_later_merges_into_the_customer(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    handle = "x:@It_Author_500004"
    token = token_of(handle, deployment)
    first = post("mention", {"social_handle": handle}, "p500004a", NEGATIVE)
    await deployment.produce("social", [first], key_field="social_handle")
    actions = await deployment.actions(lambda sent: tasks_of(sent, token))
    [anonymous_task] = tasks_of(actions, token)
    assert anonymous_task["payload"]["reply"] == "private"
    assert anonymous_task["payload"]["case_id"] == ""  # nobody's marketing to pause
    profile = await deployment.wait_for(lambda: worker.customer(token), what="the author's profile")
    assert profile["open_cases"] == {} and profile["social"]["posts"] == {"mention": 1}

    # An agent links the handle (spelt otherwise: the same account) to the customer.
    linked = event(
        "social",
        "handle_linked",
        {"customer_id": "C500004", "social_handle": "twitter:@it_author_500004"},
        {"linked_by": "agent", "agent_id": "A007"},
    )
    await deployment.produce("social", [linked])
    merged = await deployment.wait_for(
        lambda: (s := worker.customer("C500004")) and s.get("social", {}).get("posts") and s,
        what="the author's profile merged into the customer's",
    )
    assert merged["social"]["posts"] == {"mention": 1}
    assert worker.customer(token) == {"merged_into": "C500004"}
    assert alias(worker, token) == "C500004"

    # The handle's next grievance lands on the customer and opens a case.
    again = post("mention", {"social_handle": handle}, "p500004b", NEGATIVE)
    await deployment.produce("social", [again], key_field="social_handle")
    actions = await deployment.actions(lambda sent: tasks_of(sent, "C500004"))
    [task] = tasks_of(actions, "C500004")
    assert task["trigger"]["event_id"] == again["event_id"]
    assert task["payload"]["case_id"] == "social-x-p500004b"
    await deployment.wait_for(
        lambda: "social-x-p500004b" in (worker.customer("C500004") or {}).get("open_cases", {}),
        what="the customer's case opened",
    )
