"""The resolve step's pure batch: events routed through the alias table, links applied."""

from __future__ import annotations

import logging
from dataclasses import replace

import orjson
import pytest

from stream.core.batch import BatchResult, Destination, Output
from stream.core.events import DlqReason, Event
from stream.core.messages import (
    Conflict,
    EraseStub,
    EventMessage,
    Firing,
    Link,
    Merge,
    Message,
    Unlink,
    decode,
    encode,
)
from stream.core.resolve import IdentityRules
from stream.core.routing import resolve_partition
from stream.core.stored import ALIASES
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import NOON_MS, SHIPPED_RULES

ANON, CUSTOMER = b"anon:a1", b"C000001"


def resolve(
    aliases: dict[bytes, bytes], *records: tuple[bytes, Message | bytes], policy=SHIPPED_RULES
) -> BatchResult:
    raw = [(key, m if isinstance(m, bytes) else encode(m)) for key, m in records]
    return resolve_partition(raw, aliases.get, policy, NOON_MS)


def visit(key: bytes = ANON) -> Event:
    return build_event("page_view", properties={"url": "/"}, customer_key=key.decode())


def test_an_event_is_routed_to_its_alias_profile_and_re_addressed() -> None:
    message = EventMessage(visit(), NOON_MS - 7)
    result = resolve({ANON: CUSTOMER}, (ANON, message))
    [routed] = result.outputs
    assert (routed.destination, routed.key) == (Destination.CUSTOMER_EVENTS, CUSTOMER)
    assert decode(routed.value) == message.routed_to("C000001")
    assert result.writes[ALIASES] == {}


def test_an_event_without_an_alias_goes_to_its_own_key() -> None:
    message = EventMessage(visit(), NOON_MS - 7)
    result = resolve({}, (ANON, message))
    assert result.outputs == [Output(Destination.CUSTOMER_EVENTS, ANON, encode(message))]


def test_an_event_is_addressed_by_its_record_key_not_its_stated_customer_key() -> None:
    message = EventMessage(visit(b"anon:other"))
    [routed] = resolve({}, (ANON, message)).outputs
    assert routed.key == ANON
    assert decode(routed.value) == message.routed_to("anon:a1")


def test_a_link_for_a_new_token_writes_the_alias_and_merges_the_tokens_own_profile() -> None:
    result = resolve({}, (ANON, Link("anon:a1", "C000001")))
    assert result.writes[ALIASES] == {ANON: CUSTOMER}
    assert result.outputs == [
        Output(Destination.CUSTOMER_EVENTS, ANON, encode(Merge("anon:a1", "C000001")))
    ]
    assert result.tally.counts == {("identity_links", "linked"): 1}


def test_a_later_record_in_the_batch_sees_an_alias_written_earlier_in_it() -> None:
    message = EventMessage(visit())
    result = resolve({}, (ANON, Link("anon:a1", "C000001")), (ANON, message))
    routed = result.outputs[-1]
    assert routed.key == CUSTOMER
    assert decode(routed.value) == message.routed_to("C000001")


def test_a_later_record_in_the_batch_sees_an_alias_deleted_earlier_in_it() -> None:
    message = EventMessage(visit())
    result = resolve({ANON: CUSTOMER}, (ANON, Unlink("anon:a1", "C000001")), (ANON, message))
    assert result.writes[ALIASES] == {ANON: None}
    assert result.outputs == [Output(Destination.CUSTOMER_EVENTS, ANON, encode(message))]


def test_a_second_link_in_the_batch_finds_the_token_already_linked() -> None:
    link = Link("anon:a1", "C000001")
    result = resolve({}, (ANON, link), (ANON, link))
    assert result.tally.counts == {("identity_links", "linked"): 1, ("identity_links", "same"): 1}
    assert len(result.outputs) == 1  # one merge


def test_a_link_the_alias_table_already_holds_does_nothing() -> None:
    result = resolve({ANON: CUSTOMER}, (ANON, Link("anon:a1", "C000001")))
    assert (result.outputs, result.writes[ALIASES]) == ([], {})
    assert result.tally.counts == {("identity_links", "same"): 1}


def test_a_link_to_a_stronger_profile_relinks_and_follows_up_with_the_weaker_one() -> None:
    result = resolve({ANON: b"email:e1"}, (ANON, Link("anon:a1", "loyalty:L1")))
    assert result.writes[ALIASES] == {ANON: b"loyalty:L1"}
    assert result.outputs == [
        Output(Destination.IDENTITY_EVENTS, b"email:e1", encode(Link("email:e1", "loyalty:L1")))
    ]
    assert result.tally.counts == {("identity_links", "relinked"): 1}


def test_a_link_to_a_weaker_profile_is_redirected_to_the_stronger_one() -> None:
    result = resolve({ANON: CUSTOMER}, (ANON, Link("anon:a1", "email:e1")))
    assert result.writes[ALIASES] == {}
    assert result.outputs == [
        Output(Destination.IDENTITY_EVENTS, b"email:e1", encode(Link("email:e1", "C000001")))
    ]


def test_a_conflict_sends_a_conflict_note_to_the_profile_and_a_warning() -> None:
    token = b"loyalty:L1"
    result = resolve({token: b"C000002"}, (token, Link("loyalty:L1", "C000001")))
    assert result.writes[ALIASES] == {}
    assert result.outputs == [
        Output(
            Destination.CUSTOMER_EVENTS,
            CUSTOMER,
            encode(Conflict("loyalty:L1", "C000002", NOON_MS)),
        )
    ]
    [(level, line)] = result.notes
    assert level == logging.WARNING
    assert "loyalty:L1" in line and "C000002" in line and "C000001" in line
    assert result.tally.counts == {("identity_links", "conflict"): 1}


def test_a_non_merging_token_links_nothing() -> None:
    policy = replace(
        SHIPPED_RULES, identity=IdentityRules(non_merging_kinds=frozenset({"phone_sha256"}))
    )
    token = b"phone:p1"
    result = resolve({}, (token, Link("phone:p1", "C000001")), policy=policy)
    assert (result.outputs, result.writes[ALIASES]) == ([], {})
    assert result.tally.counts == {("identity_links", "non_merging"): 1}


def test_an_unlink_deletes_the_alias_when_it_points_to_that_profile() -> None:
    result = resolve({ANON: CUSTOMER}, (ANON, Unlink("anon:a1", "C000001")))
    assert result.writes[ALIASES] == {ANON: None}
    assert result.outputs == []


def test_an_unlink_keeps_an_alias_that_points_to_another_profile() -> None:
    result = resolve({ANON: b"C000002"}, (ANON, Unlink("anon:a1", "C000001")))
    assert result.writes[ALIASES] == {}


def test_an_erasures_unlink_also_deletes_the_stub_of_the_tokens_own_profile() -> None:
    result = resolve({ANON: CUSTOMER}, (ANON, Unlink("anon:a1", "C000001", erase=True)))
    assert result.writes[ALIASES] == {ANON: None}
    assert result.outputs == [
        Output(Destination.CUSTOMER_EVENTS, ANON, encode(EraseStub("C000001")))
    ]


def test_an_erasures_unlink_sends_the_stub_deletion_even_without_an_alias() -> None:
    result = resolve({}, (ANON, Unlink("anon:a1", "C000001", erase=True)))
    assert result.writes[ALIASES] == {}
    assert [decode(output.value) for output in result.outputs] == [EraseStub("C000001")]


@pytest.mark.parametrize("message", [Firing(NOON_MS, NOON_MS), Merge("anon:a1", "C000001")])
def test_customer_event_kinds_on_the_identity_topic_are_ignored(message: Message) -> None:
    result = resolve({}, (ANON, message))
    assert (result.outputs, result.dead_letters, result.writes[ALIASES]) == ([], [], {})


def test_a_broken_record_is_a_dead_letter_and_the_rest_proceed() -> None:
    message = EventMessage(visit())
    result = resolve(
        {},
        (ANON, Link("anon:a1", "C000001")),
        (ANON, b"{not json"),
        (ANON, orjson.dumps({"link": {"token": "anon:a1"}})),
        (ANON, message),
    )
    assert [dead.position for dead in result.dead_letters] == [1, 2]
    assert {d.rejection.reason for d in result.dead_letters} == {DlqReason.PROCESSING_ERROR}
    assert result.dead_letters[0].rejection.detail.startswith("MessageError: not JSON")
    assert result.writes[ALIASES] == {ANON: CUSTOMER}
    assert decode(result.outputs[-1].value) == message.routed_to("C000001")


def test_the_alias_table_is_only_read() -> None:
    aliases = {ANON: CUSTOMER}
    resolve(aliases, (ANON, Unlink("anon:a1", "C000001")), (b"anon:b2", Link("anon:b2", "C2")))
    assert aliases == {ANON: CUSTOMER}
