"""Static group membership (a StatefulSet pod's stable name) on the real broker."""

from __future__ import annotations

import asyncio
import subprocess

from tests.integration.conftest import ROOT, Deployment


def describe_members(deployment: Deployment) -> str:
    run = subprocess.run(
        [
            str(ROOT / "deploy/local/kafka.sh"),
            "run",
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            deployment.settings.broker,
            "--describe",
            "--members",
            "--group",
            deployment.settings.app_id,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


async def test_a_worker_joins_with_its_instance_id_and_rejoins_after_a_restart(
    deployment: Deployment,
) -> None:
    instance = f"{deployment.settings.app_id}-worker-0"
    deployment.env["JOURNEY_GROUP_INSTANCE_ID"] = instance
    worker = deployment.worker("static")
    await asyncio.to_thread(worker.start)
    try:
        members = await asyncio.to_thread(describe_members, deployment)
        [row] = [line.split() for line in members.splitlines() if instance in line]
        assert row[1].startswith(f"{instance}-") and row[2] == instance  # member id, instance id
        worker.stop()
        await asyncio.to_thread(worker.start)  # same id, same state directory: ready again
        members = await asyncio.to_thread(describe_members, deployment)
        assert sum(instance in line for line in members.splitlines()) == 1
    finally:
        worker.stop()
