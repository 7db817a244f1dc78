"""`make demo` without a broker of its own: the settings file it leaves for the CLI, and a
shutdown that survives a closed stdout/stderr (`make demo | tee log`, then Ctrl-C), on real
processes (`sleep` children, `kafka.sh down` stopping a stand-in broker by its PID)."""

from __future__ import annotations

import importlib.util
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from stream.config import environment_with_file, load_settings, read_env_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "local" / "demo.py"
KAFKA = ROOT / "deploy" / "local" / "kafka.sh"


def load_demo() -> ModuleType:
    """deploy/local/demo.py as a module (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def stand_in_broker(run_dir: Path) -> subprocess.Popen[bytes]:
    """A process `kafka.sh down` will stop: its PID in the run directory's kafka.pid."""
    broker = subprocess.Popen(["sleep", "600"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "kafka.pid").write_text(f"{broker.pid}\n")
    return broker


def wait_both(broker: subprocess.Popen[bytes], stopper: subprocess.Popen[bytes]) -> None:
    """Reap the stand-in broker as soon as it dies (`kafka.sh down` waits for that), or
    stop waiting once the stopper has exited without stopping it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            broker.wait(timeout=0.2)
            return
        except subprocess.TimeoutExpired:
            if stopper.poll() is not None:
                return
    pytest.fail("neither the broker stopped nor the stopper ended within 60 s")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_kafka_down_stops_the_broker_when_stderr_is_a_closed_pipe(tmp_path: Path) -> None:
    run_dir = tmp_path / "kafka"
    broker = stand_in_broker(run_dir)
    pipe = closed_pipe()
    env = {**os.environ, "KAFKA_RUN_DIR": str(run_dir)}
    try:
        stopper = subprocess.Popen([KAFKA, "down"], env=env, stdout=pipe, stderr=pipe)
    finally:
        os.close(pipe)
    wait_both(broker, stopper)
    try:
        assert stopper.wait(timeout=60) == 0
        assert broker.poll() == -signal.SIGTERM
        assert not (run_dir / "kafka.pid").exists()
    finally:
        broker.kill()
        broker.wait()


DRIVER = """
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("demo", sys.argv[1])
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
demo.BIN = Path(sys.argv[3])  # its `journey` prints a stand-in report
console = demo.Console(Path(sys.argv[2]) / "demo.log")
env = {"PATH": "/usr/bin:/bin"}
processes = {name: demo.spawn(["sleep", "600"], env, None) for name in ("watch", "worker")}
(Path(sys.argv[2]) / "pids").write_text(" ".join(str(p.pid) for p in processes.values()))
console.say("demo: a line nobody reads")
demo.report(env, console)
demo.shutdown(processes, True, console)
"""


def fake_journey(directory: Path) -> Path:
    """A `journey` command that prints one report line per call."""
    directory.mkdir()
    script = directory / "journey"
    script.write_text('#!/bin/sh\necho "report of $2: treated 12% vs control 9%"\n')
    script.chmod(0o755)
    return directory


def test_the_demo_shutdown_with_stdout_closed_stops_all_and_keeps_the_reports(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "kafka"
    broker = stand_in_broker(run_dir)
    pipe = closed_pipe()
    env = {**os.environ, "KAFKA_RUN_DIR": str(run_dir)}
    driver_args = [str(DEMO), str(tmp_path), str(fake_journey(tmp_path / "bin"))]
    try:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, *driver_args], env=env, stdout=pipe, stderr=pipe
        )
    finally:
        os.close(pipe)
    wait_both(broker, driver)
    try:
        assert driver.wait(timeout=60) == 0
        assert broker.poll() == -signal.SIGTERM  # the broker this run "started" is stopped
        children = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
        assert all(gone(pid) for pid in children)
        log = (tmp_path / "demo.log").read_text()
        assert "report of uplift: treated 12% vs control 9%" in log
        assert "report of model" in log
        assert "demo: stopping worker" in log
        assert "demo: stopping the broker this run started" in log
    finally:
        broker.kill()
        broker.wait()


def test_the_demo_leaves_its_settings_where_the_cli_reads_them(tmp_path: Path) -> None:
    demo = load_demo()
    environ = {"PATH": "/usr/bin", "JOURNEY_BROKER": "127.0.0.1:9092", "HOME": "/root"}
    env = demo.deployment_env(environ, "1234", "6099", "720", tmp_path)
    settings_file = tmp_path / "journey.env"
    demo.write_settings(env, settings_file)
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600  # it holds the token
    assert set(read_env_file(settings_file)) == {  # the run's settings, nothing else
        "JOURNEY_BROKER",
        "JOURNEY_APP_ID",
        "JOURNEY_TOPIC_PREFIX",
        "JOURNEY_DATA_DIR",
        "JOURNEY_WEB_PORT",
        "JOURNEY_CLOCK_SPEED",
        "JOURNEY_CLOCK_ANCHOR_MS",
        "JOURNEY_API_TOKEN",
    }
    cli_env, used = environment_with_file({"JOURNEY_ENV_FILE": str(settings_file)})
    assert used == settings_file
    assert load_settings(cli_env) == load_settings(env)
    assert load_settings(cli_env).topics.prefix == "demo1234."
    assert load_settings(cli_env).api_token == env["JOURNEY_API_TOKEN"] != ""
