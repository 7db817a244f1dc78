"""Unit tests of the loopback sender's pure core (no broker)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.events import DecodeOptions, Event, decode_event
from stream.core.schemas import load_catalog
from stream.core.timestamps import parse_timestamp_ms
from stream.simulate import sender
from stream.simulate.journeys import format_timestamp
from stream.simulate.preferences import Preferences, Segment, preferences_for
from stream.simulate.sender import (
    ActionHandler,
    MalformedAction,
    Produced,
    RecentKeys,
    action_topics,
    order_event_customer,
    outcome_id_for,
    outcomes_for,
)

NOW_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z
PREFIX = "cjo."
OUTCOMES = f"{PREFIX}outcomes"
EXAMPLE = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "valid" / "action.json"
CATALOG = load_catalog()
OPTIONS = DecodeOptions(CATALOG, max_event_bytes=65_536, hash_salt="pepper", default_region="FR")
EMAIL_KEY = "email:" + hashlib.sha256(b"someone@example.com").hexdigest()
PHONE_KEY = "phone:" + hashlib.sha256(b"+33600000001").hexdigest()
# Clicks as often as the cap allows (0.95) and always buys; with seed 1 every action runs
# the whole path.
ALWAYS = Preferences(
    "always",
    1,
    (
        Segment(
            "keen",
            1.0,
            dict.fromkeys(("email", "sms", "push", "web", "call_center", "store", "social"), 1.0),
        ),
    ),
    conversion_rate=1.0,
)


def make_action(**overrides: Any) -> dict[str, Any]:
    """The example action, with fields replaced."""
    action = json.loads(EXAMPLE.read_text())
    action.update(overrides)
    return action


def run(
    action: dict[str, Any], prefs: Preferences = ALWAYS, seed: int = 1, now_ms: int = NOW_MS
) -> list[Produced]:
    """Outcomes of one action with a seeded rng."""
    return outcomes_for(action, prefs, random.Random(seed), now_ms, PREFIX)


def outcome_types(produced: list[Produced]) -> list[str]:
    """The outcome types, in order, without the order events."""
    return [m.value["outcome"] for m in produced if m.topic == OUTCOMES]


def decoded(message: Produced) -> Event:
    """The order event as the engine's decoder sees it on its topic."""
    channel = message.topic.removeprefix(f"{PREFIX}events.")
    event = decode_event(orjson.dumps(message.value), channel, OPTIONS)
    assert isinstance(event, Event), event
    return event


def test_action_topics_cover_every_channel() -> None:
    assert action_topics("cjo.") == [
        "cjo.actions.email",
        "cjo.actions.sms",
        "cjo.actions.push",
        "cjo.actions.web",
        "cjo.actions.call_center",
        "cjo.actions.store",
        "cjo.actions.social",
    ]


@pytest.mark.parametrize(
    "channel", ["email", "sms", "push", "web", "call_center", "store", "social"]
)
@pytest.mark.parametrize("profile", ["default", "push-only"])
def test_outcomes_follow_the_outcome_schema(channel: str, profile: str) -> None:
    prefs = preferences_for(profile, 7)
    for n in range(300):
        action = make_action(action_id=f"a{n}", customer_id=f"C{n:06d}", channel=channel)
        for message in run(action, prefs, seed=n):
            if message.topic == OUTCOMES:
                assert CATALOG.message_error("outcome", message.value) is None, message.value
                assert message.key == action["customer_id"].encode()
                assert message.value["channel"] == channel
            else:
                decoded(message)


@pytest.mark.parametrize(
    "channel", ["email", "sms", "push", "web", "call_center", "store", "social"]
)
def test_the_whole_path_runs_in_time_order(channel: str) -> None:
    produced = run(make_action(channel=channel))
    opens = ["opened"] if channel in {"email", "push"} else []
    assert outcome_types(produced) == ["delivered", *opens, "clicked", "converted"]
    times = [parse_timestamp_ms(m.value["occurred_at"]) for m in produced if m.topic == OUTCOMES]
    assert times[0] == NOW_MS
    assert all(earlier < later for earlier, later in itertools.pairwise(times))


def test_occurred_at_increases_for_any_draw() -> None:
    prefs = preferences_for("default", 7)
    for n in range(2_000):
        action = make_action(action_id=f"a{n}", channel="push", customer_id=f"C{n % 50:06d}")
        outcomes = [m for m in run(action, prefs, seed=n) if m.topic == OUTCOMES]
        times = [parse_timestamp_ms(m.value["occurred_at"]) for m in outcomes]
        assert times == sorted(set(times))


def test_same_seed_gives_the_same_outcomes() -> None:
    prefs = preferences_for("default", 7)
    for n in range(200):
        action = make_action(action_id=f"a{n}", customer_id=f"C{n:06d}")
        assert run(action, prefs, seed=n) == run(action, prefs, seed=n)
    assert run(make_action()) == run(make_action())


def test_different_seeds_give_different_timings() -> None:
    assert run(make_action(), seed=1) != run(make_action(), seed=2)


def test_outcome_ids_are_sha256_of_action_id_and_type() -> None:
    action = make_action()
    for message in run(action):
        if message.topic == OUTCOMES:
            expected = hashlib.sha256(
                f"{action['action_id']}\x00{message.value['outcome']}".encode()
            ).hexdigest()[:32]
            assert message.value["outcome_id"] == expected
    assert len(outcome_id_for("a", "clicked")) == 32
    assert outcome_id_for("a", "clicked") != outcome_id_for("a", "opened")


def test_detail_names_the_simulated_segment() -> None:
    prefs = preferences_for("default", 7)
    action = make_action(customer_id="C000123")
    for message in run(action, prefs):
        if message.topic == OUTCOMES:
            assert message.value["detail"]["simulated_segment"] == prefs.segment("C000123")


def test_held_action_is_delivered_when_its_send_after_comes() -> None:
    later_ms = NOW_MS + 8 * 3_600_000
    produced = run(make_action(send_after=format_timestamp(later_ms)))
    assert produced[0].value["occurred_at"] == format_timestamp(later_ms)
    earlier = run(make_action(send_after=format_timestamp(NOW_MS - 60_000)))
    assert earlier[0].value["occurred_at"] == format_timestamp(NOW_MS)


@pytest.mark.parametrize(("channel", "topic"), [("email", "web"), ("sms", "web"), ("push", "app")])
def test_conversion_is_an_order_event_the_engine_accepts(channel: str, topic: str) -> None:
    produced = run(make_action(channel=channel, customer_id="C000123"))
    converted = next(m for m in produced if m.value.get("outcome") == "converted")
    order = produced[-1]
    assert order.topic == f"{PREFIX}events.{topic}"
    assert order.key == b"C000123"
    event = decoded(order)
    assert event.type == "order_completed"
    assert event.customer_key == "C000123"
    assert event.properties["order_id"] == converted.value["detail"]["order_id"]
    assert event.properties["value"] == converted.value["detail"]["value"] > 0
    assert event.occurred_at_ms == parse_timestamp_ms(converted.value["occurred_at"])


@pytest.mark.parametrize(
    ("customer_key", "block"),
    [
        ("C000123", {"customer_id": "C000123"}),
        ("loyalty:L000123", {"loyalty_id": "L000123"}),
        ("anon:anon-00ff00ff", {"anonymous_id": "anon-00ff00ff"}),
    ],
)
def test_order_event_names_the_customer_by_the_key_kind(
    customer_key: str, block: dict[str, str]
) -> None:
    assert order_event_customer(customer_key) == block
    order = run(make_action(customer_id=customer_key))[-1]
    assert order.value["customer"] == block
    assert decoded(order).customer_key == customer_key


@pytest.mark.parametrize("customer_key", [EMAIL_KEY, PHONE_KEY])
def test_hashed_keys_convert_without_an_order_event(customer_key: str) -> None:
    assert order_event_customer(customer_key) is None
    produced = run(make_action(customer_id=customer_key))
    assert all(m.topic == OUTCOMES for m in produced)
    assert outcome_types(produced)[-1] == "converted"


def test_order_and_event_ids_are_unique() -> None:
    produced = [m for n in range(500) for m in run(make_action(action_id=f"a{n}"), seed=n)]
    orders = [m for m in produced if m.topic != OUTCOMES]
    assert len(orders) > 400
    assert len({o.value["event_id"] for o in orders}) == len(orders)
    assert len({o.value["properties"]["order_id"] for o in orders}) == len(orders)
    assert all(len(o.value["event_id"]) <= 128 for o in orders)


def test_push_only_customers_never_click_on_email() -> None:
    prefs = preferences_for("push-only", 7)
    for n in range(1_000):
        action = make_action(action_id=f"a{n}", customer_id=f"C{n:06d}", channel="email")
        assert outcome_types(run(action, prefs, seed=n)) == ["delivered"]


def test_click_rate_matches_the_probability() -> None:
    prefs = preferences_for("default", 7)
    key = next(f"C{n:06d}" for n in range(1, 1_000) if prefs.segment(f"C{n:06d}") == "app-first")
    rng = random.Random(11)
    draws, clicks, converted = 5_000, 0, 0
    for n in range(draws):
        action = make_action(action_id=f"a{n}", customer_id=key, channel="push")
        types = outcome_types(outcomes_for(action, prefs, rng, NOW_MS, PREFIX))
        clicks += "clicked" in types
        converted += "converted" in types
    assert clicks / draws == pytest.approx(0.30, abs=0.03)
    assert converted / clicks == pytest.approx(0.35, abs=0.05)


def test_unclicked_pushes_are_sometimes_dismissed() -> None:
    prefs = preferences_for("push-only", 7)
    results = [
        outcome_types(run(make_action(action_id=f"a{n}", channel="push"), prefs, seed=n))
        for n in range(4_000)
    ]
    unclicked = [types for types in results if "clicked" not in types]
    dismissed = sum("dismissed" in types for types in unclicked)
    assert dismissed / len(unclicked) == pytest.approx(0.3, abs=0.05)
    assert all("dismissed" not in types for types in results if "clicked" in types)


@pytest.mark.parametrize(
    "overrides",
    [
        {"channel": "fax"},
        {"customer_id": ""},
        {"action_id": None},
        {"action": 7},
        {"send_after": "tomorrow"},
        {"send_after": 12},
    ],
)
def test_malformed_actions_raise(overrides: dict[str, Any]) -> None:
    with pytest.raises(MalformedAction):
        run(make_action(**overrides))


def test_recent_keys_spot_repeats_and_forget_the_oldest() -> None:
    recent = RecentKeys(capacity=2)
    assert recent.add("a") and recent.add("b")
    assert not recent.add("a")  # a is now the most recent
    assert recent.add("c")  # evicts b
    assert not recent.add("a")
    assert recent.add("b")


def test_handler_drops_duplicates_and_counts() -> None:
    handler = ActionHandler(preferences_for("default", 7), seed=7, prefix=PREFIX)
    raw = orjson.dumps(make_action())
    first = handler.handle(raw, NOW_MS)
    assert first and handler.handle(raw, NOW_MS + 5_000) == []
    stats = handler.stats(1.5)
    assert stats.actions_received == 2
    assert stats.duplicates_dropped == 1
    assert stats.by_channel == {"email": 1}
    assert sum(stats.outcomes_sent.values()) == sum(m.topic == OUTCOMES for m in first)
    assert stats.outcomes_sent["delivered"] == 1
    assert stats.elapsed_s == 1.5


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"not json",
        b"[1, 2]",
        orjson.dumps({k: v for k, v in make_action().items() if k != "idempotency_key"}),
        orjson.dumps(make_action(channel="pigeon")),
    ],
)
def test_handler_counts_malformed_messages_and_goes_on(raw: bytes | None) -> None:
    handler = ActionHandler(preferences_for("default", 7), seed=7, prefix=PREFIX)
    assert handler.handle(raw, NOW_MS) == []
    assert handler.handle(orjson.dumps(make_action()), NOW_MS)
    stats = handler.stats(0.0)
    assert (stats.actions_received, stats.malformed_dropped) == (2, 1)


def test_handler_answers_each_action_the_same_whatever_the_order() -> None:
    actions = [
        orjson.dumps(make_action(action_id=f"a{n}", idempotency_key=f"k{n}")) for n in range(50)
    ]

    def answers(raws: list[bytes]) -> dict[str, list[Produced]]:
        handler = ActionHandler(ALWAYS, seed=3, prefix=PREFIX)
        return {orjson.loads(raw)["action_id"]: handler.handle(raw, NOW_MS) for raw in raws}

    assert answers(actions) == answers(actions[::-1])
    handler = ActionHandler(ALWAYS, seed=3, prefix=PREFIX)
    for raw in actions:
        handler.handle(raw, NOW_MS)
    stats = handler.stats(0.0)
    assert 40 < stats.conversions_sent == stats.outcomes_sent["clicked"] < 50


class FakeRecord:
    """What the consumer hands out: just a value."""

    def __init__(self, value: bytes) -> None:
        self.value = value


class FakeConsumer:
    """Hands out the queued batches once, then nothing; records commits and stop."""

    instances: list[FakeConsumer] = []
    queued: list[list[bytes]] = []  # batches for the next consumer

    def __init__(self, *topics: str, **config: Any) -> None:
        self.topics, self.config = topics, config
        self.batches, FakeConsumer.queued = FakeConsumer.queued, []
        self.commits = 0
        self.stopped = False
        FakeConsumer.instances.append(self)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[FakeRecord]]:
        if not self.batches:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {"tp": [FakeRecord(raw) for raw in self.batches.pop(0)]}

    async def commit(self) -> None:
        self.commits += 1


class FakeProducer:
    """Records what was sent; every delivery is acknowledged at once."""

    instances: list[FakeProducer] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []
        self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def send(self, topic: str, value: dict[str, Any], key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    async def flush(self) -> None:
        """Nothing pending."""

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> tuple[type[FakeConsumer], type[FakeProducer]]:
    """Replace the aiokafka clients of the sender with in-memory fakes."""
    FakeConsumer.instances.clear()
    FakeConsumer.queued = []
    FakeProducer.instances.clear()
    monkeypatch.setattr(sender, "AIOKafkaConsumer", FakeConsumer)
    monkeypatch.setattr(sender, "AIOKafkaProducer", FakeProducer)
    return FakeConsumer, FakeProducer


async def test_run_sender_answers_commits_and_closes_on_stop(
    fake_kafka: tuple[type[FakeConsumer], type[FakeProducer]],
) -> None:
    stop = asyncio.Event()
    raws = [orjson.dumps(make_action(action_id=f"a{n}", idempotency_key=f"k{n}")) for n in range(5)]
    progress: list[sender.SenderStats] = []
    FakeConsumer.queued = [[*raws, raws[0], b"junk"]]
    asyncio.get_running_loop().call_later(0.3, stop.set)
    stats = await sender.run_sender(
        "localhost:1",
        PREFIX,
        ALWAYS,
        stop=stop,
        clock_now_ms=lambda: NOW_MS,
        on_progress=progress.append,
    )
    consumer, producer = FakeConsumer.instances[0], FakeProducer.instances[0]
    assert consumer.topics == tuple(action_topics(PREFIX))
    assert consumer.config["group_id"] == "journey-sender-cjo."
    assert consumer.config["auto_offset_reset"] == "earliest"
    assert producer.config["acks"] == "all" and producer.config["enable_idempotence"]
    assert consumer.commits == 1 and consumer.stopped and producer.stopped
    assert (stats.actions_received, stats.duplicates_dropped, stats.malformed_dropped) == (7, 1, 1)
    assert stats.by_channel == {"email": 5}
    outcomes = [value for topic, _, value in producer.sent if topic == OUTCOMES]
    assert len(outcomes) == sum(stats.outcomes_sent.values())
    assert len(producer.sent) - len(outcomes) == stats.conversions_sent
    assert progress[-1] == stats


async def test_run_sender_stops_after_its_duration_and_on_cancel(
    fake_kafka: tuple[type[FakeConsumer], type[FakeProducer]],
) -> None:
    stats = await sender.run_sender("localhost:1", "", ALWAYS, duration_s=0.05)
    assert stats.actions_received == 0
    assert FakeConsumer.instances[0].config["group_id"] == "journey-sender-default"
    task = asyncio.create_task(sender.run_sender("localhost:1", "", ALWAYS))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert FakeConsumer.instances[1].stopped and FakeProducer.instances[1].stopped


def test_a_community_task_is_delivered_when_its_reply_is_posted() -> None:
    task = make_action(channel="social", payload={"reply": "private", "why": "direct message"})
    [delivered, *_] = run(task)
    assert delivered.value["outcome"] == "delivered"
    assert delivered.value["detail"]["posted"] == "private"
    assert CATALOG.message_error("outcome", delivered.value) is None


def test_a_social_authors_hash_names_no_one_for_an_order_event() -> None:
    assert order_event_customer("social:" + "ab" * 32) is None
