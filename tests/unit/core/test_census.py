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
