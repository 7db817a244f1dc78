"""A worker that loses its local RocksDB store rebuilds the state from the changelog: by
Faust's per-record recovery, and by the bulk restore that reads a partition far behind
into write batches first (``JOURNEY_BULK_RESTORE_MIN_RECORDS``)."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

from tests.integration.conftest import Deployment, WorkerProcess
from tests.integration.events import event, order


async def build_states(
    deployment: Deployment, worker: WorkerProcess, customers: list[str]
) -> dict[str, Any]:
    """Two events per customer (a cart, then an order); their states once applied."""
    for cid in customers:
        await deployment.produce(
            "web",
            [
                event(
                    "web",
                    "add_to_cart",
                    {"customer_id": cid},
                    {"product_id": "P1", "price": 10.0, "category": "home"},
                ),
                order(cid, f"O-{cid}", "home"),
            ],
        )
    states = {}
    for cid in customers:
        states[cid] = await deployment.wait_for(
            lambda cid=cid: (s := worker.customer(cid)) and s["event_count"] == 2 and s,
            what=f"state of {cid}",
        )
    return states


async def restart_without_store(deployment: Deployment, worker: WorkerProcess, name: str) -> None:
    """Stop the worker gracefully (changelog and offsets flushed), delete its RocksDB
    store, start it again."""
    await asyncio.to_thread(worker.stop)
    state_dir = deployment.tmp / name
    assert any(state_dir.rglob("*.sst")) or any(state_dir.rglob("CURRENT")), "no RocksDB files"
    shutil.rmtree(state_dir)
    await asyncio.to_thread(worker.start)


async def keeps_working(deployment: Deployment, worker: WorkerProcess, cid: str) -> None:
    """The recovered state keeps working: a second order is not a "first order" again."""
    await deployment.produce("web", [order(cid, "O-second", "home")])
    state = await deployment.wait_for(
        lambda: (s := worker.customer(cid)) and s["orders"]["count"] == 2 and s,
        what="second order applied on the recovered state",
    )
    assert state["stage"] == "engagement"


async def test_state_is_recovered_from_the_changelog_after_the_local_store_is_deleted(
    deployment: Deployment,
) -> None:
    customers = [f"C2000{i:02d}" for i in range(12)]
    worker = deployment.worker("recovering")
    worker.env["JOURNEY_BULK_RESTORE_MIN_RECORDS"] = "0"  # Faust's own recovery only
    await asyncio.to_thread(worker.start)
    try:
        before = await build_states(deployment, worker, customers)
        await restart_without_store(deployment, worker, "recovering")
        after = {cid: worker.customer(cid) for cid in customers}
        assert after == before
        # ...rebuilt from the changelog, not by re-reading the input (offsets were committed).
        assert "journey_events_total{" not in worker.metrics()
        assert "Bulk restore" not in worker.log_path.read_text()

        await keeps_working(deployment, worker, customers[0])
    finally:
        await asyncio.to_thread(worker.stop)


async def test_a_bulk_restore_rebuilds_the_same_state_with_deletions_applied(
    deployment: Deployment,
) -> None:
    customers = [f"C2100{i:02d}" for i in range(12)]
    erased = customers[1]
    worker = deployment.worker("bulk")
    await asyncio.to_thread(worker.start)
    try:
        before = await build_states(deployment, worker, customers)
        await deployment.forget(erased)
        await deployment.wait_for(lambda: worker.customer(erased) is None, what="erasure")

        worker.env["JOURNEY_BULK_RESTORE_MIN_RECORDS"] = "1"  # every partition behind
        await restart_without_store(deployment, worker, "bulk")
        log = worker.log_path.read_text()
        done = re.findall(r"Bulk restore: (\d+) records in [\d.]+ s", log)
        assert done and int(done[-1]) > 0, log[-3000:]
        assert "out of time" not in log
        assert worker.customer(erased) is None  # the tombstone was applied as a delete
        after = {cid: worker.customer(cid) for cid in customers if cid != erased}
        assert after == {cid: s for cid, s in before.items() if cid != erased}
        assert "journey_events_total{" not in worker.metrics()

        # Faust's recovery started after what the bulk restore wrote, and went on from
        # there: new events apply to the restored state.
        await keeps_working(deployment, worker, customers[0])
    finally:
        await asyncio.to_thread(worker.stop)
