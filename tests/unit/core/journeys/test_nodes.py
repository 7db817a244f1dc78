"""Every journey node and rule, one behaviour per test, through step / fire / observe."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson

from stream.core import census, performance
from stream.core.decide.holdout import bucket
from stream.core.fold import FoldContext, fold_partition
from stream.core.messages import EventMessage, Firing, encode
from stream.core.pipeline import fire, observe, step
from stream.core.propensity import EMPTY_MODEL
from stream.core.state import new_state
from stream.core.stored import CENSUS, Tables, census_key
from tests.unit.core.decide.helpers import LIMITS, NOON_MS
from tests.unit.core.journeys.helpers import (
    CONSENT,
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    enter,
    event,
    journey_policy,
    moves,
    order,
    outcome,
    sent,
)


def ended(result, journey: str = "j") -> str:
    """Why the customer's last run of ``journey`` ended (it has no active run)."""
    return ended_reason(result.state, journey)


def ended_reason(state, journey: str = "j") -> str:
    assert journey not in state.journeys
    return state.journey_ends[journey]["reason"]


def then(state, incoming, policy):
    """The step of ``incoming`` processed at its own time."""
    return step(state, incoming, incoming.occurred_at_ms, LIMITS, policy)


# --- branch ------------------------------------------------------------------------------

BRANCH = journey_policy("""
    - id: j
      entry: {event: order_completed}
      max_duration: 1d
      start: route
      nodes:
        route:
          branch:
            - {name: big, when: "event.properties.value >= 100.0", next: big}
            - {name: repeat, when: "customer.orders.count > 1", next: repeat}
            - {name: euro, when: "event.properties.currency == 'EUR'", next: euro}
          else: other
        big: {exit: big}
        repeat: {exit: repeat}
        euro: {exit: euro}
        other: {exit: other}
""")


def test_a_branch_takes_the_first_case_that_holds():
    state = enter(BRANCH, order(order_id="o1", currency="EUR")).state
    assert state.journey_ends["j"]["reason"] == "euro"
    state.journey_ends.clear()
    second = step(state, order(NOON_MS, "o2", 150.0), NOON_MS, LIMITS, BRANCH)
    assert ended(second) == "big"  # "repeat" holds too, but comes later
    assert ("route", "edge", "big") in moves(second)
    third = step(second.state, order(NOON_MS, "o3", currency="EUR"), NOON_MS, LIMITS, BRANCH)
    assert ended(third) == "repeat"


def test_a_branch_with_no_case_holding_takes_else():
    result = enter(BRANCH, order(currency="USD"))
    assert ended(result) == "other"
    assert ("route", "edge", "else") in moves(result)


def test_a_branch_case_that_fails_to_evaluate_counts_as_false_and_takes_else():
    result = enter(BRANCH)  # no currency on the order: the third case cannot be evaluated
    assert ended(result) == "other"


# --- split -------------------------------------------------------------------------------

SPLIT = journey_policy("""
    - id: j
      entry: {event: order_completed}
      max_duration: 1d
      start: arms
      nodes:
        arms:
          split:
            - {arm: small, weight: 30, next: small}
            - {arm: large, weight: 70, next: large}
        small: {exit: small}
        large: {exit: large}
""")


def arm_of(key: str) -> str:
    result = enter(SPLIT, order(key=key))
    return result.state.journey_ends["j"]["reason"]


def test_a_split_is_stable_per_customer_across_runs():
    state = enter(SPLIT).state
    first = state.journey_ends["j"]["reason"]
    for index in range(2, 6):  # re-entry after exit is the default
        state = step(state, order(order_id=f"o{index}"), NOON_MS, LIMITS, SPLIT).state
        assert state.journey_ends["j"] == {"at_ms": NOON_MS, "reason": first, "runs": index}


def test_a_split_respects_its_weights_over_many_customers_and_is_deterministic():
    keys = [f"C{n:06d}" for n in range(1000)]
    arms = [arm_of(key) for key in keys]
    share = Counter(arms)["small"] / len(keys)
    assert abs(share - 0.30) < 0.05, share
    assert [arm_of(key) for key in keys[:50]] == arms[:50]
    # the arm is the customer's bucket against the cumulative weights
    salt = SPLIT.holdout.salt
    expected = ["small" if bucket(salt, "journey", "j", "arms", k) < 0.3 else "large" for k in keys]
    assert arms == expected


# --- wait --------------------------------------------------------------------------------


def wait_policy(wait: str, entry: str = "order_completed", max_duration: str = "3d"):
    return journey_policy(f"""
        - id: j
          entry: {{event: {entry}}}
          max_duration: {max_duration}
          start: pause
          nodes:
            pause: {{wait: {wait}, next: nudge}}
            nudge: {{send: promo_email, next: done}}
            done: {{exit: completed}}
    """)


def test_a_wait_of_a_duration_holds_the_run_until_it_is_over():
    policy = wait_policy("3h")
    state = enter(policy).state
    assert state.journeys["j"]["node"] == "pause"
    assert state.next_due_ms() == NOON_MS + 3 * HOUR_MS
    early = fire(state, NOON_MS + 3 * HOUR_MS - 1, policy)
    assert early.to_send == () and early.state is state
    result = fire(state, NOON_MS + 3 * HOUR_MS, policy)
    assert sent(result) == ["promo_email"]
    assert ("pause", "edge", "next") in moves(result)
    assert ended(result) == "completed"


def at(text: str) -> int:
    """Epoch ms of an ISO time with its offset."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def wait_until_local(clock: str, zone: str, now_ms: int) -> int:
    """When a run entered at ``now_ms`` by a customer in ``zone`` waits until."""
    policy = wait_policy(f"{{until_local: '{clock}'}}")
    context = {**CONSENT, "timezone": zone}
    state = enter(policy, order(now_ms, context=context), now_ms).state
    return state.journeys["j"]["due_ms"]


def test_a_wait_until_a_local_time_later_today_in_a_zone_without_dst():
    now_ms = at("2026-11-23T19:00:00+09:00")  # Tokyo: UTC+9 all year
    assert wait_until_local("21:00", "Asia/Tokyo", now_ms) == at("2026-11-23T21:00:00+09:00")


def test_a_wait_until_a_local_time_already_past_today_goes_across_midnight():
    now_ms = at("2026-11-23T19:00:00+09:00")
    due_ms = wait_until_local("08:00", "Asia/Tokyo", now_ms)
    assert due_ms == at("2026-11-24T08:00:00+09:00")
    assert due_ms - now_ms == 13 * HOUR_MS
    # the very minute it is now waits a whole day
    assert wait_until_local("19:00", "Asia/Tokyo", now_ms) == now_ms + DAY_MS


def test_a_wait_until_a_local_time_follows_the_customers_zone_over_a_dst_change():
    now_ms = at("2026-10-24T20:00:00+02:00")  # Paris, the night summer time ends
    due_ms = wait_until_local("09:00", "Europe/Paris", now_ms)
    assert due_ms == at("2026-10-25T09:00:00+01:00")
    assert due_ms - now_ms == 14 * HOUR_MS


def test_a_wait_until_a_local_time_uses_the_policy_zone_for_an_unknown_one():
    now_ms = NOON_MS
    due_ms = wait_until_local("12:00", "Nowhere/Atlantis", now_ms)
    assert due_ms == int(datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp() * 1000)


def test_a_wait_until_a_time_taken_from_the_entry_event():
    policy = wait_policy("{until: 'event.occurred_at_ms + 86400000'}")
    happened_ms = NOON_MS - HOUR_MS
    state = enter(policy, order(happened_ms)).state
    assert state.journeys["j"]["due_ms"] == happened_ms + DAY_MS
    assert sent(fire(state, happened_ms + DAY_MS, policy)) == ["promo_email"]


def test_a_wait_until_a_time_taken_from_the_profile():
    policy = wait_policy("{until: 'customer.orders.last_order_at_ms + 2 * 86400000'}")
    state = enter(policy, order(NOON_MS - 5 * MINUTE_MS)).state
    assert state.journeys["j"]["due_ms"] == NOON_MS - 5 * MINUTE_MS + 2 * DAY_MS


def test_a_wait_until_a_missing_value_goes_on_at_once():
    # cart_value is optional on checkout_started: without it, there is no time to wait for
    policy = wait_policy(
        "{until: 'event.occurred_at_ms + int(event.properties.cart_value) * 60000'}",
        entry="checkout_started",
    )
    with_value = enter(policy, event("checkout_started", cart_value=30.0)).state
    assert with_value.journeys["j"]["due_ms"] == NOON_MS + 30 * MINUTE_MS
    state = enter(policy, event("checkout_started")).state
    assert state.journeys["j"]["node"] == "pause"
    assert state.next_due_ms() == NOON_MS
    assert sent(fire(state, NOON_MS, policy)) == ["promo_email"]


def test_a_wait_until_a_time_already_past_goes_on_at_the_next_firing():
    policy = wait_policy("{until: 'event.occurred_at_ms - 86400000'}")
    state = enter(policy).state
    assert state.next_due_ms() == NOON_MS


# --- wait_for ----------------------------------------------------------------------------

RETURNS_TEXT = """
    - id: j
      entry: {event: order_completed}
      max_duration: 10d
      start: watch
      nodes:
        watch:
          wait_for: {event: product_return, match: [order_id]}
          timeout: 7d
          next: sorry
          on_timeout: done
        sorry: {send: promo_email, next: done}
        done: {exit: completed}
"""
RETURNS = journey_policy(RETURNS_TEXT)


def a_return(order_id: str, at_ms: int = NOON_MS + HOUR_MS):
    return event("product_return", at_ms, store_id="s1", product_id="p1", order_id=order_id)


def test_wait_for_an_event_matched_on_a_property_ignores_another_order():
    state = enter(RETURNS, order(order_id="o1")).state
    other = step(state, a_return("o2"), NOON_MS + HOUR_MS, LIMITS, RETURNS)
    assert other.to_send == () and other.journeys == ()
    assert other.state.journeys["j"]["node"] == "watch"
    same = step(
        other.state, a_return("o1", NOON_MS + 2 * HOUR_MS), NOON_MS + 2 * HOUR_MS, LIMITS, RETURNS
    )
    assert sent(same) == ["promo_email"]
    assert ("watch", "edge", "next") in moves(same)


def test_wait_for_an_event_that_never_comes_takes_the_timeout_edge():
    state = enter(RETURNS).state
    assert state.next_due_ms() == NOON_MS + 7 * DAY_MS
    result = fire(state, NOON_MS + 7 * DAY_MS, RETURNS)
    assert result.to_send == ()
    assert ("watch", "edge", "timeout") in moves(result)
    assert ended(result) == "completed"


OPENED = journey_policy("""
    - id: j
      entry: {event: order_completed}
      max_duration: 3d
      start: mail
      nodes:
        mail: {send: promo_email, next: read}
        read:
          wait_for: {outcome: opened}
          timeout: 1d
          next: thanks
          on_timeout: nudge
        thanks: {send: promo_sms, next: done}
        nudge: {send: low_offer, next: done}
        done: {exit: completed}
""")


def mailed():
    result = enter(OPENED)
    (mail,) = result.to_send
    return result.state, mail.action_id


def test_wait_for_an_outcome_moves_on_when_the_message_is_opened():
    state, action_id = mailed()
    later = NOON_MS + HOUR_MS
    result = observe(state, outcome(action_id, "opened", at_ms=later), OPENED, later)
    assert sent(result) == ["promo_sms"]
    assert ("read", "edge", "next") in moves(result)
    assert ended(result) == "completed"


def test_wait_for_opened_is_answered_by_a_click_too():
    state, action_id = mailed()
    result = observe(state, outcome(action_id, "clicked"), OPENED, NOON_MS + 1)
    assert sent(result) == ["promo_sms"]


def test_wait_for_opened_is_not_answered_by_a_delivery():
    state, action_id = mailed()
    result = observe(state, outcome(action_id, "delivered"), OPENED, NOON_MS + 1)
    assert result.to_send == () and result.state.journeys["j"]["node"] == "read"


def test_wait_for_an_outcome_ignores_an_outcome_of_another_action():
    state, _ = mailed()
    view = step(state, event("page_view", NOON_MS + 1, url="/"), NOON_MS + 1, LIMITS, OPENED)
    (banner,) = view.to_send
    result = observe(view.state, outcome(banner.action_id, "opened", "web"), OPENED, NOON_MS + 2)
    assert result.to_send == () and result.journeys == ()
    assert result.state.journeys["j"]["node"] == "read"
    timeout = fire(result.state, NOON_MS + DAY_MS, OPENED)
    assert sent(timeout) == ["low_offer"]


# --- send: sent, held, suppressed --------------------------------------------------------


def send_policy(contact: str = "{default_timezone: UTC}", action: str = "promo_email"):
    return journey_policy(
        f"""
        - id: j
          entry: {{event: order_completed}}
          max_duration: 1d
          start: mail
          nodes:
            mail: {{send: {action}, next: other, sent: was_sent, held: was_held,
                    suppressed: was_suppressed}}
            was_sent: {{exit: was_sent}}
            was_held: {{exit: was_held}}
            was_suppressed: {{exit: was_suppressed}}
            other: {{exit: other}}
        """,
        contact,
    )


def test_a_send_that_goes_out_takes_its_sent_edge():
    result = enter(send_policy())
    assert sent(result) == ["promo_email"]
    assert ("mail", "edge", "sent") in moves(result)
    assert ended(result) == "was_sent"


def test_a_send_in_quiet_hours_is_held_and_takes_its_held_edge():
    quiet = "{default_timezone: UTC, quiet_hours: {start: '09:00', end: '13:00'}}"
    result = enter(send_policy(quiet))  # 11:00 UTC
    assert result.to_send == ()
    (held,) = result.held
    assert held.send_after_ms == at("2026-11-23T13:00:00+00:00")
    assert ("mail", "edge", "held") in moves(result)
    assert ended(result) == "was_held"


QUIET = "{default_timezone: UTC, quiet_hours: {start: '09:00', end: '13:00'}}"
HELD_THEN_WAIT = journey_policy(
    """
    - id: j
      entry: {event: order_completed}
      max_duration: 3d
      exit: [{event: product_return}]
      start: mail
      nodes:
        mail: {send: promo_email, next: pause}
        pause: {wait: 1d, next: done}
        done: {exit: completed}
    """,
    QUIET,
)


def test_a_message_held_for_a_run_that_exits_is_withdrawn_at_release():
    state = enter(HELD_THEN_WAIT).state  # held until 13:00 UTC
    left = then(state, a_return("o1", NOON_MS + HOUR_MS), HELD_THEN_WAIT).state
    assert ended_reason(left) == "product_return"
    release = fire(left, at("2026-11-23T13:00:00+00:00"), HELD_THEN_WAIT)
    assert release.to_send == () and release.state.held == []
    (record,) = release.decisions
    assert record.candidates[0].reason.value == "journey_exited"
    assert all(c.get("withdrawn") for c in release.state.contacts)  # its caps are freed


def test_a_message_held_by_the_last_step_of_a_run_still_goes_at_release():
    result = enter(send_policy(QUIET))  # held, then the run ends at its exit node
    assert ended(result) == "was_held"
    release = fire(result.state, at("2026-11-23T13:00:00+00:00"), send_policy(QUIET))
    assert sent(release) == ["promo_email"]


def test_a_transactional_send_is_exempt_from_quiet_hours():
    quiet = "{default_timezone: UTC, quiet_hours: {start: '09:00', end: '13:00'}}"
    result = enter(send_policy(quiet, action="receipt"))
    assert sent(result) == ["receipt"]
    assert ended(result) == "was_sent"


def test_a_send_without_consent_is_suppressed_with_the_reason():
    no_email = {"consent": {"email": False}, "timezone": "UTC"}
    result = enter(send_policy(), order(context=no_email))
    assert result.to_send == () and result.held == ()
    assert ("mail", "suppressed", "no_consent") in moves(result)
    assert ("mail", "edge", "suppressed") in moves(result)
    assert ended(result) == "was_suppressed"


def test_a_send_over_a_cap_is_suppressed_with_the_reason():
    capped = "{default_timezone: UTC, caps: [{name: daily, max: 1, window: 1d}]}"
    policy = send_policy(capped)
    first = enter(policy)
    assert ended(first) == "was_sent"
    again = step(first.state, order(NOON_MS + HOUR_MS, "o2"), NOON_MS + HOUR_MS, LIMITS, policy)
    assert ("mail", "suppressed", "contact_cap") in moves(again)
    assert ended(again) == "was_suppressed"


def test_a_send_without_a_result_edge_takes_next():
    policy = journey_policy("""
        - id: j
          entry: {event: order_completed}
          max_duration: 1d
          start: mail
          nodes:
            mail: {send: promo_email, next: done, suppressed: skipped}
            done: {exit: completed}
            skipped: {exit: skipped}
    """)
    assert ended(enter(policy)) == "completed"


# --- decide ------------------------------------------------------------------------------

DECIDE = journey_policy("""
    - id: j
      entry: {event: order_completed}
      max_duration: 1d
      start: offer
      nodes:
        offer: {decide: [low_offer, high_offer], next: done}
        done: {exit: completed}
""")


def test_decide_hands_its_actions_to_the_arbiter_which_picks_the_best():
    result = enter(DECIDE, order(value=150.0))
    assert sent(result) == ["high_offer"]
    (decision,) = result.decisions
    assert {c.action for c in decision.candidates} == {"low_offer", "high_offer"}
    assert decision.journey is not None and decision.journey.node == "offer"


def test_decide_falls_back_to_an_action_the_filters_leave():
    result = enter(DECIDE, order(value=20.0))  # high_offer is not eligible
    assert sent(result) == ["low_offer"]
    reasons = {c.action: c.reason.value for c in result.decisions[0].candidates}
    assert reasons == {"low_offer": "chosen", "high_offer": "not_eligible"}


# --- exits, goals and re-entry -----------------------------------------------------------


def cart_policy(reentry: str = "after_exit", goal_exits: bool = True):
    return journey_policy(f"""
        - id: j
          entry: {{event: add_to_cart}}
          reentry: {reentry}
          max_duration: 5d
          exit:
            - {{event: product_return}}
            - {{event: search, when: "event.properties.query == 'stop'", reason: asked}}
            - {{condition: "customer.open_cases > 0", reason: complaint}}
          goal: {{event: order_completed, exit: {str(goal_exits).lower()}}}
          start: pause
          nodes:
            pause: {{wait: 1d, next: text}}
            text: {{send: promo_sms, next: later}}
            later: {{wait: 1d, next: done}}
            done: {{exit: completed}}
    """)


def cart(at_ms: int = NOON_MS, product_id: str = "p1"):
    return event("add_to_cart", at_ms, product_id=product_id, price=10.0)


def carted(policy):
    return enter(policy, cart()).state


def test_an_exit_node_ends_the_run_with_its_reason():
    policy = cart_policy()
    state = fire(carted(policy), NOON_MS + DAY_MS, policy).state
    result = fire(state, NOON_MS + 2 * DAY_MS, policy)
    assert ended(result) == "completed"
    assert ("done", "exited", "completed") in moves(result)


def test_an_exit_event_ends_the_run_at_once_with_the_event_type_as_reason():
    policy = cart_policy()
    result = then(carted(policy), a_return("o1"), policy)
    assert ended(result) == "product_return"
    assert ("pause", "exited", "product_return") in moves(result)
    assert result.state.next_due_ms() is None


def test_an_exit_event_with_a_condition_and_a_reason():
    policy = cart_policy()
    state = carted(policy)
    other = then(state, event("search", NOON_MS + 1, query="shoes"), policy)
    assert "j" in other.state.journeys
    assert ended(then(state, event("search", NOON_MS + 1, query="stop"), policy)) == "asked"


def test_an_exit_condition_ends_the_run_when_it_becomes_true():
    policy = cart_policy()
    state = then(carted(policy), event("page_view", NOON_MS + 1, url="/"), policy).state
    assert "j" in state.journeys
    complaint = event("complaint_opened", NOON_MS + 2, case_id="k1", reason="late")
    assert ended(then(state, complaint, policy)) == "complaint"


def test_a_goal_with_exit_counts_the_conversion_and_ends_the_run():
    policy = cart_policy()
    result = then(carted(policy), order(NOON_MS + HOUR_MS), policy)
    assert moves(result)[:2] == [("pause", "converted", ""), ("pause", "exited", "goal")]
    assert ended(result) == "goal"
    assert fire(result.state, NOON_MS + DAY_MS, policy).to_send == ()


def test_a_goal_without_exit_counts_the_conversion_and_the_run_goes_on():
    policy = cart_policy(goal_exits=False)
    result = then(carted(policy), order(NOON_MS + HOUR_MS), policy)
    assert moves(result) == [("pause", "converted", "")]
    assert result.state.journeys["j"]["node"] == "pause"


def exit_and_return(policy, after_ms: int):
    """A run ended by an exit event, then another add_to_cart ``after_ms`` later."""
    state = then(carted(policy), a_return("o1", NOON_MS + HOUR_MS), policy).state
    return then(state, cart(NOON_MS + HOUR_MS + after_ms, "p2"), policy)


def test_reentry_after_exit_waits_for_the_run_to_end():
    policy = cart_policy()
    state = carted(policy)
    run = state.journeys["j"]["run"]
    again = then(state, cart(NOON_MS + 1, "p2"), policy)
    assert again.journeys == () and again.state.journeys["j"]["run"] == run
    back = exit_and_return(policy, 1)
    assert back.state.journeys["j"]["run"] != run
    assert ("pause", "entered", "") in moves(back)


def test_reentry_never_keeps_a_customer_out_after_a_run():
    back = exit_and_return(cart_policy("never"), 30 * DAY_MS)
    assert "j" not in back.state.journeys


def test_reentry_after_a_cooldown_counts_from_the_exit():
    policy = cart_policy("{cooldown: 3d}")
    assert "j" not in exit_and_return(policy, 3 * DAY_MS - 1).state.journeys
    assert "j" in exit_and_return(policy, 3 * DAY_MS).state.journeys


def test_an_event_after_the_max_duration_ends_the_run_before_it_can_move_it():
    policy = journey_policy(RETURNS_TEXT.replace("timeout: 7d", "timeout: 10d"))
    state = enter(policy).state
    assert state.next_due_ms() == state.journeys["j"]["ends_ms"] == NOON_MS + 10 * DAY_MS
    late = NOON_MS + 10 * DAY_MS + 1  # the firing at the max duration has not come yet
    result = then(state, a_return("o1", late), policy)
    assert result.to_send == ()
    assert ended(result) == "max_duration"


def test_an_entry_event_older_than_the_max_duration_starts_nothing():
    policy = cart_policy()
    result = step(new_state("C000001"), cart(NOON_MS - 6 * DAY_MS), NOON_MS, LIMITS, policy)
    assert result.state.journeys == {}


# --- versions: removal and reload --------------------------------------------------------

ONBOARDING = """
    - id: j
      entry: {event: order_completed}
      max_duration: 5d
      start: mail
      nodes:
        mail: {send: promo_email, next: pause}
        pause: {wait: 1d, next: follow_up}
        follow_up: {send: promo_sms, next: done}
        done: {exit: completed}
"""
OTHER = """
    - id: other
      entry: {event: app_installed}
      max_duration: 1d
      start: sms
      nodes:
        sms: {send: promo_sms, next: done}
        done: {exit: completed}
"""


def test_a_journey_removed_from_the_policy_ends_its_runs_at_the_next_event():
    policy = journey_policy(ONBOARDING + OTHER)
    state = enter(policy).state
    without = journey_policy(OTHER)
    result = then(state, event("page_view", NOON_MS + HOUR_MS, url="/"), without)
    assert ended(result) == "journey_removed"
    assert ("pause", "exited", "journey_removed") in moves(result)
    assert result.to_send and all(a.journey is None for a in result.to_send)  # the banner


def test_a_journey_removed_from_the_policy_ends_its_runs_at_the_next_firing():
    state = enter(journey_policy(ONBOARDING + OTHER)).state
    result = fire(state, NOON_MS + DAY_MS, journey_policy(OTHER))
    assert result.to_send == ()
    assert ended(result) == "journey_removed"


def test_a_reload_keeps_running_customers_on_their_version_and_new_ones_on_the_new():
    old = journey_policy(ONBOARDING + OTHER)
    changed = ONBOARDING.replace("follow_up: {send: promo_sms", "follow_up: {send: low_offer")
    new = journey_policy(changed + OTHER)  # promo_sms stays an action of the policy
    assert old.journeys[0].version != new.journeys[0].version
    running = enter(old).state
    reloaded = new.with_earlier_versions(old)
    newcomer = enter(reloaded, order(key="C000002")).state
    assert newcomer.journeys["j"]["version"] == new.journeys[0].version
    due = NOON_MS + DAY_MS
    assert sent(fire(running, due, reloaded)) == ["promo_sms"]
    assert sent(fire(newcomer, due, reloaded)) == ["low_offer"]
    # A worker that does not know the version (yet) holds the run, looking again a minute
    # later, until its max duration ends it.
    held = fire(running, due, new)
    assert sent(held) == [] and held.state.journeys["j"]["node"] == "pause"
    assert held.state.journeys["j"]["due_ms"] == due + 60_000
    ends_ms = held.state.journeys["j"]["ends_ms"]
    assert ended(fire(held.state, ends_ms, new)) == "version_unavailable"


# --- idempotency -------------------------------------------------------------------------

LOOP = journey_policy("""
    - id: j
      entry: {event: order_completed}
      max_duration: 10d
      start: mail
      nodes:
        mail: {send: promo_email, next: pause}
        pause: {wait: 1d, next: mail}
""")


def test_each_visit_of_a_send_node_gets_its_own_action_id():
    first = enter(LOOP)
    second = fire(first.state, NOON_MS + DAY_MS, LOOP)
    third = fire(second.state, NOON_MS + 2 * DAY_MS, LOOP)
    ids = [r.to_send[0].action_id for r in (first, second, third)]
    assert len(set(ids)) == 3
    assert third.state.journeys["j"]["visits"] == {"mail": 3}
    runs = {r.to_send[0].journey.run for r in (first, second, third)}
    assert runs == {first.state.journeys["j"]["run"]}


def test_the_same_step_replayed_on_a_copy_gives_the_same_ids():
    state = enter(LOOP).state
    once = fire(state.copy(), NOON_MS + DAY_MS, LOOP)
    again = fire(state.copy(), NOON_MS + DAY_MS, LOOP)
    assert [a.action_id for a in once.to_send] == [a.action_id for a in again.to_send]
    assert [a.idempotency_key for a in once.to_send] == [a.idempotency_key for a in again.to_send]
    assert once.decisions[0].decision_id == again.decisions[0].decision_id
    entry = order()
    one, other = enter(LOOP, entry), enter(LOOP, entry)
    assert one.state.journeys["j"]["run"] == other.state.journeys["j"]["run"]
    assert [a.action_id for a in one.to_send] == [a.action_id for a in other.to_send]


# --- census ------------------------------------------------------------------------------


def test_the_census_counts_runs_at_each_node_and_every_move():
    policy = journey_policy(ONBOARDING)
    version = policy.journeys[0].version
    result = enter(policy)
    assert census.summary(result.state)[census.at_node(version, "pause")] == 1
    keys = {
        census.journey_move(version, m.node, m.what, m.detail, m.group) for m in result.journeys
    }
    assert keys == {
        f"run:{version}|mail|entered||treatment",
        f"run:{version}|mail|edge|sent|treatment",
    }


def test_the_fold_keeps_the_journey_census_in_the_partitions_row():
    policy = journey_policy(ONBOARDING)
    version = policy.journeys[0].version
    stored = Tables()

    def fold(message, now_ms):
        context = FoldContext(now_ms, now_ms, policy, EMPTY_MODEL, LIMITS, 5, MINUTE_MS)
        result = fold_partition(0, [(b"C000001", encode(message))], stored, context)
        stored.write(result.writes)
        return orjson.loads(stored.census(0) or b"{}")

    row = fold(EventMessage(order(), NOON_MS), NOON_MS)
    assert row[f"at:{version}|pause"] == 1
    assert row[f"run:{version}|mail|entered||treatment"] == 1
    row = fold(Firing(NOON_MS + DAY_MS, NOON_MS + DAY_MS), NOON_MS + DAY_MS)
    assert f"at:{version}|pause" not in row
    assert row[f"run:{version}|pause|edge|next|treatment"] == 1
    assert row[f"run:{version}|done|exited|completed|treatment"] == 1
    assert census.runs_at(row) == {}
    moved = {(m["node"], m["move"], m["detail"]) for m in census.journey_moves(row)}
    assert ("follow_up", "edge", "sent") in moved
    rows = {key for key in stored.tables[CENSUS] if not performance.is_performance_key(key)}
    assert rows == {census_key(0)}  # (and the day rows of the performance counters)
