"""The learned propensity model: what outcomes taught the engine, shared by all customers.

Every send of an action is a trial of its (action, stage, channel) cell; a reward outcome
(by default a click or a conversion) is a success. The process step emits one
``LearningUpdate`` per trial, success, exposure and conversion, keyed by action; the learn
stage folds them into one row per action (``fold``), and every worker decides with the
latest rows it has (a ``PropensityModel``).

A row also holds the uplift counts of the action: exposures and conversions per group
(``treatment``, ``control``) and per experiment variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class UpdateKind(StrEnum):
    """What a learning update counts."""

    TRIAL = "trial"  # the action was sent on a channel
    SUCCESS = "success"  # ... and the customer answered it with a reward outcome
    EXPOSURE = "exposure"  # the action was decided for a customer (treated or held out)
    CONVERSION = "conversion"  # ... and that customer bought within the conversion window


@dataclass(frozen=True, slots=True)
class LearningUpdate:
    """One count for the model of ``action``; cells are ``stage/channel``, arms are groups."""

    action: str
    kind: UpdateKind
    stage: str = ""
    channel: str = ""
    group: str = ""  # treatment | control (exposure and conversion)
    variant: str = ""  # "experiment=variant" when the action is under an experiment
    # Not on the learning topic (``to_message`` leaves them out): what the process step's
    # performance counters (``stream.core.performance``) need of an exposure or conversion.
    journey: str = ""  # the journey whose step decided the action, if any
    value: float = 0.0  # a conversion's purchase value ...
    currency: str = ""  # ... and its currency

    def to_message(self) -> dict[str, str]:
        """JSON form on the learning topic (empty fields left out)."""
        message = {"action": self.action, "kind": self.kind.value}
        for name in ("stage", "channel", "group", "variant"):
            value = getattr(self, name)
            if value:
                message[name] = value
        return message

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> LearningUpdate:
        """Inverse of ``to_message``; raises KeyError/ValueError on a malformed message."""
        return cls(
            action=str(data["action"]),
            kind=UpdateKind(data["kind"]),
            stage=str(data.get("stage", "")),
            channel=str(data.get("channel", "")),
            group=str(data.get("group", "")),
            variant=str(data.get("variant", "")),
        )


def cell_key(stage: str, channel: str) -> str:
    """The key of an (action's) cell in a model row."""
    return f"{stage}/{channel}"


def new_row(action: str) -> dict[str, Any]:
    """An empty model row: no trials, no exposures."""
    return {"action": action, "cells": {}, "uplift": {}, "updates": 0, "updated_at_ms": 0}


def fold(
    row: dict[str, Any] | None, updates: Iterable[LearningUpdate], now_ms: int
) -> dict[str, Any]:
    """The row with ``updates`` counted (a new dict; the input is not changed).

    Cells are ``[trials, successes]``; uplift arms are ``[exposed, converted]``.
    """
    updates = list(updates)
    if not updates:
        return row if row is not None else new_row("")
    result = new_row(updates[0].action) if row is None else _copy(row)
    cells: dict[str, list[int]] = result["cells"]
    uplift: dict[str, list[int]] = result["uplift"]
    for update in updates:
        if update.kind in (UpdateKind.TRIAL, UpdateKind.SUCCESS):
            counts = cells.setdefault(cell_key(update.stage, update.channel), [0, 0])
            counts[0 if update.kind is UpdateKind.TRIAL else 1] += 1
            continue
        index = 0 if update.kind is UpdateKind.EXPOSURE else 1
        for arm in (update.group, update.variant):
            if arm:
                uplift.setdefault(arm, [0, 0])[index] += 1
    result["updates"] += len(updates)
    result["updated_at_ms"] = now_ms
    return result


def _copy(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "cells": {key: list(value) for key, value in row.get("cells", {}).items()},
        "uplift": {key: list(value) for key, value in row.get("uplift", {}).items()},
        "updates": row.get("updates", 0),
    }


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the model saw for one cell: sends and rewarded sends."""

    trials: int = 0
    successes: int = 0


NO_EVIDENCE = Evidence()


@dataclass(frozen=True)
class PropensityModel:
    """A worker's view of the learned rows, by action (immutable: replaced, never changed).

    ``published_at_ms`` is the newest row's publication time (how fresh the view is).
    """

    rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    published_at_ms: int = 0

    def evidence(self, action: str, stage: str, channel: str) -> Evidence:
        """Trials and successes of one cell (none yet: zero and zero)."""
        row = self.rows.get(action)
        if row is None:
            return NO_EVIDENCE
        counts = row["cells"].get(cell_key(stage, channel))
        if counts is None:
            return NO_EVIDENCE
        trials, successes = int(counts[0]), int(counts[1])
        # A success can be counted before its trial arrives (two topics' partitions race).
        return Evidence(max(trials, successes), successes)

    def with_row(self, row: Mapping[str, Any], published_at_ms: int) -> PropensityModel:
        """A new model with ``row`` replacing its action's row."""
        return PropensityModel(
            {**self.rows, str(row["action"]): row}, max(self.published_at_ms, published_at_ms)
        )


EMPTY_MODEL = PropensityModel()
