"""How likely the policy was to choose what it chose: the explain record's ``probability``.

Off-policy evaluation (``journey evaluate-policy``) weighs each logged decision by how
likely the policy in force was to make it. Most of a decision is deterministic given the
customer's state: filters, feasibility of each channel (reach, consent, fatigue, caps)
and the tie-breaks. What is random is Thompson sampling: each scored (action, channel)
cell draws its population propensity from Beta(alpha, beta). This module estimates the
distribution of the decision's choice over those draws by Monte Carlo:

- each draw scores every cell as the engine does (``population * scale + shift``, the
  customer's own history and fatigue folded into ``scale`` and ``shift``), ranks the
  actions by priority (their best channel's propensity, or the first listed channel's for
  an experiment arm with a fixed channel order, times context weight x value x lever,
  ties by policy order) and gives each chosen action its best feasible channel;
- the share of draws that gave each choice is its probability; the choice the decision
  made gets at least half a draw (never 0: a logged decision is weighted by 1/p).

The draws come from a generator seeded by the decision, so a redelivered event records
the same numbers. Feasibility is the engine's for the first pick; with ``max_actions`` > 1
a later pick's caps do not see the earlier picks of the same draw (an approximation).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DRAWS = 128  # a share's standard error is at most 0.044
NOTHING = ""  # the choice of a decision that chose no action
CHOICES_KEPT = 8  # the most likely choices an explain record lists


@dataclass(frozen=True, slots=True)
class Cell:
    """One channel of a scored action: its posterior and how the customer's history maps
    a population draw to the propensity the arbiter uses."""

    channel: str
    alpha: float
    beta: float
    scale: float
    shift: float
    feasible: bool  # reachable, consented, not resting and under every cap


@dataclass(frozen=True, slots=True)
class Option:
    """A scored action as the draws see it; options come in policy order (ties)."""

    action: str
    multiplier: float  # context weight x value x lever
    cells: tuple[Cell, ...]
    fixed_order: bool = False  # an experiment arm's channels: the first listed ranks it


def choice_key(pairs: Iterable[tuple[str, str]]) -> str:
    """The name of a choice: its ``action@channel`` pairs, sorted, joined by ``+``."""
    return "+".join(sorted(f"{action}@{channel}" for action, channel in pairs))


def needs_draws(options: Sequence[Option]) -> bool:
    """True when the draws can change the choice: two or more feasible cells."""
    return sum(cell.feasible for option in options for cell in option.cells) > 1


def choice_distribution(
    options: Sequence[Option],
    seed_text: str,
    max_actions: int = 1,
    one_per_channel: bool = False,
    draws: int = DRAWS,
) -> dict[str, float]:
    """Each possible choice's share of ``draws`` Thompson draws (see the module)."""
    in_play = [option for option in options if any(cell.feasible for cell in option.cells)]
    if not in_play:
        return {NOTHING: 1.0}
    rng = np.random.Generator(np.random.PCG64(_seed(seed_text)))
    if len(in_play) == 1 and max_actions == 1:
        return _one_option(in_play[0], rng, draws)
    table = _Table(options)
    scores = table.draw(rng, draws)
    if max_actions == 1:
        counts = table.single_pick_counts(scores)
    else:
        counts = _multi_pick_counts(options, table.split(scores), max_actions, one_per_channel)
    return {key: count / draws for key, count in counts.items()}


def _one_option(option: Option, rng: np.random.Generator, draws: int) -> dict[str, float]:
    """One action can go out: only its feasible channels' draws matter (the common case)."""
    cells = [cell for cell in option.cells if cell.feasible]
    if option.fixed_order:
        return {choice_key([(option.action, cells[0].channel)]): 1.0}
    alpha, beta, scale, shift = np.array([(c.alpha, c.beta, c.scale, c.shift) for c in cells]).T
    scores = rng.beta(alpha, beta, size=(draws, len(cells))) * scale + shift
    tally = np.bincount(np.argmax(scores, axis=1), minlength=len(cells))
    return {
        choice_key([(option.action, cells[index].channel)]): int(count) / draws
        for index, count in enumerate(tally.tolist())
        if count
    }


def probability_of(distribution: dict[str, float], choice: str, draws: int = DRAWS) -> float:
    """The probability of ``choice``: its share, at least half a draw."""
    return max(distribution.get(choice, 0.0), 0.5 / draws)


def top_choices(distribution: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """The ``CHOICES_KEPT`` most likely choices, most likely first (ties by name)."""
    ranked = sorted(distribution.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:CHOICES_KEPT])


def _seed(text: str) -> int:
    digest = hashlib.sha256(f"{text}|probability".encode()).digest()
    return int.from_bytes(digest[:8], "big")


FloatArray = npt.NDArray[np.float64]


class _Table:
    """Every option's cells side by side, one column each, for vectorised draws."""

    def __init__(self, options: Sequence[Option]) -> None:
        self.options = options
        cells = [cell for option in options for cell in option.cells]
        self.names = [
            choice_key([(option.action, cell.channel)])
            for option in options
            for cell in option.cells
        ]
        self.terms = np.array([(c.alpha, c.beta, c.scale, c.shift) for c in cells]).T
        self.feasible = np.array([cell.feasible for cell in cells])
        sizes = [len(option.cells) for option in options]
        self.starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        self.owner = np.repeat(np.arange(len(options)), sizes)
        self.fixed = np.array([option.fixed_order for option in options])
        self.multiplier = np.array([option.multiplier for option in options])
        self.in_play = np.array([any(c.feasible for c in option.cells) for option in options])
        # A fixed-order option sends on its first feasible channel, whatever the draws.
        position = np.arange(len(cells)) - self.starts[self.owner]
        self.fixed_rank = np.where(self.fixed[self.owner], -position.astype(np.float64), np.nan)

    def draw(self, rng: np.random.Generator, draws: int) -> FloatArray:
        """Each cell's propensity in each draw: shape (draws, cells)."""
        alpha, beta, scale, shift = self.terms
        population: FloatArray = rng.beta(alpha, beta, size=(draws, alpha.size))
        scores: FloatArray = population * scale + shift
        return scores

    def split(self, scores: FloatArray) -> list[FloatArray]:
        """The columns of each option."""
        return np.split(scores, self.starts[1:], axis=1)

    def single_pick_counts(self, scores: FloatArray) -> Counter[str]:
        """How many draws chose each ``action@channel`` (``max_actions`` 1)."""
        best = np.maximum.reduceat(scores, self.starts, axis=1)
        best = np.where(self.fixed, scores[:, self.starts], best) * self.multiplier
        priority = np.where(self.in_play, best, -np.inf)
        winner = np.argmax(priority, axis=1)  # the first of equal maxima: policy order
        ranked = np.where(np.isnan(self.fixed_rank), scores, self.fixed_rank)
        mine = (self.owner == winner[:, None]) & self.feasible
        picks = np.argmax(np.where(mine, ranked, -np.inf), axis=1)
        nothing = np.isneginf(priority.max(axis=1))
        counts: Counter[str] = Counter()
        tally = np.bincount(picks[~nothing], minlength=len(self.names))
        for column in np.flatnonzero(tally).tolist():
            counts[self.names[column]] += int(tally[column])
        if nothing.any():
            counts[NOTHING] += int(nothing.sum())
        return counts


def _priority(option: Option, scores: FloatArray) -> FloatArray:
    """The option's priority in each draw; -inf when it has no feasible channel."""
    if not any(cell.feasible for cell in option.cells):
        return np.full(scores.shape[0], -np.inf)
    best = scores[:, 0] if option.fixed_order else scores.max(axis=1)
    return best * option.multiplier


def _multi_pick_counts(
    options: Sequence[Option],
    scores: Sequence[FloatArray],
    max_actions: int,
    one_per_channel: bool,
) -> Counter[str]:
    priorities = np.stack([_priority(o, s) for o, s in zip(options, scores, strict=True)])
    counts: Counter[str] = Counter()  # a Python loop per draw: max_actions > 1 is rare
    for draw in range(priorities.shape[1]):
        ranked = sorted(range(len(options)), key=lambda i: (-priorities[i, draw], i))
        picked: list[tuple[str, str]] = []
        for index in ranked:
            if len(picked) >= max_actions or np.isneginf(priorities[index, draw]):
                break
            channel = _best_free_channel(
                options[index], scores[index][draw], picked, one_per_channel
            )
            if channel is not None:
                picked.append((options[index].action, channel))
        counts[choice_key(picked)] += 1
    return counts


def _best_free_channel(
    option: Option, scores: FloatArray, picked: list[tuple[str, str]], one_per_channel: bool
) -> str | None:
    taken = {channel for _, channel in picked} if one_per_channel else set()
    free = [
        (index, cell)
        for index, cell in enumerate(option.cells)
        if cell.feasible and cell.channel not in taken
    ]
    if not free:
        return None
    if option.fixed_order:
        return free[0][1].channel
    return max(free, key=lambda item: (scores[item[0]], -item[0]))[1].channel
