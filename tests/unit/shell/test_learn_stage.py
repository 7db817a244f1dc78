"""The learn stage without a broker: updates folded into the table, changed rows published."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from stream.core.propensity import LearningUpdate, UpdateKind
from stream.shell.learn_stage import LearnStage
from stream.shell.metrics import Metrics

NOW_MS = 1_795_428_000_000
MODEL_TOPIC = "internal.model"


class FixedClock:
    """A clock that reads what the test sets."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


def message(value: Any, key: bytes | None = None) -> SimpleNamespace:
    """A consumed record: ``value`` is JSON-encoded unless it is bytes already."""
    if isinstance(value, LearningUpdate):
        key = value.action.encode() if key is None else key
        value = value.to_message()
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(message=SimpleNamespace(key=key, value=raw))


def make(table: dict[bytes, bytes] | None = None):
    table = {} if table is None else table
    sent: list[tuple[str, bytes | None, dict[str, Any]]] = []

    async def send(topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        sent.append((topic, key, value))

    clock = FixedClock(NOW_MS)
    stage = LearnStage(table, send, MODEL_TOPIC, Metrics(), clock)
    return stage, table, sent, clock


def trial(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.TRIAL, "engagement", channel)


def success(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.SUCCESS, "engagement", channel)


def test_updates_are_folded_into_one_row_per_action() -> None:
    stage, table, _, _ = make()
    refused = stage.fold_partition(
        [
            message(trial("promo")),
            message(trial("promo")),
            message(success("promo")),
            message(trial("promo", "push")),
            message(trial("welcome")),
            message(LearningUpdate("promo", UpdateKind.EXPOSURE, group="control")),
        ]
    )
    assert refused == []
    assert set(table) == {b"promo", b"welcome"}
    promo = orjson.loads(table[b"promo"])
    assert promo["cells"] == {"engagement/email": [2, 1], "engagement/push": [1, 0]}
    assert promo["uplift"] == {"control": [1, 0]}
    assert (promo["updates"], promo["updated_at_ms"]) == (5, NOW_MS)
    assert orjson.loads(table[b"welcome"])["cells"] == {"engagement/email": [1, 0]}


def test_a_stored_row_is_added_to() -> None:
    stage, table, _, clock = make()
    stage.fold_partition([message(trial("promo")), message(success("promo"))])
    clock.now = NOW_MS + 1_000
    stage.fold_partition([message(trial("promo"))])
    row = orjson.loads(table[b"promo"])
    assert row["cells"] == {"engagement/email": [2, 1]}
    assert (row["updates"], row["updated_at_ms"]) == (3, NOW_MS + 1_000)


def test_malformed_messages_are_refused_and_the_rest_is_counted() -> None:
    stage, table, _, _ = make()
    good = message(trial("promo"))
    broken = [
        message(b"{not json", b"promo"),
        message({"kind": "trial"}, b"promo"),  # no action
        message({"action": "promo", "kind": "clicked"}, b"promo"),  # unknown kind
        message(trial("promo"), b"welcome"),  # keyed by another action
        message({"action": "promo", "kind": "trial"}, None),  # no key
        message([1, 2], b"promo"),
    ]
    refused = stage.fold_partition([broken[0], good, *broken[1:]])
    assert len(refused) == len(broken)
    assert all(item is expected for (item, _), expected in zip(refused, broken, strict=True))
    assert all(isinstance(error, Exception) for _, error in refused)
    assert set(table) == {b"promo"}
    assert orjson.loads(table[b"promo"])["cells"] == {"engagement/email": [1, 0]}


def test_publish_sends_each_changed_row_once() -> None:
    stage, table, sent, _ = make()
    stage.fold_partition([message(trial("promo")), message(trial("welcome"))])
    stage.fold_partition([message(success("promo"))])
    asyncio.run(stage.publish())
    assert sorted(key for _, key, _ in sent) == [b"promo", b"welcome"]
    assert {topic for topic, _, _ in sent} == {MODEL_TOPIC}
    published = {key: row for _, key, row in sent}
    assert published[b"promo"] == orjson.loads(table[b"promo"])
    assert published[b"promo"]["cells"] == {"engagement/email": [1, 1]}
    sent.clear()
    asyncio.run(stage.publish())
    assert sent == []  # nothing changed since


def test_a_batch_of_only_refused_messages_publishes_nothing() -> None:
    stage, table, sent, _ = make()
    refused = stage.fold_partition([message(b"oops", b"promo")])
    assert len(refused) == 1
    asyncio.run(stage.publish())
    assert (table, sent) == ({}, [])
