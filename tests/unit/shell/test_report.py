"""The `journey report` tables, from model rows as the learn step publishes them."""

from __future__ import annotations

from stream.core.propensity import LearningUpdate, UpdateKind, fold
from stream.core.uplift import uplift_report
from stream.shell.report import format_model, format_uplift


def row(action: str, treated: tuple[int, int], control: tuple[int, int]) -> dict:
    updates = []
    for group, (exposed, converted) in (("treatment", treated), ("control", control)):
        variant = "test=a" if group == "treatment" else ""
        updates += [
            LearningUpdate(action, UpdateKind.EXPOSURE, group=group, variant=variant)
        ] * exposed
        updates += [
            LearningUpdate(action, UpdateKind.CONVERSION, group=group, variant=variant)
        ] * converted
    updates += [LearningUpdate(action, UpdateKind.TRIAL, "onboarding", "push")] * 4
    updates += [LearningUpdate(action, UpdateKind.SUCCESS, "onboarding", "push")]
    return fold(None, updates, now_ms=1)


def test_the_uplift_table_shows_counts_rates_difference_and_variants() -> None:
    text = format_uplift(uplift_report([row("cart_reminder", (200, 30), (20, 1))]))
    lines = text.splitlines()
    assert lines[0].split() == ["action", "treated", "control", "uplift", "95%", "interval"]
    assert lines[1].split()[:6] == ["cart_reminder", "30/200", "15.0%", "1/20", "5.0%", "+10.0"]
    assert "test=a" in text and "30/200 15.0%" in lines[-1]


def test_without_exposures_the_report_says_so() -> None:
    assert format_uplift([]).startswith("no exposures yet")
    assert format_model([]).startswith("nothing learnt yet")


def test_the_model_table_lists_each_learnt_cell() -> None:
    lines = format_model([row("cart_reminder", (1, 0), (0, 0))]).splitlines()
    assert lines[1].split() == ["cart_reminder", "onboarding", "push", "4", "1", "25.0%"]
