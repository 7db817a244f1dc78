"""The typed messages of the two internal topics, and their JSON wire form.

``internal.identity-events`` is keyed by identifier token and carries ``EventMessage``,
``Link`` and ``Unlink``. ``internal.customer-events`` is keyed by customer (profile) key
and carries ``EventMessage``, ``Firing``, ``OutcomeMessage``, ``Merge``, ``MergeIn``,
``Conflict``, ``Erase`` and ``EraseStub``. On the wire each is a JSON object with one
kind key (``{"firing": {...}}``); ``docs/topics.md`` documents every field.

Messages are frozen and built only here: the steps decode a record once, dispatch on its
type, and encode what the core returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from stream.core.events import Event
from stream.core.outcomes import Outcome


class MessageError(ValueError):
    """A record of an internal topic that is not one of its message kinds."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    """A validated event on its way to, or at, its profile."""

    event: Event
    ingress_ts_ms: int | None = None  # the ingress record's Kafka timestamp

    def routed_to(self, customer_key: str) -> EventMessage:
        """The same event addressed to another profile (an alias or a merge survivor)."""
        return EventMessage(replace(self.event, customer_key=customer_key), self.ingress_ts_ms)


@dataclass(frozen=True, slots=True)
class Firing:
    """The scheduler's word that a customer's earliest deadline has passed."""

    due_ms: int
    sent_at_ms: int


@dataclass(frozen=True, slots=True)
class OutcomeMessage:
    """A sender's validated outcome, re-keyed to the customer's partition."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Link:
    """Identifier ``token`` belongs to profile ``canonical`` (keyed by the token)."""

    token: str
    canonical: str


@dataclass(frozen=True, slots=True)
class Unlink:
    """Identifier ``token`` left profile ``canonical``; ``erase``: the person was erased."""

    token: str
    canonical: str
    erase: bool = False


@dataclass(frozen=True, slots=True)
class Merge:
    """Profile ``source`` belongs to ``into``: move its state there (keyed by ``source``)."""

    source: str
    into: str


@dataclass(frozen=True, slots=True)
class MergeIn:
    """The state of profile ``source``, to fold into the profile this is keyed by."""

    source: str
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Identifier ``token`` was seen on this profile but belongs to ``belongs_to``."""

    token: str
    belongs_to: str | None
    at_ms: int


@dataclass(frozen=True, slots=True)
class Erase:
    """The right to erasure for the profile this is keyed by (``journey forget``)."""

    requested_at_ms: int
    requested_for: str | None = None


@dataclass(frozen=True, slots=True)
class EraseStub:
    """Delete the stub of a profile merged into ``canonical``, which was erased."""

    canonical: str


IdentityMessage = EventMessage | Link | Unlink
CustomerMessage = (
    EventMessage | Firing | OutcomeMessage | Merge | MergeIn | Conflict | Erase | EraseStub
)
Message = IdentityMessage | CustomerMessage


def encode(message: Message) -> bytes:
    """The wire form of a message."""
    return orjson.dumps(to_record(message))


def to_record(message: Message) -> dict[str, Any]:
    """The JSON-ready object of a message: one kind key, its fields beneath."""
    match message:
        case EventMessage(event, ingress_ts_ms):
            return {"event": event.to_record(), "ingress_ts_ms": ingress_ts_ms}
        case Firing(due_ms, sent_at_ms):
            return {"firing": {"due_ms": due_ms, "sent_at_ms": sent_at_ms}}
        case OutcomeMessage(outcome):
            return {"outcome": outcome.to_record()}
        case Link(token, canonical):
            return {"link": {"token": token, "canonical": canonical}}
        case Unlink(token, canonical, erase):
            return {"unlink": {"token": token, "canonical": canonical, "erase": erase}}
        case Merge(source, into):
            return {"merge": {"from": source, "into": into}}
        case MergeIn(source, state):
            return {"merge_in": {"from": source, "state": state}}
        case Conflict(token, belongs_to, at_ms):
            return {"conflict": {"token": token, "belongs_to": belongs_to, "at_ms": at_ms}}
        case Erase(requested_at_ms, requested_for):
            return {"erase": {"requested_at_ms": requested_at_ms, "requested_for": requested_for}}
        case EraseStub(canonical):
            return {"erase_stub": {"canonical": canonical}}
    raise TypeError(f"not an internal message: {message!r}")  # pragma: no cover


def decode(raw: bytes | None) -> Message:
    """A record of an internal topic as its typed message; MessageError names what is wrong."""
    try:
        record = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise MessageError(f"not an object: {type(record).__name__}")
    try:
        return from_record(record)
    except (KeyError, TypeError) as exc:
        raise MessageError(f"{sorted(record)[:3]}: missing or bad field {exc}") from None


def from_record(record: dict[str, Any]) -> Message:
    """The typed message of a JSON object (``to_record``'s inverse)."""
    for kind, build in _DECODERS.items():
        body = record.get(kind)
        if body is not None:
            message: Message = build(body, record)
            return message
    raise MessageError(f"no message kind among the keys {sorted(record)}")


def _event(body: dict[str, Any], record: dict[str, Any]) -> EventMessage:
    return EventMessage(Event.from_record(body), record.get("ingress_ts_ms"))


def _firing(body: dict[str, Any], record: dict[str, Any]) -> Firing:
    return Firing(int(body["due_ms"]), int(body["sent_at_ms"]))


def _erase(body: dict[str, Any], record: dict[str, Any]) -> Erase:
    return Erase(int(body.get("requested_at_ms") or 0), body.get("requested_for"))


_DECODERS: dict[str, Any] = {
    "event": _event,
    "firing": _firing,
    "tick": _firing,  # the firing's name before 2026-12: still read from older logs
    "outcome": lambda body, _: OutcomeMessage(Outcome.from_record(body)),
    "link": lambda body, _: Link(body["token"], body["canonical"]),
    "unlink": lambda body, _: Unlink(
        body["token"], body["canonical"], bool(body.get("erase", False))
    ),
    "merge": lambda body, _: Merge(body["from"], body["into"]),
    "merge_in": lambda body, _: MergeIn(body["from"], body["state"]),
    "conflict": lambda body, _: Conflict(body["token"], body.get("belongs_to"), body["at_ms"]),
    "erase": _erase,
    "erase_stub": lambda body, _: EraseStub(body["canonical"]),
}
