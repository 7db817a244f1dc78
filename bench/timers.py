"""Benchmark of durable timers (not a test): 1,000,000 pending timers, index rebuild, firing lag.

Part 1, in process, real RocksDB (rocksdict, the store the worker uses):
  - writes 1,000,000 due-table entries (customer key -> deadline) and reports disk size;
  - rebuilds the scheduler's TimerIndex from them as on a partition assignment, twice:
    deadlines spread over 30 days with the default one-hour horizon (what a worker
    holds in memory), and the worst case of every deadline inside the horizon;
    reports time and the memory the index takes (RSS growth).

Part 2, a real worker on the local broker (``make kafka-up``):
  - arms ``--due`` timers whose deadlines fall at ``--rate`` per second, then measures
    the firing lag of each: from its deadline to the Kafka timestamp of the action it
    produced (the action topic is read by this process). Reports p50/p95/p99/max; the
    target is p99 < 1 s at 1,000 timers/s due. The worker's clock is the wall clock.

Writes bench/results/<date>-<machine>-timers.json.

    .venv/bin/python bench/timers.py [--pending 1000000] [--due 20000] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from benchlib import write_results
from rocksdict import Rdict

from stream.core.timer_index import TimerIndex
from stream.shell.children import wait_ready

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("JOURNEY_BROKER", "127.0.0.1:9092")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def rss_mib() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def rebuild(db: Rdict, horizon_ms: int, now_ms: int) -> dict[str, float]:
    """Load the due table into a fresh index, as the scheduler does on assignment."""
    before = rss_mib()
    index = TimerIndex(horizon_ms)
    index.assign([0])
    index.advance(now_ms)
    started = time.perf_counter()
    batch: list[tuple[bytes, int]] = []
    for key, value in db.items():
        batch.append((key, int(value)))
        if len(batch) >= 20_000:
            index.load(0, batch)
            batch = []
    index.load(0, batch)
    elapsed = time.perf_counter() - started
    result = {
        "seconds": round(elapsed, 3),
        "entries_per_s": round(1_000_000 / elapsed) if elapsed else 0,
        "in_memory": len(index),
        "rss_growth_mib": round(rss_mib() - before, 1),
    }
    del index
    return result


def part1(pending: int) -> dict[str, Any]:
    """Due table of ``pending`` customers on RocksDB; index rebuild time and memory."""
    workdir = Path(tempfile.mkdtemp(prefix="timers-bench-"))
    now_ms = int(time.time() * 1000)
    try:
        spread = Rdict(str(workdir / "spread"))
        dense = Rdict(str(workdir / "dense"))
        started = time.perf_counter()
        for n in range(pending):
            key = f"C{n:09d}".encode()
            spread[key] = str(now_ms + (n * 7919 % pending) * 30 * DAY_MS // pending).encode()
            dense[key] = str(now_ms + (n * 7919 % pending) * HOUR_MS // pending).encode()
        write_s = time.perf_counter() - started
        spread.flush()
        dense.flush()
        results = {
            "pending": pending,
            "write_seconds": round(write_s, 1),
            "due_table_disk_mib": round(dir_mib(workdir / "spread"), 1),
            "rebuild_spread_30d_horizon_1h": rebuild(spread, HOUR_MS, now_ms),
            "rebuild_all_within_horizon": rebuild(dense, 2 * HOUR_MS, now_ms),
        }
        spread.close()
        dense.close()
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


POLICY = """
format: 1
name: timers-bench
timers:
  - name: wait
    delay: {delay}s
    start: [{{event: login}}]
actions:
  - id: follow_up
    category: service
    channels: [call_center]
    triggers: [{{timer: wait}}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A worker process in its own session (stopped by its process group)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stream", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


async def part2(due: int, rate: float, lead_s: float, workdir: Path) -> dict[str, Any]:
    """Fire ``due`` timers at ``rate``/s through a real worker; lag from deadline to action."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    run = uuid.uuid4().hex[:8]
    prefix = f"tb{run}."
    port = free_port()
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY.format(delay=int(lead_s)))
    env = {
        **os.environ,
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_APP_ID": f"timers-bench-{run}",
        "JOURNEY_TOPIC_PREFIX": prefix,
        "JOURNEY_PARTITIONS": "4",
        "JOURNEY_DATA_DIR": str(workdir / "state"),
        "JOURNEY_WEB_PORT": str(port),
        "JOURNEY_POLICY_FILE": str(policy),
        "JOURNEY_LOG_LEVEL": "warning",
    }
    worker = start_worker(env, workdir / "worker.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", linger_ms=5)
        await producer.start()
        # Deadlines: rate per second, starting lead_s after the first event's time.
        start_ms = int(time.time() * 1000) + 2_000
        deadlines: dict[str, int] = {}
        try:
            for n in range(due):
                cid = f"T{n:07d}"
                occurred = start_ms + int(n * 1000 / rate)
                deadlines[cid] = occurred + int(lead_s * 1000)
                value = {
                    "event_id": f"tb-{run}-{n}",
                    "type": "login",
                    "channel": "web",
                    "occurred_at": datetime.fromtimestamp(occurred / 1000, tz=UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "customer": {"customer_id": cid},
                    "properties": {},
                }
                await producer.send(f"{prefix}events.web", orjson.dumps(value), key=cid.encode())
            await producer.flush()
        finally:
            await producer.stop()
        armed_by_s = (int(time.time() * 1000) - start_ms) / 1000
        consumer = AIOKafkaConsumer(
            f"{prefix}actions.call_center",
            bootstrap_servers=BROKER,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        lags: dict[str, float] = {}
        deadline = time.monotonic() + lead_s + due / rate + 120
        try:
            while len(lags) < due and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        cid = orjson.loads(record.value)["customer_id"]
                        lags.setdefault(cid, (record.timestamp - deadlines[cid]) / 1000)
        finally:
            await consumer.stop()
        metrics = await asyncio.to_thread(http_text, f"http://127.0.0.1:{port}/metrics")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    fired_in_time = _bucket(metrics, "journey_timer_fire_lag_seconds_bucket", "1.0")
    values = sorted(lags.values())
    quantiles = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    return {
        "timers": due,
        "due_per_s": rate,
        "delay_s": lead_s,
        "events_produced_within_s": round(armed_by_s, 1),
        "fired": len(values),
        "lag_p50_s": round(quantiles[49], 3),
        "lag_p95_s": round(quantiles[94], 3),
        "lag_p99_s": round(quantiles[98], 3),
        "lag_max_s": round(values[-1], 3) if values else None,
        "early": sum(1 for v in values if v < 0),
        "worker_fired_within_1s": fired_in_time,
    }


def _bucket(metrics: str, name: str, le: str) -> float | None:
    """One cumulative histogram bucket from a /metrics text."""
    prefix = f'{name}{{le="{le}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--delay", type=float, default=30.0, help="timer delay (s)")
    args = parser.parse_args()

    print(f"part 1: {args.pending:,} pending timers in a RocksDB due table", flush=True)
    one = part1(args.pending)
    print(json.dumps(one, indent=2), flush=True)
    print(f"part 2: {args.due:,} timers due at {args.rate:g}/s through a real worker", flush=True)
    with tempfile.TemporaryDirectory(prefix="timers-bench-") as tmp:
        two = asyncio.run(part2(args.due, args.rate, args.delay, Path(tmp)))
    print(json.dumps(two, indent=2), flush=True)
    write_results("timers", {"index": one, "firing": two})


if __name__ == "__main__":
    main()
