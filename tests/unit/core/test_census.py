"""The per-partition census: exact counts kept by deltas."""

from __future__ import annotations

from collections import Counter

from stream.core import census
from stream.core.state import new_state


def customer(stage: str = "awareness", timers: tuple[str, ...] = (), held: int = 0):
    state = new_state("C1")
    state.stage = stage
    state.timers = {name: {"due_ms": 1} for name in timers}
    state.held = [{"due_ms": 1, "action": {}}] * held
    return state


def test_a_profile_counts_its_stage_timers_and_held_actions() -> None:
    assert census.summary(customer("onboarding", ("cart_abandonment",), 2)) == Counter(
        {"stage:onboarding": 1, "timer:cart_abandonment": 1, "held": 2}
    )
    assert census.summary(None) == Counter()
    assert census.summary("a merged stub") == Counter()


def test_deltas_add_up_to_the_counts_of_the_final_states() -> None:
    new = census.delta(None, customer())
    moved_on = census.delta(customer(), customer("acquisition", ("cart_abandonment",)))
    erased = census.delta(customer("acquisition", ("cart_abandonment",)), None)
    row = census.apply(None, [new, new, moved_on])
    assert row == {"stage:awareness": 1, "stage:acquisition": 1, "timer:cart_abandonment": 1}
    row = census.apply(row, [erased])
    assert row == {"stage:awareness": 1}  # zero counts are dropped
    assert census.delta(customer(), customer()) == Counter()


def test_totals_sum_the_rows_of_every_owned_partition() -> None:
    rows = [
        {"stage:awareness": 3, "timer:inactivity": 2, "held": 1},
        {"stage:awareness": 1, "stage:advocacy": 2, "timer:inactivity": 1},
    ]
    assert census.totals(rows) == ({"advocacy": 2, "awareness": 4}, {"inactivity": 3}, 1)
    assert census.totals([]) == ({}, {}, 0)


def test_the_funnel_counts_entered_moved_on_and_drop_off_per_stage() -> None:
    day = census.DAY_MS
    total = {
        "created": 10,
        "stage:awareness": 4,
        "since:awareness": 4 * 9 * day,  # each there since day 9
        "stage:acquisition": 6,
        "since:acquisition": 6 * 8 * day,
        census.moved("awareness", "acquisition"): 6,
    }
    stages = {s["stage"]: s for s in census.funnel(total, now_ms=10 * day)}
    assert list(stages) == ["awareness", "acquisition", "onboarding", "engagement", "advocacy"]
    assert stages["awareness"] == {
        "stage": "awareness",
        "customers": 4,
        "entered": 10,
        "moved_on": 6,
        "drop_off": 0.4,
        "avg_days_in_stage": 1.0,
    }
    assert stages["acquisition"]["entered"] == 6 and stages["acquisition"]["drop_off"] == 1.0
    assert stages["acquisition"]["avg_days_in_stage"] == 2.0
    assert stages["onboarding"]["drop_off"] is None and stages["advocacy"]["drop_off"] is None
    assert census.transitions(total) == [{"from": "awareness", "to": "acquisition", "count": 6}]
