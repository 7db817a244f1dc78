"""The shipped policy walks a customer through the journey, stage by stage."""

from __future__ import annotations

from stream.core.decide import Reason
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import NOON_MS, run

DAY_MS = 86_400_000


def order(order_id: str, category: str = "shoes", value: float = 50.0, **kw):
    return build_event(
        "order_completed",
        properties={"order_id": order_id, "value": value, "category": category},
        **kw,
    )


def chosen(result) -> list[tuple[str, str]]:
    return [(a.action, a.channel) for a in result.decision.actions] if result.decision else []


def test_complaint_gives_a_call_back_task_with_the_case() -> None:
    _, [result] = run(
        [
            build_event(
                "complaint_opened",
                "call_center",
                {"case_id": "K9", "reason": "late", "severity": "high"},
            )
        ]
    )
    [action] = result.decision.actions
    assert (action.action, action.channel, action.category) == (
        "service_recovery",
        "call_center",
        "service",
    )
    assert action.payload == {"case_id": "K9", "complaint_reason": "late", "severity": "high"}
    assert action.content == "tasks/complaint-callback"


def test_open_complaint_pauses_marketing_but_service_goes_through() -> None:
    complaint = build_event("complaint_opened", "call_center", {"case_id": "K1", "reason": "x"})
    unhappy = build_event("call_completed", "call_center", {"reason": "x", "sentiment": "negative"})
    state, results = run([complaint, order("o1", "beauty")])
    order_decision = results[1].decision
    assert order_decision.actions == ()
    reasons = {c.action: c.reason for c in order_decision.candidates}
    assert reasons["replenishment_reminder"] is Reason.OPEN_SERVICE_CASE
    resolved = build_event("complaint_resolved", "call_center", {"case_id": "K1"})
    _, later = run([resolved, unhappy], state=state)
    assert chosen(later[1]) == [("service_follow_up", "call_center")]


def test_first_visit_gets_welcome_content_once() -> None:
    _, results = run([build_event("page_view", properties={"url": "/"}) for _ in range(3)])
    assert chosen(results[0]) == [("welcome_content", "web")]
    assert results[1].decision.candidates[0].reason is Reason.ALREADY_SENT


def test_cart_without_loyalty_gets_a_signup_nudge() -> None:
    _, [result] = run([build_event("add_to_cart", properties={"product_id": "p", "price": 5.0})])
    assert chosen(result) == [("loyalty_signup_nudge", "web")]


def sent(result) -> list[tuple[str, str]]:
    return [(a.action, a.channel) for a in result.to_send]


def test_first_order_starts_onboarding_with_the_qr_invitation() -> None:
    _, [result] = run([order("o1", at_ms=NOON_MS)])
    assert sent(result) == [("app_download_invite", "email")]
    [action] = result.to_send
    assert action.payload == {"qr_code": True, "placement": "parcel"}
    assert action.journey is not None and action.journey.node == "qr_invite"
    assert result.state.journeys["onboarding"]["node"] == "wait_install"
    assert set(result.state.timers) == {"inactivity"}


def test_repeat_order_gets_complete_the_look_by_push_for_app_users() -> None:
    from stream.core.pipeline import fire
    from tests.unit.core.decide.helpers import SHIPPED_RULES

    installed = build_event("app_installed", "app", at_ms=NOON_MS + DAY_MS)
    state, results = run(
        [order("o1", at_ms=NOON_MS), installed, order("o2", "shoes", at_ms=NOON_MS + 2 * DAY_MS)],
        gap_ms=DAY_MS,
    )
    assert sent(results[1]) == [("getting_started_series", "push")]  # the onboarding's step
    assert results[1].decision.candidates[0].reason is Reason.ALREADY_SENT  # not twice
    assert state.journeys["post_purchase"]["node"] == "wait_2d"  # the generic path
    result = fire(state, NOON_MS + 4 * DAY_MS, SHIPPED_RULES)  # two days after o2
    [action] = result.to_send
    assert (action.action, action.channel) == ("complete_the_look", "push")
    assert action.payload["recommended_category"] == "accessories"
    [candidate] = [c for c in result.decisions[0].candidates if c.chosen]
    terms = candidate.scores
    assert terms is not None and terms.context_weight == 1.3


def test_high_value_customer_gets_the_vip_path_once_then_the_generic_one() -> None:
    state, results = run(
        [
            order(f"o{n + 1}", value=value, at_ms=NOON_MS + n * 20 * DAY_MS)
            for n, value in enumerate((100.0, 600.0, 50.0))
        ],
        gap_ms=20 * DAY_MS,
    )
    assert sent(results[1]) == [("vip_treatment", "store")]
    assert sent(results[2]) == []
    run_ = state.journeys["post_purchase"]
    assert run_["node"] == "wait_2d"  # VIP once (max_per_customer), then the generic path
    moves = [(m.node, m.what, m.detail) for m in results[2].journeys]
    assert ("value", "edge", "high_value") in moves and ("vip", "edge", "suppressed") in moves


def test_positive_call_after_a_purchase_asks_for_a_review() -> None:
    happy = build_event("call_completed", "call_center", {"reason": "q", "sentiment": "positive"})
    _, results = run([order("o1"), happy], gap_ms=2 * DAY_MS)
    assert chosen(results[1]) == [("review_request", "email")]


def test_every_decision_names_the_policy_version() -> None:
    _, [result] = run([order("o1", "beauty")])
    assert result.decision.policy_version.startswith("default@")
    assert result.decision.actions[0].policy_version == result.decision.policy_version


# --- timers of the shipped policy (the clock is just a number here)

MINUTE_MS = 60_000
KNOWN = {"timezone": "Europe/Paris", "consent": {"email": True, "push": True}}


def at(event_type: str, minutes: int, channel: str = "web", **props):
    return build_event(
        event_type, channel, props, at_ms=NOON_MS + minutes * MINUTE_MS, context=KNOWN
    )


def fired_actions(state, minutes: int) -> tuple[object, list[str]]:
    from stream.core.pipeline import fire
    from tests.unit.core.decide.helpers import SHIPPED_RULES

    result = fire(state, NOON_MS + minutes * MINUTE_MS, SHIPPED_RULES)
    return result.state, [a.action for a in (*result.to_send, *result.held)]


def add_to_cart(minutes: int):
    return at("add_to_cart", minutes, product_id="p1", price=20.0)


def test_a_cart_left_for_30_minutes_gets_a_reminder() -> None:
    state, _ = run([add_to_cart(0)], now_ms=NOON_MS)
    state, actions = fired_actions(state, 29)
    assert actions == []
    state, actions = fired_actions(state, 30)
    assert actions == ["cart_reminder"]


def test_an_unopened_cart_reminder_is_followed_by_an_email_a_day_later() -> None:
    state, _ = run([add_to_cart(0)], now_ms=NOON_MS)
    state, _ = fired_actions(state, 30)
    state, actions = fired_actions(state, 30 + 24 * 60)
    assert actions == ["cart_follow_up"]
    assert "cart_abandonment" not in state.journeys


def test_an_order_before_30_minutes_ends_the_cart_journey() -> None:
    checkout = at("order_completed", 10, order_id="o1", value=20.0)
    state, results = run([add_to_cart(0), checkout], now_ms=NOON_MS)
    assert "cart_abandonment" not in state.journeys
    assert ("converted", "") in [(m.what, m.detail) for m in results[1].journeys]
    _, actions = fired_actions(state, 31)
    assert "cart_reminder" not in actions


def test_without_the_app_two_days_after_the_invitation_one_sms_follows() -> None:
    consent = {**KNOWN, "consent": {"email": True, "push": True, "sms": True}}
    first = build_event(
        "order_completed", "web", {"order_id": "o1", "value": 20.0}, at_ms=NOON_MS, context=consent
    )
    state, _ = run([first], now_ms=NOON_MS)
    _, actions = fired_actions(state, 2 * 24 * 60)
    assert actions == ["app_invite_sms"]
    installed, _ = run([first, at("app_installed", 60, "app")], now_ms=NOON_MS)
    assert "onboarding" not in installed.journeys


def test_a_resolved_complaint_leads_to_a_review_request_two_days_later() -> None:
    complaint = at("complaint_opened", 0, "call_center", case_id="K1", reason="late")
    other = at("complaint_resolved", 60, "call_center", case_id="K2")
    resolved = at("complaint_resolved", 120, "call_center", case_id="K1")
    state, results = run(
        [at("order_completed", -60, order_id="o1", value=20.0), complaint, other], now_ms=NOON_MS
    )
    assert sent(results[1]) == [("service_recovery", "call_center")]
    assert state.journeys["complaint_recovery"]["node"] == "wait_resolution"  # K2 is not K1
    state, _ = run([resolved], state=state, now_ms=NOON_MS + 120 * MINUTE_MS)
    assert state.journeys["complaint_recovery"]["node"] == "settle"
    _, actions = fired_actions(state, 120 + 2 * 24 * 60)
    assert actions == ["review_request"]


def test_a_buyer_inactive_for_30_days_gets_a_win_back() -> None:
    state, _ = run([at("order_completed", 0, order_id="o1", value=20.0)], now_ms=NOON_MS)
    state, _ = fired_actions(state, 2 * 24 * 60)  # the app invitation
    _, actions = fired_actions(state, 30 * 24 * 60)
    assert actions == ["win_back"]


def test_a_reminder_due_at_night_waits_for_the_morning() -> None:
    from stream.core.pipeline import fire
    from stream.core.timestamps import format_ms
    from tests.unit.core.decide.helpers import SHIPPED_RULES

    evening = NOON_MS + 10 * 60 * MINUTE_MS  # 21:00 in Paris
    cart = build_event(
        "add_to_cart", "web", {"product_id": "p1", "price": 20.0}, at_ms=evening, context=KNOWN
    )
    state, _ = run([cart], now_ms=evening)
    result = fire(state, evening + 30 * MINUTE_MS, SHIPPED_RULES)
    [held] = result.held
    assert held.action == "cart_reminder" and result.to_send == ()
    assert format_ms(held.send_after_ms) == "2026-11-24T07:00:00.000Z"  # 08:00 in Paris
    morning = fire(result.state, held.send_after_ms, SHIPPED_RULES)
    assert morning.to_send == (held,)
