"""A worker, the simulator and the CLI through a SASL_SSL broker (SCRAM-SHA-512 over TLS,
certificates made at test time), and what they say when the password is wrong or the
broker's certificate is not trusted: one line naming the setting, exit code 2, at once.

The module brings its own broker (``secured_broker.py``) and needs no other: its ``broker``
fixture takes the place of the shared PLAINTEXT one of ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from stream.config import Settings, load_settings
from stream.shell.kafka_security import client_kwargs
from stream.shell.watch import events_total
from tests.integration.conftest import ROOT, Deployment, new_deployment
from tests.integration.secured_broker import SecuredBroker, write_ca

REFUSAL_DEADLINE_S = 60.0  # a refused process must have ended by then (it takes seconds)
EVENTS = 400


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """This module's SASL_SSL broker, stopped by its PID at the end, also after a failure."""
    secured = SecuredBroker.create(tmp_path_factory.mktemp("secured-broker"))
    try:
        secured.start()
        yield secured
    finally:
        secured.stop()


@pytest.fixture(scope="module")
def deployment(broker: SecuredBroker, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A fresh prefix and app id whose workers and commands all go through the SASL_SSL
    listener. (Its ``produce`` and ``collect`` speak PLAINTEXT to the shared broker: this
    module reads with ``read_actions``.)"""
    plain = new_deployment(tmp_path_factory)
    env = {
        name: value
        for name, value in plain.env.items()
        if not name.startswith(("JOURNEY_SASL_", "JOURNEY_SSL_"))
    }
    env.update(broker.client_env())
    return Deployment(load_settings(env), env, plain.tmp, plain.catalog)


def journey(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``journey`` command to its end (at most REFUSAL_DEADLINE_S)."""
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=REFUSAL_DEADLINE_S,
        check=False,
    )


class Follow:
    """A long-running ``journey`` command whose output lines are collected as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    async def wait_for_line(self, matches: Callable[[str], bool], timeout_s: float) -> str:
        """The first line that ``matches``; fails at the deadline or if the command ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if matches(line)), None)
            if found is not None:
                return found
            if self.process.poll() is not None and not self._reader.is_alive():
                pytest.fail(f"command ended with {self.process.returncode}:\n{self.output}")
            await asyncio.sleep(0.1)
        pytest.fail(f"no such line within {timeout_s} s:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def stop(self) -> int:
        """Interrupt (as Ctrl-C does) and return the exit code; killed if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode


async def read_actions(
    settings: Settings, at_least: int, timeout_s: float = 60.0
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, action) of the messages on every action topic, read with the settings'
    SASL_SSL arguments."""
    consumer = AIOKafkaConsumer(
        *settings.topics.all_actions,
        bootstrap_servers=settings.broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_kwargs(settings),
    )
    await consumer.start()
    actions: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(actions) < at_least:
            batches = await consumer.getmany(timeout_ms=200)
            actions += [(r.topic, orjson.loads(r.value)) for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    assert len(actions) >= at_least, f"{len(actions)} actions within {timeout_s} s"
    return actions


async def test_a_worker_the_simulator_and_the_cli_work_through_sasl_ssl(
    deployment: Deployment,
) -> None:
    env = deployment.env
    created = await asyncio.to_thread(journey, env, "topics")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created ")
    worker = deployment.worker()
    watch = Follow(env, "watch", "--metrics-url", f"{worker.url}/metrics")
    try:
        await asyncio.to_thread(worker.start)  # ready: its consumers authenticated and assigned
        # The first summary comes after watch has read the action topics for seconds: from
        # then on it sees every new action.
        await watch.wait_for_line(lambda line: line.startswith("--- "), timeout_s=30)
        simulated = await asyncio.to_thread(
            journey,
            env,
            "simulate",
            *("--customers", "40", "--rate", "2000", "--seed", "3", "--events", str(EVENTS)),
        )
        assert simulated.returncode == 0, simulated.stderr
        assert f"sent {EVENTS} events" in simulated.stdout
        await deployment.wait_for(
            lambda: events_total(f"{worker.url}/metrics") == EVENTS,
            what=f"{EVENTS} events ingested",
        )
        actions = await read_actions(deployment.settings, at_least=3)
        for topic, action in actions:
            assert topic == deployment.settings.topics.actions(action["channel"])
            assert deployment.catalog.message_error("action", action) is None
        # watch follows from before the first action: it prints each of them
        first = actions[0][1]
        await watch.wait_for_line(
            lambda line: f"| {first['customer_id']} " in line and first["action"] in line,
            timeout_s=30,
        )
    finally:
        watch_exit, _ = await asyncio.gather(
            asyncio.to_thread(watch.stop), asyncio.to_thread(worker.stop)
        )
    assert watch_exit == 0, watch.output  # Ctrl-C ends watch quietly
    report = await asyncio.to_thread(journey, env, "report", "model", "--json")
    assert report.returncode == 0, report.stderr
    assert isinstance(orjson.loads(report.stdout), list)
    assert "Authentication failed" not in worker.log_path.read_text()


async def refused(env: dict[str, str], tmp: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """A worker, the simulator and two CLI commands run side by side with these settings, to
    their end (each would otherwise run for a while: none is told to stop)."""
    worker_env = {**env, "JOURNEY_DATA_DIR": str(tmp / "refused-worker")}
    commands = {
        "worker": (worker_env, "worker"),
        "simulate": (env, "simulate", "--rate", "10"),
        "topics": (env, "topics"),
        "watch": (env, "watch"),
    }
    started = time.monotonic()
    results = await asyncio.gather(
        *(asyncio.to_thread(journey, *command) for command in commands.values())
    )
    assert time.monotonic() - started < REFUSAL_DEADLINE_S
    return dict(zip(commands, results, strict=True))


def assert_one_line(command: str, result: subprocess.CompletedProcess[str], line: str) -> None:
    """The command ended with exit code 2 and this one-line error, no traceback, no retry."""
    assert result.returncode == 2, f"{command}: {result.returncode}\n{result.stderr}"
    errors = [text for text in result.stderr.splitlines() if text.startswith("journey ")]
    assert errors == [line], result.stderr
    assert "Traceback" not in result.stderr and "retrying" not in result.stderr


async def test_a_wrong_password_ends_the_worker_and_the_cli_with_one_clear_line(
    deployment: Deployment, broker: SecuredBroker
) -> None:
    env = {**deployment.env, **broker.client_env(password="not-the-password")}
    results = await refused(env, deployment.tmp)
    for command, result in results.items():
        assert_one_line(
            command,
            result,
            f"journey {command}: JOURNEY_SASL_USERNAME/JOURNEY_SASL_PASSWORD(_FILE): SASL "
            f"authentication failed: the broker at {broker.bootstrap} refused user "
            f"'{broker.username}' with SCRAM-SHA-512 (Authentication failed during "
            "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512); "
            "check the user name, the password and JOURNEY_SASL_MECHANISM",
        )
        assert "not-the-password" not in result.stderr


async def test_an_untrusted_broker_certificate_ends_them_with_a_tls_verification_error(
    deployment: Deployment, broker: SecuredBroker, tmp_path: Path
) -> None:
    _, other_ca = write_ca(tmp_path, "other-ca.pem")
    env = {**deployment.env, **broker.client_env(ca_file=other_ca)}
    results = await refused(env, deployment.tmp)
    for command, result in results.items():
        assert_one_line(
            command,
            result,
            f"journey {command}: JOURNEY_SSL_CAFILE: TLS certificate verification failed for "
            f"the broker at {broker.bootstrap}: unable to get local issuer certificate; "
            f"trusted: {other_ca}. Set JOURNEY_SSL_CAFILE to the CA certificate that signed "
            "the broker's certificate",
        )
