"""The identity stage's Kafka side: the resolve agent's work and the profile operations.

The rules are pure (``stream.core.resolve``, ``stream.core.merge``); this module applies
them to the tables and sends the messages they call for:

- ``resolve``: on the identity-events topic (keyed by identifier token), route an event
  to its profile through the alias table, or apply a link or unlink;
- ``operate``: on the customer-events topic (keyed by profile), merge a profile out
  (leaving a ``Moved`` stub) or in, note a conflict, or erase it;
- ``redirect``: a message for a merged profile goes on to the survivor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from stream.config import Topics
from stream.core.decide import Policy
from stream.core.merge import merge_states
from stream.core.resolve import LinkOutcome, decide_link
from stream.core.state import CustomerState, Limits, new_state
from stream.shell.clock import Clock, wall_ms
from stream.shell.metrics import Metrics

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Moved:
    """What is left of a profile merged into another: where its messages go now."""

    into: str


def load_profile(stored: bytes | None) -> CustomerState | Moved | None:
    """A stored customer-table value: a profile, the stub of a merged one, or nothing."""
    if stored is None:
        return None
    data = orjson.loads(stored)
    if "merged_into" in data:
        return Moved(data["merged_into"])
    return CustomerState.from_dict(data)


@dataclass
class IdentityStage:
    """Applies identity links, merges and erasures for one worker."""

    aliases: Any  # faust Table[bytes, bytes]: identifier token -> customer key
    send: Send
    topics: Topics
    metrics: Metrics
    limits: Limits
    clock: Clock

    async def resolve(self, key: bytes, record: dict[str, Any], policy: Policy) -> None:
        """One identity-events record: route an event to its profile, or apply a link."""
        if "event" in record:
            alias = self.aliases.get(key)
            canonical = alias.decode() if alias is not None else key.decode()
            record["event"]["customer_key"] = canonical
            await self.send(self.topics.customer_events, canonical.encode(), record)
        elif "link" in record:
            token, canonical = record["link"]["token"], record["link"]["canonical"]
            current = self.aliases.get(key)
            resolved = current.decode() if current is not None else None
            link = decide_link(token, canonical, resolved, policy.identity)
            self.metrics.identity_links.labels(link.outcome.value).inc()
            if link.alias is not None:
                self.aliases[key] = link.alias.encode()
            if link.merge_from is not None:
                merge = {"merge": {"from": link.merge_from, "into": canonical}}
                await self.send(self.topics.customer_events, link.merge_from.encode(), merge)
            if link.follow is not None:
                follow = {"link": {"token": link.follow[0], "canonical": link.follow[1]}}
                await self.send(self.topics.identity_events, link.follow[0].encode(), follow)
            if link.outcome is LinkOutcome.CONFLICT:
                log.warning(
                    "identity conflict: %s is %s's, also seen on %s", token, resolved, canonical
                )
                conflict = {
                    "conflict": {
                        "token": token,
                        "belongs_to": resolved,
                        "at_ms": self.clock.now_ms(),
                    }
                }
                await self.send(self.topics.customer_events, canonical.encode(), conflict)
        elif "unlink" in record:
            unlink = record["unlink"]
            if self.aliases.get(key) == unlink["canonical"].encode():
                del self.aliases[key]
            if unlink.get("erase"):
                stub = {"erase_stub": {"canonical": unlink["canonical"]}}
                await self.send(self.topics.customer_events, key, stub)

    async def send_links(
        self,
        state: CustomerState,
        links: Iterable[str],
        unlinks: Iterable[str],
        erase: bool = False,
    ) -> None:
        """Tell the resolve stage which tokens belong to (or left) this profile."""
        canonical = state.customer_key
        for token in links:
            link = {"link": {"token": token, "canonical": canonical}}
            await self.send(self.topics.identity_events, token.encode(), link)
        for token in unlinks:
            unlink = {"unlink": {"token": token, "canonical": canonical, "erase": erase}}
            await self.send(self.topics.identity_events, token.encode(), unlink)

    async def redirect(self, record: dict[str, Any], moved: Moved) -> None:
        """A message for a merged profile goes on to the profile it merged into."""
        if "tick" in record or "merge" in record:
            return  # its deadlines moved with its state; nothing is left to merge
        if "event" in record:
            record["event"]["customer_key"] = moved.into
        self.metrics.identity_redirects.inc()
        await self.send(self.topics.customer_events, moved.into.encode(), record)

    async def operate(
        self, record: dict[str, Any], key: bytes, state: CustomerState | None
    ) -> CustomerState | Moved | None:
        """Merge out, merge in, conflict notes and erasure, on the profile's own partition."""
        if "merge" in record:
            into = record["merge"]["into"]
            if state is None:
                return None
            incoming = {"merge_in": {"from": key.decode(), "state": state.to_dict()}}
            await self.send(self.topics.customer_events, into.encode(), incoming)
            self.metrics.identity_merges.inc()
            return Moved(into)
        if "merge_in" in record:
            source = record["merge_in"]["from"]
            merge_id = f"merge:{source}"
            if state is not None and merge_id in state.seen_event_ids:
                return state  # a redelivered merge: applied once already
            other = CustomerState.from_dict(record["merge_in"]["state"])
            merged = merge_states(state or new_state(key.decode()), other, self.limits)
            merged.seen_event_ids.append(merge_id)
            # The merged profile's other identifiers now belong here too.
            await self.send_links(merged, [t for t in other.linked if t != merged.customer_key], [])
            return merged
        if "conflict" in record and state is not None:
            updated = state.copy()
            updated.identity_conflicts = [*state.identity_conflicts, record["conflict"]][-20:]
            return updated
        if "erase" in record:
            linked = state.linked if state is not None else []
            if state is not None:
                await self.send_links(state, [], [*linked], erase=True)
                self.metrics.erasures.inc()
                log.info("erased customer %s and %d identifier(s)", key.decode(), len(linked))
            # Requested for an identifier merged into this profile: the person is erased.
            requested_for = record["erase"].get("requested_for") or key.decode()
            audit = {
                "customer_id": key.decode(),
                "requested_for": requested_for,
                "found": state is not None,
                "identifiers_removed": len(linked),
                "erased_at_ms": wall_ms(),
            }
            await self.send(self.topics.erasures, requested_for.encode(), audit)
            return None
        return state
