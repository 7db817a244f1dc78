"""Validation of off-policy evaluation where the truth is known (not a test).

The simulator's customers have hidden preferences (``stream.simulate.preferences``): the
engine never sees them, but a live run measures what a policy earns under them. So:

1. run the shipped policy (Thompson sampling) live on the local broker: a worker, the
   seeded simulator (``--events`` of the same traffic every run) and the loopback sender;
   (``--preferences``: the default segments, and customers who answer on push only);
2. estimate a different candidate from that log with ``journey evaluate-policy`` (IPS,
   SNIPS, doubly robust, 95 % intervals);
3. run the candidate live on the same seeded traffic and measure its value per decision
   (``evaluate-policy`` of the candidate against itself: the on-policy mean of its log);
4. say, per metric and estimator, whether the interval covers the measured value.

Both runs share the clock settings (speed, a fixed start), so quiet hours and timers
fall alike. Writes bench/results/<date>-<machine>-off-policy.json and prints a table.

    .venv/bin/python bench/off_policy.py [--events 15000] [--candidate fixed,ucb]
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
from stream.shell.watch import scrape, total

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHIPPED = ROOT / "policies" / "default.yaml"
CANDIDATES = {
    # nothing learnt across customers: the policy's priors (and each customer's own history)
    "fixed": [("strategy: thompson", "strategy: fixed")],
    # ... and email before push wherever an action offers both (no learning to undo it)
    "email_first": [
        ("strategy: thompson", "strategy: fixed"),
        ("\n    channels: [push, email]", "\n    channels: [email, push]"),  # actions, not arms
    ],
    # no loyalty-programme invitation: a big share of decisions send something else or nothing
    "no_loyalty_nudge": [('eligibility: "!customer.loyalty_member"', 'eligibility: "false"')],
    # optimism instead of sampling: the posterior mean plus 1.96 standard deviations
    "ucb": [("strategy: thompson", "strategy: ucb")],
}
ESTIMATORS = ("ips", "snips", "dr")


def candidate_policy(name: str, work: Path) -> Path:
    """The shipped policy with one change: the candidate."""
    text = SHIPPED.read_text()
    for old, new in CANDIDATES[name]:
        assert old in text, f"the shipped policy no longer has {old!r}"
        text = text.replace(old, new)
    path = work / f"candidate-{name}.yaml"
    path.write_text(text.replace("name: default", f"name: {name}", 1))
    return path


def environment(run_id: str, policy: Path, args: argparse.Namespace, work: Path) -> dict[str, str]:
    """The settings of one live run (its own topics and state)."""
    return {
        **os.environ,
        "JOURNEY_APP_ID": f"bench-ope-{run_id}",
        "JOURNEY_TOPIC_PREFIX": f"benchope{run_id}.",
        "JOURNEY_DATA_DIR": str(work / run_id),
        "JOURNEY_WEB_PORT": str(args.port),
        "JOURNEY_POLICY_FILE": str(policy),
        "JOURNEY_CLOCK_SPEED": str(args.speed),
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        "JOURNEY_CLOCK_START_MS": str(args.clock_start_ms),
        "JOURNEY_LOG_LEVEL": "warning",
    }


def live(
    name: str, policy: Path, preferences: str, args: argparse.Namespace, work: Path
) -> dict[str, str]:
    """Run ``policy`` live on the seeded traffic, customers answering as ``preferences``
    says, until every outcome is in; the run's settings."""
    env = environment(f"{name}-{uuid.uuid4().hex[:6]}", policy, args, work)
    url = f"http://127.0.0.1:{args.port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    worker = sender = None
    try:
        subprocess.run([BIN / "journey", "topics"], env=env, check=True, capture_output=True)
        with open(work / f"{name}.log", "wb") as log:
            worker = subprocess.Popen(
                [BIN / "journey", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_ready(f"{url}/ready", worker, log_hint=str(work / f"{name}.log"))
        sender = subprocess.Popen(
            [BIN / "journey", "sender", "--seed", "7", "--quiet", "--preferences", preferences],
            env=env,
            **quiet,
        )
        started = time.monotonic()
        subprocess.run(
            [
                *(BIN / "journey", "simulate", "--customers", str(args.customers)),
                *("--rate", str(args.rate), "--seed", str(args.seed)),
                *("--step-ms", "180000", "--events", str(args.events)),
            ],
            env=env,
            check=True,
            **quiet,
        )
        settle(f"{url}/metrics")
        print(f"{name}: live run done in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        for process in (sender, worker):
            stop(process)
    return env


def settle(metrics_url: str, quiet_s: float = 10.0, timeout_s: float = 180.0) -> None:
    """Wait until the worker's actions and outcomes stop changing for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    last: tuple[float, float] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        samples = scrape(metrics_url) or []
        now = (total(samples, "journey_actions_total"), total(samples, "journey_outcomes_total"))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(1.0)
    print("settle: still moving at the deadline; measuring anyway", flush=True)


def evaluate(env: dict[str, str], candidate: Path, current: Path, out: Path) -> dict[str, Any]:
    """``journey evaluate-policy`` on a run's log; its JSON report."""
    subprocess.run(
        [
            *(BIN / "journey", "evaluate-policy", str(candidate)),
            *("--current", str(current), "--model", "latest", "--json", str(out)),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def coverage(estimate: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """Per metric: the measured value, each estimate, and whether its interval covers it."""
    result: dict[str, Any] = {}
    for metric, evaluation in estimate["estimates"].items():
        truth = measured["estimates"][metric]["logged"]
        row: dict[str, Any] = {"measured": truth, "logging_policy": evaluation["logged"]}
        for name in ESTIMATORS:
            value = evaluation[name]
            row[name] = {**value, "covers": value["low"] <= truth["value"] <= value["high"]}
        row["effective_sample_size"] = evaluation["effective_sample_size"]
        result[metric] = row
    return result


def table(name: str, result: dict[str, Any]) -> None:
    """Print one candidate's rows."""
    print(f"\n{name}: estimated from the shipped policy's log vs measured live")
    print(
        f"{'metric':<12} {'logged':>8} {'measured':>18} " + " ".join(f"{e:>26}" for e in ESTIMATORS)
    )
    for metric, row in result.items():
        truth = row["measured"]
        cells = [
            f"{row[e]['value']:.4f} [{row[e]['low']:.4f},{row[e]['high']:.4f}]"
            + ("*" if row[e]["covers"] else "!")
            for e in ESTIMATORS
        ]
        print(
            f"{metric:<12} {row['logging_policy']['value']:>8.4f} "
            f"{truth['value']:.4f} ±{truth['value'] - truth['low']:.4f} "
            + " ".join(f"{c:>26}" for c in cells)
        )
    print("(* the interval covers the measured value; ! it does not)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=15_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--speed", type=float, default=14_400.0)
    start = 1_796_119_200_000  # 2026-12-01 10:00 UTC: both runs' clocks start there
    parser.add_argument("--clock-start-ms", type=int, default=start)
    parser.add_argument("--port", type=int, default=6078)
    parser.add_argument(
        "--preferences", default="default,push-only", help="the simulated customers' truths"
    )
    parser.add_argument(
        "--candidate",
        default="fixed,email_first,no_loyalty_nudge",
        help=f"one of {sorted(CANDIDATES)}, comma-separated",
    )
    args = parser.parse_args()
    work = ROOT / ".run" / "bench-off-policy"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, Any] = {}
    for preferences in args.preferences.split(","):
        logging_env = live(f"shipped-{preferences}", SHIPPED, preferences, args, work)
        for name in args.candidate.split(","):
            candidate = candidate_policy(name, work)
            label = f"{name}-{preferences}"
            estimate = evaluate(logging_env, candidate, SHIPPED, work / f"estimate-{label}.json")
            candidate_env = live(label, candidate, preferences, args, work)
            measured = evaluate(
                candidate_env, candidate, candidate, work / f"measured-{label}.json"
            )
            results[label] = {
                "preferences": preferences,
                "candidate": name,
                "coverage": coverage(estimate, measured),
                "estimate": estimate,
                "measured": measured,
            }
            table(f"candidate {name}, customers {preferences}", results[label]["coverage"])
    write_results("off-policy", {"parameters": vars(args), "runs": results})


if __name__ == "__main__":
    main()
