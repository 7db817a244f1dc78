"""A policy reload mid-journey: a run pinned to an earlier version keeps what that
version needs, even when the new policy no longer has it."""

from __future__ import annotations

from stream.core.decide import Policy
from stream.core.pipeline import fire, step
from stream.core.state import CustomerState, new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000
CONTEXT = {"consent": {"email": True, "sms": True}, "timezone": "UTC"}
HEAD = """
    format: 1
    name: reload
    contact_policy: {default_timezone: UTC}
    holdout: {control_share: 0.0}
    actions:
"""
OFFER_X = "      - {id: offer_x, category: marketing, channels: [email]}\n"
OFFER_Y = "      - {id: offer_y, category: marketing, channels: [sms]}\n"
JOURNEY = """
    journeys:
      - id: onboarding
        entry: {event: order_completed}
        max_duration: 10d
        start: pause
        nodes:
          pause: {wait: 1h, next: offer}
          offer: {send: %s, next: done}
          done: {exit: completed}
"""


def entered(policy: Policy, key: str = "C000001") -> CustomerState:
    order = build_event(
        "order_completed",
        properties={"order_id": "o1", "value": 5.0},
        at_ms=NOON_MS,
        customer_key=key,
        context=CONTEXT,
    )
    return step(new_state(key), order, NOON_MS, LIMITS, policy).state


def test_a_run_pinned_before_a_reload_still_sends_the_action_the_reload_replaced():
    old = policy_from(HEAD + OFFER_X + JOURNEY % "offer_x")
    # The marketer replaced offer_x by offer_y: offer_x leaves the policy (nothing else
    # sends it, so the check would refuse to keep it).
    new = policy_from(HEAD + OFFER_Y + JOURNEY % "offer_y")
    running = entered(old)
    reloaded = new.with_earlier_versions(old)
    newcomer = entered(reloaded, "C000002")
    due = NOON_MS + HOUR_MS
    [x] = fire(running, due, reloaded).to_send
    assert (x.action, x.channel) == ("offer_x", "email")
    assert x.journey is not None and x.journey.version == old.journeys[0].version
    [y] = fire(newcomer, due, reloaded).to_send
    assert y.action == "offer_y"
    assert y.journey is not None and y.journey.version == new.journeys[0].version
    # ...and after a second reload too
    again = policy_from(HEAD.replace("reload", "again") + OFFER_Y + JOURNEY % "offer_y")
    twice = again.with_earlier_versions(reloaded)
    assert [a.action for a in fire(running, due, twice).to_send] == ["offer_x"]


def test_a_run_pinned_before_a_reload_sees_the_fields_its_conditions_read():
    branching = """
    journeys:
      - id: onboarding
        entry: {event: order_completed}
        max_duration: 10d
        start: pause
        nodes:
          pause: {wait: 1h, next: check}
          check:
            branch: [{name: buyer, when: "customer.orders.count >= 1", next: x}]
            else: y
          x: {send: offer_x, next: done}
          y: {send: offer_y, next: done}
          done: {exit: completed}
    """
    old = policy_from(HEAD + OFFER_X + OFFER_Y + branching)
    # Both actions stay (offer_x as an always-on action); no expression of the new policy
    # reads the customer's orders.
    always_on = OFFER_X.replace("[email]}", "[email], triggers: [{event: page_view}]}")
    new = policy_from(HEAD + always_on + OFFER_Y + JOURNEY % "offer_y")
    running = entered(old)
    result = fire(running, NOON_MS + HOUR_MS, new.with_earlier_versions(old))
    assert [a.action for a in result.to_send] == ["offer_x"]
    assert ("check", "edge", "buyer") in [(m.node, m.what, m.detail) for m in result.journeys]


def test_a_policy_that_learnt_several_earlier_ones_keeps_the_actions_each_one_removed():
    # A worker started on ``current`` learns the earlier policies one by one from the
    # archive (``journey_archive``): learning ``new`` must not forget what ``old`` sends.
    old = policy_from(HEAD + OFFER_X + JOURNEY % "offer_x")
    new = policy_from(HEAD + OFFER_Y + JOURNEY % "offer_y")
    current = policy_from(HEAD.replace("reload", "current") + OFFER_Y + JOURNEY % "offer_y")
    running = entered(old)
    for learnt in (
        current.with_earlier_versions(old).with_earlier_versions(new),
        current.with_earlier_versions(new).with_earlier_versions(old),
    ):
        [x] = fire(running, NOON_MS + HOUR_MS, learnt).to_send
        assert (x.action, x.channel) == ("offer_x", "email")


def test_a_constant_the_reload_removed_is_still_there_for_the_earlier_version() -> None:
    from tests.unit.core.decide.helpers import policy_from

    text = """
        format: 1
        name: consts
        constants: {threshold: 2, kept: 1}
        actions:
          - {id: hello, category: marketing, channels: [web]}
        journeys:
          - id: j
            entry: {event: page_view}
            max_duration: 1d
            start: pick
            nodes:
              pick:
                branch: [{when: "customer.event_count >= constants.threshold", next: say}]
                else: done
              say: {send: hello, next: done}
              done: {exit: completed}
    """
    earlier = policy_from(text)
    later = policy_from(
        text.replace("constants: {threshold: 2, kept: 1}", "constants: {kept: 3}").replace(
            "customer.event_count >= constants.threshold", "customer.event_count >= 5"
        )
    )
    reloaded = later.with_earlier_versions(earlier)
    assert reloaded.constants == {"threshold": 2, "kept": 3}
    assert later.constants == {"kept": 3}
