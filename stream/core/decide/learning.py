"""Adaptive propensity: how the learned model and the customer's own history score a channel.

Each (action, stage, channel) cell is a Beta-Bernoulli model. Its prior is the action's
``propensity`` from the policy, weighted as ``evidence`` sends ("starting evidence"), so a
new action is tried and the data takes over as it comes:

    alpha = propensity * evidence + successes
    beta  = (1 - propensity) * evidence + trials - successes

The policy's ``learning.strategy`` turns the posterior into the number arbitration uses:

- ``thompson``: a draw from Beta(alpha, beta), from a generator seeded by the decision
  (customer, trigger), so a redelivered event draws the same numbers;
- ``ucb``: the posterior mean plus ``ucb_z`` standard deviations (Bayes-UCB, normal
  approximation), capped at 1;
- ``fixed``: the policy's propensity, nothing learned.

The population estimate is then smoothed with the customer's own history on that channel
(channel affinity): ``(customer_weight * p + responded) / (customer_weight + sent)``, so a
customer who answers on push and ignores email is reached on push, whatever the crowd does.
Fatigue: after ``fatigue.after`` unanswered messages in a row on a channel, the channel
rests (``effect: pause``) or its score is multiplied by ``factor`` per further message
(``effect: lower``).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from stream.core.propensity import Evidence

STRATEGIES = ("thompson", "ucb", "fixed")
DEFAULT_EVIDENCE = 20.0
DEFAULT_REWARDS = frozenset({"clicked", "converted"})
# Outcomes that show the customer is not ignoring the channel (they reset fatigue).
ENGAGED_OUTCOMES = frozenset({"opened", "clicked", "converted"})
_MIN_SHAPE = 1e-3  # keeps Beta parameters valid for a propensity of 0 or 1


@dataclass(frozen=True, slots=True)
class FatiguePolicy:
    """Consecutive unanswered messages on a channel that pause or lower it."""

    after: int
    effect: str = "pause"  # pause | lower
    pause_ms: int = 7 * 86_400_000
    factor: float = 0.5
    channels: frozenset[str] = frozenset({"email", "sms", "push"})


@dataclass(frozen=True, slots=True)
class LearningPolicy:
    """How outcomes feed back into decisions."""

    strategy: str = "fixed"
    evidence: float = DEFAULT_EVIDENCE
    rewards: frozenset[str] = DEFAULT_REWARDS
    ucb_z: float = 1.96
    customer_weight: float = 2.0
    response_window_ms: int = 2 * 86_400_000  # before that, an unanswered send is no evidence
    fatigue: FatiguePolicy | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A channel's score for one decision, and what it came from (explain records)."""

    propensity: float  # the number arbitration used
    alpha: float
    beta: float
    population: float  # the strategy's value before the customer's own history
    fatigue: float = 1.0  # the multiplier fatigue applied (1: none)

    def to_message(self) -> dict[str, float]:
        """JSON form: enough to recompute selection probabilities offline (IPS)."""
        message = {
            "propensity": round(self.propensity, 6),
            "alpha": round(self.alpha, 4),
            "beta": round(self.beta, 4),
            "population": round(self.population, 6),
        }
        if self.fatigue != 1.0:
            message["fatigue"] = round(self.fatigue, 6)
        return message


@dataclass(frozen=True, slots=True)
class ChannelHistory:
    """The customer's own record on one channel."""

    sent: int = 0
    responded: int = 0
    unanswered: int = 0


NO_HISTORY = ChannelHistory()


@dataclass(frozen=True, slots=True)
class Prior:
    """An action's starting belief: its policy propensity, worth ``evidence`` sends."""

    propensity: float
    evidence: float


class Seed:
    """A decision's random draws: one generator seeded by the decision, made on first use.

    Candidates and channels are scored in the policy's order, so the same decision
    (redelivered event, same model) draws the same numbers.
    """

    __slots__ = ("_rng", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._rng: random.Random | None = None

    def beta(self, alpha: float, beta: float) -> float:
        """The next draw from Beta(alpha, beta)."""
        if self._rng is None:
            digest = hashlib.sha256(self.text.encode()).digest()
            self._rng = random.Random(int.from_bytes(digest[:8], "big"))
        return self._rng.betavariate(alpha, beta)


def estimate(
    learning: LearningPolicy,
    prior: Prior,
    evidence: Evidence,
    history: ChannelHistory,
    seed: Seed,
    channel: str,
) -> Estimate:
    """The propensity of sending ``action`` on ``channel`` to this customer now."""
    p0 = min(1.0, max(0.0, prior.propensity))
    alpha = max(_MIN_SHAPE, p0 * prior.evidence + evidence.successes)
    beta = max(_MIN_SHAPE, (1.0 - p0) * prior.evidence + evidence.trials - evidence.successes)
    if learning.strategy == "fixed":
        population = p0
    elif learning.strategy == "ucb":
        population = min(1.0, posterior_mean(alpha, beta) + learning.ucb_z * _std(alpha, beta))
    else:
        population = seed.beta(alpha, beta)
    scale, shift = personal_terms(learning, history, channel)
    fatigue = fatigue_factor(learning.fatigue, channel, history.unanswered)
    return Estimate(population * scale + shift, alpha, beta, population, fatigue)


def personal_terms(
    learning: LearningPolicy, history: ChannelHistory, channel: str
) -> tuple[float, float]:
    """``(scale, shift)`` turning a population propensity into this customer's:
    ``(weight * p + responded) / (weight + sent) * fatigue``, as ``p * scale + shift``."""
    weight = learning.customer_weight
    fatigue = fatigue_factor(learning.fatigue, channel, history.unanswered)
    denominator = weight + history.sent
    return weight / denominator * fatigue, history.responded / denominator * fatigue


def posterior_mean(alpha: float, beta: float) -> float:
    """The mean of Beta(alpha, beta)."""
    return alpha / (alpha + beta)


def _std(alpha: float, beta: float) -> float:
    total = alpha + beta
    return math.sqrt(alpha * beta / (total * total * (total + 1.0)))


def fatigue_factor(fatigue: FatiguePolicy | None, channel: str, unanswered: int) -> float:
    """The score multiplier of ``effect: lower`` fatigue (1.0 when it does not apply)."""
    if (
        fatigue is None
        or fatigue.effect != "lower"
        or channel not in fatigue.channels
        or unanswered < fatigue.after
    ):
        return 1.0
    return float(fatigue.factor ** (unanswered - fatigue.after + 1))


def resting_until_ms(
    fatigue: FatiguePolicy | None, channel: str, unanswered: int, last_sent_ms: int | None
) -> int | None:
    """Until when ``effect: pause`` fatigue rests the channel, or None if it is usable.

    After the pause one more message may be tried; if it is ignored too, the channel
    rests again.
    """
    if (
        fatigue is None
        or fatigue.effect != "pause"
        or channel not in fatigue.channels
        or unanswered < fatigue.after
        or last_sent_ms is None
    ):
        return None
    return last_sent_ms + fatigue.pause_ms
