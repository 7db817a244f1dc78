"""The resolve step's pure batch: route events to their profile, apply identity links.

The identity-events topic is keyed by identifier token; the alias table (token ->
customer key) is partitioned the same way. ``resolve_partition`` takes one partition's
batch and a read-only view of the alias table, and returns the events addressed to their
profile on the customer-events topic, the alias writes, and what links call for: a
``Merge`` for the profile a token had of its own, a follow-up ``Link``, a ``Conflict``
note for the profile that saw another customer's token, an ``EraseStub``. The rules
themselves are ``stream.core.resolve.decide_link``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from stream.core.batch import BatchResult, Destination, Output, Writes, processing_error
from stream.core.decide import Policy
from stream.core.messages import (
    Conflict,
    EraseStub,
    EventMessage,
    Link,
    Merge,
    Message,
    MessageError,
    Unlink,
    decode,
    encode,
)
from stream.core.resolve import LinkOutcome, decide_link
from stream.core.stored import ALIASES

Aliases = Callable[[bytes], bytes | None]  # the alias table's value of a token, or None


def resolve_partition(
    records: Sequence[tuple[bytes | None, bytes | None]],
    aliases: Aliases,
    policy: Policy,
    now_ms: int,
) -> BatchResult:
    """Apply one partition's batch of the identity-events topic, in order."""
    batch = _ResolveBatch(aliases, policy, now_ms)
    for position, (key, value) in enumerate(records):
        try:
            if key is None:
                raise MessageError("an identity-events record without a key")
            batch.apply(key, decode(value))
        except Exception as exc:  # a bug must not stop the stream: park the record
            batch.result.dead_letters.append(processing_error(position, exc))
    batch.result.writes[ALIASES] = batch.aliases_written
    return batch.result


class _ResolveBatch:
    def __init__(self, aliases: Aliases, policy: Policy, now_ms: int) -> None:
        self.stored_alias = aliases
        self.policy = policy
        self.now_ms = now_ms
        self.result = BatchResult()
        self.aliases_written: Writes = {}

    def alias(self, key: bytes) -> bytes | None:
        """The token's alias as this batch left it so far."""
        if key in self.aliases_written:
            return self.aliases_written[key]
        return self.stored_alias(key)

    def apply(self, key: bytes, message: Message) -> None:
        """One record: route an event, or apply a link or an unlink."""
        if isinstance(message, EventMessage):
            alias = self.alias(key)
            canonical = alias.decode() if alias is not None else key.decode()
            self.send(Destination.CUSTOMER_EVENTS, canonical, message.routed_to(canonical))
        elif isinstance(message, Link):
            self.link(key, message)
        elif isinstance(message, Unlink):
            if self.alias(key) == message.canonical.encode():
                self.aliases_written[key] = None
            if message.erase:
                self.send(Destination.CUSTOMER_EVENTS, key.decode(), EraseStub(message.canonical))

    def link(self, key: bytes, message: Link) -> None:
        """Apply ``decide_link``: the alias, a merge, a follow-up link, a conflict note."""
        current = self.alias(key)
        resolved = current.decode() if current is not None else None
        link = decide_link(message.token, message.canonical, resolved, self.policy.identity)
        self.result.tally.count("identity_links", link.outcome.value)
        if link.alias is not None:
            self.aliases_written[key] = link.alias.encode()
        if link.merge_from is not None:
            merge = Merge(link.merge_from, message.canonical)
            self.send(Destination.CUSTOMER_EVENTS, link.merge_from, merge)
        if link.follow is not None:
            token, canonical = link.follow
            self.send(Destination.IDENTITY_EVENTS, token, Link(token, canonical))
        if link.outcome is LinkOutcome.CONFLICT:
            self.result.note(
                f"identity conflict: {message.token} is {resolved}'s, "
                f"also seen on {message.canonical}",
                logging.WARNING,
            )
            conflict = Conflict(message.token, resolved, self.now_ms)
            self.send(Destination.CUSTOMER_EVENTS, message.canonical, conflict)

    def send(self, destination: Destination, key: str, message: Message) -> None:
        self.result.outputs.append(_output(destination, key, message))


def _output(destination: Destination, key: str, message: Message) -> Output:
    return Output(destination, key.encode(), encode(message))
