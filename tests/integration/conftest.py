"""Integration fixtures: the real local broker, real worker processes, real topics.

The broker is started by the Makefile (`make test` / `make kafka-up`); these tests fail,
not skip, when it is not there. Every module gets its own topic prefix and app id, so
modules never see each other's messages or state.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from stream.config import Clock, Settings, load_settings
from stream.core.schemas import SchemaCatalog, load_catalog
from tests.integration.browser import browser, installed, page  # noqa: F401 (page tests)
from tests.integration.events import BASE

BROKER = os.environ.get("JOURNEY_BROKER", "127.0.0.1:9092")
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


API_TOKEN = "it-token"  # every test worker's JOURNEY_API_TOKEN


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (errors included), with a bearer token if given."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


_STARTED: list[ServiceProcess] = []  # every process a test started, stopped at session end


@dataclass
class ServiceProcess:
    """A `journey <command>` subprocess on its own port, logging to a file."""

    command: ClassVar[str]
    port_setting: ClassVar[str]  # the setting its port is given by

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process (stopped by PID at the end of the session at the latest)."""
        _STARTED.append(self)
        env = {**self.env, self.port_setting: str(self.port)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream", self.command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class WorkerProcess(ServiceProcess):
    """A `journey worker` subprocess with its own web port and state directory."""

    command: ClassVar[str] = "worker"
    port_setting: ClassVar[str] = "JOURNEY_WEB_PORT"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _ = http_get(f"{self.url}/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()  # a worker that never became ready must not outlive the test
        pytest.fail(f"worker not ready in {READY_TIMEOUT_S} s:\n{self.log_tail()}")

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The raw stored state of a customer this worker owns (the debug endpoint)."""
        status, body = http_get(f"{self.url}/debug/state/{customer_id}", API_TOKEN)
        return orjson.loads(body) if status == 200 else None

    def metrics(self) -> str:
        return http_get(f"{self.url}/metrics")[1].decode()


@dataclass
class Deployment:
    """One isolated deployment: a topic prefix, an app id, settings and helpers."""

    settings: Settings
    env: dict[str, str]
    tmp: Path
    catalog: SchemaCatalog

    def clock(self) -> Clock:
        """The workers' processing clock as the environment sets it now: events a test
        generates are stamped on it, so they and the workers share one base on any date."""
        return load_settings(self.env).clock()

    def worker(self, name: str = "w1") -> WorkerProcess:
        env = {**self.env, "JOURNEY_DATA_DIR": str(self.tmp / name)}
        return WorkerProcess(env, self.tmp / f"{name}.log")

    async def produce(
        self, channel: str, events: list[dict[str, Any]], key_field: str = "customer_id"
    ) -> None:
        """Produce events to one ingress topic, keyed by an identifier, and wait for acks."""
        producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all")
        await producer.start()
        try:
            for event in events:
                key = event["customer"].get(key_field) or next(iter(event["customer"].values()))
                await producer.send_and_wait(
                    self.settings.topics.events(channel), orjson.dumps(event), key=key.encode()
                )
        finally:
            await producer.stop()

    async def forget(self, customer_id: str) -> str:
        """Run ``journey forget --customer`` (an erasure request); its output."""
        forget = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "stream", "forget", "--customer", customer_id],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        assert forget.returncode == 0, forget.stderr.decode()
        return forget.stdout.decode()

    async def produce_raw(self, topic: str, values: list[bytes], key: bytes = b"raw") -> None:
        """Produce raw bytes (for malformed input)."""
        producer = AIOKafkaProducer(  # idempotent: a retried large request is written once
            bootstrap_servers=BROKER,
            acks="all",
            enable_idempotence=True,
            max_request_size=4_000_000,
        )
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    async def collect(
        self,
        topics: list[str],
        until: Callable[[list[ConsumerRecord]], bool],
        timeout_s: float = 60.0,
    ) -> list[ConsumerRecord]:
        """Read the topics from the start until ``until(records)`` holds or the deadline passes."""
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=BROKER,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for batch in batches.values():
                    records.extend(batch)
                if until(records):
                    return records
        finally:
            await consumer.stop()
        pytest.fail(
            f"condition not met within {timeout_s} s; got {len(records)} records: "
            f"{[r.value[:200] for r in records[-5:]]}"
        )

    async def actions(
        self, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        """Decoded action messages from every action topic, once ``until`` holds."""
        records = await self.collect(
            self.settings.topics.all_actions,
            lambda rs: until([orjson.loads(r.value) for r in rs]),
            timeout_s,
        )
        return [orjson.loads(r.value) for r in records]

    async def wait_for(
        self, condition: Callable[[], Any], timeout_s: float = 60.0, what: str = ""
    ) -> Any:
        """Poll ``condition`` until it returns a truthy value, or fail at the deadline."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await asyncio.to_thread(condition)
            if value:
                return value
            await asyncio.sleep(0.2)
        pytest.fail(f"timed out after {timeout_s} s waiting for {what or condition}")


async def fuzz_api(document: Path, url: str, token: str) -> str:
    """Fuzz ``url`` with schemathesis from its OpenAPI ``document`` (seeded, 40 examples a
    route): no server error, every answer as documented. Its output."""
    run = await asyncio.to_thread(
        subprocess.run,
        [
            os.path.join(os.path.dirname(sys.executable), "st"),
            *("run", str(document), "--url", url, "--header", f"Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            *("--max-examples", "40", "--seed", "7", "--request-timeout", "15"),
        ],
        capture_output=True,
        timeout=240,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    output = run.stdout.decode(errors="replace")
    assert run.returncode == 0, output[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", output), output[-2000:]
    return output


def _broker_reachable() -> bool:
    host, port = BROKER.split(",")[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def broker() -> Iterator[str]:
    """The local broker; integration tests fail loudly without it.

    At the end of the session every worker a test started is stopped, by PID, even one
    a failed test left behind.
    """
    if not _broker_reachable():
        pytest.fail(f"no Kafka broker at {BROKER}: run `make kafka-up` (or `make test`)")
    yield BROKER
    for worker in _STARTED:
        worker.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A fresh topic prefix and app id for one test module."""
    yield new_deployment(tmp_path_factory)


def new_deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A fresh topic prefix, app id, settings and state directory."""
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_APP_ID": f"it-{run_id}",
        "JOURNEY_TOPIC_PREFIX": f"it{run_id}.",
        "JOURNEY_PARTITIONS": "2",
        "JOURNEY_SESSION_TIMEOUT_S": "6",
        "JOURNEY_BATCH_WITHIN_S": "0.02",
        "JOURNEY_LOG_LEVEL": "info",
        "JOURNEY_API_TOKEN": API_TOKEN,
        # The processing clock starts at 10:00 UTC (11:00 in Paris) on the day of the
        # test events, whatever the hour: decisions never fall into quiet hours by chance.
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        "JOURNEY_CLOCK_START_MS": str(int(BASE.timestamp() * 1000) + 3_600_000),
    }
    tmp = tmp_path_factory.mktemp(run_id)
    env["JOURNEY_POLICY_FILE"] = str(shipped_rules(tmp))
    return Deployment(load_settings(env), env, tmp, load_catalog())


def shipped_rules(directory: Path) -> Path:
    """The shipped policy with learning off, written into ``directory``.

    Thompson draws make channel choice between channels of equal prior a coin flip; the
    modules that check rules, timers and identity pin it. ``test_feedback`` tests the
    learning and ``test_demo_traffic`` runs the shipped policy as it is.
    """
    path = directory / "shipped-rules.yaml"
    text = (ROOT / "policies" / "default.yaml").read_text()
    path.write_text(text.replace("strategy: thompson", "strategy: fixed"))
    return path


@pytest.fixture(scope="module")
async def worker(deployment: Deployment) -> AsyncIterator[WorkerProcess]:
    """One running worker for the module, stopped by PID at the end."""
    process = deployment.worker()
    await asyncio.to_thread(process.start)
    yield process
    process.stop()
