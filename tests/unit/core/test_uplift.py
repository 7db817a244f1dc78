"""Uplift: treated conversion rate minus control's, its Agresti-Caffo interval, the reports."""

from __future__ import annotations

import pytest

from stream.core.propensity import LearningUpdate, UpdateKind, fold
from stream.core.uplift import Arm, Uplift, learned_rates, uplift_of, uplift_report


def uplift(treated: tuple[int, int], control: tuple[int, int]) -> Uplift:
    return Uplift("promo", Arm(*treated), Arm(*control))


def test_an_arm_without_exposures_has_no_rate() -> None:
    assert Arm(0, 0).rate is None
    assert Arm(8, 2).rate == 0.25


def test_uplift_is_the_treated_rate_minus_the_control_rate() -> None:
    assert uplift((100, 20), (100, 10)).difference == pytest.approx(0.10)
    assert uplift((50, 5), (10, 2)).difference == pytest.approx(-0.10)


@pytest.mark.parametrize(("treated", "control"), [((5, 1), (0, 0)), ((0, 0), (5, 1))])
def test_no_uplift_until_both_groups_have_exposures(treated, control) -> None:
    result = uplift(treated, control)
    assert result.difference is None
    assert result.interval is None


def test_interval_is_agresti_caffo() -> None:
    # hand computed: pt = 21/102, pc = 11/102, se = 0.050460, 1.96 se = 0.098898
    low, high = uplift((100, 20), (100, 10)).interval
    assert low == pytest.approx(-0.000859, abs=1e-6)
    assert high == pytest.approx(0.196938, abs=1e-6)
    # the centre is the adjusted difference, not the raw one (0.1)
    assert (low + high) / 2 == pytest.approx(10 / 102)


def test_interval_stays_honest_with_zero_conversions_and_few_exposures() -> None:
    low, high = uplift((10, 0), (10, 0)).interval  # a Wald interval would be [0, 0]
    assert low == pytest.approx(-0.22115, abs=1e-5)
    assert high == pytest.approx(0.22115, abs=1e-5)


def test_interval_narrows_with_exposures_and_excludes_zero_for_a_clear_effect() -> None:
    small = uplift((100, 50), (100, 10)).interval
    large = uplift((1000, 500), (1000, 100)).interval
    assert large[1] - large[0] < small[1] - small[0]
    assert large[0] > 0
    assert large[0] < 0.4 < large[1]


def test_uplift_of_a_row_reads_the_groups_and_the_variants() -> None:
    row = {
        "action": "promo",
        "cells": {},
        "uplift": {
            "treatment": [40, 8],
            "control": [10, 1],
            "exp=b": [20, 5],
            "exp=a": [20, 3],
        },
    }
    result = uplift_of(row)
    assert (result.treatment, result.control) == (Arm(40, 8), Arm(10, 1))
    assert result.variants == (("exp=a", Arm(20, 3)), ("exp=b", Arm(20, 5)))
    assert result.to_dict() == {
        "action": "promo",
        "treatment": {"exposed": 40, "converted": 8},
        "control": {"exposed": 10, "converted": 1},
        "uplift": pytest.approx(0.1),
        "interval_95": list(result.interval),
        "variants": {
            "exp=a": {"exposed": 20, "converted": 3},
            "exp=b": {"exposed": 20, "converted": 5},
        },
    }


def test_a_row_without_control_exposures_has_no_uplift_yet() -> None:
    result = uplift_of({"action": "promo", "uplift": {"treatment": [3, 1]}})
    assert result.control == Arm(0, 0)
    assert result.to_dict()["uplift"] is None
    assert result.to_dict()["interval_95"] is None


def test_uplift_counts_come_from_folded_learning_updates() -> None:
    exposure, conversion = UpdateKind.EXPOSURE, UpdateKind.CONVERSION
    updates = [
        *[LearningUpdate("promo", exposure, group="treatment")] * 4,
        LearningUpdate("promo", conversion, group="treatment"),
        *[LearningUpdate("promo", exposure, group="control")] * 2,
    ]
    result = uplift_of(fold(None, updates, now_ms=1))
    assert (result.treatment, result.control) == (Arm(4, 1), Arm(2, 0))
    assert result.difference == pytest.approx(0.25)


def test_report_lists_actions_with_exposures_most_exposed_first() -> None:
    rows = [
        {"action": "b", "cells": {"s/email": [3, 1]}, "uplift": {"treatment": [5, 1]}},
        {"action": "c", "cells": {"s/email": [9, 1]}, "uplift": {}},  # sent, never exposed
        {"action": "a", "uplift": {"treatment": [3, 0], "control": [2, 0]}},
        {"action": "d", "uplift": {"treatment": [30, 3], "control": [1, 0]}},
    ]
    assert [u.action for u in uplift_report(rows)] == ["d", "a", "b"]


def test_learned_rates_lists_every_cell_sorted() -> None:
    rows = [
        {"action": "b", "cells": {"engagement/push": [4, 2]}},
        {"action": "a", "cells": {"onboarding/email": [10, 1], "engagement/email": [3, 0]}},
        {"action": "c", "cells": {}},
    ]
    assert learned_rates(rows) == [
        ("a", "engagement", "email", 3, 0),
        ("a", "onboarding", "email", 10, 1),
        ("b", "engagement", "push", 4, 2),
    ]
