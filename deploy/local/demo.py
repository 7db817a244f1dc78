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

Some simulated customers post on social media (mentions, reviews, direct messages, replies
to the brand, in several languages); the community team's tasks appear among the actions
(``social | ... | social_reply_private <- social/mention: ... [reply in private: ...]``)
and every summary counts the posts by sentiment and the tasks, public and private.

A loopback sender answers the actions as the simulated customers would (each belongs to
a segment: app-first, email reader, sms responder, unresponsive), so outcomes flow back
and the engine learns: every summary prints the learnt response rate per channel and the
conversion of treated customers against the 5% control group; at the end, `journey
report uplift` and `journey report model` print what was learnt. The journey map and
customer pages are on the worker's web port (/ui/, the URL with its token is printed).

Environment: DEMO_RATE (events/s, default 200), DEMO_CUSTOMERS (default 2000),
DEMO_SEED (default: the current time), DEMO_DURATION (seconds, default: until Ctrl-C),
DEMO_WEB_PORT (worker web port, default 6066), DEMO_CLOCK_SPEED (default 14400).

The run's settings (prefix, app id, token, web port, clock) go to .run/demo/journey.env,
which `journey` commands run from the repository read (see JOURNEY_ENV_FILE). Everything
the demo itself says also goes to .run/demo/demo.log, so that a closed stdout (`make demo
| tee log` ended by Ctrl-C) loses neither the final reports nor the clean-up.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from subprocess import Popen
from typing import IO

from stream.config import write_env_file
from stream.shell import children
from stream.shell.pipes import discard_stdout

ROOT = Path(__file__).resolve().parents[2]
KAFKA = ROOT / "deploy" / "local" / "kafka.sh"
BIN = Path(sys.executable).parent
RUN_DIR = ROOT / ".run" / "demo"
STOP_ORDER = ("watch", "sender", "simulator", "worker")


class Console:
    """The demo's own lines: on stdout while someone reads it, and always in a log file."""

    def __init__(self, log_path: Path) -> None:
        self.path = log_path
        self.log = log_path.open("w", encoding="utf-8")
        self.stdout_open = True

    def say(self, text: str) -> None:
        """Write a line to the log, and to stdout unless its reader has gone."""
        self.log.write(text + "\n")
        self.log.flush()
        if not self.stdout_open:
            return
        try:
            print(text, flush=True)
        except OSError:  # EPIPE (the reader left) or a closed terminal: the log still has it
            self.stdout_open = False
            discard_stdout()


def kafka_running() -> bool:
    return subprocess.run([KAFKA, "status"], capture_output=True).returncode == 0


def spawn(args: list[Path | str], env: dict[str, str], log: IO[bytes] | None) -> Popen[bytes]:
    """Start a child in its own session, so that Ctrl-C reaches only this script, which
    then stops the children in order, by PID."""
    stderr = subprocess.STDOUT if log is not None else None
    return subprocess.Popen(args, env=env, stdout=log, stderr=stderr, start_new_session=True)


def stop(process: Popen[bytes] | None, name: str, console: Console) -> None:
    """Stop one child by PID (SIGTERM, then SIGKILL), saying so if it was running."""
    if process is not None and process.poll() is None:
        console.say(f"demo: stopping {name} (pid {process.pid})")
    children.stop(process)


def shutdown(processes: Mapping[str, Popen[bytes]], started_kafka: bool, console: Console) -> None:
    """Stop every child (watcher first, worker last), then the broker if this run started
    it. A second Ctrl-C is ignored from here on; a closed stdout or stderr does not stop it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in STOP_ORDER:
        stop(processes.get(name), name, console)
    if started_kafka:
        console.say("demo: stopping the broker this run started")
        subprocess.run([KAFKA, "down"], check=False)
    console.say(f"demo: stopped; its own lines and the reports are also in {console.path}")


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


def run_journey(args: list[str], env: dict[str, str], console: Console, timeout_s: float) -> int:
    """Run a `journey` command, its output through the console; returns its exit status."""
    try:
        result = subprocess.run(
            [BIN / "journey", *args], env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except (subprocess.SubprocessError, KeyboardInterrupt) as exc:
        console.say(f"demo: journey {' '.join(args)} did not finish ({type(exc).__name__})")
        return 1
    for text in (result.stdout, result.stderr):
        if text.strip():
            console.say(text.rstrip("\n"))
    return result.returncode


def report(env: dict[str, str], console: Console) -> None:
    """Print what the engine learnt in this run (uplift, then response rates); a second
    Ctrl-C skips what is left."""
    for kind in ("uplift", "model"):
        console.say(f"demo: journey report {kind}")
        run_journey(["report", kind], env, console, timeout_s=60)


def deployment_env(
    environ: Mapping[str, str], seed: str, port: str, speed: str, run_dir: Path
) -> dict[str, str]:
    """The environment of this run's processes: its own prefix, app id, state and token."""
    return {
        **environ,
        "JOURNEY_ENV_FILE": "",  # every setting is given here: no settings file underneath
        "JOURNEY_BROKER": environ.get("JOURNEY_BROKER", "127.0.0.1:9092"),
        "JOURNEY_APP_ID": f"journey-demo-{seed}",
        "JOURNEY_TOPIC_PREFIX": f"demo{seed}.",
        "JOURNEY_DATA_DIR": str(run_dir / "state"),
        "JOURNEY_WEB_PORT": port,
        "JOURNEY_CLOCK_SPEED": speed,
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        # The API and the page need a token: a fresh one per demo unless one is given.
        "JOURNEY_API_TOKEN": environ.get("JOURNEY_API_TOKEN") or secrets.token_urlsafe(12),
    }


def write_settings(env: Mapping[str, str], path: Path) -> None:
    """Write the run's JOURNEY_* settings where `journey` commands find them (mode 0600)."""
    settings = {
        k: v for k, v in env.items() if k.startswith("JOURNEY_") and k != "JOURNEY_ENV_FILE"
    }
    comment = (
        "Settings of the last `make demo` run. `journey` commands run from the repository\n"
        "read this file (JOURNEY_ENV_FILE); other tools: source it. Variables set in the\n"
        "environment win over it."
    )
    write_env_file(path, settings, comment)


def start_worker(env: dict[str, str], processes: dict[str, Popen[bytes]], console: Console) -> None:
    """Create the topics, start the worker (into ``processes``) and wait until it is ready."""
    deleted = asyncio.run(delete_old_demo_topics(env["JOURNEY_BROKER"]))
    if deleted:
        console.say(f"demo: deleted {deleted} topic(s) of earlier demo runs")
    if run_journey(["topics"], env, console, timeout_s=120) != 0:
        raise SystemExit("demo: journey topics failed")
    with open(RUN_DIR / "worker.log", "wb") as worker_log:
        worker = processes["worker"] = spawn([BIN / "journey", "worker"], env, worker_log)
    port, token = env["JOURNEY_WEB_PORT"], env["JOURNEY_API_TOKEN"]
    console.say(
        f"demo: worker pid {worker.pid}, log .run/demo/worker.log, "
        f"metrics http://127.0.0.1:{port}/metrics"
    )
    console.say(
        f"demo: journey map http://127.0.0.1:{port}/ui/#token={token} "
        f"(API: curl -H 'Authorization: Bearer {token}' "
        f"http://127.0.0.1:{port}/journey/funnel)"
    )
    children.wait_ready(f"http://127.0.0.1:{port}/ready", worker, log_hint=".run/demo/worker.log")


def start_traffic(
    env: dict[str, str], seed: str, processes: dict[str, Popen[bytes]], console: Console
) -> None:
    """Start the simulator, the loopback sender and the watcher (into ``processes``)."""
    rate = os.environ.get("DEMO_RATE", "200")
    customers = os.environ.get("DEMO_CUSTOMERS", "2000")
    duration = os.environ.get("DEMO_DURATION")
    port = env["JOURNEY_WEB_PORT"]
    until = ["--duration", duration] if duration else []
    sim_args = ["--customers", customers, "--rate", rate, "--seed", seed]
    sim_args += ["--step-ms", "180000", "--lapse-share", "0.1", *until]
    with open(RUN_DIR / "simulate.log", "wb") as sim_log:
        processes["simulator"] = spawn([BIN / "journey", "simulate", *sim_args], env, sim_log)
    console.say(
        f"demo: simulator pid {processes['simulator'].pid} at {rate} events/s for {customers} "
        f"customers, seed {seed}, topics {env['JOURNEY_TOPIC_PREFIX']}*, "
        f"clock x{env['JOURNEY_CLOCK_SPEED']}; actions follow (Ctrl-C stops everything)"
    )
    with open(RUN_DIR / "sender.log", "wb") as sender_log:
        sender_args = ["--seed", seed, "--quiet", *until]
        processes["sender"] = spawn([BIN / "journey", "sender", *sender_args], env, sender_log)
    console.say(
        f"demo: loopback sender pid {processes['sender'].pid} answers actions with outcomes "
        "(ground truth: default customer segments)"
    )
    watch_args = ["--metrics-url", f"http://127.0.0.1:{port}/metrics", *until]
    processes["watch"] = spawn([BIN / "journey", "watch", *watch_args], env, None)


def main() -> int:
    # A new seed per run by default: the same seed replays the same event ids, which the
    # worker (rightly) drops as duplicates of the previous run.
    seed = os.environ.get("DEMO_SEED", str(int(time.time())))
    port = os.environ.get("DEMO_WEB_PORT", "6066")
    speed = os.environ.get("DEMO_CLOCK_SPEED", "14400")
    shutil.rmtree(RUN_DIR / "state", ignore_errors=True)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    console = Console(RUN_DIR / "demo.log")
    env = deployment_env(os.environ, seed, port, speed, RUN_DIR)
    write_settings(env, RUN_DIR / "journey.env")
    console.say(
        "demo: this run's settings (token included) are in .run/demo/journey.env: `journey` "
        "commands run here read them, e.g. `.venv/bin/journey customer C000001`; "
        f"elsewhere: export JOURNEY_ENV_FILE={RUN_DIR / 'journey.env'}"
    )
    started_kafka = not kafka_running()
    processes: dict[str, Popen[bytes]] = {}
    try:
        if started_kafka:
            subprocess.run([KAFKA, "up"], check=True)
        start_worker(env, processes, console)
        start_traffic(env, seed, processes, console)
        processes["watch"].wait()
        report(env, console)
    except KeyboardInterrupt:
        if "worker" in processes:
            report(env, console)
    finally:
        shutdown(processes, started_kafka, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
