"""Control groups and experiments: who is held out, and which arm of a test a customer is in.

Assignment is a pure function of the customer key (SHA-256 of the policy's salt and the
key, read as a number in [0, 1)), so every worker, every replay and every report agrees,
and no assignment is stored.

- The universal control group (``holdout.control_share`` of customers) gets decisions
  made and logged, but no action of a held-out category (marketing by default) is sent:
  the explain record says ``holdout``. Its conversions are the baseline of uplift.
- An experiment splits the customers between variants by share: either variants of one
  action's channel list (``action`` + ``channels`` per variant), or variants that are
  whole actions (``action`` per variant: a customer is only offered their arm's action).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

CONTROL = "control"
TREATMENT = "treatment"
DEFAULT_CONVERSION_WINDOW_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment: a share of customers and what they get."""

    name: str
    share: float
    action: str | None = None  # arm of an action-vs-action test
    channels: tuple[str, ...] | None = None  # arm of a channel test


@dataclass(frozen=True, slots=True)
class Experiment:
    """A split of customers between variants (shares sum to 1)."""

    name: str
    variants: tuple[Variant, ...]
    action: str | None = None  # the action under a channel test
    description: str = ""

    @property
    def actions(self) -> frozenset[str]:
        """Every action this experiment governs."""
        names = {variant.action for variant in self.variants if variant.action}
        if self.action:
            names.add(self.action)
        return frozenset(names)


@dataclass(frozen=True, slots=True)
class HoldoutPolicy:
    """The universal control group, the experiments, and how conversions are attributed."""

    control_share: float = 0.0
    salt: str = "journey-stream"
    categories: frozenset[str] = frozenset({"marketing"})
    conversion_window_ms: int = DEFAULT_CONVERSION_WINDOW_MS
    conversion_events: frozenset[str] = frozenset({"order_completed", "store_purchase"})
    experiments: tuple[Experiment, ...] = ()
    by_action: Mapping[str, Experiment] = field(default_factory=dict)


@lru_cache(maxsize=65_536)  # the same customers decide again and again; a hit is ~0.1 µs
def bucket(salt: str, *parts: str) -> float:
    """A uniform number in [0, 1) fixed by the salt and the parts."""
    digest = hashlib.sha256("|".join((salt, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def group_of(customer_key: str, holdout: HoldoutPolicy) -> str:
    """``control`` for the universal control group, else ``treatment``."""
    if holdout.control_share <= 0.0:
        return TREATMENT
    return (
        CONTROL
        if bucket(holdout.salt, "control", customer_key) < holdout.control_share
        else TREATMENT
    )


def variant_of(customer_key: str, experiment: Experiment, salt: str) -> Variant:
    """The customer's arm of the experiment."""
    point = bucket(salt, "experiment", experiment.name, customer_key)
    total = 0.0
    for variant in experiment.variants:
        total += variant.share
        if point < total:
            return variant
    return experiment.variants[-1]  # shares summing to 1 - epsilon


def holds_out(holdout: HoldoutPolicy, group: str, category: str) -> bool:
    """True if an action of ``category`` is decided but not sent for this group."""
    return group == CONTROL and category in holdout.categories
