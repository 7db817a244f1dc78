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


def test_first_order_invites_to_the_app_only_two_days_later() -> None:
    _, [result] = run([order("o1", at_ms=NOON_MS)])
    assert "app_download_invite" not in {c.action for c in result.decision.candidates}
    assert set(result.state.timers) == {"app_invite_follow_up", "inactivity"}


def test_repeat_order_gets_complete_the_look_by_push_for_app_users() -> None:
    _, results = run(
        [order("o1"), build_event("app_installed", "app"), order("o2", "shoes")], gap_ms=DAY_MS
    )
    assert chosen(results[1]) == [("getting_started_series", "push")]
    [action] = results[2].decision.actions
    assert (action.action, action.channel) == ("complete_the_look", "push")
    assert action.payload["recommended_category"] == "accessories"
    [candidate] = [c for c in results[2].decision.candidates if c.chosen]
    terms = candidate.scores
    assert terms is not None and terms.context_weight == 1.3


def test_high_value_customer_gets_the_vip_path_once_then_the_generic_one() -> None:
    _, results = run(
        [order("o1", value=100.0), order("o2", value=600.0), order("o3", value=50.0)],
        gap_ms=4 * DAY_MS,
    )
    assert chosen(results[1]) == [("vip_treatment", "store")]
    assert chosen(results[2]) == [("complete_the_look", "email")]
    outranked = [c for c in results[1].decision.candidates if c.reason is Reason.OUTRANKED]
    assert [c.action for c in outranked] == ["complete_the_look"]


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


def test_a_checkout_before_30_minutes_cancels_the_reminder() -> None:
    checkout = at("order_completed", 10, order_id="o1", value=20.0)
    state, _ = run([add_to_cart(0), checkout], now_ms=NOON_MS)
    _, actions = fired_actions(state, 31)
    assert "cart_reminder" not in actions


def test_the_app_invitation_comes_two_days_after_the_first_order_without_an_app() -> None:
    state, _ = run([at("order_completed", 0, order_id="o1", value=20.0)], now_ms=NOON_MS)
    _, actions = fired_actions(state, 2 * 24 * 60)
    assert actions == ["app_download_invite"]
    installed, _ = run(
        [at("order_completed", 0, order_id="o1", value=20.0), at("app_installed", 60, "app")],
        now_ms=NOON_MS,
    )
    assert "app_invite_follow_up" not in installed.timers


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
