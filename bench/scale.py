"""Benchmark of scale (not a test): N customer states per worker, its memory and disk, and
how fast a worker rebuilds them from the changelog.

Targets (DESIGN.md, issue 21): 1,000,000 customer states per worker with RSS < 1 GiB;
changelog recovery >= 60,000 records/s.

On the local broker (``make kafka-up``), with a fresh app id and topic prefix:
  1. creates the contract topics, starts a worker once so Faust creates its changelog
     topics (4 partitions) and stops it (its start -> ready time is the empty baseline);
  2. writes N customer states straight into ``<app id>-customers-changelog``: one typical
     state (a handful of events run through ``stream.core.pipeline.step`` with the shipped
     policy) whose customer id and e-mail hash are swapped per customer; each record goes
     to the partition aiokafka's default partitioner (murmur2 of the key) picks, which is
     where the worker's input topics put that customer;
  3. per size (ascending; the changelog grows to the next size): starts a worker on an
     empty data dir and measures the recovery (process start -> /ready, and from the
     first "Bulk restore: reading" or Faust's "Restoring state from changelog topics" log
     line -> /ready), its RSS (VmRSS at ready and after a few idle seconds, peak VmHWM, a
     timeline), its data dir on disk, and RocksDB's key estimate from /metrics next to N;
     then stops it; then the same with the bulk restore off (Faust's recovery only);
  4. reads the same changelog in this process with a plain aiokafka consumer into RocksDB
     (Faust's options, write batches): the rate without Faust's per-message recovery
     path; then reads every state once and reports what RocksDB's block cache holds
     (what a worker whose traffic has touched every customer would hold).

Deletes its topics and data dirs at the end (``--keep`` keeps them, and the worker logs).
Writes bench/results/<date>-<machine>-scale.json. About 4 minutes on a 2-core VM with the
defaults.

    .venv/bin/python bench/scale.py [--sizes 100000,1000000] [--events 3] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from benchlib import write_results
from faust.stores.rocksdb import RocksDBOptions, Store
from rocksdict import AccessType, Options, Rdict, ReadOptions, WriteBatch

from stream.config import Settings, load_settings
from stream.core.decide import load_policy_file
from stream.core.events import DecodeOptions, Event, decode_event
from stream.core.identity import hash_identifier, normalise_email
from stream.core.pipeline import step
from stream.core.schemas import load_catalog
from stream.core.state import CustomerState, Limits
from stream.shell.children import stop, wait_ready
from stream.shell.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("JOURNEY_BROKER", "127.0.0.1:9092")
KAFKA_VERSION = os.environ.get("KAFKA_VERSION", "4.1.1")  # deploy/local/kafka.sh's default
PARTITIONS = 4
TEMPLATE_ID = "C0000000"  # same length as every customer id below: all values equal in size
MIB = 2**20
# Faust's Recovery service logs these (faust/tables/recovery.py); the bulk restore
# (stream/shell/faust/patches/bulk_restore.py) logs the first one before Faust's.
BULK_START = "Bulk restore: reading"
RECOVERY_START = "Restoring state from changelog topics"
RECOVERY_READ = "Done reading from changelog topics"
MINUTE_MS = 60_000
# RocksDB's memory, summed over the partitions' databases (MiB).
ROCKSDB_MEMORY = ("size-all-mem-tables", "block-cache-usage", "estimate-table-readers-mem")


def customer_id(n: int) -> str:
    """The customer id (and so the customer key) of the n-th synthetic customer."""
    return f"C{n:07d}"


def email_of(cid: str) -> str:
    return f"{cid.lower()}@example.com"


def journey(cid: str, start_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """A typical short journey as (channel, ingress event): browse, cart, an e-mail opened
    and clicked, an order, the app installed."""
    customer = {"customer_id": cid}
    with_email = {"customer_id": cid, "email": email_of(cid)}
    steps: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        ("web", "page_view", customer, {"url": "https://shop.example.com/", "title": "Home"}),
        ("web", "product_view", customer, {"product_id": "P1042", "category": "shoes"}),
        ("web", "add_to_cart", customer, {"product_id": "P1042", "price": 89.9, "quantity": 1}),
        ("email", "email_delivered", with_email, {"campaign": "cart-reminder"}),
        ("email", "email_opened", with_email, {"campaign": "cart-reminder"}),
        ("email", "email_clicked", with_email, {"url": "https://shop.example.com/cart"}),
        ("web", "checkout_started", customer, {"cart_value": 89.9}),
        (
            "web",
            "order_completed",
            customer,
            {"order_id": f"O-{cid}-1", "value": 89.9, "currency": "EUR", "category": "shoes"},
        ),
        ("app", "app_installed", customer, {"platform": "ios"}),
        ("app", "app_opened", customer, {}),
    ]
    events = []
    for n, (channel, type_, who, properties) in enumerate(steps):
        occurred_ms = start_ms + n * 7 * MINUTE_MS
        occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(occurred_ms // 1000))
        events.append(
            (
                channel,
                {
                    "event_id": f"ev-{cid}-{n:02d}",
                    "type": type_,
                    "channel": channel,
                    "occurred_at": f"{occurred_at}.{occurred_ms % 1000:03d}Z",
                    "customer": who,
                    "properties": properties,
                    "context": {
                        "timezone": "Europe/Paris",
                        "locale": "fr-FR",
                        "consent": {"email": True, "sms": False, "push": True},
                    },
                },
            )
        )
    return events


def template_state(settings: Settings, now_ms: int, events: int) -> CustomerState:
    """The state of TEMPLATE_ID after the first ``events`` of its journey, stepped as the
    worker would."""
    catalog = load_catalog()
    policy = load_policy_file(ROOT / "policies" / "default.yaml", catalog)
    options = DecodeOptions(
        catalog, settings.max_event_bytes, settings.hash_salt, settings.default_region
    )
    limits = Limits(settings.dedupe_window, settings.recent_events)
    state: CustomerState | None = None
    for channel, message in journey(TEMPLATE_ID, now_ms - 2 * 60 * MINUTE_MS)[:events]:
        event = decode_event(orjson.dumps(message), channel, options)
        if not isinstance(event, Event):
            raise SystemExit(f"template event rejected: {event}")
        state = step(state, event, event.occurred_at_ms, limits, policy).state
    assert state is not None
    return state


@dataclass(frozen=True, slots=True)
class StateMaker:
    """Changelog values of synthetic customers: the template with its ids swapped."""

    template: bytes
    template_hash: bytes | None  # the e-mail hash, if the journey had an e-mail event
    salt: str

    def value(self, cid: str) -> bytes:
        """The stored state of customer ``cid`` (same size as the template)."""
        value = self.template.replace(TEMPLATE_ID.encode(), cid.encode())
        if self.template_hash is None:
            return value
        email_hash = hash_identifier(normalise_email(email_of(cid)), self.salt).encode()
        return value.replace(self.template_hash, email_hash)


def state_maker(state: CustomerState, salt: str) -> StateMaker:
    """The maker of values like ``state`` (a TEMPLATE_ID state)."""
    template = state.to_json()
    email_hash = state.identifiers.get("email_sha256")
    return StateMaker(template, email_hash.encode() if email_hash else None, salt)


async def produce_states(topic: str, maker: StateMaker, first: int, stop_at: int) -> dict[str, Any]:
    """Write the states of customers first..stop_at-1 to the changelog; the rate it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BROKER,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * MIB,
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        if len(partitions) != PARTITIONS:
            raise SystemExit(f"{topic} has {len(partitions)} partitions, not {PARTITIONS}")
        partitioner = DefaultPartitioner()
        per_partition = dict.fromkeys(partitions, 0)
        batches = {p: producer.create_batch() for p in partitions}
        in_flight: list[asyncio.Future[Any]] = []
        value_bytes = 0
        started = time.perf_counter()
        for n in range(first, stop_at):
            cid = customer_id(n)
            key, value = cid.encode(), maker.value(cid)
            value_bytes += len(value)
            # What AIOKafkaProducer.send(topic, value, key=key) picks: murmur2 of the key.
            partition = partitioner(key, partitions, partitions)
            per_partition[partition] += 1
            if batches[partition].append(key=key, value=value, timestamp=None) is None:
                in_flight.append(
                    await producer.send_batch(batches[partition], topic, partition=partition)
                )
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=value, timestamp=None)
                if len(in_flight) >= 32:
                    await asyncio.gather(*in_flight[:16])
                    del in_flight[:16]
        for partition, batch in batches.items():
            if batch.record_count():
                in_flight.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    count = stop_at - first
    return {
        "records": count,
        "seconds": round(elapsed, 2),
        "records_per_s": round(count / elapsed),
        "mib_per_s": round(value_bytes / MIB / elapsed, 1),
        "per_partition": per_partition,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def proc_status_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = round(int(rest.split()[0]) / 1024, 1)
    return values


def disk_mib(path: Path) -> dict[str, float]:
    """Apparent size and allocated blocks (what du counts) of a directory tree, in MiB."""
    files = [f.stat() for f in path.rglob("*") if f.is_file()]
    return {
        "apparent_mib": round(sum(s.st_size for s in files) / MIB, 1),
        "allocated_mib": round(sum(s.st_blocks * 512 for s in files) / MIB, 1),
    }


def stored_keys(data_dir: Path, table: str) -> int:
    """Exact count of the keys a stopped worker's RocksDB holds for ``table`` (all
    partitions; Faust's offset key left out), read without filling a block cache."""
    read_options = ReadOptions()
    read_options.fill_cache(False)
    count = 0
    for path in data_dir.rglob(f"{table}-*.db"):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            count += sum(1 for key in db.keys(read_opt=read_options) if key != Store.offset_key)
        finally:
            db.close()
    return count


def table_keys(metrics: str, table: str) -> int | None:
    """journey_table_keys{table=...} from a /metrics text."""
    match = re.search(rf'^journey_table_keys\{{table="{table}"\}} (\S+)$', metrics, re.M)
    return int(float(match.group(1))) if match else None


@dataclass
class WorkerRun:
    """A worker process whose log lines are copied to a file and time-stamped on arrival."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    reader: threading.Thread | None = None
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (s, MiB)
    sampler: threading.Thread | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker"],
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()
        self.sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self.sampler.start()

    def _sample_rss(self, every_s: float = 1.0) -> None:
        assert self.process is not None
        while self.process.poll() is None:
            try:
                rss = proc_status_mib(self.process.pid)["VmRSS"]
            except (OSError, KeyError):  # exiting
                return
            self.rss_samples.append((round(time.monotonic() - self.started, 1), rss))
            time.sleep(every_s)

    def _read(self, stream: IO[bytes]) -> None:
        with open(self.log_path, "ab") as log:
            for line in stream:
                now = time.monotonic()
                log.write(line)
                for marker in (BULK_START, RECOVERY_START, RECOVERY_READ):
                    if marker.encode() in line:
                        self.marks.setdefault(marker, now)

    def since_start(self, marker: str) -> float | None:
        at = self.marks.get(marker)
        return round(at - self.started, 2) if at is not None else None

    def stop(self) -> None:
        stop(self.process)
        for thread in (self.reader, self.sampler):
            if thread is not None:
                thread.join(timeout=10)


def worker_env(settings_env: dict[str, str], data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        **settings_env,
        "JOURNEY_DATA_DIR": str(data_dir),
        "JOURNEY_WEB_PORT": str(port),
        "JOURNEY_LOG_LEVEL": "info",
    }


def bootstrap(settings_env: dict[str, str], workdir: Path, timeout_s: float) -> float:
    """Start and stop an empty worker so Faust creates its changelog topics; its start ->
    ready seconds."""
    port = free_port()
    run = WorkerRun(
        worker_env(settings_env, workdir / "bootstrap", port), workdir / "bootstrap.log"
    )
    run.start()
    try:
        assert run.process is not None
        wait_ready(f"http://127.0.0.1:{port}/ready", run.process, timeout_s, str(run.log_path))
        return round(time.monotonic() - run.started, 2)
    finally:
        run.stop()


def measure_recovery(
    settings_env: dict[str, str],
    workdir: Path,
    size: int,
    idle_s: float,
    timeout_s: float,
    variant: str = "",
) -> dict[str, Any]:
    """A worker on an empty data dir recovering ``size`` states: time, rate, RSS, disk.
    ``variant``: a name for its data dir and log (its settings are in ``settings_env``)."""
    port = free_port()
    data_dir = workdir / f"state{variant}-{size}"
    log_path = workdir / f"worker{variant}-{size}.log"
    run = WorkerRun(worker_env(settings_env, data_dir, port), log_path)
    run.start()
    try:
        assert run.process is not None
        wait_ready(f"http://127.0.0.1:{port}/ready", run.process, timeout_s, str(run.log_path))
        ready_s = time.monotonic() - run.started
        at_ready = proc_status_mib(run.process.pid)
        time.sleep(idle_s)
        idle = proc_status_mib(run.process.pid)
        metrics = http_text(f"http://127.0.0.1:{port}/metrics")
        disk_running = disk_mib(data_dir)
    finally:
        run.stop()
    starts = [run.since_start(m) for m in (BULK_START, RECOVERY_START)]
    restoring_s = min((s for s in starts if s is not None), default=None)
    read_s = run.since_start(RECOVERY_READ)
    restore_window = ready_s - restoring_s if restoring_s is not None else ready_s
    return {
        "records": size,
        "start_to_ready_s": round(ready_s, 2),
        "start_to_restoring_s": restoring_s,
        "restoring_to_read_s": round(read_s - restoring_s, 2) if read_s and restoring_s else None,
        "restoring_to_ready_s": round(restore_window, 2),
        # N / (first "Bulk restore" or "Restoring" line -> /ready 200); process start ->
        # ready if neither.
        "recovery_records_per_s": round(size / restore_window),
        "records_per_s_start_to_ready": round(size / ready_s),
        "rss_at_ready_mib": at_ready["VmRSS"],
        "rss_idle_mib": idle["VmRSS"],
        "peak_rss_mib": idle["VmHWM"],
        "idle_s": idle_s,
        "disk_running": disk_running,
        "disk_after_stop": disk_mib(data_dir),
        "table_keys_estimate": table_keys(metrics, "customers"),
        "table_keys_stored": stored_keys(data_dir, "customers"),
        # every 5th one-second sample: (seconds since start, VmRSS MiB)
        "rss_timeline": run.rss_samples[::5],
    }


def rocksdb_memory(dbs: dict[int, Rdict]) -> dict[str, float]:
    """RocksDB's own memory use, summed over the partitions' databases, in MiB."""
    return {
        name: round(
            sum(db.property_int_value(f"rocksdb.{name}") or 0 for db in dbs.values()) / MIB, 1
        )
        for name in ROCKSDB_MEMORY
    }


async def bulk_restore(topic: str, size: int, db_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Read the whole changelog with a plain aiokafka consumer (batches of records, no
    per-record task) and write it to one RocksDB per partition (Faust's options) in write
    batches: what a restore without Faust's per-message path reaches on this machine.

    Then reads every state once, as a day of traffic touching every customer would, to
    show what RocksDB's block cache (Faust's default: 2 GiB per database) holds then."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BROKER,
        enable_auto_commit=False,
        fetch_max_bytes=64 * MIB,
        max_partition_fetch_bytes=16 * MIB,
    )
    await consumer.start()
    dbs: dict[int, Rdict] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        rss_before = proc_status_mib(os.getpid())["VmRSS"]
        dbs = {tp.partition: RocksDBOptions().open(db_dir / str(tp.partition)) for tp in partitions}
        remaining = {tp for tp in partitions if ends[tp] > 0}
        records = 0
        started = time.perf_counter()
        while remaining and time.perf_counter() - started < timeout_s:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=20_000)
            for tp, messages in fetched.items():
                batch = WriteBatch(raw_mode=True)
                for message in messages:
                    batch.put(message.key, message.value)
                dbs[tp.partition].write(batch)
                records += len(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        elapsed = time.perf_counter() - started
        after_write = rocksdb_memory(dbs)
        rss_after_write = proc_status_mib(os.getpid())["VmRSS"]
        read_started = time.perf_counter()
        read = sum(1 for db in dbs.values() for _ in db.values())
        read_s = time.perf_counter() - read_started
        after_read = rocksdb_memory(dbs)
        rss_after_read = proc_status_mib(os.getpid())["VmRSS"]
    finally:
        await consumer.stop()
        for db in dbs.values():
            db.close()
    return {
        "records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed) if elapsed else None,
        "complete": records == size,
        "rocksdb_memory_mib": after_write,
        "rss_growth_mib": round(rss_after_write - rss_before, 1),
        "read_all": {
            "states": read,
            "seconds": round(read_s, 2),
            "rocksdb_memory_mib": after_read,
            "rss_growth_mib": round(rss_after_read - rss_before, 1),
        },
    }


async def create_topics(settings: Settings) -> None:
    await ensure_topics(settings)


async def delete_topics(prefix: str, app_id: str) -> list[str]:
    """Delete every topic of this run (its contract prefix and Faust's ``<app id>-*``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER, request_timeout_ms=30000)
    await admin.start()
    try:
        ours = [
            name
            for name in await admin.list_topics()
            if name.startswith(prefix) or name.startswith(f"{app_id}-")
        ]
        if ours:
            await admin.delete_topics(ours, timeout_ms=30000)
        return ours
    finally:
        await admin.close()


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'N':>10} {'produce/s':>10} {'start->ready':>13} {'restore->ready':>15} "
        f"{'recovery/s':>11} {'Faust only':>10} {'plain/s':>7} {'RSS idle':>9} "
        f"{'peak RSS':>9} {'disk':>8} "
        f"{'keys est.':>10} {'stored':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        recovery = row["recovery"]
        print(
            f"{row['states']:>10,} {row['produce']['records_per_s']:>10,} "
            f"{recovery['start_to_ready_s']:>12.1f}s {recovery['restoring_to_ready_s']:>14.1f}s "
            f"{recovery['recovery_records_per_s']:>11,} "
            f"{row['recovery_faust_only']['recovery_records_per_s']:>10,} "
            f"{row['bulk_restore']['records_per_s']:>7,} "
            f"{recovery['rss_idle_mib']:>6.0f}MiB "
            f"{recovery['peak_rss_mib']:>6.0f}MiB "
            f"{recovery['disk_running']['allocated_mib']:>5.0f}MiB "
            f"{recovery['table_keys_estimate'] or 0:>10,} {recovery['table_keys_stored']:>10,}"
        )


def measure_size(
    settings_env: dict[str, str],
    changelog: str,
    workdir: Path,
    size: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The recoveries of ``size`` states: the worker's (bulk restore on), Faust's alone,
    and a plain consumer's."""
    timeout_s = args.timeout or 60.0 + size / 5_000
    recovery = measure_recovery(settings_env, workdir, size, args.idle, timeout_s)
    print(f"N={size:,}: worker {orjson.dumps(recovery).decode()}", flush=True)
    faust_only = {**settings_env, "JOURNEY_BULK_RESTORE_MIN_RECORDS": "0"}
    faust = measure_recovery(faust_only, workdir, size, args.idle, timeout_s, "-faust")
    print(f"N={size:,}: worker, Faust's recovery only {orjson.dumps(faust).decode()}")
    bulk = asyncio.run(bulk_restore(changelog, size, workdir / f"bulk-{size}", timeout_s))
    print(f"N={size:,}: bulk restore {orjson.dumps(bulk).decode()}", flush=True)
    shutil.rmtree(workdir / f"bulk-{size}", ignore_errors=True)
    return {"recovery": recovery, "recovery_faust_only": faust, "bulk_restore": bulk}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated state counts")
    parser.add_argument(
        "--events",
        type=int,
        default=3,
        choices=range(1, 11),
        metavar="1-10",
        help="journey events in the template state: 3 gives about 2.2 KB, 10 about 4.2 KB",
    )
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="longest wait for /ready in s (default: 60 + 1 s per 5,000 states)",
    )
    parser.add_argument("--keep", action="store_true", help="keep topics, data dirs and logs")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})

    run_id = uuid.uuid4().hex[:8]
    app_id = f"scale-bench-{run_id}"
    prefix = f"sb{run_id}."
    settings_env = {
        "JOURNEY_BROKER": BROKER,
        "JOURNEY_APP_ID": app_id,
        "JOURNEY_TOPIC_PREFIX": prefix,
        "JOURNEY_PARTITIONS": str(PARTITIONS),
    }
    settings = load_settings({**os.environ, **settings_env})
    changelog = f"{app_id}-customers-changelog"
    workdir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    started = time.monotonic()
    print(f"app id {app_id}, topic prefix {prefix}, work dir {workdir}", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        asyncio.run(create_topics(settings))
        empty_ready_s = bootstrap(settings_env, workdir, args.timeout or 60.0)
        print(f"empty worker: start -> ready {empty_ready_s:.1f} s (creates {changelog})")
        maker = state_maker(
            template_state(settings, int(time.time() * 1000), args.events), settings.hash_salt
        )
        value_bytes = len(maker.template)
        print(
            f"state value: {value_bytes:,} bytes after {args.events} events (all the same size)",
            flush=True,
        )
        written = 0
        for size in sizes:
            produce = asyncio.run(produce_states(changelog, maker, written, size))
            written = size
            print(
                f"N={size:,}: wrote {produce['records']:,} states in {produce['seconds']} s "
                f"({produce['records_per_s']:,}/s, {produce['mib_per_s']} MiB/s)",
                flush=True,
            )
            rows.append({"states": size, "produce": produce})
            rows[-1].update(measure_size(settings_env, changelog, workdir, size, args))
    finally:
        if args.keep:
            print(f"kept: topics {prefix}* and {app_id}-*, {workdir}")
        else:
            deleted = asyncio.run(delete_topics(prefix, app_id))
            print(f"deleted {len(deleted)} topics")
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    setup = {
        "partitions": PARTITIONS,
        "tables_filled": ["customers"],
        "empty_worker_start_to_ready_s": empty_ready_s,
        "template_events": args.events,
        "value_bytes": value_bytes,
        "wall_s": round(time.monotonic() - started, 1),
    }
    write_results("scale", results(setup, rows))


def results(setup: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The results file: targets, setup, one row per size, versions."""
    return {
        "targets": {"states_per_worker": 1_000_000, "rss_mib": 1024, "recovery_per_s": 60_000},
        "setup": setup,
        "runs": rows,
        "versions": {
            "faust-streaming": version("faust-streaming"),
            "rocksdict": version("rocksdict"),
            "aiokafka": version("aiokafka"),
            "python": platform.python_version(),
            "kafka": KAFKA_VERSION,
        },
    }


if __name__ == "__main__":
    main()
