"""The per-partition census: exact counts kept by deltas."""

from __future__ import annotations

from collections import Counter

from stream.core import census
from stream.core.state import new_state
from stream.core.stored import Moved


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


def test_the_funnel_counts_entered_moved_on_and_the_share_not_moved_on_per_stage() -> None:
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
        "not_moved_on": 0.4,
        "drop_off": 0.4,  # the old name, kept for existing clients
        "avg_days_in_stage": 1.0,
    }
    assert stages["acquisition"]["entered"] == 6 and stages["acquisition"]["not_moved_on"] == 1.0
    assert stages["acquisition"]["avg_days_in_stage"] == 2.0
    assert stages["onboarding"]["not_moved_on"] is None
    assert stages["advocacy"]["not_moved_on"] is None
    assert census.transitions(total) == [{"from": "awareness", "to": "acquisition", "count": 6}]


def test_a_new_profile_is_created_and_a_counted_one_merged_away_is_merged() -> None:
    counted = census.summary(customer())
    assert census.people(Counter(), customer(), fresh=True) == Counter({"created": 1})
    assert census.people(counted, Moved("C2"), fresh=False) == Counter({"merged": 1})
    assert census.people(counted, customer("acquisition"), fresh=False) == Counter()
    assert census.people(counted, None, fresh=False) == Counter()  # erased: it did enter
    # created and merged within one batch: never counted, so not taken away either
    assert census.people(Counter(), Moved("C2"), fresh=True) == Counter()


def test_a_person_with_two_merged_profiles_entered_awareness_once() -> None:
    # an anonymous visitor and the customer they signed up as: two profiles, one merged
    total = {"created": 2, "merged": 1, "stage:awareness": 1}
    awareness = census.funnel(total, now_ms=0)[0]
    assert (awareness["entered"], awareness["customers"]) == (1, 1)
    assert awareness["not_moved_on"] == 1.0
