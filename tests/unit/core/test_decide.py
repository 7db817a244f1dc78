from dataclasses import replace

from stream.core.decide import MARKETING_CAP_PER_DAY, SuppressionReason
from stream.core.pipeline import step
from stream.core.state import Limits, new_state
from tests.unit.core.conftest import T0, build_event

LIMITS = Limits()
NOW = T0 + 60_000


def run(*events, state=None, now=NOW):
    state = state or new_state("C000001")
    results = []
    for event in events:
        result = step(state, event, now, LIMITS, "test-v1")
        state = result.state
        results.append(result)
    return state, results


def order(order_id="o1", category="shoes", **kw):
    return build_event(
        "order_completed",
        properties={"order_id": order_id, "value": 50.0, "category": category},
        **kw,
    )


def test_complaint_creates_a_service_recovery_task_for_the_call_center() -> None:
    _, [result] = run(
        build_event(
            "complaint_opened",
            "call_center",
            {"case_id": "K9", "reason": "late delivery", "severity": "high"},
        )
    )
    [action] = result.decision.actions
    assert (action.action, action.channel, action.category.value) == (
        "service_recovery",
        "call_center",
        "service",
    )
    assert action.payload["case_id"] == "K9"


def test_first_order_invites_to_the_app_with_a_qr_code() -> None:
    _, [result] = run(order())
    [action] = result.decision.actions
    assert action.action == "app_download_invite" and action.channel == "email"
    assert action.payload == {"qr_code": True, "placement": "parcel"}


def test_invite_falls_back_to_sms_without_email_consent() -> None:
    _, [result] = run(order(context={"consent": {"email": False, "sms": True}}))
    assert result.decision.actions[0].channel == "sms"


def test_repeat_order_gets_a_cross_sell_from_its_category() -> None:
    _, results = run(order("o1"), order("o2", category="shoes"))
    [action] = results[1].decision.actions
    assert action.action == "cross_sell"
    assert action.payload["recommended_category"] == "accessories"


def test_app_users_get_cross_sell_by_push() -> None:
    _, results = run(order("o1"), build_event("app_installed", "app"), order("o2"))
    assert results[2].decision.actions[0].channel == "push"


def test_open_complaint_suppresses_marketing_but_not_service() -> None:
    complaint = build_event("complaint_opened", "call_center", {"case_id": "K1", "reason": "x"})
    _, results = run(complaint, order())
    decision = results[1].decision
    assert decision.actions == ()
    [candidate] = decision.candidates
    assert candidate.reason is SuppressionReason.OPEN_SERVICE_CASE
    assert decision.to_message()["candidates"][0]["outcome"] == "suppressed"


def test_no_consent_anywhere_suppresses_with_reason() -> None:
    _, [result] = run(order(context={"consent": {"email": False, "sms": False}}))
    assert result.decision.candidates[0].reason is SuppressionReason.NO_CONSENT


def test_marketing_is_capped_per_rolling_day() -> None:
    orders = [order(f"o{i}") for i in range(MARKETING_CAP_PER_DAY + 2)]
    state, results = run(*orders)
    sent = [r for r in results if r.decision and r.decision.actions]
    assert len(sent) == MARKETING_CAP_PER_DAY
    assert results[-1].decision.candidates[0].reason is SuppressionReason.CONTACT_CAP
    # a day later the cap has room again
    _, [later] = run(order("o-next-day"), state=state, now=NOW + 25 * 3_600_000)
    assert later.decision.actions


def test_same_trigger_gives_the_same_action_id_and_idempotency_key() -> None:
    event = order()
    _, [a] = run(event)
    _, [b] = run(event, now=NOW + 5_000)
    assert a.decision.actions[0].action_id == b.decision.actions[0].action_id
    assert a.decision.actions[0].idempotency_key == b.decision.actions[0].idempotency_key


def test_duplicate_event_decides_nothing() -> None:
    event = order()
    state, _ = run(event)
    _, [again] = run(event, state=state)
    assert again.duplicate and again.decision is None


def test_sent_actions_are_recorded_as_contacts() -> None:
    state, [result] = run(order())
    assert [c["action_id"] for c in state.contacts] == [result.decision.actions[0].action_id]


def test_page_views_decide_nothing() -> None:
    _, [result] = run(build_event("page_view", properties={"url": "/"}))
    assert result.decision is None


def test_anonymous_visitors_are_not_emailed() -> None:
    anonymous = replace(
        build_event(
            "order_completed", properties={"order_id": "o", "value": 5.0}, customer_key="anon:a1"
        ),
        identifiers={"anonymous_id": "a1"},
    )
    _, [result] = run(anonymous, state=new_state("anon:a1"))
    assert result.decision.actions == ()
    assert result.decision.candidates[0].reason is SuppressionReason.UNREACHABLE
