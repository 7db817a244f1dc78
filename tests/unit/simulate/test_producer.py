"""What a simulation run reports, and how it paces itself (no broker needed)."""

from __future__ import annotations

from collections import Counter

from stream.simulate.producer import MAX_BATCH, SimulationStats, batch_size_for, mean_gap_for


def test_the_stats_of_a_run_list_channels_in_order_and_its_rate() -> None:
    stats = SimulationStats.of(30, Counter({"web": 20, "app": 10}), 2.0)
    assert stats == SimulationStats(30, {"app": 10, "web": 20}, 2.0, 15.0)
    assert list(stats.by_channel) == ["app", "web"]


def test_a_run_that_took_no_time_has_a_rate_of_zero() -> None:
    assert SimulationStats.of(0, Counter(), 0.0).events_per_s == 0.0


def test_pacing_follows_the_target_rate() -> None:
    assert mean_gap_for(1000, 100.0) == 10_000
    assert batch_size_for(100.0) == 5
    assert batch_size_for(0) == MAX_BATCH
