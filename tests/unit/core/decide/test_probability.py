"""The explain record's ``probability``: how likely the policy was to choose what it chose.

The strongest check is calibration: the same customer decided for under many triggers
(each a different Thompson seed) chooses each option about as often as the recorded
probability says.
"""

from __future__ import annotations

from collections import Counter
from statistics import fmean

import pytest

from stream.core.decide.probability import (
    DRAWS,
    NOTHING,
    Cell,
    Option,
    choice_distribution,
    choice_key,
    needs_draws,
    probability_of,
    top_choices,
)
from stream.core.decide.records import Decision
from stream.core.pipeline import step
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

RACE = """
    format: 1
    name: race
    learning: {strategy: %(strategy)s, evidence: 4}
    %(extra)s
    actions:
      - {id: tortoise, category: marketing, channels: [email, web], propensity: 0.3,
         triggers: [{event: add_to_cart}]}
      - {id: hare, category: marketing, channels: [web], propensity: 0.25,
         triggers: [{event: add_to_cart}]}
"""


def decide(key: str, event_id: str, strategy: str = "thompson", extra: str = "") -> Decision:
    policy = policy_from(RACE % {"strategy": strategy, "extra": extra})
    event = build_event(
        "add_to_cart",
        properties={"product_id": "p1", "price": 5.0},
        customer_key=key,
        at_ms=NOON_MS,
        event_id=event_id,
    )
    decision = step(None, event, NOON_MS, LIMITS, policy).decision
    assert decision is not None
    return decision


def cell(channel: str, alpha: float, beta: float, feasible: bool = True) -> Cell:
    return Cell(channel, alpha, beta, 1.0, 0.0, feasible)


def test_a_choice_is_named_by_its_sorted_action_at_channel_pairs() -> None:
    assert choice_key([("b", "push"), ("a", "email")]) == "a@email+b@push"
    assert choice_key([]) == NOTHING


def test_one_feasible_cell_needs_no_draws_and_two_do() -> None:
    single = [Option("a", 1.0, (cell("email", 1, 1), cell("push", 1, 1, feasible=False)))]
    assert not needs_draws(single)
    assert needs_draws([*single, Option("b", 1.0, (cell("sms", 1, 1),))])


def test_two_equal_options_split_the_draws_about_evenly() -> None:
    options = [Option("a", 1.0, (cell("email", 5, 5),)), Option("b", 1.0, (cell("push", 5, 5),))]
    distribution = choice_distribution(options, "seed", draws=4_000)
    assert distribution["a@email"] == pytest.approx(0.5, abs=0.03)
    assert sum(distribution.values()) == pytest.approx(1.0)


def test_the_multiplier_and_the_posterior_move_the_shares_as_the_arbiter_would() -> None:
    # Beta(9,1) (mean 0.9) against Beta(1,9) (mean 0.1): a clear favourite ...
    options = [Option("a", 1.0, (cell("email", 9, 1),)), Option("b", 1.0, (cell("push", 1, 9),))]
    assert choice_distribution(options, "s", draws=2_000)["a@email"] > 0.99
    # ... until a value 100 times higher makes the other one win most draws:
    # b loses only when its draw is under 0.009, P = 1 - 0.991^9 = 0.078.
    boosted = [options[0], Option("b", 100.0, options[1].cells)]
    assert choice_distribution(boosted, "s", draws=4_000)["b@push"] == pytest.approx(
        0.922, abs=0.02
    )


def test_an_infeasible_channel_ranks_its_action_but_never_carries_it() -> None:
    # a's best channel (email, sure to score ~0.9) cannot be used: a still outranks b and
    # goes out on its other channel, as the engine's channel pick does.
    a = Option("a", 1.0, (cell("email", 90, 10, feasible=False), cell("push", 1, 99)))
    b = Option("b", 1.0, (cell("sms", 10, 90),))
    assert choice_distribution([a, b], "s") == {"a@push": 1.0}


def test_a_fixed_order_arm_sends_on_its_first_feasible_channel() -> None:
    arm = Option(
        "a",
        1.0,
        (cell("email", 1, 99, feasible=False), cell("push", 1, 99), cell("sms", 99, 1)),
        True,
    )
    assert choice_distribution([arm], "s") == {"a@push": 1.0}


def test_two_picks_per_decision_count_the_pair() -> None:
    options = [Option("a", 1.0, (cell("email", 9, 1),)), Option("b", 1.0, (cell("push", 1, 9),))]
    assert choice_distribution(options, "s", max_actions=2) == {"a@email+b@push": 1.0}


def test_the_same_seed_gives_the_same_distribution() -> None:
    options = [Option("a", 1.0, (cell("email", 3, 5),)), Option("b", 1.0, (cell("push", 4, 4),))]
    assert choice_distribution(options, "x") == choice_distribution(options, "x")


def test_a_choice_never_drawn_still_gets_half_a_draw() -> None:
    assert probability_of({"a@email": 1.0}, "b@push") == 0.5 / DRAWS
    assert top_choices({"b": 0.2, "a": 0.2, "c": 0.6}) == (("c", 0.6), ("a", 0.2), ("b", 0.2))


def test_deterministic_strategies_record_probability_one() -> None:
    for strategy in ("fixed", "ucb"):
        decision = decide("C1", "e1", strategy)
        assert decision.probability == 1.0
        assert decision.choices == ()
        assert decision.to_message()["probability"] == 1.0


def test_the_record_names_the_choice_and_its_probability() -> None:
    decision = decide("C1", "e1")
    [action] = decision.actions
    message = decision.to_message()
    assert message["choice"] == f"{action.action}@{action.channel}"
    assert 0 < message["probability"] <= 1
    assert message["choices"][message["choice"]] == pytest.approx(message["probability"])


def test_thompson_probabilities_are_calibrated_against_the_engines_own_choices() -> None:
    """Decide 400 times for one customer (400 seeds): each choice's frequency matches the
    mean recorded probability of that choice within sampling error."""
    decisions = [decide("C1", f"e{n}") for n in range(400)]
    made = Counter(decision.choice for decision in decisions)
    assert len(made) >= 2  # the test needs a real race
    for choice, count in made.items():
        expected = fmean(dict(d.choices).get(choice, 0.0) for d in decisions)
        assert count / len(decisions) == pytest.approx(expected, abs=0.06), choice


def test_the_control_group_share_multiplies_the_probability() -> None:
    control = "holdout: {control_share: 0.5}"
    shares = {decide(f"K{n}", "e1", "fixed", control).group for n in range(40)}
    assert shares == {"control", "treatment"}
    for n in range(10):
        assert decide(f"K{n}", "e1", "fixed", control).probability == pytest.approx(0.5)


def test_an_experiment_arm_share_multiplies_the_probability() -> None:
    experiment = """
    experiments:
      - name: channel_test
        action: tortoise
        variants:
          - {name: email_first, share: 0.8, channels: [email, web]}
          - {name: web_first, share: 0.2, channels: [web, email]}
    """
    seen = {}
    for n in range(60):
        decision = decide(f"K{n}", "e1", "fixed", experiment)
        [action] = decision.actions
        if action.action == "tortoise":
            seen[action.variant] = decision.probability
    assert seen == {
        "channel_test=email_first": pytest.approx(0.8),
        "channel_test=web_first": pytest.approx(0.2),
    }
