"""Off-policy estimators: known answers by hand, invariants, and a seeded simulation."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pytest

from stream.core import ope
from stream.core.ope import Round

Z95 = NormalDist().inv_cdf(0.975)  # 1.959964...

# Four rounds, worked by hand:
#   round  p_b   reward  pi_e   w = pi_e / p_b   w * r
#   0      0.5   1       1.0    2                2
#   1      0.25  0       0.5    2                0
#   2      0.5   0       0.0    0                0
#   3      0.25  1       0.5    2                2
# on-policy = (1 + 0 + 0 + 1) / 4 = 0.5
# IPS       = (2 + 0 + 0 + 2) / 4 = 1.0
# SNIPS     = 4 / (2 + 2 + 0 + 2) = 2/3
# ESS       = (2 + 2 + 0 + 2)^2 / (4 + 4 + 0 + 4) = 36 / 12 = 3
FOUR = [
    Round(logged_probability=0.5, reward=1.0, target_probability=1.0),
    Round(logged_probability=0.25, reward=0.0, target_probability=0.5),
    Round(logged_probability=0.5, reward=0.0, target_probability=0.0),
    Round(logged_probability=0.25, reward=1.0, target_probability=0.5),
]


def assert_normal_interval(estimate: ope.PolicyValue, value: float, std_error: float) -> None:
    assert estimate.value == pytest.approx(value)
    assert estimate.std_error == pytest.approx(std_error)
    assert estimate.low == pytest.approx(value - Z95 * std_error)
    assert estimate.high == pytest.approx(value + Z95 * std_error)


def test_weights_and_effective_sample_size_by_hand() -> None:
    assert ope.importance_weights(FOUR).tolist() == [2.0, 2.0, 0.0, 2.0]
    assert ope.effective_sample_size(ope.importance_weights(FOUR)) == pytest.approx(3.0)
    assert ope.effective_sample_size([0.0, 0.0]) == 0.0
    assert ope.effective_sample_size([]) == 0.0


def test_on_policy_by_hand() -> None:
    # rewards 1, 0, 0, 1: mean 0.5; sample variance (4 * 0.25) / 3 = 1/3; se = sqrt(1/3) / 2
    estimate = ope.on_policy(FOUR)
    assert estimate.estimator == "on-policy"
    assert estimate.rounds == 4
    assert_normal_interval(estimate, 0.5, math.sqrt(1 / 3) / 2)


def test_ips_by_hand() -> None:
    # w * r = 2, 0, 0, 2: mean 1; sample variance (4 * 1) / 3 = 4/3; se = sqrt(4/3) / 2
    estimate = ope.ips(FOUR)
    assert estimate.estimator == "ips"
    assert_normal_interval(estimate, 1.0, math.sqrt(4 / 3) / 2)


def test_snips_by_hand() -> None:
    # V = 2/3; w^2 (r - V)^2 = 4 * 1/9, 4 * 4/9, 0, 4 * 1/9 = 24/9 = 8/3
    # se = sqrt(8/3) / sum(w) = sqrt(8/3) / 6
    estimate = ope.snips(FOUR)
    assert estimate.estimator == "snips"
    assert_normal_interval(estimate, 2 / 3, math.sqrt(8 / 3) / 6)


def test_doubly_robust_by_hand() -> None:
    # qhat = 0.5 everywhere, so target_expected = 0.5 and predicted = 0.5:
    # terms = 0.5 + w * (r - 0.5) = 0.5 + 1, 0.5 - 1, 0.5 + 0, 0.5 + 1 = 1.5, -0.5, 0.5, 1.5
    # mean = 3 / 4 = 0.75; deviations 0.75, -1.25, -0.25, 0.75 -> squares sum to 2.75
    # se = sqrt(2.75 / 3) / 2
    rounds = [replace(entry, predicted=0.5, target_expected=0.5) for entry in FOUR]
    estimate = ope.doubly_robust(rounds)
    assert estimate.estimator == "dr"
    assert_normal_interval(estimate, 0.75, math.sqrt(2.75 / 3) / 2)


def test_the_confidence_sets_the_width() -> None:
    wide, narrow = ope.ips(FOUR, confidence=0.99), ope.ips(FOUR, confidence=0.5)
    assert wide.high - wide.low > narrow.high - narrow.low
    assert wide.high - wide.low == pytest.approx(2 * NormalDist().inv_cdf(0.995) * wide.std_error)
    with pytest.raises(ValueError, match="confidence"):
        ope.ips(FOUR, confidence=1.0)


def test_a_target_equal_to_the_logging_policy_reproduces_the_logged_value() -> None:
    rounds = [replace(entry, target_probability=entry.logged_probability) for entry in FOUR]
    assert ope.importance_weights(rounds).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert ope.effective_sample_size(ope.importance_weights(rounds)) == 4.0
    assert ope.ips(rounds).value == ope.on_policy(rounds).value == 0.5
    assert ope.ips(rounds).std_error == pytest.approx(ope.on_policy(rounds).std_error)
    assert ope.snips(rounds).value == 0.5


def test_a_candidate_that_never_chooses_the_logged_actions() -> None:
    rounds = [replace(entry, target_probability=0.0) for entry in FOUR]
    evaluation = ope.evaluate(rounds)
    assert evaluation.ips.value == 0.0
    assert evaluation.effective_sample_size == 0.0
    assert evaluation.max_weight == 0.0
    # SNIPS divides by sum(w) = 0: no estimate at all
    assert math.isnan(evaluation.snips.value)
    assert math.isnan(evaluation.snips.low) and math.isnan(evaluation.snips.high)


def test_snips_is_invariant_to_scaling_the_target_probabilities() -> None:
    halved = [replace(entry, target_probability=entry.target_probability / 2) for entry in FOUR]
    assert ope.snips(halved).value == pytest.approx(ope.snips(FOUR).value)
    assert ope.snips(halved).std_error == pytest.approx(ope.snips(FOUR).std_error)
    assert ope.ips(halved).value == pytest.approx(ope.ips(FOUR).value / 2)


def test_doubly_robust_with_a_perfect_reward_model_has_no_correction_noise() -> None:
    # predicted == reward zeroes every correction term w * (r - predicted): what is left is
    # the model's value of the candidate, constant here, so the standard error is 0
    perfect = [replace(entry, predicted=entry.reward, target_expected=0.6) for entry in FOUR]
    estimate = ope.doubly_robust(perfect)
    assert estimate.value == pytest.approx(0.6)
    assert estimate.std_error == 0.0
    assert estimate.low == estimate.high == pytest.approx(0.6)


def test_doubly_robust_with_a_zero_reward_model_is_ips() -> None:
    assert ope.doubly_robust(FOUR) == replace(ope.ips(FOUR), estimator="dr")


def test_fewer_than_two_rounds_have_no_interval() -> None:
    single = ope.evaluate(FOUR[:1])
    assert single.ips.value == 2.0
    assert math.isnan(single.ips.std_error) and math.isnan(single.ips.low)
    assert math.isnan(single.snips.std_error) and single.snips.value == 1.0
    empty = ope.evaluate([])
    assert empty.rounds == 0 and math.isnan(empty.ips.value) and math.isnan(empty.dr.value)
    assert empty.effective_sample_size == 0.0 and empty.max_weight == 0.0


def test_evaluate_collects_every_estimate_and_serialises_to_json() -> None:
    evaluation = ope.evaluate(FOUR)
    assert evaluation.logged == ope.on_policy(FOUR)
    assert evaluation.snips == ope.snips(FOUR)
    assert evaluation.effective_sample_size == pytest.approx(3.0)
    assert evaluation.max_weight == 2.0
    assert evaluation.rounds == 4
    data = evaluation.to_dict()
    assert data["ips"]["value"] == 1.0 and data["ips"]["estimator"] == "ips"
    never = ope.evaluate([replace(entry, target_probability=0.0) for entry in FOUR]).to_dict()
    assert never["snips"]["value"] is None and never["snips"]["low"] is None
    json.dumps(never, allow_nan=False)  # nan became None, so this is strict JSON


@pytest.mark.parametrize(
    ("field", "bad", "interval"),
    [
        ("logged_probability", 0.0, "(0, 1]"),
        ("logged_probability", 1.5, "(0, 1]"),
        ("logged_probability", math.nan, "(0, 1]"),
        ("target_probability", -0.1, "[0, 1]"),
        ("target_probability", 1.2, "[0, 1]"),
    ],
)
def test_invalid_probabilities_name_the_field_and_the_round(
    field: str, bad: float, interval: str
) -> None:
    rounds = [*FOUR[:3], replace(FOUR[3], **{field: bad})]
    message = re.escape(f"{field} must be in {interval}, got {bad} at round 3")
    for estimator in (ope.on_policy, ope.ips, ope.snips, ope.doubly_robust, ope.evaluate):
        with pytest.raises(ValueError, match=message):
            estimator(rounds)


def test_bootstrap_is_deterministic_per_seed_and_brackets_the_mean() -> None:
    values = np.random.default_rng(7).normal(1.0, 2.0, size=200)
    first = ope.bootstrap_interval(values, lambda sample: float(np.mean(sample)), seed=3)
    again = ope.bootstrap_interval(values, lambda sample: float(np.mean(sample)), seed=3)
    other = ope.bootstrap_interval(values, lambda sample: float(np.mean(sample)), seed=4)
    assert first == again
    assert first != other
    low, high = first
    assert low < float(np.mean(values)) < high
    # close to the normal interval: mean +/- 1.96 * std / sqrt(n)
    half_width = Z95 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)


def test_bootstrap_edge_cases() -> None:
    assert all(math.isnan(x) for x in ope.bootstrap_interval(np.array([]), np.mean))
    assert ope.bootstrap_interval(np.array([2.0]), np.mean) == (2.0, 2.0)
    with pytest.raises(ValueError, match="resamples"):
        ope.bootstrap_interval(np.array([1.0]), np.mean, resamples=0)


def test_cross_fit_by_hand() -> None:
    # folds by index: fold 0 = rounds 0, 2 (a: 1, b: 1); fold 1 = rounds 1, 3 (a: 0, b: 1)
    # fitted on fold 1 (used for rounds 0, 2): mean 0.5; a = (0 + 0.5) / (1 + 1) = 0.25;
    #                                          b = (1 + 0.5) / (1 + 1) = 0.75
    # fitted on fold 0 (used for rounds 1, 3): mean 1; a = (1 + 1) / 2 = 1; b = (1 + 1) / 2 = 1
    # the candidate always picks b, and c (never logged) gets the other folds' global mean
    keys, rewards = ["a", "a", "b", "b"], [1.0, 0.0, 1.0, 1.0]
    targets = [{"b": 1.0}, {"b": 1.0}, {"b": 0.5, "c": 0.5}, {"b": 1.0}]
    predicted, target_expected = ope.cross_fit(keys, rewards, targets)
    assert predicted == pytest.approx([0.25, 1.0, 0.75, 1.0])
    assert target_expected == pytest.approx([0.75, 1.0, 0.5 * 0.75 + 0.5 * 0.5, 1.0])


def test_cross_fit_with_one_fold_fits_on_everything() -> None:
    # mean 3/4; a = (1 + 0 + 0.75) / 3 = 7/12; b = (1 + 1 + 0.75) / 3 = 11/12
    predicted, _ = ope.cross_fit(["a", "a", "b", "b"], [1.0, 0.0, 1.0, 1.0], [{}] * 4, folds=1)
    assert predicted == pytest.approx([7 / 12, 7 / 12, 11 / 12, 11 / 12])


def test_cross_fit_never_uses_a_rounds_own_reward() -> None:
    # every round is key a, rewards alternate 1, 0: each fold's rounds all share a reward, so
    # a round judged by the other fold gets the opposite of its own reward:
    # fitted on fold 1 (rewards 0, 0): (0 + 1 * 0) / (2 + 1) = 0; on fold 0: (2 + 1) / 3 = 1
    keys, rewards, targets = ["a"] * 4, [1.0, 0.0, 1.0, 0.0], [{"a": 1.0}] * 4
    predicted, target_expected = ope.cross_fit(keys, rewards, targets, folds=2)
    assert predicted == [0.0, 1.0, 0.0, 1.0]
    assert target_expected == [0.0, 1.0, 0.0, 1.0]
    # and changing a round's own reward never moves its own prediction
    for i in range(4):
        changed = [reward + 10.0 if j == i else reward for j, reward in enumerate(rewards)]
        moved, moved_expected = ope.cross_fit(keys, changed, targets, folds=2)
        assert moved[i] == predicted[i] and moved_expected[i] == target_expected[i]


def test_cross_fit_rejects_inconsistent_inputs() -> None:
    with pytest.raises(ValueError, match="same length"):
        ope.cross_fit(["a"], [1.0, 0.0], [{}])
    with pytest.raises(ValueError, match="folds"):
        ope.cross_fit(["a"], [1.0], [{}], folds=0)
    with pytest.raises(ValueError, match="prior_weight"):
        ope.cross_fit(["a"], [1.0], [{}], prior_weight=-1.0)


def test_a_seeded_simulation_recovers_the_true_value() -> None:
    # logging: arm 0 with p 0.7, arm 1 with p 0.3; Bernoulli rewards with means 0.2 and 0.5;
    # the candidate always plays arm 1, so its true value is 0.5 (the log's own is 0.29)
    rng = np.random.default_rng(20_000)
    n = 20_000
    arms = (rng.random(n) < 0.3).astype(int)
    rewards = (rng.random(n) < np.array([0.2, 0.5])[arms]).astype(float)
    logged = np.array([0.7, 0.3])[arms]
    keys = [f"arm{arm}" for arm in arms.tolist()]
    predicted, target_expected = ope.cross_fit(keys, rewards.tolist(), [{"arm1": 1.0}] * n)
    columns = (logged.tolist(), rewards.tolist(), arms.tolist(), predicted, target_expected)
    rounds = [Round(p, r, float(arm), q, v) for p, r, arm, q, v in zip(*columns, strict=True)]
    evaluation = ope.evaluate(rounds)
    for estimate in (evaluation.ips, evaluation.snips, evaluation.dr):
        assert estimate.low < 0.5 < estimate.high, estimate
        assert estimate.high - estimate.low < 0.05, estimate
    assert evaluation.logged.low < 0.29 < evaluation.logged.high
    assert evaluation.effective_sample_size == pytest.approx(n * 0.3, rel=0.05)
    assert evaluation.max_weight == pytest.approx(1 / 0.3)
