"""Child process helpers of the demo and the benchmarks, on real processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stream.shell.children import stop, wait_ready


def test_stop_terminates_a_running_child_and_reports_a_finished_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop(child, timeout_s=10) is True
    assert child.returncode is not None
    assert stop(child) is False
    assert stop(None) is False


def test_wait_ready_gives_up_when_the_worker_died() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait()
    with pytest.raises(SystemExit, match=r"exited with 3: see worker\.log"):
        wait_ready("http://127.0.0.1:9/ready", child, timeout_s=5, log_hint="worker.log")
