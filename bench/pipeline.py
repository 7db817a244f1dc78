"""Throughput and latency of the full pipeline, side by side with two baselines (not a test).

On the local broker (``make kafka-up``), with seeded simulated traffic (``--events``
contract-valid events of ``--customers`` customers over the five ingress topics, 4
partitions, produced once before each measurement so the producer is not what is
measured), in one run:

1. Baseline A, raw aiokafka: getmany -> orjson decode -> per-customer counter -> an
   output record and a changelog-like record per event (the same durable writes).
2. Baseline B, a bare Faust agent forwarding each event (``bench/faust_floor.py``).
3. The full pipeline (ingest, validation, identity, state, timers, journeys, decisions,
   actions, explain records, learning): one ``journey worker``; the same with the shipped
   policy's journeys taken out (``nojourneys``: what journeys cost); then two workers on
   the same machine.
4. Latency at fixed input rates: event-to-action p50/p95/p99/max, from each event's
   produce timestamp to the Kafka timestamp of the action it caused.

Rates count from the first record out to the last (startup excluded): outputs for the
baselines, events stepped by the process agent (``journey_decision_seconds_count``) for
the pipeline. For the pipeline it also reports the process agents' output flushes
(``journey_output_flush_seconds``: outputs acknowledged before states are written) and
their share of the agents' batch time, and, with py-spy (installed with the dev tools),
the one-worker run's top functions by share of samples (``bench/profiling.py``;
``--no-profile`` leaves it out). Writes bench/results/<date>-<machine>-pipeline.json and
prints a table.

    .venv/bin/python bench/pipeline.py [--events 100000] [--customers 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from benchlib import shipped_policy_without_journeys, write_results
from profiling import Profile

from stream.config import CHANNELS_IN, CHANNELS_OUT
from stream.shell.children import stop, wait_ready
from stream.shell.watch import scrape, total
from stream.simulate.journeys import generate_events, to_topic

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BROKER = "127.0.0.1:9092"
PARTITIONS = 4
WORK = ROOT / ".run" / "bench-pipeline"
VARIANTS = ("raw", "faust", "pipeline1", "nojourneys", "pipeline2", "latency")
START_MS = 1_795_428_000_000  # 2026-11-23 09:00 UTC


def simulated(events: int, customers: int, seed: int) -> list[tuple[str, bytes, bytes, str]]:
    """(channel, key, value, event_id) of the seeded traffic, serialised once."""
    stream = generate_events(customers, seed, START_MS, mean_gap_ms=60_000)
    out = []
    for _ in range(events):
        event = next(stream)
        out.append((event.channel, event.key, orjson.dumps(event.value), event.value["event_id"]))
    return out


async def create_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def delete_topics(prefixes: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def preload(prefix: str, traffic: list[tuple[str, bytes, bytes, str]]) -> float:
    """Produce the traffic to ``prefix``'s ingress topics; returns events/s produced."""
    await create_topics([to_topic(prefix, c) for c in CHANNELS_IN])
    producer = AIOKafkaProducer(
        bootstrap_servers=BROKER, acks="all", linger_ms=20, max_batch_size=262_144
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for first in range(0, len(traffic), 5000):
            futures = [
                await producer.send(to_topic(prefix, channel), value, key=key)
                for channel, key, value, _ in traffic[first : first + 5000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(traffic) / (time.perf_counter() - started)


class Progress:
    """A counter sampled over time: the rate from its first increase to reaching a target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.first: float | None = None
        self.done: float | None = None
        self.count = 0

    def see(self, count: int) -> None:
        now = time.perf_counter()
        if count > 0 and self.first is None:
            self.first = now
        self.count = count
        if count >= self.target and self.done is None:
            self.done = now

    def rate(self) -> float | None:
        if self.first is None or self.done is None or self.done <= self.first:
            return None
        return self.target / (self.done - self.first)


async def end_offset_total(consumer: AIOKafkaConsumer, topic: str) -> int:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    return sum((await consumer.end_offsets(partitions)).values())


async def watch_topic(topic: str, progress: Progress, timeout_s: float) -> None:
    """Follow the number of records in ``topic`` until it reaches the target."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BROKER)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while progress.done is None and time.monotonic() < deadline:
            progress.see(await end_offset_total(consumer, topic))
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()


async def baseline_raw(prefix: str, events: int, timeout_s: float) -> dict[str, Any]:
    """Baseline A: raw aiokafka pass-through with the same two durable writes per event."""
    out, state_topic = f"{prefix}raw.out", f"{prefix}raw.state"
    await create_topics([out, state_topic])
    consumer = AIOKafkaConsumer(
        *[to_topic(prefix, c) for c in CHANNELS_IN],
        bootstrap_servers=BROKER,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    counters: dict[bytes, int] = {}
    done = 0
    first = last = None
    try:
        deadline = time.monotonic() + timeout_s
        while done < events and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            futures = []
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    key = record.key or b""
                    counters[key] = counters.get(key, 0) + 1
                    value["seen"] = counters[key]
                    body = orjson.dumps(value)
                    futures.append(await producer.send(out, body, key=key))
                    futures.append(
                        await producer.send(state_topic, orjson.dumps(counters[key]), key=key)
                    )
                    done += 1
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
                first = first or time.perf_counter()
                last = time.perf_counter()
    finally:
        await consumer.stop()
        await producer.stop()
    rate = events / (last - first) if first and last and last > first and done >= events else None
    return {"events": done, "events_per_s": rate}


def spawn(args: list[str | Path], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


async def baseline_faust(prefix: str, events: int, timeout_s: float) -> dict[str, Any]:
    """Baseline B: a bare Faust agent forwarding each event."""
    out = f"{prefix}floor.out"
    await create_topics([out])
    run = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "FLOOR_APP_ID": f"bench-floor-{run}",
        "FLOOR_PREFIX": prefix,
        "FLOOR_OUT": out,
        "FLOOR_PORT": "6098",
        "FLOOR_DATA_DIR": str(WORK / f"floor-{run}"),
    }
    process = spawn(
        [sys.executable, str(ROOT / "bench" / "faust_floor.py"), "worker", "-l", "info"],
        env,
        WORK / "floor.log",
    )
    progress = Progress(events)
    try:
        await watch_topic(out, progress, timeout_s)
    finally:
        stop(process)
    return {"events": progress.count, "events_per_s": progress.rate()}


def worker_env(
    prefix: str, app_id: str, name: str, port: int, policy: Path | None = None
) -> dict[str, str]:
    return {
        **os.environ,
        **({"JOURNEY_POLICY_FILE": str(policy)} if policy is not None else {}),
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_APP_ID": app_id,
        "JOURNEY_TOPIC_PREFIX": prefix,
        "JOURNEY_PARTITIONS": str(PARTITIONS),
        "JOURNEY_DATA_DIR": str(WORK / f"{app_id}-{name}"),
        "JOURNEY_WEB_PORT": str(port),
        "JOURNEY_LOG_LEVEL": "info",
        # The events' own time (09:00 on the test day) plus an hour: no quiet hours.
        "JOURNEY_CLOCK_ANCHOR_MS": str(int(time.time() * 1000)),
        "JOURNEY_CLOCK_START_MS": str(START_MS + 3_600_000),
    }


def save_metrics(url: str, path: Path) -> None:
    """A worker's final /metrics page, kept beside its log (a dead worker has none)."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            path.write_bytes(response.read())
    except OSError as exc:
        print(f"no metrics from {url}: {exc}", flush=True)


def stepped(urls: list[str]) -> int:
    """Events the process agents stepped so far, over every worker."""
    count = 0
    for url in urls:
        samples = scrape(f"{url}/metrics") or []
        count += int(total(samples, "journey_decision_seconds_count", kind="event"))
    return count


def policy_without_journeys() -> Path:
    """The shipped policy without its journeys, as a file (``benchlib``)."""
    path = WORK / "policy-without-journeys.yaml"
    path.write_text(shipped_policy_without_journeys())
    return path


async def pipeline(
    prefix: str,
    events: int,
    workers: int,
    timeout_s: float,
    profile: bool = False,
    policy: Path | None = None,
) -> dict[str, Any]:
    """The full pipeline with ``workers`` worker processes over the preloaded traffic;
    ``profile``: sample the first worker with py-spy while it works; ``policy``: another
    policy file than the shipped one."""
    app_id = f"bench-pipe-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        subprocess.run,
        [BIN / "journey", "topics"],
        env=worker_env(prefix, app_id, "topics", 6090),
        check=True,
        capture_output=True,
    )
    processes, urls = [], []
    progress = Progress(events)
    try:
        for n in range(workers):
            port = 6091 + n
            env = worker_env(prefix, app_id, f"w{n}", port, policy)
            processes.append(spawn([BIN / "journey", "worker"], env, WORK / f"{app_id}-w{n}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        for process, url in zip(processes, urls, strict=True):
            await asyncio.to_thread(wait_ready, f"{url}/ready", process, 180.0)
        sampler = Profile.start(processes[0].pid, WORK / f"{app_id}-w0.pyspy") if profile else None
        deadline = time.monotonic() + timeout_s
        while progress.done is None and time.monotonic() < deadline:
            progress.see(await asyncio.to_thread(stepped, urls))
            await asyncio.sleep(0.5)
        profiled = await asyncio.to_thread(sampler.stop) if sampler else None
        flush = await asyncio.to_thread(flush_cost, urls)
        for n, url in enumerate(urls):  # kept beside the logs, to see what the workers did
            await asyncio.to_thread(save_metrics, url, WORK / f"{app_id}-w{n}.metrics")
    finally:
        for process in processes:
            stop(process)
    return {
        "workers": workers,
        "events": progress.count,
        "events_per_s": progress.rate(),
        "output_flush": flush,
        **({"profile": profiled} if profile else {}),
    }


def flush_cost(urls: list[str]) -> dict[str, Any]:
    """What waiting for outputs before state writes cost the process agents (all workers):
    flushes, their mean wait, and their share of the process agents' batch time."""
    flushes = waited = busy = 0.0
    for url in urls:
        samples = scrape(f"{url}/metrics") or []
        flushes += total(samples, "journey_output_flush_seconds_count", agent="process")
        waited += total(samples, "journey_output_flush_seconds_sum", agent="process")
        busy += total(samples, "journey_batch_duration_seconds_sum", agent="process")
    return {
        "flushes": int(flushes),
        "mean_ms": round(1000 * waited / flushes, 2) if flushes else None,
        "share_of_process_time": round(waited / busy, 3) if busy else None,
    }


async def latency(
    prefix: str, traffic: list[tuple[str, bytes, bytes, str]], rates: list[int], seconds: float
) -> list[dict[str, Any]]:
    """Event-to-action latency at fixed input rates, one worker, rates in increasing order."""
    await create_topics([to_topic(prefix, c) for c in CHANNELS_IN])
    app_id = f"bench-lat-{uuid.uuid4().hex[:6]}"
    env = worker_env(prefix, app_id, "w0", 6095)
    await asyncio.to_thread(
        subprocess.run, [BIN / "journey", "topics"], env=env, check=True, capture_output=True
    )
    worker = spawn([BIN / "journey", "worker"], env, WORK / f"{app_id}.log")
    results: list[dict[str, Any]] = []
    sent_at: dict[str, int] = {}
    consumer = AIOKafkaConsumer(
        *[f"{prefix}actions.{c}" for c in CHANNELS_OUT],
        bootstrap_servers=BROKER,
        auto_offset_reset="latest",
        metadata_max_age_ms=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", linger_ms=2)
    try:
        await asyncio.to_thread(wait_ready, "http://127.0.0.1:6095/ready", worker, 180.0)
        await consumer.start()
        await producer.start()
        await asyncio.sleep(1.0)  # let the consumer join at "latest" before sending
        position = 0
        for rate in rates:
            count = int(rate * seconds)
            chunk = traffic[position : position + count]
            position += count
            ids = {event_id for _, _, _, event_id in chunk}
            latencies: list[float] = []
            stop_reading = asyncio.Event()
            reader = asyncio.create_task(
                read_actions(consumer, ids, sent_at, latencies, stop_reading)
            )
            behind = await send_at_rate(producer, prefix, chunk, rate, sent_at)
            # Let the worker drain what it was sent (at most 30 s), then stop reading.
            drained = await wait_until(lambda: lag_total(6095) == 0, 30.0)
            stop_reading.set()
            await reader
            results.append(summary(rate, len(chunk), latencies, behind, drained))
            print(f"latency at {rate}/s: {results[-1]}", flush=True)
            if not drained:
                break  # saturated: higher rates would only queue more
    finally:
        await consumer.stop()
        await producer.stop()
        stop(worker)
    return results


async def send_at_rate(
    producer: AIOKafkaProducer,
    prefix: str,
    chunk: list[tuple[str, bytes, bytes, str]],
    rate: int,
    sent_at: dict[str, int],
) -> float:
    """Send ``chunk`` at ``rate`` events/s in 10 ms steps; returns how far behind it ended (s)."""
    started = time.perf_counter()
    step = max(1, rate // 100)
    for first in range(0, len(chunk), step):
        due = started + first / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        for channel, key, value, event_id in chunk[first : first + step]:
            sent_at[event_id] = int(time.time() * 1000)
            await producer.send(to_topic(prefix, channel), value, key=key)
    await producer.flush()
    return max(0.0, time.perf_counter() - started - len(chunk) / rate)


async def read_actions(
    consumer: AIOKafkaConsumer,
    ids: set[str],
    sent_at: dict[str, int],
    latencies: list[float],
    stop_reading: asyncio.Event,
) -> None:
    while not stop_reading.is_set():
        batches = await consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for record in records:
                action = orjson.loads(record.value)
                trigger = action.get("trigger", {})
                event_id = trigger.get("event_id")
                if trigger.get("channel") != "timer" and event_id in ids:
                    latencies.append((record.timestamp - sent_at[event_id]) / 1000)


def lag_total(port: int) -> float:
    samples = scrape(f"http://127.0.0.1:{port}/metrics") or []
    return total(samples, "journey_consumer_lag_messages")


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    await asyncio.sleep(2.0)  # at least one lag measurement after the last send
    while time.monotonic() < deadline:
        if await asyncio.to_thread(condition):
            return True
        await asyncio.sleep(0.5)
    return False


def summary(
    rate: int, sent: int, latencies: list[float], behind_s: float, drained: bool
) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4) if ordered else None

    return {
        "rate": rate,
        "events_sent": sent,
        "actions_measured": len(ordered),
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "p99_s": pct(0.99),
        "max_s": round(ordered[-1], 4) if ordered else None,
        "producer_behind_s": round(behind_s, 2),
        "drained_within_30s": drained,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    run = uuid.uuid4().hex[:6]
    traffic = simulated(args.events, args.customers, args.seed)
    average = sum(len(v) for _, _, v, _ in traffic) / len(traffic)
    print(
        f"{len(traffic):,} events, {args.customers:,} customers, {average:.0f} B each", flush=True
    )
    prefixes = [f"bp{run}a.", f"bp{run}b.", f"bp{run}c.", f"bp{run}d."]
    results: dict[str, Any] = {
        "events": args.events,
        "customers": args.customers,
        "partitions": PARTITIONS,
        "event_bytes": round(average),
    }
    only = set(args.only.split(",")) if args.only else set(VARIANTS)
    try:
        results["produce_events_per_s"] = round(await preload(prefixes[0], traffic))
        if "raw" in only:
            results["raw_aiokafka"] = await baseline_raw(prefixes[0], args.events, args.timeout)
            print(f"A raw aiokafka: {results['raw_aiokafka']}", flush=True)
        if "faust" in only:
            results["bare_faust"] = await baseline_faust(prefixes[0], args.events, args.timeout)
            print(f"B bare Faust: {results['bare_faust']}", flush=True)
        if "pipeline1" in only:
            results["pipeline_1_worker"] = await pipeline(
                prefixes[0], args.events, 1, args.timeout, profile=not args.no_profile
            )
            print(f"pipeline, 1 worker: {results['pipeline_1_worker']}", flush=True)
        if "nojourneys" in only:
            await preload(prefixes[3], traffic)
            results["pipeline_1_worker_without_journeys"] = await pipeline(
                prefixes[3], args.events, 1, args.timeout, policy=policy_without_journeys()
            )
            print(
                f"pipeline, 1 worker, policy without journeys: "
                f"{results['pipeline_1_worker_without_journeys']}",
                flush=True,
            )
        if "pipeline2" in only:
            await preload(prefixes[1], traffic)
            results["pipeline_2_workers"] = await pipeline(
                prefixes[1], args.events, 2, args.timeout
            )
            print(f"pipeline, 2 workers: {results['pipeline_2_workers']}", flush=True)
        if "latency" in only:
            rates = [int(r) for r in args.rates.split(",")]
            results["latency"] = await latency(prefixes[2], traffic, rates, args.latency_s)
    finally:
        await delete_topics([*prefixes, "bench-raw-", "bench-floor-", "bench-pipe-", "bench-lat-"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rates", default="500,1000,2500")
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="per throughput run")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(VARIANTS)} (default all)"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="no py-spy profile of the one-worker run"
    )
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.only:
        results["only"] = args.only
    raw = (results.get("raw_aiokafka") or {}).get("events_per_s")
    for name in ("raw_aiokafka", "bare_faust", "pipeline_1_worker", "pipeline_2_workers"):
        if name not in results:
            continue
        rate = results[name]["events_per_s"]
        share = f"{100 * rate / raw:.0f}% of raw" if rate and raw else "-"
        shown = f"{rate:,.0f}" if rate else "did not finish"
        print(f"{name:>20}: {shown:>14} events/s  ({share})")
        flush = results[name].get("output_flush")
        if flush and flush["flushes"]:
            print(
                f"{'':>20}  output flushes: {flush['flushes']:,}, mean {flush['mean_ms']} ms, "
                f"{100 * (flush['share_of_process_time'] or 0):.0f}% of the process agents' time"
            )
    print_profile((results.get("pipeline_1_worker") or {}).get("profile"))
    write_results("pipeline-partial" if args.only else "pipeline", results)


def print_profile(profile: dict[str, Any] | None, top: int = 15) -> None:
    """The one-worker run's top functions (py-spy), as the results file keeps them."""
    if not profile or "error" in profile:
        print(f"profile: {profile['error'] if profile else 'not taken (py-spy missing)'}")
        return
    print(f"one worker, py-spy ({profile['samples']:,} samples): inclusive / self")
    for (name, share), (own_name, own) in zip(
        profile["inclusive_percent"][:top], profile["self_percent"][:top], strict=False
    ):
        print(f"  {share:5.1f}% {name[:70]:<70} {own:5.1f}% {own_name[:70]}")


if __name__ == "__main__":
    main()
