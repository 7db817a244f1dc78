"""Condition errors at run time: counted per action from zero, logged once a minute per action."""

from __future__ import annotations

import logging

import pytest

from stream.core.decide import Reason
from stream.shell.condition_errors import ConditionErrors
from stream.shell.metrics import Metrics
from tests.unit.core.decide.helpers import SHIPPED_RULES, policy_from, run
from tests.unit.core.decide.test_engine import CONDITIONS, order

COUNTER = "journey_condition_errors_total"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def count(metrics: Metrics, action: str) -> float | None:
    return metrics.registry.get_sample_value(COUNTER, {"action": action})


def test_every_action_of_the_policy_starts_at_zero() -> None:
    metrics = Metrics()
    ConditionErrors(metrics.condition_errors).track(SHIPPED_RULES)
    for action in SHIPPED_RULES.actions:
        assert count(metrics, action.id) == 0.0


def test_errors_are_counted_per_action_and_logged_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics, clock = Metrics(), Clock()
    errors = ConditionErrors(metrics.condition_errors, interval_s=60, clock=clock)
    policy = policy_from(CONDITIONS)  # action "broken" reads a property the orders lack
    errors.track(policy)
    _, results = run([order(f"o{i}") for i in range(5)], policy, gap_ms=1)
    decisions = [result.decision for result in results]
    assert {c.action: c.reason for c in decisions[0].candidates}["broken"] is Reason.CONDITION_ERROR
    with caplog.at_level(logging.WARNING, logger="stream.shell.condition_errors"):
        for decision in decisions[:3]:
            errors.record(decision)
        clock.now = 61
        for decision in decisions[3:]:
            errors.record(decision)
    assert count(metrics, "broken") == 5 and count(metrics, "picky") == 0
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "action broken suppressed by a condition error (policy cond@" in lines[0]
    assert "currency" in lines[0]
    assert "2 more since the last line" in lines[1]


def test_other_suppressions_are_not_condition_errors() -> None:
    metrics = Metrics()
    errors = ConditionErrors(metrics.condition_errors)
    _, [result] = run([order()], SHIPPED_RULES)
    assert not any(c.reason is Reason.CONDITION_ERROR for c in result.decision.candidates)
    errors.record(result.decision)
    assert count(metrics, "vip_treatment") is None  # not tracked, never incremented
