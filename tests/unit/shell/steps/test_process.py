"""ProcessStep through ``handle``: outputs sent, flushed, then the four tables written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.core import fold as fold_module
from stream.core.messages import Erase, EventMessage, Firing, Message, decode, encode
from stream.core.propensity import EMPTY_MODEL
from stream.core.state import CustomerState
from stream.core.stored import CENSUS, CUSTOMERS, DECISIONS, DUE, ring_key
from stream.core.timer_index import TimerIndex
from stream.shell.condition_errors import ConditionErrors
from stream.shell.steps import ProcessStep
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import SHIPPED_RULES
from tests.unit.shell.steps.fakes import (
    NOW_MS,
    FixedClock,
    Worker,
    assert_outputs_before_state,
    batch_of,
    consumed,
)

CUSTOMER_EVENTS = "cjo.internal.customer-events"
KEY = b"C000001"
DAY_MS = 86_400_000
MINUTE_MS = 60_000


class Current:
    """A policy source or model view: ``current`` is what a batch reads."""

    def __init__(self, current: Any) -> None:
        self.current = current


def processor(worker: Worker) -> tuple[ProcessStep, TimerIndex]:
    tables = {name: worker.table(name) for name in (CUSTOMERS, DUE, DECISIONS, CENSUS)}
    index = TimerIndex(60 * DAY_MS)
    index.assign({0, 1})
    index.advance(NOW_MS)
    step = ProcessStep(
        worker.context(),
        tables,
        Current(SHIPPED_RULES),  # type: ignore[arg-type]
        Current(EMPTY_MODEL),  # type: ignore[arg-type]
        index,
        ConditionErrors(worker.metrics.condition_errors),
    )
    return step, index


def visit(key: bytes = KEY, at_ms: int = NOW_MS, **kw: Any) -> Any:
    return build_event(
        "page_view", properties={"url": "/"}, customer_key=key.decode(), at_ms=at_ms, **kw
    )


def records(*messages: tuple[bytes, Message]) -> list[Any]:
    return batch_of(CUSTOMER_EVENTS, *((key, encode(m)) for key, m in messages))


async def test_an_events_outputs_are_sent_and_acknowledged_before_any_table_is_written() -> None:
    worker = Worker()
    step, _ = processor(worker)
    await step.handle(records((KEY, EventMessage(visit(), NOW_MS - 40))))
    assert_outputs_before_state(worker.log)
    kinds = [e[0] for e in worker.log]
    first_write = kinds.index("write")
    assert kinds[:first_write].count("ack") == kinds.count("send")  # every send acknowledged
    assert "send" not in kinds[first_write:]
    assert {e[1] for e in worker.sent()} == {
        "cjo.decisions",
        "cjo.actions.web",
        "cjo.internal.learning",
    }
    assert {(e[1], e[4]) for e in worker.writes()} == {
        (CENSUS, 0),
        (DECISIONS, 0),
        (CUSTOMERS, 0),
        (DUE, 0),
    }
    state = CustomerState.from_dict(orjson.loads(worker.tables[CUSTOMERS][KEY]))
    assert state.event_count == 1


async def test_the_tally_reaches_the_prometheus_metrics() -> None:
    worker = Worker()
    step, _ = processor(worker)
    await step.handle(records((KEY, EventMessage(visit()))))
    assert (
        worker.sample("journey_actions_total", {"action": "welcome_content", "channel": "web"}) == 1
    )
    assert worker.sample("journey_learning_updates_total", {"kind": "trial"}) == 1
    assert worker.sample("journey_decision_seconds_count", {"kind": "event"}) == 1
    assert worker.sample("journey_output_flush_seconds_count", {"agent": "process"}) == 1


async def test_the_timer_index_is_updated_with_the_batchs_deadlines() -> None:
    worker = Worker()
    step, index = processor(worker)
    await step.handle(records((KEY, EventMessage(visit()))))
    assert index.next_due_ms() == NOW_MS + 30 * DAY_MS
    assert worker.tables[DUE][KEY] == str(NOW_MS + 30 * DAY_MS).encode()


async def test_latencies_are_observed_from_ingress_and_from_occurred_at() -> None:
    worker = Worker()
    step, _ = processor(worker)
    event = visit(at_ms=NOW_MS - 5_000)
    await step.handle(records((KEY, EventMessage(event, 1))))  # ingress at epoch: long ago
    assert worker.sample("journey_event_processing_latency_seconds_count") == 1
    assert worker.sample("journey_event_to_action_seconds_count", {"source": "kafka"}) == 1
    assert worker.sample("journey_event_to_action_seconds_sum", {"source": "occurred_at"}) == 5.0


async def test_a_duplicate_batch_sends_nothing_flushes_nothing_and_writes_nothing() -> None:
    worker = Worker()
    step, _ = processor(worker)
    event = visit()
    await step.handle(records((KEY, EventMessage(event))))
    worker.log.clear()
    await step.handle(records((KEY, EventMessage(event))))
    assert worker.log == []
    assert worker.sample("journey_events_duplicate_total") == 1


async def test_an_erasure_sends_its_audit_then_deletes_the_customers_tables() -> None:
    worker = Worker()
    step, index = processor(worker)
    await step.handle(records((KEY, EventMessage(visit()))))
    worker.log.clear()
    await step.handle(records((KEY, Erase(NOW_MS))))
    assert_outputs_before_state(worker.log)
    assert [e[1] for e in worker.sent()] == ["cjo.internal.erasures"]
    deleted = {(e[1], e[2]) for e in worker.log if e[0] == "delete"}
    assert deleted == {
        (CUSTOMERS, KEY),
        (DECISIONS, KEY),
        (DECISIONS, ring_key(KEY, 0)),
        (DUE, KEY),
    }
    assert index.next_due_ms() is None
    assert worker.sample("journey_erasures_total") == 1


async def test_a_failed_firing_goes_to_the_dlq_and_is_retried_a_real_minute_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = Worker(clock=FixedClock(NOW_MS - 31 * MINUTE_MS, speed=2.0))
    step, index = processor(worker)
    cart = build_event(
        "add_to_cart", properties={"product_id": "p1", "price": 20.0}, at_ms=NOW_MS - 31 * MINUTE_MS
    )
    await step.handle(records((KEY, EventMessage(cart))))
    due_ms = NOW_MS - MINUTE_MS
    assert index.next_due_ms() == due_ms

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fold_module, "fire", broken)
    worker.clock.now = NOW_MS
    index.pop_due(NOW_MS, 10)  # the scheduler sent the firing
    worker.log.clear()
    await step.handle(records((KEY, Firing(due_ms, NOW_MS))))
    [dead] = worker.dead_letters()
    assert (dead["reason"], dead["detail"]) == ("processing_error", "RuntimeError: boom")
    assert worker.writes() == [] and worker.flushes() == 0
    assert index.next_due_ms() == NOW_MS + 2 * 60_000  # one real minute at speed 2
    assert worker.sample("journey_events_invalid_total", {"reason": "processing_error"}) == 1


async def test_partitions_are_folded_apart_and_written_on_their_own_after_one_flush() -> None:
    worker = Worker()
    step, index = processor(worker)
    other = b"C000002"
    batch = [
        consumed(CUSTOMER_EVENTS, encode(EventMessage(visit())), KEY, partition=1, offset=4),
        consumed(CUSTOMER_EVENTS, encode(EventMessage(visit(other))), other, partition=0),
    ]
    await step.handle(batch)
    assert_outputs_before_state(worker.log)
    assert worker.flushes() == 1  # one flush for the whole batch, before any write
    partitions = {(e[1], e[2]): e[4] for e in worker.writes() if e[1] != CENSUS}
    assert partitions[(CUSTOMERS, KEY)] == 1
    assert partitions[(CUSTOMERS, other)] == 0
    census = {e[2]: e[4] for e in worker.writes() if e[1] == CENSUS}
    assert (census[b"p1"], census[b"p0"]) == (1, 0)
    assert all(key.startswith(b"p%d" % partition) for key, partition in census.items())
    assert sorted(due.partition for due in index.pop_due(NOW_MS + 31 * DAY_MS, 10)) == [0, 1]


async def test_a_broken_record_is_dead_lettered_and_the_rest_of_the_batch_committed() -> None:
    worker = Worker()
    step, _ = processor(worker)
    batch = batch_of(CUSTOMER_EVENTS, (KEY, b"[]"), (KEY, encode(EventMessage(visit()))))
    await step.handle(batch)
    assert_outputs_before_state(worker.log)
    [dead] = worker.dead_letters()
    assert (dead["reason"], dead["source"]["offset"]) == ("processing_error", 0)
    assert KEY in worker.tables[CUSTOMERS]
    kinds = [e[0] for e in worker.log]
    sent_before_acks = worker.log[: kinds.index("ack")]
    assert sent_before_acks[-1][1] == "cjo.dlq"  # dead letters too, before the wait


async def test_a_stub_forwards_to_the_survivor_without_writing() -> None:
    worker = Worker()
    step, _ = processor(worker)
    worker.tables[CUSTOMERS].update({b"anon:a1": orjson.dumps({"merged_into": "C000001"})})
    message = EventMessage(visit(b"anon:a1"))
    await step.handle(records((b"anon:a1", message)))
    [(_, topic, key, value)] = worker.log
    assert (topic, key) == (CUSTOMER_EVENTS, KEY)
    assert decode(value) == message.routed_to("C000001")
    assert worker.sample("journey_identity_redirects_total") == 1
