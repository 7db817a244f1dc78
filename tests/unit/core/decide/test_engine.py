"""The arbiter's rules, each on a small policy written for the test."""

from __future__ import annotations

from dataclasses import replace

from stream.core.decide import Reason
from stream.core.timestamps import format_ms
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import NOON_MS, policy_from, run

HOUR_MS = 3_600_000

TWO_ACTIONS = """
    format: 1
    name: t
    arbitration: {max_actions: %(max)d, one_per_channel: %(per_channel)s}
    contact_policy:
      caps: [{name: marketing_daily, categories: [marketing], max: 5, window: 24h}]
    actions:
      - id: big
        category: marketing
        channels: [email]
        value: 10
        propensity: 0.5
        triggers: [{event: order_completed}]
      - id: small
        category: marketing
        channels: [email, push]
        value: 1
        propensity: 0.5
        triggers: [{event: order_completed}]
"""


APP = build_event("app_installed", "app")  # push reaches only app users


def order(order_id: str = "o1", **kw):
    return build_event("order_completed", properties={"order_id": order_id, "value": 10.0}, **kw)


def test_arbitration_ranks_by_propensity_times_weight_value_and_lever() -> None:
    policy = policy_from(TWO_ACTIONS % {"max": 1, "per_channel": "false"})
    _, [result] = run([order()], policy)
    assert [a.action for a in result.decision.actions] == ["big"]
    by_action = {c.action: c for c in result.decision.candidates}
    assert by_action["big"].scores.priority == 5.0
    assert by_action["small"].reason is Reason.OUTRANKED


def test_top_n_and_one_action_per_channel() -> None:
    top2 = policy_from(TWO_ACTIONS % {"max": 2, "per_channel": "false"})
    _, [result] = run([order()], top2)
    assert [(a.action, a.channel) for a in result.decision.actions] == [
        ("big", "email"),
        ("small", "email"),
    ]
    per_channel = policy_from(TWO_ACTIONS % {"max": 2, "per_channel": "true"})
    _, [_, result] = run([APP, order()], per_channel)
    assert [(a.action, a.channel) for a in result.decision.actions] == [
        ("big", "email"),
        ("small", "push"),
    ]


CAPPED = """
    format: 1
    name: caps
    contact_policy:
      caps:
        - {name: email_daily, channels: [email], max: 1, window: 24h}
    actions:
      - id: promo
        category: marketing
        channels: [email, push]
        triggers: [{event: order_completed}]
      - id: receipt
        category: transactional
        channels: [email]
        triggers: [{event: store_purchase}]
"""


def test_capped_channel_falls_back_to_the_next_and_then_suppresses() -> None:
    policy = policy_from(CAPPED)
    _, [_, *results] = run([APP, order("o1"), order("o2"), order("o3")], policy, gap_ms=HOUR_MS)
    assert [a.channel for a in results[0].decision.actions] == ["email"]
    assert [a.channel for a in results[1].decision.actions] == ["push"]
    email_only = policy_from(CAPPED.replace("channels: [email, push]", "channels: [email]"))
    _, results = run([order("o1"), order("o2")], email_only, gap_ms=23 * HOUR_MS)
    [candidate] = results[1].decision.candidates
    assert candidate.reason is Reason.CONTACT_CAP and "email_daily" in candidate.detail
    assert dict(candidate.channel_checks) == {"email": "contact_cap"}
    _, results = run([order("o1"), order("o2")], email_only, gap_ms=24 * HOUR_MS)
    assert [a.channel for a in results[1].decision.actions] == ["email"]


def test_exempt_categories_ignore_caps() -> None:
    policy = policy_from(CAPPED)
    purchase = build_event(
        "store_purchase", "store", {"store_id": "s", "order_id": "x", "value": 1.0}
    )
    _, results = run([order("o1"), purchase], policy)
    assert [a.action for a in results[1].decision.actions] == ["receipt"]


def test_unsubscribed_channel_is_never_chosen_but_transactional_email_still_goes() -> None:
    policy = policy_from(CAPPED)
    purchase = build_event(
        "store_purchase", "store", {"store_id": "s", "order_id": "x", "value": 1.0}
    )
    _, [_, *results] = run(
        [APP, build_event("unsubscribed", "email"), order("o1"), purchase], policy
    )
    assert [a.channel for a in results[1].decision.actions] == ["push"]
    assert [a.channel for a in results[2].decision.actions] == ["email"]


def test_hard_bounce_stops_all_email() -> None:
    policy = policy_from(CAPPED)
    purchase = build_event(
        "store_purchase", "store", {"store_id": "s", "order_id": "x", "value": 1.0}
    )
    _, results = run([build_event("bounced", "email", {"bounce_type": "hard"}), purchase], policy)
    assert results[1].decision.actions == ()
    assert results[1].decision.candidates[0].reason is Reason.NO_CONSENT


def test_channel_choice_follows_the_best_response_rate() -> None:
    policy = policy_from(CAPPED.replace("max: 1,", "max: 9,"))
    opened = [build_event("push_opened", "app") for _ in range(3)]  # push_opened: app in use
    _, results = run([*opened, order("o1")], policy)
    assert [a.channel for a in results[-1].decision.actions] == ["push"]


QUIET = """
    format: 1
    name: quiet
    contact_policy:
      default_timezone: Europe/Paris
      quiet_hours: {start: "21:00", end: "08:00", channels: [email]}
    actions:
      - id: promo
        category: marketing
        channels: [email]
        validity: 1d
        triggers: [{event: order_completed}]
"""


def test_quiet_hours_hold_the_message_until_local_morning() -> None:
    policy = policy_from(QUIET)
    late_evening = NOON_MS + 11 * HOUR_MS  # 22:00 in Paris
    _, [result] = run(
        [order(context={"timezone": "Europe/Paris", "consent": {"email": True}})],
        policy,
        now_ms=late_evening,
    )
    [action] = result.decision.actions
    assert format_ms(action.send_after_ms) == "2026-11-24T07:00:00.000Z"  # 08:00 Paris
    assert action.expires_at_ms == action.send_after_ms + 86_400_000
    _, [daytime] = run([order()], policy)
    assert daytime.decision.actions[0].send_after_ms is None


def test_customer_time_zone_decides_quiet_hours() -> None:
    policy = policy_from(QUIET)
    _, [result] = run(
        [order(context={"timezone": "America/New_York", "consent": {"email": True}})],
        policy,
        now_ms=NOON_MS + 11 * HOUR_MS,
    )  # 21:00 UTC = 16:00 in New York
    assert result.decision.actions[0].send_after_ms is None


def test_a_time_zone_name_that_is_no_zone_falls_back_to_the_policy_default() -> None:
    # Found by tests/unit/core/test_fuzz.py: any string passes the schema, and a directory
    # of the zone database or an overlong name made ZoneInfo raise an OSError.
    policy = policy_from(QUIET)
    for name in ("Europe", "a" * 300, "Europe/Paris/", "no/such/zone"):
        _, [result] = run(
            [order(context={"timezone": name, "consent": {"email": True}})],
            policy,
            now_ms=NOON_MS + 11 * HOUR_MS,  # 22:00 in Paris, the default
        )
        [action] = result.decision.actions
        assert format_ms(action.send_after_ms) == "2026-11-24T07:00:00.000Z", name


CONDITIONS = """
    format: 1
    name: cond
    constants: {threshold: 2}
    actions:
      - id: picky
        category: marketing
        channels: [email]
        cooldown: 1h
        triggers: [{event: order_completed, when: "event.properties.value > 5.0"}]
        eligibility: customer.orders.count >= constants.threshold
      - id: broken
        category: marketing
        channels: [email]
        triggers: [{event: order_completed}]
        # currency is optional and these orders carry none: a run-time error the check
        # cannot see (a misspelled field is refused by the check, see test_policy_fields)
        eligibility: event.properties.currency == 'EUR'
"""


def test_conditions_filter_with_their_reason_and_runtime_errors_are_explained() -> None:
    policy = policy_from(CONDITIONS)
    _, results = run([order("o1"), order("o2"), order("o3")], policy, gap_ms=60_000)
    first = {c.action: c for c in results[0].decision.candidates}
    assert first["picky"].reason is Reason.NOT_ELIGIBLE
    assert first["broken"].reason is Reason.CONDITION_ERROR
    assert "currency" in first["broken"].detail
    assert [a.action for a in results[1].decision.actions] == ["picky"]
    assert results[2].decision.candidates[0].reason is Reason.COOLDOWN
    cheap = build_event("order_completed", properties={"order_id": "c", "value": 1.0})
    _, [low] = run([cheap], policy)
    assert {c.action: c.reason for c in low.decision.candidates}[
        "picky"
    ] is Reason.TRIGGER_CONDITION


def test_same_inputs_give_the_same_decision_and_explain_record() -> None:
    event = build_event(
        "order_completed", properties={"order_id": "o1", "value": 10.0, "category": "beauty"}
    )
    _, [a] = run([event])
    _, [b] = run([event])
    assert a.decision == b.decision
    assert a.decision.to_message() == b.decision.to_message()
    _, [later] = run([event], now_ms=NOON_MS + 5_000)
    assert later.decision.actions[0].action_id == a.decision.actions[0].action_id
    assert later.decision.actions[0].idempotency_key == a.decision.actions[0].idempotency_key


def test_events_no_action_names_decide_nothing() -> None:
    _, [result] = run([build_event("email_delivered", "email")])
    assert result.decision is None


def test_explain_record_validates_against_its_schema() -> None:
    from tests.unit.core.decide.helpers import CATALOG

    _, results = run([order("o1"), replace(order("o2"), event_id="x2")])
    for result in results:
        message = result.decision.to_message()
        assert CATALOG.message_error("decision", message) is None
        for action in result.decision.actions:
            assert CATALOG.message_error("action", action.to_message()) is None
