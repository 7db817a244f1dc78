"""The `journey` command against the real broker: pointed at topics that do not exist it
says so and creates none; given a demo's settings file it reaches that deployment."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.deploy.test_demo import load_demo
from tests.integration.conftest import BROKER, ROOT, Deployment, WorkerProcess

pytestmark = pytest.mark.integration

NEEDS_TOPICS = {
    "report": ["report", "uplift"],
    "watch": ["watch", "--duration", "5"],
    "simulate": ["simulate", "--events", "5"],
    "sender": ["sender", "--duration", "5"],
    "forget": ["forget", "--customer", "C000001", "--timeout", "5"],
}


def journey(
    argv: list[str], env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stream", *argv]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


async def topics_named(prefix: str, delete: bool = False) -> list[str]:
    """The broker's topics that start with ``prefix`` (deleted if ``delete``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    try:
        found = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if delete and found:
            await admin.delete_topics(found)
        return found
    finally:
        await admin.close()


@pytest.fixture
async def missing_prefix() -> AsyncIterator[str]:
    """A prefix no topic has; whatever a failing test created under it is deleted after."""
    prefix = f"missing{uuid.uuid4().hex[:8]}."
    yield prefix
    await topics_named(prefix, delete=True)


@pytest.mark.parametrize("argv", NEEDS_TOPICS.values(), ids=NEEDS_TOPICS.keys())
async def test_a_command_pointed_at_missing_topics_says_so_and_creates_none(
    argv: list[str], missing_prefix: str
) -> None:
    env = {
        **os.environ,
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_TOPIC_PREFIX": missing_prefix,
        "JOURNEY_APP_ID": f"it-{missing_prefix}",
        "JOURNEY_ENV_FILE": "",
    }
    result = journey(argv, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"journey {argv[0]}: topic"), result.stderr
    assert f"{missing_prefix}" in result.stderr and "not exist" in result.stderr
    assert f"(is JOURNEY_TOPIC_PREFIX={missing_prefix} right?" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert await topics_named(missing_prefix) == []


async def test_the_cli_reaches_the_deployment_of_a_demo_settings_file(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    workdir = deployment.tmp / "elsewhere"
    (workdir / ".run" / "demo").mkdir(parents=True)
    demo_env = {**deployment.env, "JOURNEY_WEB_PORT": str(worker.port)}
    load_demo().write_settings(demo_env, workdir / ".run" / "demo" / "journey.env")
    bare = {name: value for name, value in os.environ.items() if not name.startswith("JOURNEY_")}

    customer = journey(["customer", "nobody-here"], bare, cwd=workdir)
    # the worker's own 404: the port and the token came from the file (a wrong token is 401)
    assert customer.returncode == 1
    assert "customer: 404: no customer 'nobody-here'" in customer.stderr, customer.stderr
    assert customer.stderr.startswith("journey: settings from .run/demo/journey.env")

    report = journey(["report", "model"], bare, cwd=workdir)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("nothing learnt yet"), report.stdout
