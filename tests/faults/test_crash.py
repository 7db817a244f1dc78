"""kill -9 under load, a second worker joining and leaving, a broker restart: no event is
lost or applied twice, no action lost or duplicated beyond its idempotency key, and every
pending timer and journey wait fires exactly once (see ``harness`` for how each run is checked)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.faults.harness import Outcome, Run, check, kill_worker, play, traffic
from tests.integration.conftest import ROOT, Deployment, new_deployment

SEED = 20261124
MESSAGES = traffic(SEED, events=1200, customers=60, duplicates=40)


def verify(name: str, outcome: Outcome, deployment: Deployment) -> None:
    """The run matches the replay of its own log; print the counts for the record."""
    replayed = check(outcome, MESSAGES, deployment)
    timer_actions = replayed.fired_actions
    print(
        f"\n{name}: {len(MESSAGES)} messages ({len({m.event_id for m in MESSAGES})} distinct "
        f"events), {outcome.kills} kill(s), {len(outcome.log_records)} log records, "
        f"{len(outcome.actions)} action messages, {len(outcome.distinct_actions)} distinct, "
        f"{outcome.duplicate_actions} duplicate(s) removed by idempotency key, "
        f"{replayed.timer_firings} deadlines fired ({timer_actions} actions), state mismatches 0"
    )
    assert replayed.timer_firings > 0 and timer_actions > 0, "the traffic must fire deadlines"


async def test_kill_9_at_three_points_and_while_timers_fire(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    deployment = new_deployment(tmp_path_factory)
    outcome = await play(
        deployment,
        MESSAGES,
        [(0.2, kill_worker()), (0.5, kill_worker()), (0.8, kill_worker())],
        firing_fault=kill_worker(),
    )
    assert outcome.kills == 4
    verify("kill -9", outcome, deployment)


async def test_a_second_worker_joins_and_leaves_mid_stream(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    async def join(run: Run) -> None:
        first = run.workers[0]
        second = run.worker(
            "w2",
            int(first.env["JOURNEY_CLOCK_START_MS"]),
            int(first.env["JOURNEY_CLOCK_ANCHOR_MS"]),
        )
        await run.start(second)
        run.notes.append(f"second worker joined after {run.produced} messages")

    async def leave(run: Run) -> None:
        await asyncio.to_thread(run.workers[1].stop)
        run.notes.append(f"second worker left after {run.produced} messages")

    deployment = new_deployment(tmp_path_factory)
    outcome = await play(deployment, MESSAGES, [(0.25, join), (0.7, leave)])
    verify("rebalance", outcome, deployment)


async def test_the_broker_restarts_under_load(tmp_path_factory: pytest.TempPathFactory) -> None:
    async def restart_broker(run: Run) -> None:
        script = ROOT / "deploy" / "local" / "kafka.sh"
        for command in ("down", "up"):
            await asyncio.to_thread(
                subprocess.run, ["bash", str(script), command], check=True, capture_output=True
            )
        run.notes.append(f"broker restarted after {run.produced} messages")

    deployment = new_deployment(tmp_path_factory)
    outcome = await play(deployment, MESSAGES, [(0.4, restart_broker)])
    verify("broker restart", outcome, deployment)


def test_the_traffic_has_duplicates_and_many_customers() -> None:
    ids = [m.event_id for m in MESSAGES]
    assert len(ids) - len(set(ids)) == 40
    assert len({m.key for m in MESSAGES}) > 30
