"""One policy's replay of a log: the worker's own batch fold, record by record.

Each record goes through ``fold_partition`` (exactly what the worker runs) on tables of
this side's own, at the time the worker handled it. Two things differ from a live run:

- a recorded outcome is applied only if this side sent that action on that channel;
  otherwise nobody knows what the customer would have done, and it is dropped (counted);
- a recorded merge carries the merged profile's state as the live worker had it; this
  side uses the state it built itself (its own ``MergeIn``) instead.

- each side fires its own deadlines (timers, journey waits, quiet-hours holds) at their
  due time, as the worker's scheduler would: the recorded firings were the policy in
  force's, and a candidate with a shorter wait must fire before them (``due``).

What the side decided and sent is added up in a ``Summary``.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.batch import BatchResult, Destination
from stream.core.decide import Decision, Policy, Reason
from stream.core.fold import FoldContext, fold_partition
from stream.core.messages import (
    Firing,
    MergeIn,
    Message,
    MessageError,
    OutcomeMessage,
    decode,
    encode,
)
from stream.core.propensity import PropensityModel
from stream.core.state import CustomerState, Limits
from stream.core.stored import Tables, load_profile

MESSAGES_KEPT = 10  # customers over the threshold named in the report


@dataclass
class Summary:
    """What one side decided and sent over the window."""

    decisions: int = 0
    messages: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    suppressions: Counter[str] = field(default_factory=Counter)
    cap_hits: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    journeys: dict[str, Counter[str]] = field(default_factory=dict)
    outcomes_kept: int = 0
    outcomes_dropped: int = 0
    failed: int = 0  # records the fold could not process (dead letters in the worker)
    failure: str = ""  # the first one's reason

    def count_decision(self, decision: Decision) -> None:
        """A decision's suppressions and cap hits (its sends are counted as outputs)."""
        self.decisions += 1
        for candidate in decision.candidates:
            if candidate.chosen:
                continue
            self.suppressions[candidate.reason.value] += 1
            if candidate.reason is Reason.CONTACT_CAP:
                self.cap_hits[cap_name(candidate.detail)] += 1

    def count_tally(self, result: BatchResult) -> None:
        """Journey entries, exits and conversions, and held messages, from a fold's tally."""
        for (name, *labels), amount in result.tally.counts.items():
            if name == "journey_moves" and labels[3] in ("entered", "exited", "converted"):
                self.journeys.setdefault(labels[0], Counter())[labels[3]] += amount
            elif name == "actions_held":
                self.held[labels[0]] += amount


def cap_name(detail: str) -> str:
    """The cap named in a ``contact_cap`` detail ("cap <name>: 3 per 24 h")."""
    name = detail.removeprefix("cap ").split(":", 1)[0]
    return name or "cap"


Store = MutableMapping[bytes, bytes]


class Side:
    """One policy replaying the log on its own tables."""

    def __init__(
        self,
        name: str,
        policy: Policy,
        tables: Tables,
        sent: Store,
        context: Callable[[int, Policy], FoldContext],
    ) -> None:
        self.name = name
        self.policy = policy
        self.tables = tables
        self.sent = sent  # messages per customer (decimal bytes), on disk for long windows
        self.context = context
        self.summary = Summary()
        self.merges: dict[tuple[bytes, str], bytes] = {}  # (into, from) -> own MergeIn
        self.deadlines: dict[bytes, tuple[int, int]] = {}  # key -> (earliest due, partition)
        self.queue: list[tuple[int, bytes]] = []  # (due, key), stale entries skipped

    def apply(self, partition: int, key: bytes, message: Message, now_ms: int) -> list[Decision]:
        """Fold one record; the decisions it made (releases of held actions left out)."""
        value = self._own_value(key, message)
        if value is None:
            return []
        context = self.context(now_ms, self.policy)
        result = fold_partition(partition, [(key, value)], self.tables, context)
        if result.dead_letters:  # the worker dead-lettered it too; the replay goes on
            self.summary.failed += 1
            self.summary.failure = self.summary.failure or str(result.dead_letters[0].rejection)
        self.tables.write(result.writes)
        self._track(partition, result)
        self._outputs(result)
        for decision in result.decisions:
            self.summary.count_decision(decision)
        self.summary.count_tally(result)
        return result.decisions

    def due(self, until_ms: int) -> Iterator[tuple[int, bytes, Firing]]:
        """This side's firings due by ``until_ms``, earliest first (fold each at its due
        time with ``apply``; a firing can arm the next deadline, which comes out too)."""
        while self.queue and self.queue[0][0] <= until_ms:
            due_ms, key = heapq.heappop(self.queue)
            entry = self.deadlines.get(key)
            if entry is not None and entry[0] == due_ms:
                yield entry[1], key, Firing(due_ms, due_ms)

    def _track(self, partition: int, result: BatchResult) -> None:
        for key, due_ms in result.deadlines.items():
            if due_ms is None:
                self.deadlines.pop(key, None)
            elif self.deadlines.get(key, (None, 0))[0] != due_ms:
                self.deadlines[key] = (due_ms, partition)
                heapq.heappush(self.queue, (due_ms, key))

    def _own_value(self, key: bytes, message: Message) -> bytes | None:
        """The record as this side folds it, or None to drop it (see the module)."""
        if isinstance(message, OutcomeMessage):
            if not self._sent_here(key, message):
                self.summary.outcomes_dropped += 1
                return None
            self.summary.outcomes_kept += 1
        if isinstance(message, MergeIn):
            return self.merges.pop((key, message.source), None) or encode(message)
        return encode(message)

    def _sent_here(self, key: bytes, message: OutcomeMessage) -> bool:
        profile = load_profile(self.tables.profile(key))
        if not isinstance(profile, CustomerState):
            return False
        outcome = message.outcome
        return any(
            contact["action_id"] == outcome.action_id and contact["channel"] == outcome.channel
            for contact in profile.contacts
        )

    def _outputs(self, result: BatchResult) -> None:
        for output in result.outputs:
            if output.destination is Destination.ACTIONS:
                self._count_action(orjson.loads(output.value))
            elif output.destination is Destination.CUSTOMER_EVENTS and output.key is not None:
                forwarded = decode(output.value)
                if isinstance(forwarded, MergeIn):
                    self.merges[(output.key, forwarded.source)] = output.value

    def _count_action(self, action: dict[str, Any]) -> None:
        summary = self.summary
        summary.messages += 1
        summary.actions[action["action"]] += 1
        summary.channels[action["channel"]] += 1
        summary.stages[action["stage"]] += 1
        customer = action["customer_id"].encode()
        self.sent[customer] = str(int(self.sent.get(customer, b"0")) + 1).encode()

    def messages_per_customer(self) -> Iterator[tuple[bytes, int]]:
        """Every customer this side sent a message to, and how many."""
        for customer, count in self.sent.items():
            yield customer, int(count)


def decoded(value: bytes, *sides: Side) -> Message | None:
    """A record's message, or None (counted as failed on every side) if it is not one:
    the worker dead-letters such a record."""
    try:
        return decode(value)
    except MessageError as exc:
        for side in sides:
            side.summary.failed += 1
            side.summary.failure = side.summary.failure or f"not a message: {exc}"
        return None


def new_context(
    limits: Limits, model: PropensityModel, decisions_kept: int
) -> Callable[[int, Policy], FoldContext]:
    """The fold context of a record handled at ``now_ms`` under ``policy``."""

    def context(now_ms: int, policy: Policy) -> FoldContext:
        return FoldContext(now_ms, now_ms, policy, model, limits, decisions_kept, 60_000)

    return context
