"""A running worker takes a new policy on SIGHUP, keeps the last good one, refuses a bad start."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys

from tests.integration.conftest import ROOT, Deployment
from tests.integration.events import complaint


def policy_version(metrics: str) -> str | None:
    match = re.search(r'journey_policy_info\{version="([^"]+)"\} 1\.0', metrics)
    return match.group(1) if match else None


async def test_worker_refuses_to_start_on_an_invalid_policy(deployment: Deployment) -> None:
    bad = deployment.tmp / "bad-policy.yaml"
    bad.write_text(
        "format: 1\nname: bad\nactions:\n  - id: x\n    category: marketing\n"
        "    channels: [email]\n    triggers: [{event: order_completed}]\n"
        "    eligibility: customer.orders.count >\n"
    )
    env = {**deployment.env, "JOURNEY_POLICY_FILE": str(bad)}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stream", "worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{bad}:8: actions/0/eligibility: CEL does not compile" in result.stderr


async def test_sighup_reloads_the_policy_and_a_bad_reload_keeps_the_last_good(
    deployment: Deployment,
) -> None:
    path = deployment.tmp / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    worker = deployment.worker("reloading")
    worker.env = {**worker.env, "JOURNEY_POLICY_FILE": str(path), "JOURNEY_POLICY_POLL_S": "3600"}
    await asyncio.to_thread(worker.start)
    try:
        first = policy_version(worker.metrics())
        assert first is not None and first.startswith("default@")

        path.write_text(path.read_text().replace("name: default", "name: edited"))
        assert worker.process is not None
        worker.process.send_signal(signal.SIGHUP)
        second = await deployment.wait_for(
            lambda: (v := policy_version(worker.metrics())) and v.startswith("edited@") and v,
            what="policy reloaded on SIGHUP",
        )
        cid = "C300001"
        await deployment.produce("call_center", [complaint(cid, "K30", "late")])
        [action] = [
            a
            for a in await deployment.actions(
                lambda actions: any(a["customer_id"] == cid for a in actions)
            )
            if a["customer_id"] == cid
        ]
        assert action["policy_version"] == second

        good = path.read_text()
        path.write_text("format: 1\nname: broken\n")
        worker.process.send_signal(signal.SIGHUP)
        await deployment.wait_for(
            lambda: "journey_policy_reload_failures 1.0" in worker.metrics(),
            what="failed reload counted",
        )
        assert policy_version(worker.metrics()) == second

        # A misspelled field is refused like any invalid policy, not loaded to fail as
        # condition_error on every decision of the action.
        path.write_text(good.replace("customer.open_cases == 0", "customer.open_case == 0"))
        worker.process.send_signal(signal.SIGHUP)
        await deployment.wait_for(
            lambda: "journey_policy_reload_failures 2.0" in worker.metrics(),
            what="reload with a misspelled field refused",
        )
        metrics = worker.metrics()
        assert policy_version(metrics) == second
        assert 'journey_condition_errors_total{action="service_follow_up"} 0.0' in metrics
        assert worker.process.poll() is None
    finally:
        await asyncio.to_thread(worker.stop)
