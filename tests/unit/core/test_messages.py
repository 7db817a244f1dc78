"""The internal topics' typed messages: one kind key on the wire, decoded back exactly."""

from __future__ import annotations

import orjson
import pytest

from stream.core.messages import (
    Conflict,
    Erase,
    EraseStub,
    EventMessage,
    Firing,
    Link,
    Merge,
    MergeIn,
    Message,
    MessageError,
    OutcomeMessage,
    Unlink,
    decode,
    encode,
)
from stream.core.outcomes import Outcome
from tests.unit.core.conftest import T0, build_event

EVENT = build_event("add_to_cart", properties={"product_id": "p1", "price": 20.0})
OUTCOME = Outcome("out-1", "act-1", "C000001", "email", "clicked", T0, {"url": "/shoes"})

EVERY_KIND: list[Message] = [
    EventMessage(EVENT, T0 - 25),
    EventMessage(EVENT),
    Firing(T0, T0 + 40),
    OutcomeMessage(OUTCOME),
    Link("anon:a1", "C000001"),
    Unlink("anon:a1", "C000001"),
    Unlink("anon:a1", "C000001", erase=True),
    Merge("anon:a1", "C000001"),
    MergeIn("anon:a1", {"customer_key": "anon:a1", "linked": ["phone:p"], "event_count": 3}),
    Conflict("loyalty:L1", "C000002", T0),
    Conflict("loyalty:L1", None, T0),
    Erase(T0, "anon:a1"),
    Erase(T0),
    EraseStub("C000001"),
]


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_kind_round_trips_through_its_wire_form(message: Message) -> None:
    assert decode(encode(message)) == message


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_the_wire_form_is_an_object_with_one_kind_key(message: Message) -> None:
    record = orjson.loads(encode(message))
    kinds = set(record) - {"ingress_ts_ms"}  # an event's ingress stamp sits beside it
    assert len(kinds) == 1


def test_the_wire_forms_keep_the_field_names_older_workers_wrote() -> None:
    assert orjson.loads(encode(Merge("anon:a1", "C1"))) == {
        "merge": {"from": "anon:a1", "into": "C1"}
    }
    assert orjson.loads(encode(MergeIn("anon:a1", {"x": 1}))) == {
        "merge_in": {"from": "anon:a1", "state": {"x": 1}}
    }
    assert orjson.loads(encode(Unlink("t", "C1", True))) == {
        "unlink": {"token": "t", "canonical": "C1", "erase": True}
    }
    assert orjson.loads(encode(EventMessage(EVENT, 7))) == {
        "event": EVENT.to_record(),
        "ingress_ts_ms": 7,
    }
    assert orjson.loads(encode(Erase(5, None))) == {
        "erase": {"requested_at_ms": 5, "requested_for": None}
    }


def test_a_legacy_tick_decodes_as_a_firing() -> None:
    legacy = orjson.dumps({"tick": {"due_ms": T0, "sent_at_ms": T0 + 9}})
    assert decode(legacy) == Firing(T0, T0 + 9)


def test_an_unlink_without_erase_is_not_an_erasure() -> None:
    raw = orjson.dumps({"unlink": {"token": "t", "canonical": "C1"}})
    assert decode(raw) == Unlink("t", "C1", erase=False)


def test_an_erase_request_without_a_time_decodes_with_time_zero() -> None:
    assert decode(orjson.dumps({"erase": {}})) == Erase(0, None)


@pytest.mark.parametrize("raw", [b"{not json", b"", None], ids=["broken", "empty", "tombstone"])
def test_bytes_that_are_not_json_are_a_message_error_saying_so(raw: bytes | None) -> None:
    with pytest.raises(MessageError, match="not JSON"):
        decode(raw)


@pytest.mark.parametrize(
    ("raw", "named"), [(b"[1, 2]", "list"), (b'"firing"', "str"), (b"3", "int")]
)
def test_json_that_is_not_an_object_is_a_message_error_naming_its_type(
    raw: bytes, named: str
) -> None:
    with pytest.raises(MessageError, match=f"not an object: {named}"):
        decode(raw)


def test_an_unknown_kind_is_a_message_error_naming_the_keys() -> None:
    with pytest.raises(MessageError, match=r"no message kind among the keys \['snooze'\]"):
        decode(orjson.dumps({"snooze": {"until_ms": 1}}))


def test_a_kind_with_a_missing_field_is_a_message_error_naming_the_field() -> None:
    with pytest.raises(MessageError, match="missing or bad field 'canonical'"):
        decode(orjson.dumps({"link": {"token": "anon:a1"}}))


def test_a_firing_with_a_non_numeric_deadline_is_a_message_error() -> None:
    with pytest.raises(MessageError):
        decode(orjson.dumps({"firing": {"due_ms": None, "sent_at_ms": 1}}))


def test_message_error_is_a_value_error() -> None:
    assert issubclass(MessageError, ValueError)


def test_routed_to_changes_only_the_customer_key() -> None:
    message = EventMessage(EVENT, T0 - 25)
    routed = message.routed_to("C000777")
    assert routed.event.customer_key == "C000777"
    assert routed.ingress_ts_ms == message.ingress_ts_ms
    before, after = message.event.to_record(), routed.event.to_record()
    assert {k: v for k, v in after.items() if k != "customer_key"} == {
        k: v for k, v in before.items() if k != "customer_key"
    }
    assert message.event.customer_key == "C000001"  # the original is untouched
