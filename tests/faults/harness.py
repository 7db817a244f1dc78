"""Seeded traffic, a fault schedule, and the checks a faulty run must pass.

A run plays seeded input into a fresh deployment (its own topics and state) while faults
happen at chosen points. Then:

- every input event reached the customer-events log (nothing lost before the state);
- each customer's stored state equals a from-scratch replay, through the pure core, of
  that log in offset order (nothing lost or applied twice in the state);
- the actions on the action topics, after dropping duplicates by ``idempotency_key``,
  are exactly the actions the replay sends (nothing lost, nothing extra);
- every timer and journey wait that came due fired exactly once (its action once after
  dedupe);
- the worker group's offsets reach the end of every input and log partition (no
  partition's commits stall).

The replay is of the run's own log because the ingress topics of six channels are not
ordered with each other: two runs of the same input may apply one customer's events in
another order, and both be right.

The processing clock keeps timers apart from the events. Events occur within a minute of
T0; while they flow the clock stands at T0 + 10 min, so no timer (30 min and more) is due
and every timer is still pending when a fault hits. Then the worker restarts with the
clock at T0 + 60 min: the cart journeys' 30-minute waits come due and fire.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from stream.config import Clock
from stream.core.batch import Destination
from stream.core.decide import load_policy_file
from stream.core.fold import FoldContext, fold_partition
from stream.core.messages import EventMessage, Firing, from_record
from stream.core.propensity import EMPTY_MODEL
from stream.core.state import CustomerState, Limits
from stream.core.stored import CUSTOMERS, Tables, load_profile
from stream.simulate.journeys import generate_events
from tests.integration.conftest import BROKER, Deployment, WorkerProcess
from tests.integration.events import BASE

T0_MS = int(BASE.timestamp() * 1000)
EVENT_PHASE_START_MS = T0_MS + 10 * 60_000
FIRING_PHASE_START_MS = T0_MS + 60 * 60_000
# Stamps of processing time: the worker's batch clock and the replay's differ by a batch.
PROCESSING_TIME_KEYS = {"at_ms", "send_at_ms", "decided_at", "expires_at"}
# A journey run's clock readings: when it entered and arrived at its node, its deadlines.
RUN_TIME_KEYS = {"since_ms", "entered_at_ms", "ends_ms", "due_ms", "wait_until_ms"}


@dataclass(frozen=True)
class Message:
    """One input message: topic channel, key, serialised event, event id."""

    channel: str
    key: bytes
    value: bytes
    event_id: str


def traffic(seed: int, events: int, customers: int, duplicates: int) -> list[Message]:
    """Seeded simulated events, each identified by its Kafka key as a customer id only.

    One identifier per profile keeps identity links (and their cross-partition races) out
    of the check, so the simulator's ``handle_linked`` events (whose contract wants a
    customer id and a handle together) are left out. ``duplicates`` events are sent a
    second time, later in the stream.
    """
    out = []
    simulation = generate_events(customers, seed, T0_MS, mean_gap_ms=2000)
    linkless = (s for s in simulation if s.value["type"] != "handle_linked")
    for simulated in islice(linkless, events):
        value = dict(simulated.value)
        value["customer"] = {"customer_id": simulated.key.decode()}
        out.append(
            Message(simulated.channel, simulated.key, orjson.dumps(value), value["event_id"])
        )
    rng = random.Random(seed)
    for original in rng.sample(out[: len(out) // 2], duplicates):
        out.insert(rng.randrange(out.index(original) + 1, len(out) + 1), original)
    return out


def expected_counts(messages: list[Message]) -> dict[str, int]:
    """Distinct events per customer: what each state's ``event_count`` must end at."""
    seen: dict[str, set[str]] = {}
    for message in messages:
        seen.setdefault(message.key.decode(), set()).add(message.event_id)
    return {customer: len(ids) for customer, ids in seen.items()}


def without_processing_time(value: Any) -> Any:
    """``value`` with every processing-time stamp removed, recursively."""
    if isinstance(value, dict):
        return {
            k: without_run_times(v) if k == "journeys" else without_processing_time(v)
            for k, v in value.items()
            if k not in PROCESSING_TIME_KEYS
        }
    if isinstance(value, list):
        return [without_processing_time(v) for v in value]
    return value


def without_run_times(runs: Any) -> Any:
    """A state's journey runs without their processing-time stamps."""
    if not isinstance(runs, dict):
        return runs
    return {
        journey: {k: without_processing_time(v) for k, v in run.items() if k not in RUN_TIME_KEYS}
        for journey, run in runs.items()
    }


@dataclass(frozen=True)
class LogRecord:
    """One record of a topic as read back."""

    partition: int
    timestamp: int  # ms, wall clock
    key: bytes
    value: dict[str, Any]


@dataclass
class Outcome:
    """What a run left: states, the customer-events log, actions, what happened."""

    states: dict[str, Any]
    log_records: list[LogRecord]  # the customer-events topic, offset order per partition
    actions: list[dict[str, Any]]
    clocks: list[tuple[int, Clock]]  # (from wall ms, the clock in force from then)
    kills: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def distinct_actions(self) -> dict[str, dict[str, Any]]:
        """The actions after dropping duplicates by idempotency key."""
        by_key: dict[str, dict[str, Any]] = {}
        for action in self.actions:
            by_key.setdefault(action["idempotency_key"], action)
        return by_key

    @property
    def duplicate_actions(self) -> int:
        """Action messages beyond the first per idempotency key (what dedupe removes)."""
        return len(self.actions) - len(self.distinct_actions)

    def clock_at(self, wall_ms: int) -> int:
        """The processing clock's time at a wall-clock time (a record's timestamp)."""
        current = self.clocks[0][1]
        for since, clock in self.clocks:
            if wall_ms >= since:
                current = clock
        return int(current.to_clock_ms(wall_ms))


Fault = Callable[["Run"], Awaitable[None]]


class Run:
    """One deployment playing the traffic, with faults at chosen fractions of the input."""

    def __init__(self, deployment: Deployment, messages: list[Message]) -> None:
        self.deployment = deployment
        self.messages = messages
        self.produced = 0
        self.kills = 0
        self.anchor_ms = int(time.time() * 1000)
        self.workers: list[WorkerProcess] = []
        self.notes: list[str] = []

    def worker(self, name: str, start_ms: int, anchor_ms: int) -> WorkerProcess:
        process = self.deployment.worker(name)
        process.env["JOURNEY_CLOCK_START_MS"] = str(start_ms)
        process.env["JOURNEY_CLOCK_ANCHOR_MS"] = str(anchor_ms)
        self.workers.append(process)
        return process

    async def start(self, process: WorkerProcess) -> None:
        await asyncio.to_thread(process.start)

    async def kill(self, process: WorkerProcess) -> None:
        """kill -9, then start again on the same local store."""
        self.notes.append(f"kill -9 {process.log_path.stem} after {self.produced} messages")
        await asyncio.to_thread(process.stop, 9)
        self.kills += 1
        await self.start(process)

    async def produce(self, rate_per_s: float) -> None:
        """Send every message at about ``rate_per_s``, riding out broker restarts."""
        producer = AIOKafkaProducer(
            bootstrap_servers=BROKER, acks="all", enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        topics = self.deployment.settings.topics
        started = time.monotonic()
        try:
            for index, message in enumerate(self.messages):
                while True:
                    try:
                        await producer.send_and_wait(
                            topics.events(message.channel), message.value, key=message.key
                        )
                        break
                    except KafkaError as exc:  # the broker is restarting: try again
                        self.notes.append(f"produce retry at {index}: {type(exc).__name__}")
                        await asyncio.sleep(0.5)
                self.produced = index + 1
                ahead = started + self.produced / rate_per_s - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)  # pacing the input, not waiting for a result
        finally:
            await producer.stop()

    async def at_fraction(self, fraction: float, fault: Fault) -> None:
        """Run ``fault`` once the producer has sent ``fraction`` of the input."""
        await self.deployment.wait_for(
            lambda: self.produced >= fraction * len(self.messages),
            timeout_s=120,
            what=f"{fraction:.0%} of the input produced",
        )
        await fault(self)

    def states(self, customers: list[str]) -> dict[str, Any]:
        """The stored states of these customers, from whichever running worker holds each."""
        found = {}
        for customer in customers:
            for process in self.workers:
                if process.process is None or process.process.poll() is not None:
                    continue
                try:
                    state = process.customer(customer)
                except OSError:
                    state = None
                if state is not None:
                    found[customer] = state
                    break
        return found

    async def settled(self, expected: dict[str, int]) -> dict[str, Any]:
        """States once every customer has applied all of its distinct events."""
        deadline = time.monotonic() + 180
        off: dict[str, Any] = {}
        while time.monotonic() < deadline:
            states = await asyncio.to_thread(self.states, sorted(expected)) or {}
            off = {
                c: (states[c]["event_count"] if c in states else None, n)
                for c, n in expected.items()
                if c not in states or states[c]["event_count"] != n
            }
            if not off:
                return states
            await asyncio.sleep(0.2)
        lag = await lag_report(self.deployment)
        pytest.fail(
            f"{len(off)} customer(s) never applied all their events ((got, expected): "
            f"{dict(list(off.items())[:8])}); notes: {self.notes}\n"
            f"uncommitted records (topic[partition]: committed/end): {lag}"
        )

    async def committed(self) -> None:
        """Wait until the group has committed every input and log record: no stall."""
        deadline = time.monotonic() + 60
        lag = await lag_report(self.deployment)
        while lag and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            lag = await lag_report(self.deployment)
        if lag:
            pytest.fail(f"commits stalled (topic[partition]: committed/end): {lag}")

    async def fired(self, customers: list[str]) -> dict[str, Any]:
        """States once no customer has a timer due at the firing phase's clock."""

        def check() -> dict[str, Any] | None:
            states = self.states(customers)
            if len(states) < len(customers):
                return None
            # policy timers and journey runs' waits alike
            deadlines = [
                t["due_ms"]
                for s in states.values()
                for t in (*s["timers"].values(), *s.get("journeys", {}).values())
            ]
            due = [due_ms for due_ms in deadlines if due_ms <= FIRING_PHASE_START_MS]
            return states if not due else None

        result: dict[str, Any] = await self.deployment.wait_for(
            check, timeout_s=120, what="every due timer and journey wait fired"
        )
        return result


async def read_log(topic: str, partitions_count: int) -> list[LogRecord]:
    """Every record of a topic, in offset order per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BROKER, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[LogRecord] = []
        deadline = time.monotonic() + 60
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            batches = await consumer.getmany(*partitions, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(
                    LogRecord(tp.partition, r.timestamp, r.key or b"", orjson.loads(r.value))
                    for r in batch
                )
        return records
    finally:
        await consumer.stop()


async def lag_report(deployment: Deployment) -> dict[str, str]:
    """The worker group's committed offset against the end, for every lagging partition."""
    settings = deployment.settings
    topics = [
        *settings.topics.all_events,
        settings.topics.identity_events,
        settings.topics.customer_events,
    ]
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BROKER, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        report = {}
        for tp in partitions:
            committed = await consumer.committed(tp)
            if (committed or 0) != ends[tp]:  # an empty partition has nothing to commit
                report[f"{tp.topic}[{tp.partition}]"] = f"{committed}/{ends[tp]}"
        return report
    finally:
        await consumer.stop()


async def collect_actions(deployment: Deployment) -> list[dict[str, Any]]:
    """Every action message on the deployment's action topics."""
    actions = []
    for topic in deployment.settings.topics.all_actions:
        records = await read_log(topic, deployment.settings.partitions)
        actions.extend(record.value for record in records)
    return actions


async def play(
    deployment: Deployment,
    messages: list[Message],
    faults: list[tuple[float, Fault]],
    *,
    firing_fault: Fault | None = None,
    rate_per_s: float = 60.0,
) -> Outcome:
    """Play ``messages`` with ``faults`` at their fractions of the input; fire the timers."""
    run = Run(deployment, messages)
    settings = deployment.settings
    expected = expected_counts(messages)
    main = run.worker("w1", EVENT_PHASE_START_MS, run.anchor_ms)
    clocks = [(0, Clock(1.0, run.anchor_ms, EVENT_PHASE_START_MS))]
    await run.start(main)
    try:

        async def schedule() -> None:  # one after the other: a fault never overlaps another
            for fraction, fault in faults:
                await run.at_fraction(fraction, fault)

        await asyncio.gather(run.produce(rate_per_s), schedule())
        await run.settled(expected)
        await run.committed()
        for process in run.workers:
            await asyncio.to_thread(process.stop)
        # Firing phase: a clean restart with the clock moved on; the cart waits come due.
        firing_anchor = int(time.time() * 1000)
        clocks.append((firing_anchor, Clock(1.0, firing_anchor, FIRING_PHASE_START_MS)))
        firing = run.worker("w1", FIRING_PHASE_START_MS, firing_anchor)
        run.workers = [firing]
        await run.start(firing)
        if firing_fault is not None:
            await firing_fault(run)
        states = await run.fired(sorted(expected))
        log = await read_log(deployment.settings.topics.customer_events, settings.partitions)
        # Every action is sent before the state that records it is written.
        actions = await collect_actions(deployment)
        return Outcome(states, log, actions, clocks, run.kills, run.notes)
    finally:
        for process in run.workers:
            await asyncio.to_thread(process.stop, 9)


def kill_worker(index: int = 0) -> Fault:
    """A fault: kill -9 the run's ``index``-th worker and start it again."""

    async def fault(run: Run) -> None:
        await run.kill(run.workers[index])

    return fault


@dataclass
class Replay:
    """The pure core's answer for a log: states and the actions it sends."""

    states: dict[str, Any]
    sent: dict[str, dict[str, Any]]  # by idempotency key
    timer_firings: int  # deadlines that fired: policy timers and journey waits
    fired_actions: int  # actions a firing decided


def replay(outcome: Outcome, deployment: Deployment) -> Replay:
    """Fold the customer-events log, in offset order per partition, from nothing.

    Each record goes through ``fold_partition``, the worker's own batch fold, at the
    processing time it was handled at: an event at the clock of its log timestamp, a
    firing at the time the scheduler sent it. Every record kind is folded: events,
    firings, outcomes, merges, conflicts and erasures.
    """
    settings = deployment.settings
    policy = load_policy_file(settings.policy_file, deployment.catalog)
    limits = Limits(settings.dedupe_window, settings.recent_events)
    store = Tables()
    sent: dict[str, dict[str, Any]] = {}
    firings = fired_actions = 0
    for item in outcome.log_records:
        message = from_record(item.value)
        if isinstance(message, EventMessage):
            key = item.key.decode()
            assert message.event.customer_key == key, f"an event on another key: {item.value}"
        if isinstance(message, Firing):
            now = message.sent_at_ms
        else:
            now = outcome.clock_at(item.timestamp)
        context = FoldContext(
            now, item.timestamp, policy, EMPTY_MODEL, limits, settings.decisions_kept, 60_000
        )
        records = [(item.key, orjson.dumps(item.value))]
        result = fold_partition(item.partition, records, store, context)
        assert not result.dead_letters, f"the fold failed on {item.value}: {result.dead_letters}"
        store.write(result.writes)
        if isinstance(message, Firing):
            firings += deadlines_fired(result.tally.counts)
        for output in result.outputs:
            if output.destination is Destination.ACTIONS:
                action = orjson.loads(output.value)
                sent.setdefault(action["idempotency_key"], action)
                fired_actions += isinstance(message, Firing)
    states = {
        key.decode(): without_processing_time(profile.to_dict())
        for key, value in store.tables[CUSTOMERS].items()
        if isinstance(profile := load_profile(value), CustomerState)
    }
    return Replay(states, sent, firings, fired_actions)


def deadlines_fired(counts: dict[tuple[str, ...], int]) -> int:
    """The timers fired and the journey waits ended (by their time) in a fold's tally."""
    timers = sum(n for (name, *_), n in counts.items() if name == "timers_fired")
    waits = sum(
        n
        for (name, *labels), n in counts.items()
        if name == "journey_moves" and labels[3:5] in (["edge", "next"], ["edge", "timeout"])
    )
    return timers + waits


def check(outcome: Outcome, messages: list[Message], deployment: Deployment) -> Replay:
    """Fail with every difference between a run and the replay of its own log."""
    problems = []
    logged = {r.value["event"]["event_id"] for r in outcome.log_records if "event" in r.value}
    lost = {m.event_id for m in messages} - logged
    if lost:
        problems.append(f"{len(lost)} input event(s) never reached the log: {sorted(lost)[:3]}")
    expected = replay(outcome, deployment)
    stored = {k: without_processing_time(s) for k, s in outcome.states.items()}
    for customer in sorted(set(expected.states) | set(stored)):
        want, got = expected.states.get(customer) or {}, stored.get(customer) or {}
        if want != got:
            fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            problems.append(f"state of {customer} differs from the replay in {fields}")
    actual = outcome.distinct_actions
    missing = set(expected.sent) - set(actual)
    extra = set(actual) - set(expected.sent)
    if missing:
        lost = [expected.sent[key] for key in sorted(missing)]
        triggers = [
            f"{a['customer_id']} {a['trigger']['channel']}/{a['trigger']['type']} "
            f"{a['trigger'].get('event_id', '')}"
            for a in lost[:5]
        ]
        problems.append(f"{len(missing)} action(s) lost, e.g. {triggers}")
    if extra:
        problems.append(f"{len(extra)} action(s) the replay does not send: {sorted(extra)[:3]}")
    if problems:
        pytest.fail("\n".join([*problems, "run notes:", *outcome.notes]))
    return expected
