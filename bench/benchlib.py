"""What every benchmark shares: the results file, stamped with the date and the machine."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

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


def shipped_policy_without_journeys() -> str:
    """The shipped policy without its journeys (and the actions, timers and experiments
    only they used): what a run measures against to tell what the journeys cost."""
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    data.pop("journeys", None)
    data["actions"] = [action for action in data["actions"] if action.get("triggers")]
    kept = {action["id"] for action in data["actions"]}
    timers = {t["timer"] for a in data["actions"] for t in a["triggers"] if "timer" in t}
    data["timers"] = [timer for timer in data.get("timers", []) if timer["name"] in timers]
    data["experiments"] = [e for e in data.get("experiments", []) if e["action"] in kept]
    text: str = yaml.safe_dump(data, sort_keys=False)
    return text
