"""Uplift of an action: conversion rate of treated customers minus that of the control group.

An exposure is a marketing action decided for a customer (sent to the treated, only
logged for the universal control group); it converts when that customer buys within the
conversion window after the decision. Both groups are counted by the same rule, so the
difference is what sending the action adds. The 95 % interval is Agresti-Caffo's (one
success and one failure added to each group before the normal approximation): unlike
the plain Wald interval it stays honest with few control exposures or zero conversions,
where it is wide and says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream.core.decide.holdout import CONTROL, TREATMENT
from stream.core.propensity import cell_key

Z_95 = 1.959964


@dataclass(frozen=True, slots=True)
class Arm:
    """Exposures and conversions of one group (or variant)."""

    exposed: int
    converted: int

    @property
    def rate(self) -> float | None:
        """Conversion rate, or None without exposures."""
        return self.converted / self.exposed if self.exposed else None


@dataclass(frozen=True, slots=True)
class Uplift:
    """One action's treated-vs-control comparison and its experiment variants."""

    action: str
    treatment: Arm
    control: Arm
    variants: tuple[tuple[str, Arm], ...] = ()

    @property
    def difference(self) -> float | None:
        """Treated rate minus control rate (None until both groups have exposures)."""
        if self.treatment.rate is None or self.control.rate is None:
            return None
        return self.treatment.rate - self.control.rate

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % interval of the difference (None until both groups have exposures)."""
        difference = self.difference
        if difference is None:
            return None
        t, c = self.treatment, self.control
        pt = (t.converted + 1) / (t.exposed + 2)
        pc = (c.converted + 1) / (c.exposed + 2)
        se = math.sqrt(pt * (1 - pt) / (t.exposed + 2) + pc * (1 - pc) / (c.exposed + 2))
        centre = pt - pc
        return centre - Z_95 * se, centre + Z_95 * se

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for ``journey report uplift --json``)."""
        interval = self.interval
        return {
            "action": self.action,
            "treatment": {"exposed": self.treatment.exposed, "converted": self.treatment.converted},
            "control": {"exposed": self.control.exposed, "converted": self.control.converted},
            "uplift": self.difference,
            "interval_95": list(interval) if interval else None,
            "variants": {
                name: {"exposed": arm.exposed, "converted": arm.converted}
                for name, arm in self.variants
            },
        }


def uplift_of(row: Mapping[str, Any]) -> Uplift:
    """The uplift of the action a model row describes."""
    arms = row.get("uplift", {})

    def arm(name: str) -> Arm:
        exposed, converted = arms.get(name, (0, 0))
        return Arm(int(exposed), int(converted))

    variants = tuple((name, arm(name)) for name in sorted(arms) if name not in (TREATMENT, CONTROL))
    return Uplift(str(row["action"]), arm(TREATMENT), arm(CONTROL), variants)


def uplift_report(rows: Iterable[Mapping[str, Any]]) -> list[Uplift]:
    """Every action with exposures, most exposed first."""
    report = [uplift_of(row) for row in rows if row.get("uplift")]
    return sorted(report, key=lambda u: (-(u.treatment.exposed + u.control.exposed), u.action))


def learned_rates(
    rows: Iterable[Mapping[str, Any]],
) -> list[tuple[str, str, str, int, int]]:
    """(action, stage, channel, trials, successes) of every learned cell, sorted."""
    cells = []
    for row in rows:
        for key, (trials, successes) in row.get("cells", {}).items():
            stage, _, channel = key.partition("/")
            assert cell_key(stage, channel) == key
            cells.append((str(row["action"]), stage, channel, int(trials), int(successes)))
    return sorted(cells)
