"""Durable timers in the pure core: arming, cancelling, re-arming, ordering, firing once."""

from __future__ import annotations

from stream.core.decide import Reason
from stream.core.pipeline import fire, step
from stream.core.state import CustomerState
from stream.core.timers import TimerChange
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

MINUTE_MS = 60_000

POLICY = """
    format: 1
    name: timers
    timers:
      - name: cart
        delay: 30m
        start: [{event: add_to_cart}]
        cancel:
          - {event: order_completed}
          - {event: remove_from_cart, when: customer.cart.items == 0}
      - name: first_order
        delay: 2d
        restart: false
        start: [{event: order_completed}]
      - name: idle
        delay: 10m
        grace: 5m
        start: [{event: "*", when: "event.type != 'email_delivered'"}]
    actions:
      - id: remind
        category: marketing
        channels: [web]
        triggers: [{timer: cart}]
        eligibility: customer.cart.items > 0
        payload: {armed_by: event.properties.armed_by}
      - id: follow_up
        category: marketing
        channels: [web]
        triggers: [{timer: first_order}]
      - id: nudge
        category: marketing
        channels: [web]
        triggers: [{timer: idle}]
"""
P = policy_from(POLICY)


def cart(at_ms: int, **kw):
    return build_event(
        "add_to_cart", properties={"product_id": "p1", "price": 5.0}, at_ms=at_ms, **kw
    )


def order(at_ms: int, **kw):
    return build_event(
        "order_completed", properties={"order_id": "o1", "value": 5.0}, at_ms=at_ms, **kw
    )


def apply(events, state: CustomerState | None = None, now_ms: int = NOON_MS):
    results = []
    for event in events:
        result = step(state, event, now_ms, LIMITS, P)
        state = result.state
        results.append(result)
    assert state is not None
    return state, results


def test_a_start_event_arms_a_timer_due_at_its_event_time_plus_delay() -> None:
    state, [result] = apply([cart(NOON_MS - 5 * MINUTE_MS)])
    timer = state.timers["cart"]
    assert timer["due_ms"] == NOON_MS + 25 * MINUTE_MS  # anchored on occurred_at, not on now
    assert timer["armed_by"] == "add_to_cart"
    assert ("cart", TimerChange.ARMED) in {(u.timer, u.change) for u in result.timer_updates}
    assert state.next_due_ms() == NOON_MS + 10 * MINUTE_MS - 5 * MINUTE_MS  # idle comes first


def test_the_timer_fires_once_when_due_and_decides_like_an_event() -> None:
    state, _ = apply([cart(NOON_MS)])
    early = fire(state, NOON_MS + 29 * MINUTE_MS, P)
    assert [f.name for f in early.fired] == ["idle"]
    due = fire(early.state, NOON_MS + 30 * MINUTE_MS, P)
    [fired] = due.fired
    assert fired.name == "cart"
    [decision] = due.decisions
    assert (decision.trigger.type, decision.trigger.channel) == ("cart", "timer")
    [action] = due.to_send
    assert action.action == "remind" and action.payload == {"armed_by": "add_to_cart"}
    assert "cart" not in due.state.timers
    again = fire(due.state, NOON_MS + 31 * MINUTE_MS, P)
    assert again.decisions == () and again.state is due.state  # a second firing does nothing


def test_an_order_cancels_the_abandonment_timer() -> None:
    state, results = apply([cart(NOON_MS), order(NOON_MS + MINUTE_MS)])
    assert "cart" not in state.timers
    assert ("cart", TimerChange.CANCELLED) in {
        (u.timer, u.change) for u in results[1].timer_updates
    }
    later = fire(state, NOON_MS + 3 * 86_400_000, P)
    assert [f.name for f in later.fired] == ["idle", "first_order"]  # in deadline order
    assert "remind" not in {a.action for a in later.to_send}


def test_a_conditional_cancel_needs_its_condition() -> None:
    remove = build_event(
        "remove_from_cart", properties={"product_id": "p1", "quantity": 1}, at_ms=NOON_MS + 1
    )
    other = build_event("add_to_cart", properties={"product_id": "p2", "price": 3.0}, at_ms=NOON_MS)
    state, _ = apply([cart(NOON_MS), other, remove])
    assert "cart" in state.timers  # one item left: still abandoned
    empty, _ = apply(
        [
            build_event(
                "remove_from_cart",
                properties={"product_id": "p2", "quantity": 1},
                at_ms=NOON_MS + 2,
            )
        ],
        state,
    )
    assert "cart" not in empty.timers


def test_a_later_start_rearms_and_an_earlier_one_does_not() -> None:
    state, _ = apply([cart(NOON_MS)])
    first_id = state.timers["cart"]["id"]
    state, [result] = apply([cart(NOON_MS + 10 * MINUTE_MS)], state)
    assert state.timers["cart"]["due_ms"] == NOON_MS + 40 * MINUTE_MS
    assert state.timers["cart"]["id"] != first_id
    assert ("cart", TimerChange.REARMED) in {(u.timer, u.change) for u in result.timer_updates}
    state, _ = apply([cart(NOON_MS + 5 * MINUTE_MS)], state)  # out of order: older
    assert state.timers["cart"]["due_ms"] == NOON_MS + 40 * MINUTE_MS


def test_without_restart_the_first_deadline_stands() -> None:
    state, _ = apply([order(NOON_MS)])
    state, _ = apply([order(NOON_MS + 86_400_000, event_id="o2")], state)
    assert state.timers["first_order"]["due_ms"] == NOON_MS + 2 * 86_400_000


def test_a_late_cancel_older_than_the_start_does_not_cancel() -> None:
    state, _ = apply([cart(NOON_MS), order(NOON_MS - MINUTE_MS)])  # the order came before
    assert "cart" in state.timers


def test_a_late_start_older_than_the_last_cancel_arms_nothing() -> None:
    state, _ = apply([order(NOON_MS), cart(NOON_MS - MINUTE_MS)])  # cart was checked out
    assert "cart" not in state.timers


def test_a_start_event_too_old_for_its_grace_arms_nothing() -> None:
    stale = build_event("page_view", at_ms=NOON_MS - 20 * MINUTE_MS)  # due 10 min ago, grace 5
    state, [result] = apply([stale])
    assert "idle" not in state.timers
    assert ("idle", TimerChange.STALE) in {(u.timer, u.change) for u in result.timer_updates}
    fresh, _ = apply([build_event("page_view", at_ms=NOON_MS - 12 * MINUTE_MS)])
    assert "idle" in fresh.timers  # due 2 min ago: within grace, fires at the next tick


def test_a_start_condition_filters_events() -> None:
    state, _ = apply([build_event("email_delivered", "email")])
    assert "idle" not in state.timers


def test_a_duplicate_event_does_not_rearm() -> None:
    event = cart(NOON_MS)
    state, _ = apply([event])
    again, [result] = apply([event], state)
    assert result.duplicate and again.timers == state.timers


def test_timers_survive_the_stored_form() -> None:
    state, _ = apply([cart(NOON_MS)])
    restored = CustomerState.from_dict(state.to_dict())
    assert restored.timers == state.timers and restored.next_due_ms() == state.next_due_ms()


def test_the_timer_decision_rechecks_the_state() -> None:
    state, _ = apply([cart(NOON_MS)])
    state.cart = {"items": {}, "value": 0.0, "updated_at_ms": NOON_MS}  # emptied by other means
    result = fire(state, NOON_MS + 30 * MINUTE_MS, P)
    [decision] = [d for d in result.decisions if d.trigger.type == "cart"]
    assert decision.actions == ()
    assert decision.candidates[0].reason is Reason.NOT_ELIGIBLE


def test_firing_the_same_state_twice_gives_the_same_ids() -> None:
    state, _ = apply([cart(NOON_MS)])
    a = fire(state, NOON_MS + 31 * MINUTE_MS, P)
    b = fire(state, NOON_MS + 45 * MINUTE_MS, P)
    assert [x.action_id for x in a.to_send] == [x.action_id for x in b.to_send]
    assert [d.decision_id for d in a.decisions] == [d.decision_id for d in b.decisions]


def test_an_any_event_trigger_skips_the_types_its_except_list_names() -> None:
    policy = policy_from("""
        format: 1
        name: quiet
        timers:
          - name: quiet
            delay: 10m
            start: [{event: "*", except: [email_delivered, bounced]}]
        actions:
          - {id: check_in, category: marketing, channels: [web], triggers: [{timer: quiet}]}
    """)
    state = None
    for echo in ("email_delivered", "bounced"):
        state = step(state, build_event(echo, at_ms=NOON_MS), NOON_MS, LIMITS, policy).state
        assert "quiet" not in state.timers
    state = step(state, build_event("page_view", at_ms=NOON_MS), NOON_MS, LIMITS, policy).state
    assert state.timers["quiet"]["armed_by"] == "page_view"
