"""Off-policy evaluation: what a candidate policy would have earned, estimated from a log.

A log holds n rounds. At round i the logging policy saw context x_i, chose a_i with
probability p_b(a_i | x_i) and observed reward r_i. The candidate (target) policy would
have chosen the same a_i with probability pi_e(a_i | x_i). The importance weight of the
round is w_i = pi_e(a_i | x_i) / p_b(a_i | x_i).

Estimators of the value V (expected reward per decision):

    on-policy  V = (1/n) * sum_i r_i
               the logging policy's own value, the baseline a candidate must beat
    IPS        V = (1/n) * sum_i w_i * r_i
               unbiased when p_b(a | x) > 0 wherever pi_e(a | x) > 0; high variance
    SNIPS      V = sum_i w_i * r_i / sum_i w_i
               self-normalised: slightly biased, bounded by the rewards, lower variance
    DR         V = (1/n) * sum_i [ qhat_pi(x_i) + w_i * (r_i - qhat(x_i, a_i)) ]
               with qhat_pi(x_i) = sum_a pi_e(a | x_i) * qhat(x_i, a); the reward model
               qhat gives the baseline and the weighted residual corrects its bias, so the
               estimate is unbiased when either p_b or qhat is right

Intervals are normal: V +/- z * se with z = Phi^-1((1 + confidence) / 2). For the mean
estimators (on-policy, IPS, DR) se = sample std (ddof=1) of the per-round terms / sqrt(n).
For SNIPS se comes from the delta method: se = sqrt(sum_i w_i^2 * (r_i - V)^2) / sum_i w_i.
With fewer than 2 rounds se and the interval are nan. ``bootstrap_interval`` gives a
percentile bootstrap interval for any statistic instead.

How far the log supports a candidate: the effective sample size
ESS = (sum_i w_i)^2 / sum_i w_i^2 (Kish) is the number of on-policy rounds the reweighted
log is worth, and the largest weight shows how much a single round can swing IPS.

The DR reward model comes from ``cross_fit``: per choice key, the mean reward shrunk
towards the global mean, qhat(k) = (sum of k's rewards + m * mean) / (count of k + m),
fitted on the folds that do not hold the round, so no round is judged by a model that
saw its own reward.

The formulas follow Open Bandit Pipeline's ``InverseProbabilityWeighting``,
``SelfNormalizedInverseProbabilityWeighting`` and ``DoublyRobust`` (Dudik et al. 2014;
Swaminathan & Joachims 2015). OBP itself is not a dependency: obp 0.4.1 (last released
in 2021) pulls in torch, matplotlib, seaborn, pandas and scikit-learn, far too heavy for
a worker image.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

# Bootstrap resamples are drawn in blocks of about this many indices, to bound memory.
_BOOTSTRAP_BLOCK = 1_000_000


@dataclass(frozen=True, slots=True)
class Round:
    """One logged decision as the estimators see it."""

    logged_probability: float  # p_b(a_i | x_i) > 0: probability the logging policy chose it
    reward: float  # r_i observed for the logged choice
    target_probability: float  # pi_e(a_i | x_i): probability the candidate would choose it
    predicted: float = 0.0  # qhat(x_i, a_i): the reward model's prediction (DR)
    target_expected: float = 0.0  # sum_a pi_e(a | x_i) * qhat(x_i, a): model value (DR)


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """An estimate of a policy's expected reward per decision, with its interval."""

    estimator: str  # "on-policy" | "ips" | "snips" | "dr"
    value: float
    low: float
    high: float
    std_error: float
    rounds: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Every estimate of one candidate, and how far the log supports it."""

    logged: PolicyValue
    ips: PolicyValue
    snips: PolicyValue
    dr: PolicyValue
    effective_sample_size: float
    max_weight: float
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as JSON-ready data: plain floats, nan and inf as None."""
        return {
            "logged": _policy_value_dict(self.logged),
            "ips": _policy_value_dict(self.ips),
            "snips": _policy_value_dict(self.snips),
            "dr": _policy_value_dict(self.dr),
            "effective_sample_size": _json_float(self.effective_sample_size),
            "max_weight": _json_float(self.max_weight),
            "rounds": self.rounds,
        }


def importance_weights(rounds: Sequence[Round]) -> Vector:
    """The weights w_i = pi_e(a_i | x_i) / p_b(a_i | x_i), after checking the probabilities."""
    logged = _column(rounds, "logged_probability")
    target = _column(rounds, "target_probability")
    _check_range(logged, "logged_probability", "(0, 1]", (logged > 0) & (logged <= 1))
    _check_range(target, "target_probability", "[0, 1]", (target >= 0) & (target <= 1))
    return target / logged


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2; 0.0 when every weight is 0."""
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / squares if squares > 0 else 0.0


def on_policy(rounds: Sequence[Round], confidence: float = 0.95) -> PolicyValue:
    """The logging policy's own value: the mean logged reward, with a normal interval."""
    importance_weights(rounds)  # validates the log, so every estimator rejects the same rounds
    return _mean_estimate("on-policy", _column(rounds, "reward"), confidence)


def ips(rounds: Sequence[Round], confidence: float = 0.95) -> PolicyValue:
    """Inverse propensity scoring: mean(w * r), with a normal interval."""
    weights = importance_weights(rounds)
    return _mean_estimate("ips", weights * _column(rounds, "reward"), confidence)


def snips(rounds: Sequence[Round], confidence: float = 0.95) -> PolicyValue:
    """Self-normalised IPS: sum(w * r) / sum(w), with a delta-method interval."""
    weights = importance_weights(rounds)
    rewards = _column(rounds, "reward")
    total_weight = float(np.sum(weights))
    if total_weight == 0:
        return _normal_estimate("snips", math.nan, math.nan, len(rounds), confidence)
    value = float(np.sum(weights * rewards)) / total_weight
    std_error = math.nan
    if len(rounds) >= 2:
        residuals = weights * (rewards - value)
        std_error = math.sqrt(float(np.sum(residuals * residuals))) / total_weight
    return _normal_estimate("snips", value, std_error, len(rounds), confidence)


def doubly_robust(rounds: Sequence[Round], confidence: float = 0.95) -> PolicyValue:
    """Doubly robust: mean(target_expected + w * (r - predicted)), with a normal interval."""
    weights = importance_weights(rounds)
    residuals = _column(rounds, "reward") - _column(rounds, "predicted")
    terms = _column(rounds, "target_expected") + weights * residuals
    return _mean_estimate("dr", terms, confidence)


def evaluate(rounds: Sequence[Round], confidence: float = 0.95) -> Evaluation:
    """Every estimate of the candidate behind ``rounds``, with the log's support for it."""
    weights = importance_weights(rounds)
    return Evaluation(
        logged=on_policy(rounds, confidence),
        ips=ips(rounds, confidence),
        snips=snips(rounds, confidence),
        dr=doubly_robust(rounds, confidence),
        effective_sample_size=effective_sample_size(weights),
        max_weight=float(np.max(weights)) if len(weights) else 0.0,
        rounds=len(rounds),
    )


def bootstrap_interval(
    values: npt.NDArray[Any],
    statistic: Callable[[npt.NDArray[Any]], float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values``, deterministic per seed."""
    _normal_quantile(confidence)  # validates confidence
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    data = np.asarray(values)
    if len(data) == 0:
        return math.nan, math.nan
    generator = np.random.Generator(np.random.PCG64(seed))
    rows_per_block = max(1, _BOOTSTRAP_BLOCK // len(data))
    statistics: list[float] = []
    for start in range(0, resamples, rows_per_block):
        rows = min(rows_per_block, resamples - start)
        samples = data[generator.integers(0, len(data), size=(rows, len(data)))]
        statistics.extend(float(statistic(sample)) for sample in samples)
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.asarray(statistics), [tail, 1 - tail])
    return float(low), float(high)


def cross_fit(
    keys: Sequence[str],
    rewards: Sequence[float],
    targets: Sequence[Mapping[str, float]],
    folds: int = 2,
    prior_weight: float = 1.0,
) -> tuple[list[float], list[float]]:
    """Cross-fitted DR inputs per round: (qhat of the logged key, candidate's expected qhat)."""
    _check_cross_fit_arguments(keys, rewards, targets, folds, prior_weight)
    index: dict[str, int] = {}  # every key, logged or in a target, to its column
    for key in itertools.chain(keys, *targets):
        index.setdefault(key, len(index))
    key_ids = np.fromiter((index[key] for key in keys), dtype=np.intp, count=len(keys))
    reward_array = np.asarray(rewards, dtype=np.float64)
    fold_of_round = np.arange(len(keys)) % folds
    models = []  # models[f]: every key's prediction, fitted without the rounds of fold f
    for fold in range(folds):
        training = fold_of_round != fold if folds > 1 else np.ones(len(keys), dtype=bool)
        models.append(
            _key_means(key_ids[training], reward_array[training], len(index), prior_weight)
        )
    predicted: list[float] = []
    target_expected: list[float] = []
    for i, target in enumerate(targets):
        model = models[i % folds]
        predicted.append(float(model[key_ids[i]]))
        target_expected.append(sum(p * float(model[index[k]]) for k, p in target.items()))
    return predicted, target_expected


def _key_means(key_ids: npt.NDArray[np.intp], rewards: Vector, keys: int, prior: float) -> Vector:
    """Each key's mean reward shrunk towards the global mean by ``prior`` pseudo-rounds."""
    global_mean = float(np.mean(rewards)) if len(rewards) else 0.0
    sums = np.bincount(key_ids, weights=rewards, minlength=keys)
    counts = np.bincount(key_ids, minlength=keys).astype(np.float64)
    denominators = counts + prior
    safe = np.where(denominators > 0, denominators, 1.0)
    return np.where(denominators > 0, (sums + prior * global_mean) / safe, global_mean)


def _check_cross_fit_arguments(
    keys: Sequence[str],
    rewards: Sequence[float],
    targets: Sequence[Mapping[str, float]],
    folds: int,
    prior_weight: float,
) -> None:
    """Raise ValueError unless the inputs line up and the settings make sense."""
    if not len(keys) == len(rewards) == len(targets):
        raise ValueError(
            "keys, rewards and targets must have the same length, got "
            f"{len(keys)}, {len(rewards)} and {len(targets)}"
        )
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    if not prior_weight >= 0:
        raise ValueError(f"prior_weight must be at least 0, got {prior_weight}")


def _column(rounds: Sequence[Round], field: str) -> Vector:
    """One field of every round, as a float vector."""
    values = (getattr(entry, field) for entry in rounds)
    return np.fromiter(values, dtype=np.float64, count=len(rounds))


def _check_range(values: Vector, field: str, interval: str, valid: npt.NDArray[np.bool_]) -> None:
    """Raise ValueError naming the field and the first round whose value is out of range."""
    invalid = np.flatnonzero(~valid)
    if len(invalid):
        position = int(invalid[0])
        raise ValueError(
            f"{field} must be in {interval}, got {float(values[position])} at round {position}"
        )


def _mean_estimate(estimator: str, terms: Vector, confidence: float) -> PolicyValue:
    """The mean of per-round terms, se = sample std / sqrt(n), with a normal interval."""
    n = len(terms)
    value = float(np.mean(terms)) if n else math.nan
    std_error = float(np.std(terms, ddof=1)) / math.sqrt(n) if n >= 2 else math.nan
    return _normal_estimate(estimator, value, std_error, n, confidence)


def _normal_estimate(
    estimator: str, value: float, std_error: float, rounds: int, confidence: float
) -> PolicyValue:
    """A PolicyValue with the normal interval value +/- z * std_error."""
    margin = _normal_quantile(confidence) * std_error
    return PolicyValue(estimator, value, value - margin, value + margin, std_error, rounds)


def _normal_quantile(confidence: float) -> float:
    """The z of a two-sided normal interval at ``confidence``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf((1 + confidence) / 2)


def _policy_value_dict(estimate: PolicyValue) -> dict[str, Any]:
    """One estimate as JSON-ready data."""
    return {
        "estimator": estimate.estimator,
        "value": _json_float(estimate.value),
        "low": _json_float(estimate.low),
        "high": _json_float(estimate.high),
        "std_error": _json_float(estimate.std_error),
        "rounds": estimate.rounds,
    }


def _json_float(number: float) -> float | None:
    """A plain float, or None where JSON has no number (nan, inf)."""
    return float(number) if math.isfinite(number) else None
