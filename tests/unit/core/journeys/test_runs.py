"""Journey runs in the pure core: entry, sends through the arbiter, waits, exits, goals."""

from __future__ import annotations

from stream.core.decide.holdout import group_of
from stream.core.pipeline import StepResult, fire, step
from stream.core.state import new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CONSENT = {"consent": {"email": True, "push": True, "sms": True}, "timezone": "UTC"}

POLICY = """
    format: 1
    name: journeys
    contact_policy: {default_timezone: UTC}
    holdout: {control_share: 0.0}
    actions:
      - id: app_invite
        category: marketing
        channels: [email]
        payload: {order_id: event.properties.order_id}
      - id: getting_started
        category: marketing
        channels: [push]
      - id: sms_invite
        category: marketing
        channels: [sms]
      - id: banner
        category: marketing
        channels: [web]
        triggers: [{event: page_view}]
        eligibility: "!('onboarding' in customer.journeys)"
    journeys:
      - id: onboarding
        description: invite to the app; welcome if installed, else one SMS
        entry: {event: order_completed, when: customer.orders.count == 1}
        reentry: never
        max_duration: 10d
        exit: [{event: product_return}]
        goal: {event: app_installed}
        start: invite
        nodes:
          invite: {send: app_invite, next: wait_install}
          wait_install:
            wait_for: {event: app_installed}
            timeout: 2d
            next: welcome
            on_timeout: sms
          welcome: {send: getting_started, next: done}
          sms: {send: sms_invite, next: done}
          done: {exit: completed}
"""
P = policy_from(POLICY)


def event(type_: str, at_ms: int, **properties) -> object:
    return build_event(type_, properties=properties, at_ms=at_ms, context=CONSENT)


def first_order(at_ms: int = NOON_MS, order_id: str = "o1"):
    return event("order_completed", at_ms, order_id=order_id, value=50.0)


def entered(now_ms: int = NOON_MS) -> StepResult:
    return step(new_state("C000001"), first_order(now_ms), now_ms, LIMITS, P)


def test_first_order_enters_and_sends_the_invite_through_the_arbiter():
    result = entered()
    run = result.state.journeys["onboarding"]
    assert run["node"] == "wait_install"
    assert run["due_ms"] == NOON_MS + 2 * DAY_MS
    (action,) = result.to_send
    assert (action.action, action.channel) == ("app_invite", "email")
    assert action.payload == {"order_id": "o1"}
    assert action.journey is not None
    assert (action.journey.journey, action.journey.node) == ("onboarding", "invite")
    assert action.journey.version == P.journeys[0].version
    (decision,) = result.decisions
    assert decision.to_message()["journey"]["run"] == run["run"]
    moves = [(m.node, m.what, m.detail) for m in result.journeys]
    assert moves == [("invite", "entered", ""), ("invite", "edge", "sent")]


def test_the_awaited_event_moves_the_run_on_and_counts_the_goal():
    state = entered().state
    result = step(state, event("app_installed", NOON_MS + HOUR_MS), NOON_MS + HOUR_MS, LIMITS, P)
    assert [a.action for a in result.to_send] == ["getting_started"]
    assert "onboarding" not in result.state.journeys
    assert result.state.journey_ends["onboarding"]["reason"] == "completed"
    whats = [(m.what, m.detail) for m in result.journeys]
    assert whats[0] == ("converted", "")
    assert ("edge", "next") in whats and ("exited", "completed") in whats


def test_the_timeout_takes_the_other_path_once():
    state = entered().state
    due = state.next_due_ms()
    assert fire(state, due - 1, P).to_send == ()
    result = fire(state, due, P)
    assert [a.action for a in result.to_send] == ["sms_invite"]
    assert ("edge", "timeout") in [(m.what, m.detail) for m in result.journeys]
    assert result.state.journeys == {}
    assert fire(result.state, due, P).to_send == ()  # a redelivered firing: nothing


def test_an_exit_event_ends_the_run_at_once_and_nothing_is_sent_after():
    state = entered().state
    result = step(
        state,
        event("product_return", NOON_MS + HOUR_MS, order_id="o1", value=5.0),
        NOON_MS + HOUR_MS,
        LIMITS,
        P,
    )
    assert result.state.journeys == {}
    assert result.state.next_due_ms() is None
    assert fire(result.state, NOON_MS + 3 * DAY_MS, P).to_send == ()


def test_a_redelivered_entry_event_sends_nothing_twice():
    order = first_order()
    once = step(new_state("C000001"), order, NOON_MS, LIMITS, P)
    again = step(once.state, order, NOON_MS + 1000, LIMITS, P)
    assert again.duplicate and again.to_send == ()


def test_reentry_never_keeps_a_customer_out_after_the_first_run():
    state = entered().state
    state = fire(state, NOON_MS + 2 * DAY_MS, P).state
    state.orders["count"] = 0  # as if it were a first order again
    result = step(state, first_order(NOON_MS + 3 * DAY_MS, "o2"), NOON_MS + 3 * DAY_MS, LIMITS, P)
    assert result.state.journeys == {}


def test_always_on_actions_see_the_journey_state():
    state = entered().state
    result = step(state, event("page_view", NOON_MS + 60_000, url="/"), NOON_MS + 60_000, LIMITS, P)
    (decision,) = result.decisions
    assert decision.candidates[0].reason.value == "not_eligible"


def test_a_control_group_customer_walks_the_journey_without_messages():
    policy = policy_from(POLICY.replace("control_share: 0.0", "control_share: 0.5"))
    key = next(
        k for k in (f"C{n:06d}" for n in range(100)) if group_of(k, policy.holdout) == "control"
    )
    order = build_event(
        "order_completed",
        properties={"order_id": "o1", "value": 5.0},
        at_ms=NOON_MS,
        customer_key=key,
        context=CONSENT,
    )
    result = step(new_state(key), order, NOON_MS, LIMITS, policy)
    assert result.to_send == ()
    assert result.decisions[0].held_out
    assert result.state.journeys["onboarding"]["node"] == "wait_install"
    assert {m.group for m in result.journeys} == {"control"}


def test_a_max_duration_ends_a_run_that_still_waits():
    policy = policy_from(POLICY.replace("timeout: 2d", "timeout: 9d"))
    state = step(new_state("C000001"), first_order(), NOON_MS, LIMITS, policy).state
    state.journeys["onboarding"]["due_ms"] = state.journeys["onboarding"]["ends_ms"]
    result = fire(state, NOON_MS + 10 * DAY_MS, policy)
    assert result.state.journeys == {}
    assert result.state.journey_ends["onboarding"]["reason"] == "max_duration"


def test_a_merged_profile_keeps_one_run_per_journey_the_one_that_entered_first():
    from stream.core.merge import merge_in

    early = entered(NOON_MS).state
    late = step(
        new_state("C000002"), first_order(NOON_MS + HOUR_MS, "o9"), NOON_MS + HOUR_MS, LIMITS, P
    ).state
    merged = merge_in(late, "C000002", "C000001", early.to_dict(), LIMITS)
    assert merged is not None
    assert merged.journeys["onboarding"]["run"] == early.journeys["onboarding"]["run"]
    assert list(merged.journeys) == ["onboarding"]
