"""Social posts: what ingest adds, the case a grievance opens, the stage praise moves, merges."""

from __future__ import annotations

from typing import Any

import orjson

from stream.core.events import DecodeOptions, Event, decode_event
from stream.core.identity import hash_identifier
from stream.core.merge import merge_states
from stream.core.profile import profile_view
from stream.core.schemas import load_catalog
from stream.core.social import case_id_of, enrich, is_grievance, is_praise
from stream.core.state import CustomerState, Limits, new_state, reduce
from tests.unit.core.conftest import T0
from tests.unit.core.decide.helpers import DEFAULT_POLICY

OPTIONS = DecodeOptions(
    load_catalog(), max_event_bytes=8192, hash_salt="pepper", default_region="FR"
)
LIMITS = Limits()


def post(
    type_: str,
    properties: dict[str, Any],
    *,
    identifiers: dict[str, str] | None = None,
    at_ms: int = T0,
    event_id: str | None = None,
) -> Event:
    """A social event as ingest hands it on: enriched, identifiers hashed."""
    identifiers = identifiers if identifiers is not None else {"customer_id": "C1"}
    key = identifiers.get("customer_id") or "social:" + identifiers.get("social_sha256", "h")
    return Event(
        event_id=event_id or f"{type_}-{at_ms}-{sorted(properties.items())}",
        type=type_,
        channel="social",
        occurred_at_ms=at_ms,
        customer_key=key,
        identifiers=identifiers,
        properties=enrich(type_, properties, {}),
        context={},
    )


NEGATIVE = {"platform": "x", "post_id": "p1", "text": "Worst service ever. Really disappointed."}
POSITIVE = {"platform": "x", "post_id": "p2", "text": "Love these boots, best shop ever!"}


def test_ingest_adds_the_sentiment_and_a_grievances_case_id() -> None:
    negative = enrich("mention", NEGATIVE, {})
    assert negative["sentiment"] == "negative" and negative["sentiment_source"] == "computed"
    assert negative["case_id"] == "social-x-p1"
    assert "sentiment" not in NEGATIVE  # the input is left alone
    positive = enrich("mention", POSITIVE, {})
    assert positive["sentiment"] == "positive" and "case_id" not in positive
    low = enrich("review", {"platform": "Trustpilot", "post_id": "r9", "rating": 2}, {})
    assert (low["sentiment"], low["sentiment_source"], low["case_id"]) == (
        "negative",
        "rating",
        "social-trustpilot-r9",
    )


def test_a_direct_message_conversation_is_one_case_and_the_tools_case_id_wins() -> None:
    dm = {"platform": "instagram", "post_id": "m1", "thread_id": "t7", "sentiment": "negative"}
    assert enrich("direct_message", dm, {})["case_id"] == "social-instagram-t7"
    assert enrich("mention", {**NEGATIVE, "case_id": "SPR-42"}, {})["case_id"] == "SPR-42"
    assert case_id_of("mention", {"platform": "x"}, "e1") == "social-x-e1"


def test_other_social_events_are_left_as_they_are() -> None:
    linked = {"linked_by": "agent"}
    assert enrich("handle_linked", linked, {}) is linked


def test_grievance_and_praise() -> None:
    assert is_grievance("direct_message", {"sentiment": "negative"})
    assert is_grievance("review", {"rating": 2, "sentiment": "positive"})  # the stars decide
    assert not is_grievance("review", {"rating": 3, "sentiment": "negative"})
    assert is_praise("reply", {"sentiment": "positive"})
    assert is_praise("review", {"rating": 4})
    assert not is_praise("direct_message", {"sentiment": "positive"})  # private: not advocacy
    assert not is_praise("mention", {"sentiment": "neutral"})


def test_a_known_customers_grievance_opens_a_case_until_it_is_resolved() -> None:
    state = reduce(new_state("C1"), post("mention", NEGATIVE), LIMITS).state
    assert state.open_cases == {
        "social-x-p1": {"reason": "negative mention on x", "severity": "medium", "opened_at_ms": T0}
    }
    again = post("reply", {**NEGATIVE, "post_id": "p3", "case_id": "social-x-p1"}, at_ms=T0 + 1)
    state = reduce(state, again, LIMITS).state
    assert list(state.open_cases) == ["social-x-p1"]  # one conversation, one case
    assert state.open_cases["social-x-p1"]["opened_at_ms"] == T0
    for channel in ("social", "call_center"):
        resolved = Event(
            f"r-{channel}",
            "complaint_resolved",
            channel,
            T0 + 2,
            "C1",
            {"customer_id": "C1"},
            {"case_id": "social-x-p1"},
            {},
        )
        assert reduce(state, resolved, LIMITS).state.open_cases == {}


def test_a_one_star_review_is_a_high_severity_case() -> None:
    one_star = post("review", {"platform": "google", "post_id": "g1", "rating": 1})
    case = reduce(new_state("C1"), one_star, LIMITS).state.open_cases["social-google-g1"]
    assert case["reason"] == "review rated 1 on google" and case["severity"] == "high"


def test_an_anonymous_authors_grievance_opens_no_case() -> None:
    author = {"social_sha256": "h1"}
    state = reduce(new_state("social:h1"), post("mention", NEGATIVE, identifiers=author), LIMITS)
    assert state.state.open_cases == {}
    assert state.state.social["sentiment"] == {"negative": 1}


def buyer(stage: str = "onboarding") -> CustomerState:
    state = new_state("C1")
    state.identifiers = {"customer_id": "C1"}
    state.stage, state.orders["count"] = stage, 1
    return state


def test_praise_in_public_moves_a_buyer_to_advocacy_and_a_grievance_back() -> None:
    praised = reduce(
        buyer(), post("review", {"platform": "x", "post_id": "r", "rating": 5}), LIMITS
    )
    assert praised.stage_change is not None and praised.state.stage == "advocacy"
    unhappy = reduce(praised.state, post("mention", NEGATIVE, at_ms=T0 + 1), LIMITS)
    assert unhappy.state.stage == "engagement"
    assert reduce(
        buyer(), post("direct_message", {**POSITIVE, "thread_id": "t"}), LIMITS
    ).state.stage == ("onboarding")


def test_the_profile_counts_posts_and_keeps_the_latest_sentiment() -> None:
    state = new_state("C1")
    for event in (
        post("mention", POSITIVE, at_ms=T0 + 5),
        post("review", {"platform": "x", "post_id": "r", "rating": 4}, at_ms=T0 + 9),
        post("mention", NEGATIVE, at_ms=T0 + 1),  # late: counted, not the latest
    ):
        state = reduce(state, event, LIMITS).state
    view = profile_view(state, DEFAULT_POLICY.holdout)["social"]
    assert view["posts"] == {"mention": 2, "review": 1}
    assert view["sentiment"] == {"negative": 1, "positive": 2}
    assert view["reviews"] == 1 and view["average_rating"] == 4.0
    assert view["last"]["type"] == "review" and view["last"]["source"] == "rating"
    assert profile_view(new_state("C2"), DEFAULT_POLICY.holdout)["social"] is None


def test_a_merged_authors_posts_add_up() -> None:
    author = {"social_sha256": "h1"}
    anonymous = reduce(
        new_state("social:h1"), post("mention", POSITIVE, identifiers=author), LIMITS
    )
    known = reduce(buyer(), post("mention", NEGATIVE, at_ms=T0 - 5), LIMITS)
    merged = merge_states(known.state, anonymous.state, LIMITS)
    assert merged.social["posts"] == {"mention": 2}
    assert merged.social["sentiment"] == {"negative": 1, "positive": 1}
    assert merged.social["last"]["sentiment"] == "positive"
    assert merge_states(known.state, new_state("x"), LIMITS).social == known.state.social


def test_a_decoded_post_carries_the_hash_of_the_handle_never_the_handle() -> None:
    message = {
        "event_id": "s1",
        "type": "mention",
        "channel": "social",
        "occurred_at": "2026-11-23T10:40:00.000Z",
        "customer": {"social_handle": "X:@Jane_Doe"},
        "properties": NEGATIVE,
    }
    event = decode_event(orjson.dumps(message), "social", OPTIONS)
    assert isinstance(event, Event)
    digest = hash_identifier("x:jane_doe", "pepper")
    assert event.identifiers == {"social_sha256": digest}
    assert event.customer_key == f"social:{digest}"
    assert event.properties["sentiment"] == "negative" and event.properties["case_id"]
    assert b"jane" not in orjson.dumps(event.to_record()).lower()


def test_ingest_counts_each_post_by_type_sentiment_and_source() -> None:
    from stream.core.intake import ingest_batch
    from stream.core.timestamps import parse_timestamp_ms

    message = {
        "event_id": "s2",
        "type": "review",
        "channel": "social",
        "occurred_at": "2026-11-23T10:40:00.000Z",
        "customer": {"social_handle": "trustpilot:someone"},
        "properties": {"platform": "trustpilot", "post_id": "r1", "rating": 2},
    }
    now_ms = parse_timestamp_ms(message["occurred_at"])
    result = ingest_batch([("social", orjson.dumps(message), None)], OPTIONS, now_ms)
    assert result.tally.counts[("social_posts", "review", "negative", "rating")] == 1
    assert result.tally.counts[("events", "social", "review")] == 1
