"""`make demo`: local Kafka, one worker, simulated multi-channel traffic, actions printed live.

Ctrl-C (or DEMO_DURATION seconds) stops everything this script started, by PID; a
broker that was already running is left running.

Every run is a fresh deployment: its own topic prefix (``demo<seed>.``), app id and state
directory; the topics and state of earlier demo runs are deleted first. The worker and
the simulator share a sped-up clock (DEMO_CLOCK_SPEED, default 14400: one real second is
four clock hours), so the timers of the default policy show within minutes: cart
abandonment (30 min), the app invitation two days after a first order, quiet-hours
releases every clock morning and win-backs after 30 days of inactivity (about three
minutes in; some simulated buyers lapse for 31-60 days).

A loopback sender answers the actions as the simulated customers would (each belongs to
a segment: app-first, email reader, sms responder, unresponsive), so outcomes flow back
and the engine learns: every summary prints the learnt response rate per channel and the
conversion of treated customers against the 5% control group; at the end, `journey
report uplift` and `journey report model` print what was learnt. The journey map and
customer pages are on the worker's web port (/ui/, the URL with its token is printed).

Environment: DEMO_RATE (events/s, default 200), DEMO_CUSTOMERS (default 2000),
DEMO_SEED (default: the current time), DEMO_DURATION (seconds, default: until Ctrl-C),
DEMO_WEB_PORT (worker web port, default 6066), DEMO_CLOCK_SPEED (default 14400).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from subprocess import Popen
from typing import IO

from stream.shell import children

ROOT = Path(__file__).resolve().parents[2]
KAFKA = ROOT / "deploy" / "local" / "kafka.sh"
BIN = Path(sys.executable).parent


def say(*parts: object, **kwargs: object) -> None:
    """print, but a closed terminal or pipe must never stop the clean-up."""
    with contextlib.suppress(OSError):
        print(*parts, **kwargs)  # type: ignore[call-overload]


def kafka_running() -> bool:
    return subprocess.run([KAFKA, "status"], capture_output=True).returncode == 0


def spawn(args: list[Path | str], env: dict[str, str], log: IO[bytes] | None) -> Popen[bytes]:
    """Start a child in its own session, so that Ctrl-C reaches only this script, which
    then stops the children in order, by PID."""
    stderr = subprocess.STDOUT if log is not None else None
    return subprocess.Popen(args, env=env, stdout=log, stderr=stderr, start_new_session=True)


def stop(process: Popen[bytes] | None, name: str) -> None:
    if process is not None and process.poll() is None:
        say(f"demo: stopping {name} (pid {process.pid})", flush=True)
    children.stop(process)


DEMO_TOPIC = re.compile(r"^(demo\d+\.|journey-demo-\d+-)")


async def delete_old_demo_topics(bootstrap: str) -> int:
    """Delete the topics of earlier demo runs (and only those); returns how many."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        old = [t for t in await admin.list_topics() if DEMO_TOPIC.match(t)]
        if old:
            await admin.delete_topics(old)
        return len(old)
    finally:
        await admin.close()


def report(env: dict[str, str]) -> None:
    """Print what the engine learnt in this run (uplift, then response rates)."""
    for kind in ("uplift", "model"):
        say(f"demo: journey report {kind}", flush=True)
        with contextlib.suppress(subprocess.SubprocessError, KeyboardInterrupt):
            subprocess.run([BIN / "journey", "report", kind], env=env, timeout=60)


def main() -> int:
    rate = os.environ.get("DEMO_RATE", "200")
    customers = os.environ.get("DEMO_CUSTOMERS", "2000")
    # A new seed per run by default: the same seed replays the same event ids, which the
    # worker (rightly) drops as duplicates of the previous run.
    seed = os.environ.get("DEMO_SEED", str(int(time.time())))
    duration = os.environ.get("DEMO_DURATION")
    port = os.environ.get("DEMO_WEB_PORT", "6066")
    speed = os.environ.get("DEMO_CLOCK_SPEED", "14400")
    run_dir = ROOT / ".run" / "demo"
    shutil.rmtree(run_dir / "state", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"demo{seed}."
    env = {
        **os.environ,
        "JOURNEY_APP_ID": f"journey-demo-{seed}",
        "JOURNEY_TOPIC_PREFIX": prefix,
        "JOURNEY_DATA_DIR": str(run_dir / "state"),
        "JOURNEY_WEB_PORT": port,
        "JOURNEY_CLOCK_SPEED": speed,
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        # The API and the page need a token: a fresh one per demo unless one is given.
        "JOURNEY_API_TOKEN": os.environ.get("JOURNEY_API_TOKEN") or secrets.token_urlsafe(12),
    }
    started_kafka = not kafka_running()
    if started_kafka:
        subprocess.run([KAFKA, "up"], check=True)
    worker = simulator = sender = watcher = None
    try:
        broker = env.get("JOURNEY_BROKER", "127.0.0.1:9092")
        deleted = asyncio.run(delete_old_demo_topics(broker))
        if deleted:
            say(f"demo: deleted {deleted} topic(s) of earlier demo runs", flush=True)
        subprocess.run([BIN / "journey", "topics"], env=env, check=True)
        with open(run_dir / "worker.log", "wb") as worker_log:
            worker = spawn([BIN / "journey", "worker"], env, worker_log)
        say(
            f"demo: worker pid {worker.pid}, log .run/demo/worker.log, "
            f"metrics http://127.0.0.1:{port}/metrics",
            flush=True,
        )
        say(
            f"demo: journey map http://127.0.0.1:{port}/ui/#token={env['JOURNEY_API_TOKEN']} "
            f"(API: curl -H 'Authorization: Bearer {env['JOURNEY_API_TOKEN']}' "
            f"http://127.0.0.1:{port}/journey/funnel)",
            flush=True,
        )
        children.wait_ready(
            f"http://127.0.0.1:{port}/ready", worker, log_hint=".run/demo/worker.log"
        )
        sim_args = ["--customers", customers, "--rate", rate, "--seed", seed]
        sim_args += ["--step-ms", "180000", "--lapse-share", "0.1"]
        if duration:
            sim_args += ["--duration", duration]
        with open(run_dir / "simulate.log", "wb") as sim_log:
            simulator = spawn([BIN / "journey", "simulate", *sim_args], env, sim_log)
        say(
            f"demo: simulator pid {simulator.pid} at {rate} events/s for {customers} customers, "
            f"seed {seed}, topics {prefix}*, clock x{speed}; "
            "actions follow (Ctrl-C stops everything)",
            flush=True,
        )
        sender_args = ["--seed", seed, "--quiet"]
        if duration:
            sender_args += ["--duration", duration]
        with open(run_dir / "sender.log", "wb") as sender_log:
            sender = spawn([BIN / "journey", "sender", *sender_args], env, sender_log)
        say(
            f"demo: loopback sender pid {sender.pid} answers actions with outcomes "
            "(ground truth: default customer segments)",
            flush=True,
        )
        watch_args = ["--metrics-url", f"http://127.0.0.1:{port}/metrics"]
        if duration:
            watch_args += ["--duration", duration]
        watcher = spawn([BIN / "journey", "watch", *watch_args], env, None)
        watcher.wait()
        report(env)
    except KeyboardInterrupt:
        report(env)
    finally:
        stop(watcher, "watch")
        stop(sender, "sender")
        stop(simulator, "simulator")
        stop(worker, "worker")
        if started_kafka:
            subprocess.run([KAFKA, "down"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
