"""The `journey` command's edges, without a broker: the settings file it reads, a reader that
closes the pipe early, and topics that do not exist (the broker check is a stand-in here;
tests/integration/test_cli.py asks a real broker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stream import cli
from stream.config import Settings, write_env_file
from stream.shell import topics
from stream.shell.pipes import EXIT_CLOSED_PIPE

TOKEN = "unit-token"
BIG = [{"event": n, "properties": {"note": "x" * 40}} for n in range(20_000)]  # about 2 MB


class FakeWorker(BaseHTTPRequestHandler):
    """A worker's customer API: 401 without the token, a large profile for `big`."""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"error": "unauthorized", "detail": "missing or wrong bearer token"})
        elif self.path == "/customers/big":
            self._reply(200, {"customer_id": "big", "recent_events": BIG})
        else:
            self._reply(200, {"customer_id": self.path.rsplit("/", 1)[1]})

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def worker_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWorker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return int(exited.value.code or 0)


def test_customer_finds_the_port_and_token_in_the_settings_file(
    tmp_path: Path,
    worker_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings_file = tmp_path / "journey.env"
    write_env_file(
        settings_file, {"JOURNEY_WEB_PORT": str(worker_port), "JOURNEY_API_TOKEN": TOKEN}
    )
    monkeypatch.setenv("JOURNEY_ENV_FILE", str(settings_file))
    monkeypatch.delenv("JOURNEY_API_TOKEN", raising=False)
    monkeypatch.delenv("JOURNEY_WEB_PORT", raising=False)
    assert run_main(["customer", "C000001"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"customer_id": "C000001"}
    assert err == f"journey: settings from {settings_file} (JOURNEY_* variables set win)\n"

    monkeypatch.setenv("JOURNEY_API_TOKEN", "an-explicit-one")  # the environment wins
    assert run_main(["customer", "C000001"]) == 1
    assert "401: missing or wrong bearer token" in capsys.readouterr().err


def test_customer_without_a_token_says_where_the_demo_keeps_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNEY_API_TOKEN", raising=False)
    assert run_main(["customer", "C000001", "--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err == (
        "journey customer: JOURNEY_API_TOKEN is not set (the demo writes its settings, "
        "token included, to .run/demo/journey.env)\n"
    )


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(worker_port: int) -> None:
    env = {**os.environ, "JOURNEY_API_TOKEN": TOKEN, "JOURNEY_ENV_FILE": ""}
    command = [sys.executable, "-m", "stream", "customer", "big"]
    command += ["--url", f"http://127.0.0.1:{worker_port}"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"{\n"  # like `| head -1`: one line, then gone
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_CLOSED_PIPE
    assert errors == ""  # no BrokenPipeError traceback, no "Exception ignored"


def test_a_command_names_the_missing_topic_and_the_prefix_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def nothing_exists(settings: Settings, names: list[str], timeout_s: float = 10) -> None:
        raise topics.MissingTopicsError(names)

    monkeypatch.setattr(topics, "require_topics", nothing_exists)
    monkeypatch.setenv("JOURNEY_BROKER", "127.0.0.1:9")  # never the real broker
    monkeypatch.setenv("JOURNEY_TOPIC_PREFIX", "nope.")
    assert run_main(["report", "uplift"]) == 1
    assert capsys.readouterr() == (
        "",
        "journey report: topic nope.internal.model does not exist (is "
        "JOURNEY_TOPIC_PREFIX=nope. right? the demo writes its settings to "
        ".run/demo/journey.env)\n",
    )
    assert run_main(["watch"]) == 1
    assert "topics nope.actions.email, nope.actions.sms, nope.actions.push and 4 more do not" in (
        capsys.readouterr().err
    )
