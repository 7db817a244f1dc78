"""What every benchmark shares: the results file, stamped with the date and the machine."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write bench/results/<date>-<machine>-<name>.json (date and machine added first)."""
    now = datetime.now(UTC)
    document = {
        "benchmark": name,
        "date": now.isoformat(timespec="seconds"),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        **results,
    }
    out = ROOT / "bench" / "results" / f"{now:%Y-%m-%d}-{platform.node()}-{name}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    return out
