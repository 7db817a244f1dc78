"""Learning curve of the feedback loop (not a test): the shipped policy, learning on vs off.

Runs the demo's setup on the local broker (``make kafka-up``) for each ground truth of
the loopback sender (``--preferences``: ``default`` segments, and ``push-only``
customers, which contradicts the policy's email-first actions), twice each with the
same seeded traffic: with the shipped policy (Thompson sampling) and with
``learning.strategy: fixed`` (population priors, nothing learnt across customers; each
customer's own response history still counts in both). Every ``--interval`` seconds it
reads the worker's /metrics and records, per interval:

- the response rate of what was sent: clicks / deliveries reported by the sender on
  outbound channels (email, sms, push, web), the number the learning should raise;
- the cumulative conversion of treated customers and of the 5 % control group.

The worker and the simulator share a clock sped up ``--speed`` times (default 14400, as
in ``make demo``). Writes bench/results/<date>-<machine>-learning.json and prints a table.

    .venv/bin/python bench/learning.py [--duration 240] [--interval 30] [--rate 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchlib import write_results

from stream.shell.children import stop, wait_ready
from stream.shell.watch import Samples, scrape, total

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUTBOUND = ("email", "sms", "push", "web")


def outbound(samples: Samples, outcome: str) -> float:
    return sum(
        total(samples, "journey_outcomes_total", outcome=outcome, channel=c, status="applied")
        for c in OUTBOUND
    )


def run(strategy: str, preferences: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One deployment, one strategy: the curve of response rate and conversions."""
    run_id = f"{strategy}-{uuid.uuid4().hex[:6]}"
    policy = work / f"{strategy}.yaml"
    text = (ROOT / "policies" / "default.yaml").read_text()
    policy.write_text(text.replace("strategy: thompson", f"strategy: {strategy}"))
    env = {
        **os.environ,
        "JOURNEY_APP_ID": f"bench-learning-{run_id}",
        "JOURNEY_TOPIC_PREFIX": f"benchlearn{run_id}.",
        "JOURNEY_DATA_DIR": str(work / run_id),
        "JOURNEY_WEB_PORT": str(args.port),
        "JOURNEY_POLICY_FILE": str(policy),
        "JOURNEY_CLOCK_SPEED": str(args.speed),
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        "JOURNEY_LOG_LEVEL": "info",
    }
    url = f"http://127.0.0.1:{args.port}"
    worker = simulator = sender = None
    points: list[dict[str, Any]] = []
    try:
        subprocess.run([BIN / "journey", "topics"], env=env, check=True, capture_output=True)
        with open(work / f"{run_id}.log", "wb") as log:
            worker = subprocess.Popen(
                [BIN / "journey", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_ready(f"{url}/ready", worker)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        simulator = subprocess.Popen(
            [
                *(BIN / "journey", "simulate", "--customers", str(args.customers)),
                *("--rate", str(args.rate), "--seed", str(args.seed)),
                *("--step-ms", "180000", "--duration", str(args.duration)),
            ],
            env=env,
            **quiet,
        )
        sender = subprocess.Popen(
            [
                *(BIN / "journey", "sender", "--seed", "7", "--quiet"),
                *("--preferences", preferences, "--duration", str(args.duration)),
            ],
            env=env,
            **quiet,
        )
        started = time.monotonic()
        before = {"clicked": 0.0, "delivered": 0.0}
        while time.monotonic() - started < args.duration:
            time.sleep(args.interval)
            samples = scrape(f"{url}/metrics") or []
            clicked, delivered = outbound(samples, "clicked"), outbound(samples, "delivered")
            groups = {
                group: (
                    total(samples, "journey_uplift_exposures_total", group=group),
                    total(samples, "journey_uplift_conversions_total", group=group),
                )
                for group in ("treatment", "control")
            }
            new_delivered = delivered - before["delivered"]
            point = {
                "at_s": round(time.monotonic() - started),
                "delivered": int(new_delivered),
                "clicked": int(clicked - before["clicked"]),
                "response_rate": (clicked - before["clicked"]) / new_delivered
                if new_delivered
                else None,
                "cumulative_response_rate": clicked / delivered if delivered else None,
                "treatment": {
                    "exposed": int(groups["treatment"][0]),
                    "converted": int(groups["treatment"][1]),
                },
                "control": {
                    "exposed": int(groups["control"][0]),
                    "converted": int(groups["control"][1]),
                },
            }
            points.append(point)
            before = {"clicked": clicked, "delivered": delivered}
            print(f"{preferences:>9} {strategy:>9} {json.dumps(point)}", flush=True)
    finally:
        for process in (sender, simulator, worker):
            stop(process)
    return {"preferences": preferences, "strategy": strategy, "points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--speed", type=float, default=14400.0)
    parser.add_argument("--port", type=int, default=6077)
    parser.add_argument("--preferences", default="default,push-only")
    args = parser.parse_args()
    work = ROOT / ".run" / "bench-learning"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs = [
        run(strategy, preferences, args, work)
        for preferences in args.preferences.split(",")
        for strategy in ("thompson", "fixed")
    ]
    for preferences in args.preferences.split(","):
        pair = [r for r in runs if r["preferences"] == preferences]
        print(f"\nground truth {preferences}: response rate per interval (clicks / deliveries)")
        print(f"{'at':>6} " + " ".join(f"{r['strategy']:>18}" for r in pair))
        for index in range(min(len(r["points"]) for r in pair)):
            cells = []
            for r in pair:
                p = r["points"][index]
                rate = "-" if p["response_rate"] is None else f"{100 * p['response_rate']:.1f}%"
                cells.append(f"{rate:>7} of {p['delivered']:>6}")
            print(f"{pair[0]['points'][index]['at_s']:>5}s " + " ".join(f"{c:>18}" for c in cells))
        for r in pair:
            last = r["points"][-1] if r["points"] else None
            if last:
                t, c = last["treatment"], last["control"]
                response = 100 * (last["cumulative_response_rate"] or 0)
                print(
                    f"{r['strategy']}: cumulative response {response:.1f}%, conversion treated "
                    f"{t['converted']}/{t['exposed']}, control {c['converted']}/{c['exposed']}"
                )
    write_results("learning", {"parameters": vars(args), "runs": runs})


if __name__ == "__main__":
    main()
