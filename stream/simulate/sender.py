"""Loopback channel sender: actions in, outcomes (and the orders they lead to) out.

The engine's next-best-actions arrive on ``<prefix>actions.<channel>``. For each one the
sender plays the customer according to the ground-truth ``Preferences``: the message is
``delivered``; with the customer's click probability it is ``opened`` (email, push) and
``clicked`` a little later; otherwise a push is sometimes ``dismissed``. After a click the
customer buys with the conversion probability: a ``converted`` outcome, plus an
``order_completed`` ingress event on the web topic (the app topic for a push) so the engine
sees the purchase like any other. A community-team task (``cjo.actions.social``) is
``delivered`` when the reply is posted (``detail.posted``: public or private, as the task
asked), and ``clicked`` when the author answers it. Outcomes go to ``<prefix>outcomes``,
keyed by the action's customer id; their ``detail`` names the simulated segment, so a demo
can compare what the engine learnt with the truth.

Pure core: ``outcomes_for`` (one action, one ``random.Random``) and ``ActionHandler`` (raw
bytes in, messages to produce out, duplicates by ``idempotency_key`` dropped, malformed
messages counted). Shell: ``run_sender`` (aiokafka). Each action gets its own
``random.Random`` seeded from the run's seed and the action id, so replaying the action
topics gives the same outcomes whatever the order or batching.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.core.identity import kind_of
from stream.core.timestamps import parse_timestamp_ms
from stream.simulate.journeys import (
    PRODUCTS,
    SHOP_URL,
    SOURCE,
    _order_properties,
    format_timestamp,
    to_topic,
)
from stream.simulate.preferences import ACTION_CHANNELS, Preferences
from stream.simulate.producer import _close, _start

OPENING_CHANNELS = frozenset({"email", "push"})
DISMISS_SHARE = 0.3  # of the pushes that are not clicked
RECENT_KEYS = 100_000
POLL_TIMEOUT_MS = 200
MAX_BATCH = 500
PROGRESS_EVERY_S = 1.0

# Simulated delays (ms, uniform in the range) between one outcome and the next.
OPEN_DELAY_MS: dict[str, tuple[int, int]] = {"email": (30_000, 1_200_000), "push": (2_000, 120_000)}
CLICK_DELAY_MS: dict[str, tuple[int, int]] = {
    "email": (2_000, 90_000),
    "push": (1_000, 30_000),
    "sms": (10_000, 600_000),
    "web": (1_000, 60_000),
    "call_center": (30_000, 600_000),
    "store": (30_000, 600_000),
    "social": (60_000, 3_600_000),  # the author answers the community team's reply
}
DISMISS_DELAY_MS = (2_000, 120_000)
CONVERSION_DELAY_MS = (60_000, 1_200_000)


@dataclass(frozen=True, slots=True)
class Produced:
    """One message to produce: topic, Kafka key and JSON value."""

    topic: str
    key: bytes
    value: dict[str, Any]


class MalformedAction(ValueError):
    """An action message the sender cannot act on (missing or invalid fields)."""


@dataclass(frozen=True, slots=True)
class _Action:
    """The fields of an action message the sender uses."""

    action_id: str
    customer_id: str
    action: str
    channel: str
    send_after_ms: int | None


def action_topics(prefix: str) -> list[str]:
    """The seven action topics, e.g. ``cjo.actions.email``."""
    return [f"{prefix}actions.{channel}" for channel in ACTION_CHANNELS]


def outcome_id_for(action_id: str, outcome: str) -> str:
    """Deterministic outcome id: SHA-256 of action id and outcome type, 32 hex digits."""
    return hashlib.sha256(f"{action_id}\x00{outcome}".encode()).hexdigest()[:32]


def outcomes_for(
    action: dict[str, Any], prefs: Preferences, rng: random.Random, now_ms: int, prefix: str
) -> list[Produced]:
    """Outcomes of one action (and its order event, if any), in time order; MalformedAction."""
    parsed = _parse_action(action)
    key, channel = parsed.customer_id, parsed.channel
    segment = prefs.segment(key)
    at_ms = max(now_ms, parsed.send_after_ms or now_ms)
    posted = {}
    if channel == "social":  # the community team posted the reply the task asked for
        payload = action.get("payload")
        posted["posted"] = payload.get("reply", "public") if isinstance(payload, dict) else "public"
    produced = [_outcome(parsed, "delivered", at_ms, prefix, segment, **posted)]
    if rng.random() < prefs.click_probability(key, parsed.action, channel):
        if channel in OPENING_CHANNELS:
            at_ms += _delay(rng, OPEN_DELAY_MS[channel])
            produced.append(_outcome(parsed, "opened", at_ms, prefix, segment))
        at_ms += _delay(rng, CLICK_DELAY_MS[channel])
        url = f"{SHOP_URL}/?utm_source={channel}&utm_campaign={parsed.action}"
        produced.append(_outcome(parsed, "clicked", at_ms, prefix, segment, url=url))
        if rng.random() < prefs.conversion_probability(key, parsed.action):
            at_ms += _delay(rng, CONVERSION_DELAY_MS)
            produced.extend(_conversion(parsed, rng, at_ms, prefix, segment))
    elif channel == "push" and rng.random() < DISMISS_SHARE:
        at_ms += _delay(rng, DISMISS_DELAY_MS)
        produced.append(_outcome(parsed, "dismissed", at_ms, prefix, segment))
    return produced


def order_event_customer(customer_key: str) -> dict[str, str] | None:
    """The envelope's ``customer`` for a customer key, or None for hashed email/phone keys."""
    kind = kind_of(customer_key)
    if kind in {"email_sha256", "phone_sha256", "social_sha256"}:
        return None  # only the hash is known; an event needs the raw address or number
    if kind == "customer_id":
        return {"customer_id": customer_key}
    return {kind: customer_key.partition(":")[2]}


class RecentKeys:
    """The most recent ``capacity`` keys, to drop redelivered duplicates in bounded memory."""

    def __init__(self, capacity: int = RECENT_KEYS) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; True if it is new, False if it was among the recent keys."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class SenderStats:
    """What a sender run did: actions read, dropped, outcomes and orders produced."""

    actions_received: int
    duplicates_dropped: int
    malformed_dropped: int
    outcomes_sent: dict[str, int]
    conversions_sent: int
    by_channel: dict[str, int]
    elapsed_s: float


class ActionHandler:
    """Pure core of the sender: raw action bytes in, messages to produce out, with counts."""

    def __init__(
        self, prefs: Preferences, seed: int, prefix: str, capacity: int = RECENT_KEYS
    ) -> None:
        self.prefs = prefs
        self.seed = seed
        self.prefix = prefix
        self.recent = RecentKeys(capacity)
        self.received = 0
        self.duplicates = 0
        self.malformed = 0
        self.outcomes: Counter[str] = Counter()
        self.conversions = 0
        self.by_channel: Counter[str] = Counter()

    def handle(self, raw: bytes | None, now_ms: int) -> list[Produced]:
        """Messages to produce for one action message; [] for a duplicate or malformed one."""
        self.received += 1
        try:
            action = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            action = None
        if not isinstance(action, dict) or not _nonempty(action.get("idempotency_key")):
            self.malformed += 1
            return []
        rng = random.Random(f"{self.seed}:{action.get('action_id')}")
        try:
            produced = outcomes_for(action, self.prefs, rng, now_ms, self.prefix)
        except MalformedAction:
            self.malformed += 1
            return []
        if not self.recent.add(action["idempotency_key"]):  # only valid actions take a key
            self.duplicates += 1
            return []
        self.by_channel[action["channel"]] += 1
        for message in produced:
            if message.topic == f"{self.prefix}outcomes":
                self.outcomes[message.value["outcome"]] += 1
            else:
                self.conversions += 1  # an order_completed event
        return produced

    def stats(self, elapsed_s: float) -> SenderStats:
        """A snapshot of the counts."""
        return SenderStats(
            actions_received=self.received,
            duplicates_dropped=self.duplicates,
            malformed_dropped=self.malformed,
            outcomes_sent=dict(sorted(self.outcomes.items())),
            conversions_sent=self.conversions,
            by_channel=dict(sorted(self.by_channel.items())),
            elapsed_s=elapsed_s,
        )


async def run_sender(
    broker: str,
    prefix: str,
    prefs: Preferences,
    *,
    seed: int = 7,
    group_id: str | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    clock_now_ms: Callable[[], int] | None = None,
    on_progress: Callable[[SenderStats], None] | None = None,
    security: Mapping[str, Any] | None = None,
    compression_type: str | None = None,
) -> SenderStats:
    """Answer actions with outcomes until ``duration_s``, ``stop`` is set, or cancellation.

    Offsets are committed after the batch's outcomes are acknowledged (at least once; a
    redelivered action gives the same outcome ids). ``clock_now_ms`` is the engine's clock
    (default: wall clock); ``on_progress`` gets a snapshot about once a second and at the end.
    ``security``: the SASL/TLS arguments of ``kafka_security.client_kwargs``;
    ``compression_type``: the outcomes producer's codec (None: uncompressed).
    """
    handler = ActionHandler(prefs, seed, prefix)
    now_ms = clock_now_ms or _wall_clock_ms
    consumer = AIOKafkaConsumer(
        *action_topics(prefix),
        bootstrap_servers=broker,
        group_id=group_id or f"journey-sender-{prefix or 'default'}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=5000,  # pick up action topics created after the start
        **(security or {}),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=broker,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        value_serializer=orjson.dumps,
        compression_type=compression_type,
        **(security or {}),
    )
    started = time.monotonic()
    await _start(producer)
    try:
        await _start(consumer)  # duck-typed: _start only needs start() and stop()
        try:
            await _pump(consumer, producer, handler, now_ms, started, duration_s, stop, on_progress)
        finally:
            await consumer.stop()
    finally:
        await _close(producer)
    result = handler.stats(time.monotonic() - started)
    if on_progress is not None:
        on_progress(result)
    return result


async def _pump(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    handler: ActionHandler,
    now_ms: Callable[[], int],
    started: float,
    duration_s: float | None,
    stop: asyncio.Event | None,
    on_progress: Callable[[SenderStats], None] | None,
) -> None:
    """Poll, answer, produce, commit; until the duration is used up or ``stop`` is set."""
    last_progress = 0.0
    while stop is None or not stop.is_set():
        elapsed = time.monotonic() - started
        timeout_ms = POLL_TIMEOUT_MS
        if duration_s is not None:
            if elapsed >= duration_s:
                return
            timeout_ms = max(1, min(timeout_ms, int((duration_s - elapsed) * 1000)))
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=MAX_BATCH)
        produced = [
            message
            for records in batches.values()
            for record in records
            for message in handler.handle(record.value, now_ms())
        ]
        if produced:
            await _send_all(producer, produced)
        if batches:
            await consumer.commit()
        elapsed = time.monotonic() - started
        if on_progress is not None and elapsed - last_progress >= PROGRESS_EVERY_S:
            last_progress = elapsed
            on_progress(handler.stats(elapsed))


async def _send_all(producer: AIOKafkaProducer, produced: list[Produced]) -> None:
    """Enqueue every message and wait until the broker acknowledged all of them."""
    deliveries = [
        await producer.send(message.topic, message.value, key=message.key) for message in produced
    ]
    await asyncio.gather(*deliveries)


def _wall_clock_ms() -> int:
    """Now, in epoch milliseconds."""
    return int(time.time() * 1000)


def _nonempty(value: Any) -> bool:
    """True for a non-empty string."""
    return isinstance(value, str) and bool(value)


def _parse_action(action: Any) -> _Action:
    """The fields the sender needs, checked; MalformedAction otherwise."""
    if not isinstance(action, dict):
        raise MalformedAction("action is not an object")
    for name in ("action_id", "customer_id", "action"):
        if not _nonempty(action.get(name)):
            raise MalformedAction(f"{name} missing or not a non-empty string")
    channel = action.get("channel")
    if channel not in ACTION_CHANNELS:
        raise MalformedAction(f"unknown channel {channel!r}")
    send_after = action.get("send_after")
    send_after_ms: int | None = None
    if send_after is not None:
        try:
            send_after_ms = parse_timestamp_ms(send_after)
        except (TypeError, ValueError) as exc:
            raise MalformedAction(f"send_after: {exc}") from exc
    return _Action(
        action["action_id"], action["customer_id"], action["action"], channel, send_after_ms
    )


def _delay(rng: random.Random, bounds: tuple[int, int]) -> int:
    """A simulated delay in ms, uniform in ``bounds`` (at least 1 ms)."""
    return max(1, rng.randint(*bounds))


def _outcome(
    action: _Action, outcome: str, at_ms: int, prefix: str, segment: str, **detail: Any
) -> Produced:
    """One outcome message on ``<prefix>outcomes``, keyed by the action's customer id."""
    value = {
        "outcome_id": outcome_id_for(action.action_id, outcome),
        "action_id": action.action_id,
        "customer_id": action.customer_id,
        "channel": action.channel,
        "outcome": outcome,
        "occurred_at": format_timestamp(at_ms),
        "detail": {"simulated_segment": segment, "action": action.action, **detail},
    }
    return Produced(f"{prefix}outcomes", action.customer_id.encode(), value)


def _conversion(
    action: _Action, rng: random.Random, at_ms: int, prefix: str, segment: str
) -> list[Produced]:
    """The ``converted`` outcome and, when the customer can be named, its order event."""
    order_id = f"sim-order-{rng.getrandbits(64):016x}"
    product = rng.choice(PRODUCTS)
    quantity = 1 if rng.random() < 0.85 else 2
    properties = _order_properties(order_id, [(product, quantity)])
    converted = _outcome(
        action,
        "converted",
        at_ms,
        prefix,
        segment,
        order_id=order_id,
        value=properties["value"],
        currency=properties["currency"],
    )
    customer = order_event_customer(action.customer_id)
    if customer is None:
        return [converted]
    event_channel = "app" if action.channel == "push" else "web"
    event = {
        "event_id": "sim-" + outcome_id_for(action.action_id, "order"),
        "type": "order_completed",
        "channel": event_channel,
        "occurred_at": format_timestamp(at_ms),
        "customer": customer,
        "properties": properties,
        "source": SOURCE,
    }
    key = next(iter(customer.values())).encode()
    return [converted, Produced(to_topic(prefix, event_channel), key, event)]
