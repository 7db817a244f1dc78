"""A worker that loses its local RocksDB store rebuilds the state from the changelog."""

from __future__ import annotations

import asyncio
import shutil

from tests.integration.conftest import Deployment
from tests.integration.events import event, order


async def test_state_is_recovered_from_the_changelog_after_the_local_store_is_deleted(
    deployment: Deployment,
) -> None:
    customers = [f"C2000{i:02d}" for i in range(12)]
    worker = deployment.worker("recovering")
    await asyncio.to_thread(worker.start)
    try:
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
        before = {}
        for cid in customers:
            before[cid] = await deployment.wait_for(
                lambda cid=cid: (s := worker.customer(cid)) and s["event_count"] == 2 and s,
                what=f"state of {cid}",
            )
        # Let the worker commit: a graceful stop flushes the changelog and the offsets.
        await asyncio.to_thread(worker.stop)
        state_dir = deployment.tmp / "recovering"
        assert any(state_dir.rglob("*.sst")) or any(state_dir.rglob("CURRENT")), "no RocksDB files"
        shutil.rmtree(state_dir)

        await asyncio.to_thread(worker.start)
        after = {cid: worker.customer(cid) for cid in customers}
        assert after == before
        # ...rebuilt from the changelog, not by re-reading the input (offsets were committed).
        assert "journey_events_total{" not in worker.metrics()

        # The recovered state keeps working: a second order is not a "first order" again.
        cid = customers[0]
        await deployment.produce("web", [order(cid, "O-second", "home")])
        state = await deployment.wait_for(
            lambda: (s := worker.customer(cid)) and s["orders"]["count"] == 2 and s,
            what="second order applied on recovered state",
        )
        assert state["stage"] == "engagement"
    finally:
        await asyncio.to_thread(worker.stop)
