"""The learned model: learning updates on the wire, folding them into rows, reading evidence."""

from __future__ import annotations

import pytest

from stream.core.propensity import (
    EMPTY_MODEL,
    NO_EVIDENCE,
    Evidence,
    LearningUpdate,
    PropensityModel,
    UpdateKind,
    cell_key,
    fold,
)

T = UpdateKind.TRIAL
S = UpdateKind.SUCCESS
E = UpdateKind.EXPOSURE
C = UpdateKind.CONVERSION


def sends(action: str, stage: str, channel: str, trials: int, successes: int):
    """``trials`` trial updates and ``successes`` success updates for one cell."""
    return [LearningUpdate(action, T, stage, channel)] * trials + [
        LearningUpdate(action, S, stage, channel)
    ] * successes


def test_update_message_leaves_empty_fields_out_and_round_trips() -> None:
    trial = LearningUpdate("promo", T, "engagement", "email")
    assert trial.to_message() == {
        "action": "promo",
        "kind": "trial",
        "stage": "engagement",
        "channel": "email",
    }
    exposure = LearningUpdate("promo", E, group="control", variant="exp=a")
    assert exposure.to_message() == {
        "action": "promo",
        "kind": "exposure",
        "group": "control",
        "variant": "exp=a",
    }
    for update in (trial, exposure):
        assert LearningUpdate.from_message(update.to_message()) == update


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"kind": "trial"}, KeyError),
        ({"action": "promo"}, KeyError),
        ({"action": "promo", "kind": "click"}, ValueError),
    ],
)
def test_malformed_update_message_raises(message: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LearningUpdate.from_message(message)


def test_fold_counts_trials_and_successes_per_stage_and_channel_cell() -> None:
    updates = [
        *sends("promo", "engagement", "email", 3, 1),
        *sends("promo", "engagement", "push", 2, 2),
        *sends("promo", "onboarding", "email", 1, 0),
    ]
    row = fold(None, updates, now_ms=1_000)
    assert row["action"] == "promo"
    assert row["cells"] == {
        "engagement/email": [3, 1],
        "engagement/push": [2, 2],
        "onboarding/email": [1, 0],
    }
    assert row["uplift"] == {}
    assert row["updates"] == len(updates)
    assert row["updated_at_ms"] == 1_000


def test_fold_counts_exposures_and_conversions_per_group_and_variant() -> None:
    updates = [
        LearningUpdate("promo", E, group="treatment", variant="exp=a"),
        LearningUpdate("promo", E, group="treatment", variant="exp=b"),
        LearningUpdate("promo", E, group="control", variant="exp=a"),
        LearningUpdate("promo", C, group="treatment", variant="exp=a"),
        LearningUpdate("promo", E, group="treatment"),
    ]
    row = fold(None, updates, now_ms=5)
    assert row["uplift"] == {
        "treatment": [3, 1],
        "control": [1, 0],
        "exp=a": [2, 1],
        "exp=b": [1, 0],
    }
    assert row["cells"] == {}


def test_fold_adds_to_an_existing_row_without_changing_it() -> None:
    first = fold(None, [*sends("promo", "s", "email", 2, 1)], now_ms=1)
    snapshot = {**first, "cells": {k: list(v) for k, v in first["cells"].items()}}
    second = fold(
        first, [*sends("promo", "s", "email", 1, 1), LearningUpdate("promo", E, group="control")], 2
    )
    assert second["cells"] == {"s/email": [3, 2]}
    assert second["uplift"] == {"control": [1, 0]}
    assert (second["updates"], second["updated_at_ms"]) == (6, 2)
    assert first == snapshot  # the input row is untouched


def test_folding_in_batches_equals_folding_at_once() -> None:
    updates = [
        *sends("promo", "s", "email", 4, 2),
        *sends("promo", "s", "push", 3, 1),
        LearningUpdate("promo", E, group="treatment"),
        LearningUpdate("promo", C, group="treatment"),
    ]
    at_once = fold(None, updates, now_ms=9)
    batched = None
    for start in range(0, len(updates), 3):
        batched = fold(batched, updates[start : start + 3], now_ms=9)
    assert batched == at_once


def test_fold_of_nothing_keeps_the_row() -> None:
    row = fold(None, sends("promo", "s", "email", 1, 0), now_ms=1)
    assert fold(row, [], now_ms=99) == row


def test_evidence_of_a_cell_and_of_what_was_never_seen() -> None:
    row = fold(None, sends("promo", "engagement", "email", 10, 3), now_ms=1)
    model = EMPTY_MODEL.with_row(row, 1)
    assert model.evidence("promo", "engagement", "email") == Evidence(10, 3)
    assert model.evidence("promo", "engagement", "push") is NO_EVIDENCE
    assert model.evidence("promo", "onboarding", "email") == Evidence(0, 0)
    assert model.evidence("other", "engagement", "email") == Evidence(0, 0)


def test_evidence_never_has_more_successes_than_trials() -> None:
    # successes and trials travel on different partitions: a success may arrive first
    row = fold(None, sends("promo", "s", "push", 1, 3), now_ms=1)
    assert PropensityModel({"promo": row}).evidence("promo", "s", "push") == Evidence(3, 3)


def test_with_row_replaces_one_action_and_keeps_the_newest_publication_time() -> None:
    a = fold(None, sends("a", "s", "email", 1, 0), now_ms=1)
    b = fold(None, sends("b", "s", "email", 2, 0), now_ms=1)
    model = EMPTY_MODEL.with_row(a, 100).with_row(b, 50)
    assert set(model.rows) == {"a", "b"}
    assert model.published_at_ms == 100
    newer_a = fold(a, sends("a", "s", "email", 1, 1), now_ms=2)
    updated = model.with_row(newer_a, 200)
    assert updated.evidence("a", "s", "email") == Evidence(2, 1)
    assert updated.evidence("b", "s", "email") == Evidence(2, 0)
    assert updated.published_at_ms == 200
    assert model.evidence("a", "s", "email") == Evidence(1, 0)  # the old view is unchanged
    assert EMPTY_MODEL.rows == {}


def test_cell_key_is_stage_slash_channel() -> None:
    assert cell_key("engagement", "push") == "engagement/push"
