"""Control group and experiments: who is held out, which arm a customer is in, what is logged."""

from __future__ import annotations

from collections import Counter

import pytest

from stream.core.decide import Reason
from stream.core.decide.holdout import (
    CONTROL,
    TREATMENT,
    Experiment,
    HoldoutPolicy,
    Variant,
    bucket,
    group_of,
    holds_out,
    variant_of,
)
from stream.core.pipeline import StepResult, step
from stream.core.state import CustomerState, new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import CATALOG, DEFAULT_POLICY, LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000
KEYS = [f"C{n:06d}" for n in range(20_000)]


def test_bucket_is_a_fixed_uniform_number_per_salt_and_parts() -> None:
    assert bucket("salt", "control", "C1") == bucket("salt", "control", "C1")
    assert bucket("salt", "control", "C1") != bucket("other", "control", "C1")
    points = [bucket("salt", key) for key in KEYS[:2_000]]
    assert all(0.0 <= p < 1.0 for p in points)
    assert 0.45 < sum(points) / len(points) < 0.55


def test_control_group_assignment_is_deterministic_with_the_configured_share() -> None:
    holdout = HoldoutPolicy(control_share=0.1, salt="s1")
    groups = [group_of(key, holdout) for key in KEYS]
    assert groups == [group_of(key, holdout) for key in KEYS]
    assert set(groups) == {CONTROL, TREATMENT}
    assert groups.count(CONTROL) / len(KEYS) == pytest.approx(0.1, abs=0.01)


def test_no_control_share_means_everyone_is_treated() -> None:
    assert {group_of(key, HoldoutPolicy()) for key in KEYS[:1_000]} == {TREATMENT}


def test_changing_the_salt_reshuffles_the_control_group() -> None:
    one, two = (
        HoldoutPolicy(control_share=0.5, salt="s1"),
        HoldoutPolicy(control_share=0.5, salt="s2"),
    )
    moved = sum(group_of(key, one) != group_of(key, two) for key in KEYS)
    assert moved / len(KEYS) == pytest.approx(0.5, abs=0.03)  # independent halves


def test_variants_split_customers_by_share() -> None:
    experiment = Experiment(
        "split", (Variant("a", 0.2, "x"), Variant("b", 0.3, "y"), Variant("c", 0.5, "z"))
    )
    arms = Counter(variant_of(key, experiment, "s1").name for key in KEYS)
    assert arms["a"] / len(KEYS) == pytest.approx(0.2, abs=0.015)
    assert arms["b"] / len(KEYS) == pytest.approx(0.3, abs=0.015)
    assert arms["c"] / len(KEYS) == pytest.approx(0.5, abs=0.015)
    assert variant_of("C1", experiment, "s1") == variant_of("C1", experiment, "s1")
    # shares a rounding error short of 1: the last variant takes the rest
    short = Experiment("short", (Variant("a", 0.0, "x"), Variant("b", 0.0, "y")))
    assert variant_of("C1", short, "s1").name == "b"


def test_experiment_arms_do_not_follow_the_control_group() -> None:
    holdout = HoldoutPolicy(control_share=0.5, salt="s1")
    experiment = Experiment("ab", (Variant("a", 0.5, "x"), Variant("b", 0.5, "y")))
    same = sum(
        (group_of(key, holdout) == CONTROL) == (variant_of(key, experiment, "s1").name == "a")
        for key in KEYS
    )
    assert same / len(KEYS) == pytest.approx(0.5, abs=0.03)


def test_only_held_out_categories_of_the_control_group_are_held() -> None:
    holdout = HoldoutPolicy(control_share=0.5)
    assert holds_out(holdout, CONTROL, "marketing")
    assert not holds_out(holdout, CONTROL, "service")
    assert not holds_out(holdout, TREATMENT, "marketing")
    assert holds_out(HoldoutPolicy(categories=frozenset({"service"})), CONTROL, "service")


# --- the control group in decisions

HELD = policy_from(
    """
    format: 1
    name: held
    contact_policy:
      caps: [{name: email_daily, channels: [email], max: 1, window: 24h}]
    learning: {strategy: fixed}
    holdout: {control_share: 0.5, salt: holdout-test}
    actions:
      - id: promo
        category: marketing
        channels: [email]
        triggers: [{event: add_to_cart}]
      - id: callback
        category: service
        channels: [call_center]
        triggers: [{event: complaint_opened}]
    """
)


def key_in(group: str, holdout: HoldoutPolicy) -> str:
    return next(key for key in KEYS if group_of(key, holdout) == group)


CONTROL_KEY = key_in(CONTROL, HELD.holdout)
TREATED_KEY = key_in(TREATMENT, HELD.holdout)


def cart(key: str, at_ms: int = NOON_MS):
    return build_event(
        "add_to_cart", properties={"product_id": "p1", "price": 5.0}, customer_key=key, at_ms=at_ms
    )


def at(state: CustomerState | None, event, policy=HELD) -> StepResult:
    return step(state, event, event.occurred_at_ms, LIMITS, policy)


def assert_valid(result: StepResult) -> None:
    for decision in result.decisions:
        assert CATALOG.message_error("decision", decision.to_message()) is None
        for action in (*decision.actions, *decision.held_out):
            assert CATALOG.message_error("action", action.to_message()) is None


def test_a_control_customer_gets_the_decision_logged_but_nothing_sent() -> None:
    result = at(None, cart(CONTROL_KEY))
    decision = result.decision
    [candidate] = decision.candidates
    assert candidate.reason is Reason.HOLDOUT
    assert candidate.channel == "email"
    assert "control group (50%)" in candidate.detail
    assert (decision.actions, result.to_send, result.held) == ((), (), ())
    assert [a.action for a in decision.held_out] == ["promo"]
    message = decision.to_message()
    assert (message["group"], message["chosen"], message["chosen_channel"]) == ("control", [], None)
    assert message["candidates"][0]["outcome"] == "suppressed"
    assert message["candidates"][0]["reason"] == "holdout"
    assert_valid(result)


def test_the_same_decision_for_a_treated_customer_is_sent() -> None:
    result = at(None, cart(TREATED_KEY))
    assert result.decision.group == TREATMENT
    assert [(a.action, a.group) for a in result.to_send] == [("promo", "treatment")]
    assert result.decision.held_out == ()
    assert result.decision.to_message()["group"] == "treatment"


def test_control_contacts_still_count_against_caps() -> None:
    first = at(None, cart(CONTROL_KEY))
    assert [c["group"] for c in first.state.contacts] == [CONTROL]
    second = at(first.state, cart(CONTROL_KEY, NOON_MS + HOUR_MS))
    assert second.decision.candidates[0].reason is Reason.CONTACT_CAP
    assert second.decision.held_out == ()
    next_day = at(second.state, cart(CONTROL_KEY, NOON_MS + 25 * HOUR_MS))
    assert next_day.decision.candidates[0].reason is Reason.HOLDOUT


def test_service_actions_are_not_held_out() -> None:
    complaint = build_event(
        "complaint_opened",
        "call_center",
        {"case_id": "K1", "reason": "late"},
        customer_key=CONTROL_KEY,
        at_ms=NOON_MS,
    )
    result = at(None, complaint)
    assert result.decision.group == CONTROL
    assert [(a.action, a.group) for a in result.to_send] == [("callback", "treatment")]
    assert result.decision.candidates[0].reason is Reason.CHOSEN


# --- experiments

EXPERIMENTS = policy_from(
    """
    format: 1
    name: experiments
    learning: {strategy: fixed}
    holdout: {salt: experiment-test}
    experiments:
      - name: offer_test
        variants:
          - {name: money_off, share: 0.5, action: money_off}
          - {name: free_gift, share: 0.5, action: free_gift}
      - name: channel_test
        action: reminder
        variants:
          - {name: push_first, share: 0.5, channels: [push, email]}
          - {name: email_first, share: 0.5, channels: [email, push]}
    actions:
      - {id: money_off, category: marketing, channels: [email], triggers: [{event: add_to_cart}]}
      - {id: free_gift, category: marketing, channels: [email], triggers: [{event: add_to_cart}]}
      - id: reminder
        category: marketing
        channels: [email, push]
        triggers: [{event: page_view}]
    """
)
OFFER_TEST, CHANNEL_TEST = EXPERIMENTS.holdout.experiments


def keys_by_arm(experiment: Experiment, count: int = 3) -> dict[str, list[str]]:
    arms: dict[str, list[str]] = {}
    for key in KEYS[:200]:
        arms.setdefault(variant_of(key, experiment, "experiment-test").name, []).append(key)
    return {name: keys[:count] for name, keys in arms.items()}


def test_an_action_test_offers_each_customer_only_their_arms_action() -> None:
    for arm, keys in keys_by_arm(OFFER_TEST).items():
        other = "free_gift" if arm == "money_off" else "money_off"
        for key in keys:
            result = at(None, cart(key), EXPERIMENTS)
            [action] = result.to_send
            assert (action.action, action.variant) == (arm, f"offer_test={arm}")
            assert action.to_message()["experiment"] == {"name": "offer_test", "variant": arm}
            removed = {c.action: c for c in result.decision.candidates}[other]
            assert removed.reason is Reason.EXPERIMENT_ARM
            assert f"arm {arm}" in removed.detail
            assert removed.to_message()["experiment"] == {"name": "offer_test", "variant": arm}
            assert_valid(result)


def app_user(key: str, email_responses: int = 0) -> CustomerState:
    """A customer reachable on push and email, who answered ``email_responses`` emails."""
    state = new_state(key)
    state.app_installed = True
    state.sent_by_channel = {"email": email_responses}
    state.responses = {"email": email_responses}
    return state


def test_a_channel_test_keeps_its_variants_channel_order() -> None:
    variants = {variant.name: variant.channels for variant in CHANNEL_TEST.variants}
    for arm, keys in keys_by_arm(CHANNEL_TEST).items():
        for key in keys:
            # email answers every time: learning alone would always pick email
            state = app_user(key, email_responses=5)
            event = build_event("page_view", properties={"url": "/"}, customer_key=key)
            result = step(state, event, NOON_MS, LIMITS, EXPERIMENTS)
            [action] = result.to_send
            assert action.channel == variants[arm][0]
            assert action.variant == f"channel_test={arm}"
            [candidate] = result.decision.candidates
            assert tuple(channel for channel, _ in candidate.estimates) == variants[arm]
            message = candidate.to_message()
            assert tuple(message["propensities"]) == variants[arm]
            assert message["experiment"] == {"name": "channel_test", "variant": arm}
            assert_valid(result)
    assert set(keys_by_arm(CHANNEL_TEST)) == {"push_first", "email_first"}


def test_without_an_experiment_the_better_channel_wins() -> None:
    state = app_user("C000001", email_responses=5)
    no_test = policy_from(
        """
        format: 1
        name: plain
        learning: {strategy: fixed}
        actions:
          - id: reminder
            category: marketing
            channels: [push, email]
            triggers: [{event: page_view}]
        """
    )
    event = build_event("page_view", properties={"url": "/"})
    [action] = step(state, event, NOON_MS, LIMITS, no_test).to_send
    assert action.channel == "email"


def test_decision_record_names_the_strategy_group_and_propensities() -> None:
    result = at(None, cart(TREATED_KEY))
    message = result.decision.to_message()
    assert (message["strategy"], message["group"]) == ("fixed", "treatment")
    assert set(message["candidates"][0]["propensities"]["email"]) == {
        "propensity",
        "alpha",
        "beta",
        "population",
    }
    assert_valid(result)


def test_shipped_policy_holds_out_five_percent_and_tests_the_cart_reminder_channels() -> None:
    holdout = DEFAULT_POLICY.holdout
    assert holdout.control_share == 0.05
    assert holdout.categories == frozenset({"marketing"})
    experiment = holdout.by_action["cart_reminder"]
    assert experiment.name == "cart_reminder_channel"
    assert [v.channels for v in experiment.variants] == [("push", "email"), ("email", "push")]
    share = sum(group_of(key, holdout) == CONTROL for key in KEYS) / len(KEYS)
    assert share == pytest.approx(0.05, abs=0.005)
