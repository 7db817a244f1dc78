"""ResolveStep through ``handle``: routed events and links sent, then aliases written."""

from __future__ import annotations

from dataclasses import replace

from stream.core.messages import EventMessage, Link, Merge, Unlink, decode, encode
from stream.core.resolve import IdentityRules
from stream.core.stored import ALIASES
from stream.shell.steps import ResolveStep
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import SHIPPED_RULES
from tests.unit.shell.steps.fakes import (
    Worker,
    assert_outputs_before_state,
    batch_of,
    consumed,
)

IDENTITY = "cjo.internal.identity-events"
CUSTOMER_EVENTS = "cjo.internal.customer-events"
ANON = b"anon:a1"


class FixedPolicy:
    def __init__(self, policy=SHIPPED_RULES) -> None:
        self.current = policy


def visit(key: bytes = ANON) -> EventMessage:
    return EventMessage(
        build_event("page_view", properties={"url": "/"}, customer_key=key.decode())
    )


def resolver(worker: Worker, aliases=(), policy: FixedPolicy | None = None) -> ResolveStep:
    table = worker.table(ALIASES, dict(aliases))
    return ResolveStep(worker.context(), table, policy or FixedPolicy())


async def test_a_link_sends_the_merge_then_waits_for_it_then_writes_the_alias() -> None:
    worker = Worker()
    step = resolver(worker)
    await step.handle(batch_of(IDENTITY, (ANON, encode(Link("anon:a1", "C000001")))))
    assert worker.log == [
        ("send", CUSTOMER_EVENTS, ANON, encode(Merge("anon:a1", "C000001"))),
        ("ack", CUSTOMER_EVENTS, ANON),
        ("write", ALIASES, ANON, b"C000001", 0),
    ]
    assert worker.sample("journey_identity_links_total", {"outcome": "linked"}) == 1


async def test_routing_events_through_known_aliases_neither_flushes_nor_writes() -> None:
    worker = Worker()
    step = resolver(worker, {ANON: b"C000001"})
    message = visit()
    await step.handle(batch_of(IDENTITY, (ANON, encode(message)), (b"C2", encode(visit(b"C2")))))
    assert [(e[0], e[1], e[2]) for e in worker.log] == [
        ("send", CUSTOMER_EVENTS, b"C000001"),
        ("send", CUSTOMER_EVENTS, b"C2"),
    ]
    assert decode(worker.log[0][3]) == message.routed_to("C000001")


async def test_an_unlink_deletes_the_alias_after_the_flush_and_sends_the_stub_erasure() -> None:
    worker = Worker()
    step = resolver(worker, {ANON: b"C000001"})
    await step.handle(batch_of(IDENTITY, (ANON, encode(Unlink("anon:a1", "C000001", True)))))
    assert [e[0] for e in worker.log] == ["send", "ack", "delete"]
    assert worker.log[2] == ("delete", ALIASES, ANON, 0)
    assert worker.tables[ALIASES] == {}


async def test_partitions_are_written_on_their_own_after_one_flush() -> None:
    worker = Worker()
    step = resolver(worker)
    batch = [
        consumed(IDENTITY, encode(Link("anon:a1", "C1")), ANON, partition=3, offset=10),
        consumed(IDENTITY, encode(Link("anon:b2", "C2")), b"anon:b2", partition=5, offset=20),
        consumed(IDENTITY, encode(Link("anon:c3", "C1")), b"anon:c3", partition=3, offset=11),
    ]
    await step.handle(batch)
    assert_outputs_before_state(worker.log)
    assert worker.flushes() == 1  # one flush for the whole batch, before any write
    written = [(e[2], e[4]) for e in worker.writes()]
    assert written == [(ANON, 3), (b"anon:c3", 3), (b"anon:b2", 5)]


async def test_a_broken_record_goes_to_the_dlq_and_the_rest_of_the_batch_is_committed() -> None:
    worker = Worker()
    step = resolver(worker)
    batch = batch_of(IDENTITY, (ANON, b"{oops"), (ANON, encode(Link("anon:a1", "C000001"))))
    await step.handle(batch)
    assert_outputs_before_state(worker.log)
    [dead] = worker.dead_letters()
    assert dead["reason"] == "processing_error"
    assert dead["detail"].startswith("MessageError: not JSON")
    assert dead["source"]["offset"] == 0
    assert worker.tables[ALIASES] == {ANON: b"C000001"}


async def test_a_reloaded_policy_applies_from_the_next_batch() -> None:
    worker = Worker()
    source = FixedPolicy()
    step = resolver(worker, policy=source)
    source.current = replace(
        SHIPPED_RULES, identity=IdentityRules(non_merging_kinds=frozenset({"anonymous_id"}))
    )
    await step.handle(batch_of(IDENTITY, (ANON, encode(Link("anon:a1", "C000001")))))
    assert worker.log == []  # reloaded between batches: the link is not merging now
    assert worker.sample("journey_identity_links_total", {"outcome": "non_merging"}) == 1
