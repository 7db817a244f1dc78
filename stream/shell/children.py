"""Child processes of the demo and the benchmarks: wait for a worker, stop one by PID."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0, log_hint: str = ""
) -> None:
    """Return once ``url`` (a worker's /ready) answers 200; exit if the worker dies or the
    deadline passes (``log_hint`` says where to look)."""
    where = f": see {log_hint}" if log_hint else ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}{where}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"worker not ready after {timeout_s:.0f} s{where}")


def stop(
    process: subprocess.Popen[bytes] | None,
    timeout_s: float = 30.0,
    sig: signal.Signals = signal.SIGTERM,
) -> bool:
    """``sig`` (SIGTERM), then SIGKILL after ``timeout_s``; False if it was not running."""
    if process is None or process.poll() is not None:
        return False
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return True
