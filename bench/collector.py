"""Benchmark of `journey collector` (not a test): events/s per collector process and the
acknowledgement latency at a fixed rate, against a raw aiokafka producer in the same run.

On the local broker (``make kafka-up``), with a fresh topic prefix (its topics deleted at
the end), one collector process and the vegeta HTTP load generator (``make
bench-collector`` installs it into ``.cache/bin``; ``VEGETA=/path/to/vegeta`` to use
another):

  A. raw aiokafka (acks=all, idempotent), the same events: as fast as it goes (every send
     pipelined, then every acknowledgement awaited), and at ``--rate`` events/s one
     ``send_and_wait`` each: p50/p99 from send to acknowledgement;
  B. the collector at the highest rate vegeta reaches (``--workers`` connections), one
     event per request (a browser tracker) and ``--batch`` events per NDJSON request (a
     server-side sender): events/s acknowledged;
  C. the collector at ``--rate`` requests/s of one event: p50/p99 of the HTTP answer,
     which comes after the broker's acknowledgement.

Every event is a ~300 B web event with a distinct id; the collector's answer is counted only
when it is a 200. The load generator shares the machine's cores with the collector and the
broker: on a 2-core machine the numbers are lower bounds.

Writes bench/results/<date>-<machine>-collector.json.

    .venv/bin/python bench/collector.py [--duration 20] [--rate 1000] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from benchlib import write_results
from profiling import Profile

from stream.config import load_settings
from stream.shell.children import stop, wait_ready
from stream.shell.topics import ensure_topics, every_topic

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("JOURNEY_BROKER", "127.0.0.1:9092")
TOKEN = "bench-token-" + uuid.uuid4().hex
PORT = int(os.environ.get("BENCH_COLLECTOR_PORT", "6097"))


def vegeta() -> str:
    """The vegeta binary: $VEGETA, .cache/bin/vegeta (make bench-collector), or the PATH."""
    for candidate in (os.environ.get("VEGETA"), str(ROOT / ".cache" / "bin" / "vegeta")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("vegeta")
    if found is None:
        raise SystemExit("vegeta not found: run `make bench-collector` (it installs it)")
    return found


def events(count: int, seed: str) -> list[bytes]:
    """``count`` valid web events of about 300 bytes, each with its own id."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        orjson.dumps(
            {
                "event_id": f"bench-{seed}-{n}",
                "type": "page_view",
                "channel": "web",
                "occurred_at": now,
                "customer": {"customer_id": f"C{n % 10_000:06d}", "anonymous_id": f"a{n}"},
                "properties": {"url": f"https://shop.example.com/p/{n % 500}", "title": "x" * 60},
                "context": {"timezone": "Europe/Paris", "locale": "fr-FR"},
            }
        )
        for n in range(count)
    ]


# --- A. the raw producer -----------------------------------------------------------------------


def producer() -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", enable_idempotence=True)


async def raw_throughput(topic: str, values: list[bytes]) -> dict[str, Any]:
    """Every event sent at once, then every acknowledgement awaited."""
    kafka = producer()
    await kafka.start()
    try:
        started = time.perf_counter()
        futures = [await kafka.send(topic, v, key=v[-40:]) for v in values]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await kafka.stop()
    return {"events": len(values), "events_per_s": round(len(values) / elapsed)}


async def raw_latency(topic: str, values: list[bytes], rate: float) -> dict[str, Any]:
    """One send_and_wait per event at ``rate``/s: send-to-acknowledgement times."""
    kafka = producer()
    await kafka.start()
    latencies: list[float] = []

    async def one(value: bytes) -> None:
        started = time.perf_counter()
        await kafka.send_and_wait(topic, value, key=value[-40:])
        latencies.append(time.perf_counter() - started)

    try:
        tasks = []
        started = time.perf_counter()
        for n, value in enumerate(values):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(value)))
        await asyncio.gather(*tasks)
    finally:
        await kafka.stop()
    return {"rate": rate, "events": len(values), **quantiles_ms(latencies)}


def quantiles_ms(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2)}


# --- B and C. the collector under vegeta --------------------------------------------------------


def targets_file(directory: Path, bodies: list[bytes], content_type: str) -> Path:
    """vegeta's JSON targets: one POST /events per body, the key in the header."""
    path = directory / f"targets-{uuid.uuid4().hex[:6]}.jsonl"
    header = {"Authorization": [f"Bearer {TOKEN}"], "Content-Type": [content_type]}
    with path.open("wb") as out:
        for body in bodies:
            target = {
                "method": "POST",
                "url": f"http://127.0.0.1:{PORT}/events",
                "header": header,
                "body": base64.b64encode(body).decode(),
            }
            out.write(orjson.dumps(target) + b"\n")
    return path


def attack(targets: Path, duration_s: float, rate: str, workers: int) -> dict[str, Any]:
    """vegeta's report of one attack (rate "0" with max workers: as fast as it answers)."""
    command = [
        vegeta(),
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-duration={duration_s}s",
        f"-rate={rate}",
        "-timeout=30s",
        "-keepalive=true",
    ]
    if rate == "0":
        command += [f"-max-workers={workers}", f"-workers={workers}"]
    attack_run = subprocess.run(command, capture_output=True, check=True)
    report = subprocess.run(
        [vegeta(), "report", "-type=json"], input=attack_run.stdout, capture_output=True, check=True
    )
    return dict(json.loads(report.stdout))


def summary(report: dict[str, Any], events_per_request: int) -> dict[str, Any]:
    """What a vegeta report says about acknowledged events."""
    codes = {str(code): count for code, count in report["status_codes"].items()}
    ok = codes.get("200", 0)
    seconds = report["duration"] / 1e9
    latencies = report["latencies"]
    return {
        "requests": report["requests"],
        "status_codes": codes,
        "events_per_request": events_per_request,
        "events_per_s": round(ok * events_per_request / seconds) if seconds else 0,
        "requests_per_s": round(report["throughput"], 1),
        "p50_ms": round(latencies["50th"] / 1e6, 2),
        "p90_ms": round(latencies["90th"] / 1e6, 2),
        "p95_ms": round(latencies["95th"] / 1e6, 2),
        "p99_ms": round(latencies["99th"] / 1e6, 2),
        "max_ms": round(latencies["max"] / 1e6, 2),
    }


def start_collector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "collector"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    wait_ready(f"http://127.0.0.1:{PORT}/ready", process, 60.0, str(log))
    return process


async def delete_topics(settings: Any) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    try:
        await admin.delete_topics(every_topic(settings.topics))
    finally:
        await admin.close()


def collector_phases(env: dict[str, str], directory: Path, args: Any) -> dict[str, Any]:
    """Phases B and C against one collector process (B's one-event run profiled)."""
    results: dict[str, Any] = {}
    log = ROOT / ".run" / "bench-collector.log"
    log.parent.mkdir(exist_ok=True)
    process = start_collector(env, log)
    try:
        singles = targets_file(directory, events(20_000, "single"), "application/json")
        batched = events(20_000, "batch")
        bodies = [
            b"\n".join(batched[n : n + args.batch]) for n in range(0, len(batched), args.batch)
        ]
        batches = targets_file(directory, bodies, "application/x-ndjson")
        profile = Profile.start(process.pid, directory / "single.pyspy")
        report = attack(singles, args.duration, "0", args.workers)
        results["collector_single"] = summary(report, 1)
        if profile is not None:  # where one process's time goes at one event per request
            results["collector_single"]["profile"] = profile.stop()
        report = attack(batches, args.duration, "0", args.workers)
        results["collector_batch"] = summary(report, args.batch)
        report = attack(singles, args.duration, f"{args.rate:g}/1s", args.workers)
        results["collector_at_rate"] = {"rate": args.rate, **summary(report, 1)}
    finally:
        stop(process)
    return results


def collector_env(directory: Path, run_id: str, batch: int) -> dict[str, str]:
    """The collector's environment: fresh topics, one unlimited key for web events."""
    keys = directory / "keys.yaml"
    key = {"name": "bench", "token": TOKEN, "channels": ["web"], "rate": 1e9, "burst": 1e9}
    keys.write_text(json.dumps({"keys": [key]}))
    env = {
        **os.environ,
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_TOPIC_PREFIX": f"bench-coll-{run_id}.",
        "JOURNEY_APP_ID": f"bench-coll-{run_id}",
        "JOURNEY_COLLECTOR_PORT": str(PORT),
        "JOURNEY_COLLECTOR_KEYS_FILE": str(keys),
        "JOURNEY_COLLECTOR_MAX_RECORDS": str(max(1000, batch)),
        "JOURNEY_ENV_FILE": "",
        "JOURNEY_LOG_LEVEL": "warning",
    }
    return env


def print_comparison(results: dict[str, Any], args: Any) -> None:
    """Phases B and C beside the raw producer (and each run's share of it, recorded)."""
    raw_at = results["raw_aiokafka_at_rate"]
    raw = results["raw_aiokafka"]["events_per_s"]
    for name, label in (
        ("collector_single", "1 event/request"),
        ("collector_batch", f"{args.batch} events/request"),
    ):
        run = results[name]
        run["share_of_raw"] = round(run["events_per_s"] / raw, 3)
        print(
            f"B. collector, {label}: {run['events_per_s']:,} events/s "
            f"({run['share_of_raw']:.1%} of raw), statuses {run['status_codes']}"
        )
    at_rate = results["collector_at_rate"]
    print(
        f"C. collector at {args.rate:g} requests/s: p50 {at_rate['p50_ms']} ms, "
        f"p90 {at_rate['p90_ms']} ms, p99 {at_rate['p99_ms']} ms "
        f"(raw producer p99 {raw_at['p99_ms']} ms), "
        f"statuses {at_rate['status_codes']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each phase")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="events/s of the fixed-rate runs"
    )
    parser.add_argument("--batch", type=int, default=100, help="events per batched request")
    parser.add_argument("--workers", type=int, default=32, help="vegeta's connections at full rate")
    args = parser.parse_args()
    vegeta()  # fail before anything starts
    run_id = uuid.uuid4().hex[:8]
    directory = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    env = collector_env(directory, run_id, args.batch)
    settings = load_settings(env)
    asyncio.run(ensure_topics(settings))
    topic = settings.topics.events("web")
    fixed = int(args.rate * args.duration)
    sample = events(1, "size")[0]
    results: dict[str, Any] = {
        "broker": BROKER,
        "partitions": settings.partitions,
        "event_bytes": len(sample),
        "duration_s": args.duration,
        "load_generator": "vegeta",
    }
    print(f"events of {len(sample)} B; phases of {args.duration:g} s; topic prefix {run_id}")
    results["raw_aiokafka"] = asyncio.run(raw_throughput(topic, events(50_000, "raw")))
    print(f"A. raw aiokafka: {results['raw_aiokafka']['events_per_s']:,} events/s")
    results["raw_aiokafka_at_rate"] = asyncio.run(
        raw_latency(topic, events(fixed, "raw-rate"), args.rate)
    )
    raw_at = results["raw_aiokafka_at_rate"]
    print(f"   at {args.rate:g}/s: ack p50 {raw_at['p50_ms']} ms, p99 {raw_at['p99_ms']} ms")
    try:
        results.update(collector_phases(env, directory, args))
    finally:
        asyncio.run(delete_topics(settings))
        shutil.rmtree(directory, ignore_errors=True)
    print_comparison(results, args)
    write_results("collector", results)


if __name__ == "__main__":
    main()
