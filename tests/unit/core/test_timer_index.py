"""The scheduler's deadline index: ordering, re-arming, cancelling, horizon, partitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.timer_index import TimerIndex

HOUR_MS = 3_600_000


def index(now_ms: int = 0, partitions=(0, 1)) -> TimerIndex:
    idx = TimerIndex(HOUR_MS)
    idx.assign(partitions)
    idx.advance(now_ms)
    return idx


def test_pops_due_customers_earliest_first_and_only_once() -> None:
    idx = index()
    idx.update(b"b", 0, 2_000)
    idx.update(b"a", 1, 1_000)
    idx.update(b"c", 0, 9_000)
    assert [(d.key, d.partition) for d in idx.pop_due(5_000, 10)] == [(b"a", 1), (b"b", 0)]
    assert idx.pop_due(5_000, 10) == []
    assert len(idx) == 1 and idx.next_due_ms() == 9_000


def test_rearming_moves_the_deadline_and_cancelling_removes_it() -> None:
    idx = index()
    idx.update(b"a", 0, 1_000)
    idx.update(b"a", 0, 5_000)
    idx.update(b"b", 0, 1_000)
    idx.update(b"b", 0, None)
    assert idx.pop_due(2_000, 10) == []
    assert [d.due_ms for d in idx.pop_due(5_000, 10)] == [5_000]


def test_limit_bounds_one_round() -> None:
    idx = index()
    for n in range(10):
        idx.update(bytes([n]), 0, n)
    assert len(idx.pop_due(100, 4)) == 4
    assert len(idx.pop_due(100, 100)) == 6


def test_deadlines_beyond_the_horizon_wait_for_the_window() -> None:
    idx = index(now_ms=0)
    idx.update(b"far", 0, 2 * HOUR_MS)
    assert len(idx) == 0  # stays in the due table
    idx.advance(HOUR_MS + 1)
    assert idx.load(0, [(b"far", 2 * HOUR_MS), (b"farther", 5 * HOUR_MS)]) == 1
    assert [d.key for d in idx.pop_due(2 * HOUR_MS, 10)] == [b"far"]


def test_revoked_partitions_leave_and_unowned_updates_are_ignored() -> None:
    idx = index()
    idx.update(b"a", 0, 1_000)
    idx.update(b"b", 1, 1_000)
    assert idx.assign([1, 2]) == {2}
    idx.update(b"c", 0, 1_000)  # partition 0 is gone
    assert [d.key for d in idx.pop_due(2_000, 10)] == [b"b"]


def test_a_load_does_not_overwrite_what_the_owner_set_meanwhile() -> None:
    idx = index()
    idx.begin_load()
    idx.update(b"a", 0, 3_000)  # the agent re-armed it after the table was read
    idx.load(0, [(b"a", 1_000), (b"b", 2_000)])
    idx.end_load()
    assert [(d.key, d.due_ms) for d in idx.pop_due(5_000, 10)] == [(b"b", 2_000), (b"a", 3_000)]


def test_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TimerIndex(0)


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.one_of(st.none(), st.integers(0, 10_000))),
        max_size=200,
    ),
    st.integers(0, 10_000),
)
def test_pops_exactly_the_latest_deadlines_due(updates, now_ms) -> None:
    idx = index()
    latest: dict[bytes, int | None] = {}
    for n, due in updates:
        idx.update(bytes([n]), 0, due)
        latest[bytes([n])] = due
    popped = idx.pop_due(now_ms, 10_000)
    expected = sorted((d, k) for k, d in latest.items() if d is not None and d <= now_ms)
    assert [(d.due_ms, d.key) for d in popped] == expected
    assert len(idx) == sum(1 for d in latest.values() if d is not None and d > now_ms)
