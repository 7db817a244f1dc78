"""Adaptive propensity: the Beta prior, the strategies, the customer's own history, fatigue.

``estimate`` turns an action's prior (its policy propensity worth ``evidence`` sends), the
learned evidence of its cell and the customer's history on the channel into the number
arbitration uses. The last test closes the loop: decisions, outcomes, folded rows, and
decisions again, until the engine prefers the channel that answers.
"""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import fmean

import pytest

from stream.core.decide import Reason
from stream.core.decide.engine import channel_histories
from stream.core.decide.learning import (
    NO_HISTORY,
    ChannelHistory,
    Estimate,
    FatiguePolicy,
    LearningPolicy,
    Prior,
    Seed,
    estimate,
    fatigue_factor,
    posterior_mean,
    resting_until_ms,
)
from stream.core.outcomes import Outcome
from stream.core.pipeline import StepResult, observe, step
from stream.core.propensity import EMPTY_MODEL, Evidence, LearningUpdate, PropensityModel, fold
from stream.core.propensity import UpdateKind as Kind
from stream.core.state import CustomerState, new_state
from stream.core.timestamps import format_ms
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import DEFAULT_POLICY, LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
NO_EVIDENCE = Evidence()
PRIOR = Prior(0.1, 20.0)
FIXED = LearningPolicy(strategy="fixed")
UCB = LearningPolicy(strategy="ucb")
THOMPSON = LearningPolicy(strategy="thompson")


def score(
    learning: LearningPolicy,
    evidence: Evidence = NO_EVIDENCE,
    history: ChannelHistory = NO_HISTORY,
    prior: Prior = PRIOR,
    seed: str = "s",
    channel: str = "email",
) -> Estimate:
    return estimate(learning, prior, evidence, history, Seed(seed), channel)


def cart(at_ms: int, key: str = "C000001", event_id: str | None = None):
    return build_event(
        "add_to_cart",
        properties={"product_id": "p1", "price": 5.0},
        customer_key=key,
        at_ms=at_ms,
        event_id=event_id,
    )


def at(state: CustomerState | None, event, policy, model=EMPTY_MODEL) -> StepResult:
    return step(state, event, event.occurred_at_ms, LIMITS, policy, model)


# --- the prior and the strategies


def test_the_prior_is_the_policy_propensity_worth_evidence_sends() -> None:
    result = score(FIXED)
    assert (result.alpha, result.beta) == pytest.approx((2.0, 18.0))
    assert posterior_mean(result.alpha, result.beta) == pytest.approx(0.1)


def test_without_evidence_fixed_gives_the_prior_and_ucb_an_optimistic_bound_on_it() -> None:
    assert score(FIXED).propensity == pytest.approx(0.1)
    sd = math.sqrt(2 * 18 / (20**2 * 21))
    assert score(UCB).propensity == pytest.approx(0.1 + 1.96 * sd)
    assert score(replace(UCB, ucb_z=0.0)).propensity == pytest.approx(0.1)


def test_ucb_is_capped_at_one() -> None:
    assert score(replace(UCB, ucb_z=50.0)).propensity == 1.0


def test_thompson_draws_average_to_the_posterior_mean() -> None:
    for evidence, mean in ((NO_EVIDENCE, 0.1), (Evidence(100, 30), 32 / 120)):
        draws = [score(THOMPSON, evidence, seed=f"decision-{n}").propensity for n in range(4_000)]
        assert fmean(draws) == pytest.approx(mean, abs=0.006)
        assert len(set(draws)) > 3_900  # draws, not a constant


def test_evidence_moves_the_estimate_towards_the_observed_rate() -> None:
    for learning in (UCB, replace(UCB, ucb_z=0.0)):
        none = score(learning).propensity
        good = score(learning, Evidence(200, 100)).propensity
        bad = score(learning, Evidence(200, 0)).propensity
        assert bad < none < good
    mean = score(replace(UCB, ucb_z=0.0), Evidence(180, 90)).propensity
    assert mean == pytest.approx(92 / 200)


def test_ucb_prefers_the_less_tried_of_two_equal_rates() -> None:
    rarely = score(UCB, Evidence(10, 1), prior=Prior(0.1, 0.0)).propensity
    often = score(UCB, Evidence(1_000, 100), prior=Prior(0.1, 0.0)).propensity
    assert rarely > often


def test_fixed_ignores_the_evidence() -> None:
    assert score(FIXED, Evidence(1_000, 900)).propensity == pytest.approx(0.1)
    assert score(FIXED, Evidence(1_000, 0)).propensity == pytest.approx(0.1)
    # ... but still reports the posterior it would have learnt from (explain records)
    assert score(FIXED, Evidence(1_000, 900)).alpha == pytest.approx(902)


def test_a_propensity_of_zero_or_one_keeps_the_beta_valid() -> None:
    for p in (0.0, 1.0):
        result = score(THOMPSON, prior=Prior(p, 20.0))
        assert result.alpha > 0 and result.beta > 0
        assert 0.0 <= result.propensity <= 1.0


# --- the customer's own history


def test_customer_history_smooths_the_population_estimate() -> None:
    assert score(FIXED, history=NO_HISTORY).propensity == pytest.approx(0.1)
    answers = score(FIXED, history=ChannelHistory(sent=8, responded=6)).propensity
    assert answers == pytest.approx((2 * 0.1 + 6) / (2 + 8))
    ignores = score(FIXED, history=ChannelHistory(sent=8, responded=0)).propensity
    assert ignores == pytest.approx(0.2 / 10)
    heavier = score(replace(FIXED, customer_weight=18.0), history=ChannelHistory(8, 0))
    assert heavier.propensity == pytest.approx(1.8 / 26)
    assert heavier.population == pytest.approx(0.1)  # the crowd's value, before the customer


# --- seeded draws


def test_same_seed_text_same_draws() -> None:
    a, b, other = Seed("C1|e1"), Seed("C1|e1"), Seed("C1|e2")
    first = [a.beta(2, 18) for _ in range(5)]
    assert first == [b.beta(2, 18) for _ in range(5)]
    assert first != [other.beta(2, 18) for _ in range(5)]
    assert len(set(first)) == 5  # one generator: each draw is the next one


def test_a_redelivered_event_gets_the_same_thompson_decision() -> None:
    assert DEFAULT_POLICY.learning.strategy == "thompson"
    event = cart(NOON_MS, event_id="redelivered")
    first = step(None, event, NOON_MS, LIMITS, DEFAULT_POLICY)
    again = step(None, event, NOON_MS + 60_000, LIMITS, DEFAULT_POLICY)
    assert first.decision.candidates == again.decision.candidates
    other = step(None, replace(event, event_id="another"), NOON_MS, LIMITS, DEFAULT_POLICY)
    assert other.decision.candidates[0].estimates != first.decision.candidates[0].estimates
    propensities = [
        c.to_message()["propensities"] for c in first.decision.candidates if c.estimates
    ]
    assert propensities and all(0 < e["propensity"] < 1 for p in propensities for e in p.values())


# --- the response window


def contact(channel: str, send_at_ms: int, *outcomes: str, group: str = "treatment") -> dict:
    return {
        "action_id": f"{channel}-{send_at_ms}-{group}",
        "action": "promo",
        "channel": channel,
        "category": "marketing",
        "at_ms": send_at_ms,
        "send_at_ms": send_at_ms,
        "stage": "engagement",
        "group": group,
        "outcomes": list(outcomes),
    }


def test_an_unanswered_message_is_no_evidence_until_the_response_window_passes() -> None:
    state = new_state("C1")
    state.contacts = [contact("email", NOON_MS), contact("email", NOON_MS - 3 * DAY_MS)]
    state.sent_by_channel = {"email": 2}
    learning = LearningPolicy(response_window_ms=2 * DAY_MS)
    assert channel_histories(state, learning, NOON_MS + HOUR_MS)["email"].sent == 1
    assert channel_histories(state, learning, NOON_MS + 2 * DAY_MS)["email"].sent == 2


def test_a_rewarded_message_counts_at_once() -> None:
    state = new_state("C1")
    state.contacts = [contact("push", NOON_MS, "clicked"), contact("push", NOON_MS, "opened")]
    state.sent_by_channel = {"push": 2}
    state.responses = {"push": 1}
    history = channel_histories(state, LearningPolicy(), NOON_MS + HOUR_MS)["push"]
    assert (history.sent, history.responded) == (1, 1)  # the opened one is still pending


def test_control_contacts_are_never_messages_on_a_channel() -> None:
    state = new_state("C1")
    state.contacts = [contact("email", NOON_MS - 9 * DAY_MS, group="control")]
    state.sent_counts = {"promo": 1}
    assert channel_histories(state, LearningPolicy(), NOON_MS) == {}


ONE_CHANNEL = """
    format: 1
    name: fatigue
    learning: {strategy: fixed, response_window: 2d}
    %(fatigue)s
    actions:
      - id: promo
        category: marketing
        channels: [email]
        propensity: 0.1
        triggers: [{event: add_to_cart}]
      - id: receipt
        category: transactional
        channels: [email]
        triggers: [{event: store_purchase}]
"""


def email_estimate(result: StepResult) -> float:
    return dict(result.decision.candidates[0].estimates)["email"].propensity


def test_a_fresh_message_does_not_demote_its_channel_before_the_window() -> None:
    policy = policy_from(ONE_CHANNEL % {"fatigue": ""})
    sent = at(None, cart(NOON_MS), policy)
    assert email_estimate(sent) == pytest.approx(0.1)
    soon = at(sent.state, cart(NOON_MS + HOUR_MS), policy)
    assert email_estimate(soon) == pytest.approx(0.1)
    later = at(sent.state, cart(NOON_MS + 3 * DAY_MS), policy)
    assert email_estimate(later) == pytest.approx(0.2 / 3)


# --- fatigue


PAUSE = "fatigue: {after: 2, effect: pause, pause: 7d, channels: [email]}"


def test_unanswered_messages_rest_the_channel_then_one_more_may_try_it() -> None:
    policy = policy_from(ONE_CHANNEL % {"fatigue": PAUSE})
    state = None
    for day in (0, 1):
        result = at(state, cart(NOON_MS + day * DAY_MS), policy)
        assert [a.channel for a in result.to_send] == ["email"]
        state = result.state
    assert state.unanswered == {"email": 2}
    rested = at(state, cart(NOON_MS + 2 * DAY_MS), policy)
    [candidate] = rested.decision.candidates
    assert candidate.reason is Reason.FATIGUED
    assert "2 unanswered on email" in candidate.detail
    assert format_ms(NOON_MS + 8 * DAY_MS) in candidate.detail
    assert dict(candidate.channel_checks) == {"email": "fatigued"}
    after_pause = at(rested.state, cart(NOON_MS + 8 * DAY_MS), policy)
    assert [a.channel for a in after_pause.to_send] == ["email"]
    ignored_again = at(after_pause.state, cart(NOON_MS + 9 * DAY_MS), policy)
    assert ignored_again.decision.candidates[0].reason is Reason.FATIGUED


def test_an_open_ends_the_rest() -> None:
    policy = policy_from(ONE_CHANNEL % {"fatigue": PAUSE})
    first = at(None, cart(NOON_MS), policy)
    second = at(first.state, cart(NOON_MS + DAY_MS), policy)
    [action] = second.to_send
    opened = Outcome("o1", action.action_id, "C000001", "email", "opened", NOON_MS + DAY_MS, {})
    state = observe(second.state, opened, policy).state
    assert state.unanswered == {"email": 0}
    assert [a.channel for a in at(state, cart(NOON_MS + 2 * DAY_MS), policy).to_send] == ["email"]


def test_fatigue_does_not_stop_service_or_transactional_messages() -> None:
    policy = policy_from(ONE_CHANNEL % {"fatigue": PAUSE})
    state = at(at(None, cart(NOON_MS), policy).state, cart(NOON_MS + DAY_MS), policy).state
    receipt = build_event(
        "store_purchase",
        "store",
        {"store_id": "s1", "order_id": "o1", "value": 5.0},
        at_ms=NOON_MS + 2 * DAY_MS,
    )
    assert [a.action for a in at(state, receipt, policy).to_send] == ["receipt"]


def test_resting_until_applies_only_to_paused_channels_past_the_threshold() -> None:
    pause = FatiguePolicy(after=3, effect="pause", pause_ms=DAY_MS, channels=frozenset({"email"}))
    assert resting_until_ms(pause, "email", 3, NOON_MS) == NOON_MS + DAY_MS
    assert resting_until_ms(pause, "email", 2, NOON_MS) is None
    assert resting_until_ms(pause, "push", 9, NOON_MS) is None
    assert resting_until_ms(pause, "email", 3, None) is None
    assert resting_until_ms(None, "email", 9, NOON_MS) is None
    assert resting_until_ms(replace(pause, effect="lower"), "email", 9, NOON_MS) is None


def test_lower_fatigue_multiplies_the_score_per_further_unanswered_message() -> None:
    lower = FatiguePolicy(after=2, effect="lower", factor=0.5, channels=frozenset({"email"}))
    assert [fatigue_factor(lower, "email", n) for n in range(5)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    assert fatigue_factor(lower, "push", 4) == 1.0
    assert fatigue_factor(replace(lower, effect="pause"), "email", 4) == 1.0
    assert fatigue_factor(None, "email", 4) == 1.0
    learning = replace(FIXED, fatigue=lower)
    tired = score(learning, history=ChannelHistory(unanswered=3))
    assert tired.fatigue == 0.25
    assert tired.propensity == pytest.approx(0.1 * 0.25)
    assert tired.to_message()["fatigue"] == 0.25
    assert "fatigue" not in score(learning).to_message()


def test_lower_fatigue_moves_the_choice_to_another_channel() -> None:
    policy = policy_from(
        """
        format: 1
        name: lower
        learning: {strategy: fixed}
        fatigue: {after: 1, effect: lower, factor: 0.5, channels: [email]}
        actions:
          - id: promo
            category: marketing
            channels: [email, push]
            triggers: [{event: add_to_cart}]
        """
    )
    state = new_state("C000001")
    state.app_installed = True
    first = at(state, cart(NOON_MS), policy)
    assert [a.channel for a in first.to_send] == ["email"]  # a tie: the policy's order
    second = at(first.state, cart(NOON_MS + HOUR_MS), policy)
    assert [a.channel for a in second.to_send] == ["push"]
    assert second.decision.candidates[0].to_message()["propensities"]["email"]["fatigue"] == 0.5


# --- learning in the engine


TWO_ACTIONS = """
    format: 1
    name: explore
    learning: {strategy: thompson, evidence: 20}
    actions:
      - {id: veteran, category: marketing, channels: [email], propensity: 0.05,
         triggers: [{event: add_to_cart}]}
      - {id: newcomer, category: marketing, channels: [email], propensity: 0.3,
         triggers: [{event: add_to_cart}]}
"""


def row_of(action: str, stage: str, channel: str, trials: int, successes: int) -> dict:
    updates = [LearningUpdate(action, Kind.TRIAL, stage, channel)] * trials
    updates += [LearningUpdate(action, Kind.SUCCESS, stage, channel)] * successes
    return fold(None, updates, now_ms=NOON_MS)


def test_a_new_action_with_a_high_prior_gets_tried_against_a_known_loser() -> None:
    policy = policy_from(TWO_ACTIONS)
    model = PropensityModel({"veteran": row_of("veteran", "acquisition", "email", 2_000, 20)})
    chosen = [
        at(None, cart(NOON_MS, f"K{n}", f"cart-{n}"), policy, model).to_send[0].action
        for n in range(60)
    ]
    assert chosen.count("newcomer") >= 55
    # and once the newcomer failed as often, the veteran's edge comes back
    loser = row_of("newcomer", "acquisition", "email", 2_000, 0)
    both = model.with_row(loser, NOON_MS)
    again = [
        at(None, cart(NOON_MS, f"K{n}", f"cart-{n}"), policy, both).to_send[0].action
        for n in range(60)
    ]
    assert again.count("veteran") >= 55


LEARNER = """
    format: 1
    name: learner
    learning: {strategy: %s, evidence: 20}
    actions:
      - id: promo
        category: marketing
        channels: [email, push]
        propensity: 0.1
        triggers: [{event: add_to_cart}]
"""


def push_share_per_round(strategy: str, rounds: int = 6, customers: int = 40) -> list[float]:
    """Decide for new customers; every other push is clicked, no email ever is; learn; repeat."""
    policy = policy_from(LEARNER % strategy)
    model, row = EMPTY_MODEL, None
    shares = []
    for round_ in range(rounds):
        updates: list[LearningUpdate] = []
        channels = []
        for n in range(customers):
            key = f"R{round_}-{n}"
            state = new_state(key)
            state.app_installed = True
            result = at(state, cart(NOON_MS, key, f"{key}-cart"), policy, model)
            updates.extend(result.learning)
            [action] = result.to_send
            channels.append(action.channel)
            if action.channel == "push" and n % 2 == 0:
                clicked = Outcome(
                    f"{key}-click", action.action_id, key, "push", "clicked", NOON_MS + 1, {}
                )
                updates.extend(observe(result.state, clicked, policy).learning)
        row = fold(row, updates, NOON_MS + round_)
        model = model.with_row(row, NOON_MS + round_)
        shares.append(channels.count("push") / len(channels))
    return shares


def test_thompson_learns_to_prefer_the_channel_that_answers() -> None:
    shares = push_share_per_round("thompson")
    assert 0.2 <= shares[0] <= 0.8  # no evidence: equal priors, a coin flip
    assert shares[-1] >= 0.9
    assert fmean(shares[-3:]) > shares[0]


def test_fixed_strategy_learns_nothing() -> None:
    assert push_share_per_round("fixed", rounds=3) == [0.0, 0.0, 0.0]  # ties: policy order
