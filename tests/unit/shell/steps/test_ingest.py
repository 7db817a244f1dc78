"""IngestStep and OutcomesStep through ``handle``: valid input inward, the rest to the DLQ."""

from __future__ import annotations

import base64

import orjson

from stream.core.events import Event
from stream.core.messages import EventMessage, OutcomeMessage, decode
from stream.shell.steps import IngestStep, OutcomesStep
from tests.unit.core.decide.helpers import CATALOG
from tests.unit.core.test_intake import raw_event
from tests.unit.shell.steps.fakes import NOW_MS, Worker, batch_of, consumed

WEB = "cjo.events.web"
OUTCOMES = "cjo.outcomes"


async def test_a_customer_ids_event_goes_to_customer_events_keyed_and_stamped() -> None:
    worker = Worker()
    step = IngestStep(worker.context(), CATALOG)
    await step.handle([consumed(WEB, raw_event(), timestamp_ms=NOW_MS - 250)])
    [(_, topic, key, value)] = worker.log
    assert (topic, key) == ("cjo.internal.customer-events", b"C1")
    message = decode(value)
    assert isinstance(message, EventMessage) and isinstance(message.event, Event)
    assert message.ingress_ts_ms == NOW_MS - 250
    assert message.event.event_id == "e1"
    assert worker.sample("journey_events_total", {"channel": "web", "type": "page_view"}) == 1


async def test_invalid_events_go_to_the_dlq_with_their_reason_and_source() -> None:
    worker = Worker()
    step = IngestStep(worker.context(), CATALOG)
    batch = batch_of(
        WEB,
        (b"k0", b"{not json"),
        (None, raw_event()),
        (b"k2", raw_event(channel="app")),
        timestamp_ms=NOW_MS - 1_000,
    )
    await step.handle(batch)
    assert [e[1] for e in worker.sent()] == [
        "cjo.internal.customer-events",
        "cjo.dlq",
        "cjo.dlq",
    ]  # outputs first, then the dead letters
    first, mismatch = worker.dead_letters()
    assert first["reason"] == "invalid_json"
    assert first["source"]["topic"] == WEB
    assert (first["source"]["partition"], first["source"]["offset"]) == (0, 0)
    assert first["source"]["timestamp_ms"] == NOW_MS - 1_000
    assert base64.b64decode(first["original_b64"]) == b"{not json"
    assert mismatch["reason"] == "channel_mismatch"
    assert mismatch["source"]["offset"] == 2
    assert [e[2] for e in worker.sent("cjo.dlq")] == [b"k0", b"k2"]  # keyed as the input
    assert worker.sample("journey_events_invalid_total", {"reason": "invalid_json"}) == 1
    assert worker.sample("journey_events_invalid_total", {"reason": "channel_mismatch"}) == 1


async def test_an_event_on_a_topic_of_no_channel_is_judged_by_its_own_channel() -> None:
    worker = Worker()
    step = IngestStep(worker.context(), CATALOG)
    await step.handle([consumed("somewhere.else", raw_event(channel="fax"))])
    [dead] = worker.dead_letters()
    assert dead["reason"] == "unknown_channel"


async def test_ingest_never_flushes_nor_writes_state() -> None:
    worker = Worker()
    step = IngestStep(worker.context(), CATALOG)
    await step.handle([consumed(WEB, raw_event()), consumed(WEB, b"[]", offset=1)])
    assert worker.flushes() == 0 and worker.writes() == []


async def test_occurred_at_is_judged_on_the_processing_clock() -> None:
    worker = Worker()
    worker.clock.now = NOW_MS + 40 * 24 * 3_600_000  # 40 days on: the event is too old
    step = IngestStep(worker.context(), CATALOG)
    await step.handle([consumed(WEB, raw_event())])
    assert [dead["reason"] for dead in worker.dead_letters()] == ["timestamp_too_old"]


OUTCOME = {
    "outcome_id": "out-1",
    "action_id": "act-1",
    "customer_id": "C000001",
    "channel": "email",
    "outcome": "clicked",
    "occurred_at": "2026-11-23T10:00:00Z",
}


async def test_a_valid_outcome_is_re_keyed_to_its_customer_on_customer_events() -> None:
    worker = Worker()
    step = OutcomesStep(worker.context(), CATALOG)
    await step.handle([consumed(OUTCOMES, orjson.dumps(OUTCOME), b"sender-key")])
    [(_, topic, key, value)] = worker.log
    assert (topic, key) == ("cjo.internal.customer-events", b"C000001")
    message = decode(value)
    assert isinstance(message, OutcomeMessage)
    assert message.outcome.action_id == "act-1"


async def test_an_invalid_outcome_goes_to_the_dlq_with_its_reason() -> None:
    worker = Worker()
    step = OutcomesStep(worker.context(), CATALOG)
    batch = batch_of(OUTCOMES, (None, orjson.dumps({**OUTCOME, "outcome": "liked"})), (None, None))
    await step.handle(batch)
    assert [d["reason"] for d in worker.dead_letters()] == ["schema_violation", "not_an_object"]
    assert worker.flushes() == 0 and worker.writes() == []
