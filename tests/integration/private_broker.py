"""A plain single-node broker of a test's own, to stop and start without touching the
shared one: ``deploy/local/kafka.sh`` with its own run directory and free ports (its start
and stop are shared with the secured broker's) (the jars
from the cache kafka.sh finds: this checkout's ``.cache/``, or a worktree's main checkout's).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.conftest import ROOT, free_port

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
START_TIMEOUT_S = 150.0  # kafka.sh waits up to 90 s for the broker, after formatting


@dataclass
class PrivateBroker:
    """A broker in ``directory`` on ``port``; stopped and started again with its data."""

    directory: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"

    def kafka_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_RUN_DIR": str(self.directory),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
        }

    def start(self) -> None:
        """Format (the first time), start and wait until the broker answers."""
        kafka_up(self.kafka_env(), "private broker", self.stop)

    def stop(self) -> None:
        """Stop the broker by the PID kafka.sh recorded (a no-op if it is not running)."""
        kafka_down(self.kafka_env(), self.pid_file)


def kafka_up(env: dict[str, str], what: str, stop: Callable[[], None]) -> None:
    """``kafka.sh up`` with ``env``: format, start, wait until the broker answers; on
    failure ``stop`` it and raise with kafka.sh's error."""
    result = subprocess.run(
        [str(KAFKA_SH), "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        stop()
        raise RuntimeError(f"{what} did not start:\n{result.stderr[-3000:]}")


def kafka_down(env: dict[str, str], pid_file: Path) -> None:
    """``kafka.sh down`` with ``env``; SIGKILL by the PID file if it does not stop in time."""
    try:
        subprocess.run([str(KAFKA_SH), "down"], env=env, capture_output=True, timeout=45)
    except subprocess.TimeoutExpired:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
