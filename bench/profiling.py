"""A py-spy profile of a running worker, summed by function for the results file.

``Profile.start(pid, path)`` samples the process with ``py-spy record`` (raw folded
stacks) until ``stop``; ``summarise`` turns the stacks into the top functions by self
and by inclusive share of the samples, which is what bench/README.md quotes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stream.shell.children import stop

SAMPLE_RATE = 100  # per second: enough for shares of a percent over tens of seconds
PREFIXES = ("site-packages/", str(Path(__file__).resolve().parents[1]) + "/", "lib/python3.11/")


def py_spy() -> str | None:
    """The py-spy executable (installed with the dev tools), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    """One py-spy recording of a process."""

    process: subprocess.Popen[bytes]
    path: Path
    log: IO[bytes]  # py-spy's own output

    @classmethod
    def start(cls, pid: int, path: Path) -> Profile | None:
        """Start sampling ``pid`` into ``path``; None without py-spy."""
        executable = py_spy()
        if executable is None:
            return None
        args = [executable, "record", "--pid", str(pid), "--format", "raw"]
        args += ["--rate", str(SAMPLE_RATE), "--output", str(path), "--nonblocking"]
        log = path.with_suffix(".log").open("wb")
        return cls(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), path, log)

    def stop(self) -> dict[str, Any]:
        """Stop sampling (py-spy writes its file on SIGINT) and summarise it."""
        stop(self.process, sig=signal.SIGINT)
        self.log.close()
        if not self.path.exists():
            return {"error": f"py-spy wrote nothing; see {self.path.with_suffix('.log')}"}
        return summarise(self.path)


def summarise(path: Path, top: int = 25) -> dict[str, Any]:
    """The top functions of a raw py-spy file, by self and inclusive share of samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": samples,
        "rate_hz": SAMPLE_RATE,
        "self_percent": shares(own),
        "inclusive_percent": shares(inclusive),
    }


def _function(frame: str) -> str:
    """``name (path/to/module.py:line)`` without the line: one entry per function."""
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].rstrip(")")
    for marker in PREFIXES:
        if marker in module:
            module = module.split(marker, 1)[1]
    return f"{name} ({module})" if module else name
