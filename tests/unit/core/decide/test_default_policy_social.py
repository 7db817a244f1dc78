"""The shipped policy on social media: every post answered, grievances as cases, praise rewarded."""

from __future__ import annotations

from typing import Any

from stream.core.decide import Reason
from stream.core.decide.holdout import CONTROL, group_of
from stream.core.events import Event
from stream.core.pipeline import fire
from stream.core.social import enrich
from stream.core.state import CustomerState, new_state
from tests.unit.core.decide.helpers import NOON_MS, SHIPPED_RULES, run

DAY_MS = 86_400_000
CONTEXT = {"timezone": "Europe/Paris", "consent": {"email": True, "push": True}}
NEGATIVE = {"platform": "x", "post_id": "p1", "text": "Worst service ever. Really disappointed."}
POSITIVE = {"platform": "x", "post_id": "p2", "text": "Love these boots, best shop ever!"}
_count = iter(range(1_000_000))


def social(
    type_: str, properties: dict[str, Any], customer: str = "C000001", at_ms: int = NOON_MS
) -> Event:
    """A social event as ingest hands it on (enriched; the author known or a handle's hash)."""
    identifiers = {"customer_id": customer} if customer[0] == "C" else {"social_sha256": "h1"}
    return Event(
        f"s-{next(_count)}",
        type_,
        "social",
        at_ms,
        customer,
        identifiers,
        enrich(type_, properties, {}),
        CONTEXT,
    )


def bought(value: float = 50.0, at_ms: int = NOON_MS - DAY_MS, customer: str = "C000001") -> Event:
    return Event(
        f"o-{next(_count)}",
        "order_completed",
        "web",
        at_ms,
        customer,
        {"customer_id": customer},
        {"order_id": f"o{at_ms}", "value": value, "category": "beauty"},
        CONTEXT,
    )


def buyer(customer: str = "C000001") -> CustomerState:
    """A customer who bought two days ago (the onboarding's email has had its day)."""
    earlier = NOON_MS - 2 * DAY_MS
    state, _ = run(
        [bought(at_ms=earlier, customer=customer)], state=new_state(customer), now_ms=earlier
    )
    return state


def tasks(result) -> list[tuple[str, str, str]]:
    return [
        (a.action, a.channel, a.payload["reply"]) for a in result.to_send if a.channel == "social"
    ]


def test_a_negative_mention_is_answered_in_private_and_opens_a_case() -> None:
    state, [_, result] = run([bought(), social("mention", NEGATIVE)])
    assert tasks(result) == [("social_reply_private", "social", "private")]
    [task] = result.to_send
    assert task.category == "service" and task.content == "tasks/social-reply-private"
    assert task.payload["why"].startswith("negative mention in public")
    assert task.payload["case_id"] == "social-x-p1" and task.payload["sentiment"] == "negative"
    assert task.payload["sentiment_source"] == "computed"
    assert list(state.open_cases) == ["social-x-p1"]
    assert state.journeys["complaint_recovery"]["node"] == "wait_resolution"


def test_an_open_social_case_pauses_marketing_until_it_is_resolved() -> None:
    state, results = run([social("mention", NEGATIVE), bought(at_ms=NOON_MS + 1)], state=buyer())
    reasons = {c.action: c.reason for c in results[1].decision.candidates}
    assert reasons["replenishment_reminder"] is Reason.OPEN_SERVICE_CASE
    resolved = social("complaint_resolved", {"case_id": "social-x-p1"}, at_ms=NOON_MS + 2)
    state, results = run([resolved, bought(at_ms=NOON_MS + 3)], state=state)
    assert state.open_cases == {}
    assert state.journeys["complaint_recovery"]["node"] == "settle"
    assert [a.action for a in results[1].to_send] == ["replenishment_reminder"]
    later = fire(state, NOON_MS + 2 * DAY_MS + 2, SHIPPED_RULES)
    assert [a.action for a in (*later.to_send, *later.held)] == ["review_request"]


def test_the_case_resolves_from_the_call_center_too() -> None:
    state, _ = run([bought(), social("mention", NEGATIVE)])
    resolved = Event(
        "r1", "complaint_resolved", "call_center", NOON_MS + 1, "C000001",
        {"customer_id": "C000001"}, {"case_id": "social-x-p1"}, CONTEXT,
    )  # fmt: skip
    state, _ = run([resolved], state=state)
    assert state.open_cases == {} and state.journeys["complaint_recovery"]["node"] == "settle"


def test_a_low_review_is_answered_in_private_and_opens_a_case() -> None:
    review = social("review", {"platform": "trustpilot", "post_id": "r1", "rating": 1})
    state, [_, result] = run([bought(), review])
    assert tasks(result) == [("social_reply_private", "social", "private")]
    assert result.to_send[0].payload["why"] == ("review rated 1 of 5: take it to a private message")
    assert state.open_cases["social-trustpilot-r1"]["severity"] == "high"


def test_a_direct_message_is_answered_in_private_whatever_its_tone() -> None:
    dm = {"platform": "instagram", "post_id": "m1", "thread_id": "t1", "text": "Size M in stock?"}
    state, [result] = run([social("direct_message", dm)])
    assert tasks(result) == [("social_reply_private", "social", "private")]
    assert result.to_send[0].payload["why"] == "direct message (neutral): answer in private"
    assert result.to_send[0].payload["case_id"] == "" and state.open_cases == {}


def test_a_neutral_reply_and_an_unread_language_are_answered_in_public() -> None:
    neutral = social(
        "reply", {"platform": "facebook", "post_id": "c1", "text": "When is the sale?"}
    )
    german = social(
        "mention", {"platform": "x", "post_id": "p9", "text": "Sehr schlecht", "language": "de"}
    )
    _, results = run([neutral, german])
    assert [tasks(r) for r in results] == [[("social_reply_public", "social", "public")]] * 2
    assert results[0].to_send[0].payload["why"] == "neutral reply: thank or answer in public"
    assert "could not be read" in results[1].to_send[0].payload["why"]
    reasons = {c.action: c.reason for c in results[0].decision.candidates}
    assert reasons == {
        "social_reply_public": Reason.CHOSEN,
        "social_reply_private": Reason.TRIGGER_CONDITION,
    }


def test_a_high_review_by_a_buyer_makes_an_advocate_and_asks_for_a_referral() -> None:
    review = social("review", {"platform": "google", "post_id": "g1", "rating": 5})
    state, [result] = run([review], state=buyer())
    assert state.stage == "advocacy"
    assert tasks(result) == [("social_reply_public", "social", "public")]
    asked = [(a.action, a.journey.journey) for a in result.to_send if a.journey is not None]
    assert asked == [("referral_request", "social_advocacy")]


def test_a_positive_mention_by_a_buyer_asks_for_a_review() -> None:
    state, [result] = run([social("mention", POSITIVE)], state=buyer())
    assert state.stage == "advocacy"
    assert sorted(a.action for a in result.to_send) == ["review_request", "social_reply_public"]


def test_praise_from_someone_who_never_bought_is_thanked_and_nothing_more() -> None:
    state, [result] = run([social("mention", POSITIVE)])
    assert [a.action for a in result.to_send] == ["social_reply_public"]
    assert state.stage == "awareness" and "social_advocacy" not in state.journeys


def test_an_anonymous_author_gets_a_community_task_and_no_case() -> None:
    author = "social:h1"
    state, [result] = run([social("mention", NEGATIVE, customer=author)], state=new_state(author))
    assert tasks(result) == [("social_reply_private", "social", "private")]
    assert result.to_send[0].payload["case_id"] == "" and state.open_cases == {}


def test_community_tasks_are_never_capped_paused_or_held_out() -> None:
    control = next(
        c
        for c in (f"C{n:06d}" for n in range(1, 500))
        if group_of(c, SHIPPED_RULES.holdout) == CONTROL
    )
    posts = [
        social("mention", {**NEGATIVE, "post_id": f"p{n}"}, control, NOON_MS + n) for n in range(6)
    ]
    _, results = run([bought(customer=control), *posts], state=new_state(control))
    assert all(tasks(r) == [("social_reply_private", "social", "private")] for r in results[1:])
    assert all(r.decision.held_out == () for r in results[1:])
