"""The learn step without a broker: updates folded into the table, changed rows published.

Driven through ``LearnStep.handle`` with the fakes of ``tests/unit/shell/steps``: the
model rows are sent and flushed before the propensity table is written.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.stored import PROPENSITY
from stream.shell.steps import LearnStep
from tests.unit.shell.steps.fakes import (
    NOW_MS,
    Worker,
    assert_outputs_before_state,
    consumed,
)

LEARNING = "cjo.internal.learning"
MODEL = "cjo.internal.model"


def message(value: Any, key: bytes | None = None, partition: int = 0, offset: int = 0) -> Any:
    """A consumed record: ``value`` is JSON-encoded unless it is bytes already."""
    if isinstance(value, LearningUpdate):
        key = value.action.encode() if key is None else key
        value = value.to_message()
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return consumed(LEARNING, raw, key, partition=partition, offset=offset)


def batch(*values: Any) -> list[Any]:
    return [
        message(value, offset=n) if not isinstance(value, tuple) else message(*value, offset=n)
        for n, value in enumerate(values)
    ]


def make(rows: dict[bytes, bytes] | None = None) -> tuple[LearnStep, Worker]:
    worker = Worker()
    table = worker.table(PROPENSITY, rows or {})
    return LearnStep(worker.context(), table), worker


def trial(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.TRIAL, "engagement", channel)


def success(action: str, channel: str = "email") -> LearningUpdate:
    return LearningUpdate(action, UpdateKind.SUCCESS, "engagement", channel)


async def test_updates_are_folded_into_one_row_per_action() -> None:
    step, worker = make()
    await step.handle(
        batch(
            trial("promo"),
            trial("promo"),
            success("promo"),
            trial("promo", "push"),
            trial("welcome"),
            LearningUpdate("promo", UpdateKind.EXPOSURE, group="control"),
        )
    )
    table = worker.tables[PROPENSITY]
    assert worker.dead_letters() == []
    assert set(table) == {b"promo", b"welcome"}
    promo = orjson.loads(table[b"promo"])
    assert promo["cells"] == {"engagement/email": [2, 1], "engagement/push": [1, 0]}
    assert promo["uplift"] == {"control": [1, 0]}
    assert (promo["updates"], promo["updated_at_ms"]) == (5, NOW_MS)
    assert orjson.loads(table[b"welcome"])["cells"] == {"engagement/email": [1, 0]}


async def test_a_stored_row_is_added_to() -> None:
    step, worker = make()
    await step.handle(batch(trial("promo"), success("promo")))
    worker.clock.now = NOW_MS + 1_000
    await step.handle(batch(trial("promo")))
    row = orjson.loads(worker.tables[PROPENSITY][b"promo"])
    assert row["cells"] == {"engagement/email": [2, 1]}
    assert (row["updates"], row["updated_at_ms"]) == (3, NOW_MS + 1_000)


async def test_malformed_messages_go_to_the_dlq_and_the_rest_is_counted() -> None:
    step, worker = make()
    broken = [
        (b"{not json", b"promo"),
        ({"kind": "trial"}, b"promo"),  # no action
        ({"action": "promo", "kind": "clicked"}, b"promo"),  # unknown kind
        (trial("promo"), b"welcome"),  # keyed by another action
        ({"action": "promo", "kind": "trial"}, None),  # no key
        ([1, 2], b"promo"),
    ]
    await step.handle(batch(broken[0], trial("promo"), *broken[1:]))
    dead = worker.dead_letters()
    assert [d["source"]["offset"] for d in dead] == [0, 2, 3, 4, 5, 6]
    assert {d["reason"] for d in dead} == {"processing_error"}
    assert set(worker.tables[PROPENSITY]) == {b"promo"}
    assert orjson.loads(worker.tables[PROPENSITY][b"promo"])["cells"] == {
        "engagement/email": [1, 0]
    }
    assert worker.sample("journey_events_invalid_total", {"reason": "processing_error"}) == 6


async def test_each_changed_row_is_published_once_per_batch_as_written() -> None:
    step, worker = make()
    await step.handle(batch(trial("promo"), trial("welcome"), success("promo")))
    sent = worker.sent(MODEL)
    assert sorted(key for _, _, key, _ in sent) == [b"promo", b"welcome"]
    published = {key: value for _, _, key, value in sent}
    assert published == dict(worker.tables[PROPENSITY])
    assert orjson.loads(published[b"promo"])["cells"] == {"engagement/email": [1, 1]}
    worker.log.clear()
    await step.handle(batch(success("promo")))
    assert [key for _, _, key, _ in worker.sent(MODEL)] == [b"promo"]  # only what changed


async def test_rows_are_published_and_flushed_before_the_table_is_written() -> None:
    step, worker = make()
    await step.handle(batch(trial("promo"), trial("welcome")))
    assert_outputs_before_state(worker.log)
    assert [entry[0] for entry in worker.log] == ["send", "send", "ack", "ack", "write", "write"]


async def test_a_batch_of_only_malformed_messages_publishes_and_writes_nothing() -> None:
    step, worker = make()
    await step.handle(batch((b"oops", b"promo")))
    assert len(worker.dead_letters()) == 1
    assert worker.sent(MODEL) == []
    assert worker.flushes() == 0 and worker.writes() == []
    assert worker.tables[PROPENSITY] == {}


async def test_each_partitions_rows_are_written_on_that_partition() -> None:
    step, worker = make()
    await step.handle(
        [message(trial("promo"), partition=2), message(trial("welcome"), partition=7)]
    )
    assert {(entry[2], entry[4]) for entry in worker.writes()} == {(b"promo", 2), (b"welcome", 7)}
    assert worker.flushes() == 1  # one flush for the whole batch, before any write
