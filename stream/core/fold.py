"""The process step's pure batch fold: where events, firings and outcomes become state.

``fold_partition`` takes one partition's micro-batch of the customer-events topic, a
read-only view of what the tables hold, and the batch's clock, policy and model. It
applies each message to its profile in offset order (``step``, ``fire``, ``observe``, or
an identity operation) and returns a ``BatchResult``: every message to send, every table
write, the scheduler's deadlines and what to count. The worker and the fault tests'
replay of the log both run exactly this.

The rules that live here:
- a merged profile's stub forwards every message to the survivor, except firings and
  merges (its deadlines and state moved with it) and ``EraseStub`` (which deletes it);
- an outcome for a customer never decided for is counted and dropped;
- a firing that fails (a bug) is retried ``firing_retry_ms`` later, not at once;
- the census changes by each touched profile's delta, plus profiles created or merged
  away (``census.people``) and stage transitions; erasing a profile deletes its decision
  history too;
- what the batch sent, exposed, converted and heard back is added to today's performance
  row of the partition (``stream.core.performance``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from stream.core import census, performance
from stream.core.batch import (
    BatchResult,
    Destination,
    Latency,
    Output,
    Writes,
    processing_error,
)
from stream.core.decide import Decision, Policy
from stream.core.holds import RELEASE_TRIGGER
from stream.core.merge import CONFLICTS_KEPT, merge_in
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
from stream.core.pipeline import StepResult, fire, observe, step
from stream.core.propensity import PropensityModel, UpdateKind
from stream.core.state import CustomerState, Limits
from stream.core.stored import (
    CENSUS,
    CUSTOMERS,
    DECISIONS,
    DUE,
    Moved,
    Profile,
    census_key,
    decision_deletes,
    decision_writes,
    due_entry,
    dump_profile,
    load_profile,
)


class StoredView(Protocol):
    """Read access to the process step's tables, as they stand before the batch."""

    def profile(self, key: bytes) -> bytes | None:
        """The customers-table value of a key."""

    def due(self, key: bytes) -> bytes | None:
        """The due-table value of a key."""

    def decisions(self, key: bytes) -> bytes | None:
        """The decisions-table value of a key."""

    def census(self, partition: int) -> bytes | None:
        """The census row of a partition."""

    def census_row(self, key: bytes) -> bytes | None:
        """The census-table value of a key (the performance rows)."""


def _no_stopwatch() -> float:
    return 0.0


@dataclass(frozen=True, slots=True)
class FoldContext:
    """What every message of a batch is folded with."""

    now_ms: int  # the processing clock at the batch's start
    wall_ms: int  # real time: the erasure audit's stamp
    policy: Policy
    model: PropensityModel
    limits: Limits
    decisions_kept: int  # explain records kept per customer
    firing_retry_ms: int  # a failed firing is retried this much later
    clock_speed: float = 1.0  # processing ms per real ms (the simulator runs faster)
    stopwatch: Callable[[], float] = _no_stopwatch  # times decisions; perf_counter live


Record = tuple[bytes | None, bytes | None]  # (Kafka key, value) of one customer-events record


def fold_partition(
    partition: int, records: Sequence[Record], stored: StoredView, context: FoldContext
) -> BatchResult:
    """Apply one partition's batch, in order, to the stored profiles; see the module."""
    fold = _PartitionFold(stored, context)
    for position, (key, value) in enumerate(records):
        fold.apply(position, key, value)
    return fold.finish(partition)


class _PartitionFold:
    """The profiles one batch touches and what the batch has produced so far."""

    def __init__(self, stored: StoredView, context: FoldContext) -> None:
        self.stored = stored
        self.context = context
        self.result = BatchResult()
        self.profiles: dict[bytes, Profile] = {}
        self.counted: dict[bytes, Counter[str]] = {}  # census share before the batch
        self.flows: Counter[str] = Counter()  # stage transitions
        self.explained: dict[bytes, list[dict[str, Any]]] = {}  # new explain records
        self.fresh: set[bytes] = set()  # no profile before: created if it gets one
        self.dirty: set[bytes] = set()
        self.pristine: set[bytes] = set()  # decoded from the store, not yet stepped
        self.retry: set[bytes] = set()
        self.ring_written: dict[bytes, list[bytes]] = {}  # decisions-table keys, by customer
        self.performance: Counter[str] = Counter()  # today's performance counts

    def apply(self, position: int, key: bytes | None, value: bytes | None) -> None:
        """Apply one record; a failure is a dead letter, and the batch goes on."""
        message: Message | None = None
        try:
            if key is None:
                raise MessageError("a customer-events record without a key")
            message = decode(value)
            self._apply(key, message, self._load(key))
        except Exception as exc:  # a bug must not stop the stream: park the record
            self.result.dead_letters.append(processing_error(position, exc))
            if isinstance(message, Firing) and key is not None:
                self.retry.add(key)  # the deadlines stay; retry them later, not at once

    def _load(self, key: bytes) -> Profile:
        if key not in self.profiles:
            profile = load_profile(self.stored.profile(key))
            self.profiles[key] = profile
            self.counted[key] = census.summary(profile)
            if profile is None:
                self.fresh.add(key)
            elif isinstance(profile, CustomerState):
                self.pristine.add(key)
        return self.profiles[key]

    def _set(self, key: bytes, profile: Profile) -> None:
        if profile is not self.profiles[key]:
            self.profiles[key] = profile
            self.dirty.add(key)

    def _apply(self, key: bytes, message: Message, profile: Profile) -> None:
        if isinstance(profile, Moved):
            self._at_stub(key, message, profile)
        elif isinstance(profile, CustomerState) and isinstance(message, Firing):
            self._fire(key, profile, message)
        elif isinstance(message, EventMessage):
            self._step(key, message, profile)
        elif isinstance(message, OutcomeMessage):
            self._observe(key, message, profile)
        elif isinstance(message, Merge | MergeIn | Conflict | Erase):
            self._set(key, self._identity(key, message, profile))

    def _at_stub(self, key: bytes, message: Message, stub: Moved) -> None:
        """A merged profile's stub: forward the message to the survivor, or go."""
        if isinstance(message, EraseStub):
            self._set(key, None)  # the profile it merged into is erased: the stub goes too
        elif not isinstance(message, Firing | Merge | Link | Unlink):
            forwarded = (
                message.routed_to(stub.into) if isinstance(message, EventMessage) else message
            )
            self.result.tally.count("identity_redirects")
            self._send(Destination.CUSTOMER_EVENTS, stub.into, encode(forwarded))

    def _timed(self, kind: str, started: float) -> None:
        elapsed = self.context.stopwatch() - started
        self.result.tally.observe("decision_seconds", elapsed, kind)

    def _fire(self, key: bytes, state: CustomerState, firing: Firing) -> None:
        started = self.context.stopwatch()
        result = fire(state, self.context.now_ms, self.context.policy, self.context.model)
        self._timed("firing", started)
        if result.fired or result.decisions:
            lag_ms = max(0, self.context.now_ms - firing.due_ms)
            self.result.tally.observe("timer_fire_lag", lag_ms / self.context.clock_speed / 1000)
        self._settle(key, result)

    def _step(self, key: bytes, message: EventMessage, state: Profile) -> None:
        context = self.context
        started = context.stopwatch()
        # A profile straight from the store is stepped in place: no copy. If the step
        # fails, the stored bytes give it back unchanged; later events of the batch copy.
        owned = key in self.pristine
        self.pristine.discard(key)
        try:
            result = step(
                state if isinstance(state, CustomerState) else None,
                message.event,
                context.now_ms,
                context.limits,
                context.policy,
                context.model,
                owned=owned,
            )
        except Exception:
            if owned:  # the half-updated profile goes; the stored one is pristine again
                self.profiles[key] = load_profile(self.stored.profile(key))
                self.pristine.add(key)
            raise
        self._timed("event", started)
        if owned and not result.duplicate:
            self.dirty.add(key)  # updated in place: the same object, changed
        if self._settle(key, result):
            sent = bool(result.to_send)
            occurred = message.event.occurred_at_ms if sent else None
            self.result.latencies.append(Latency(message.ingress_ts_ms, occurred, sent))

    def _observe(self, key: bytes, message: OutcomeMessage, state: Profile) -> None:
        outcome = message.outcome
        if not isinstance(state, CustomerState):  # never decided for: nothing to match
            self.result.tally.count(
                "outcomes", outcome.channel, outcome.outcome, "unknown_customer"
            )
            return
        started = self.context.stopwatch()
        context = self.context
        result = observe(state, outcome, context.policy, context.now_ms, context.model)
        self._timed("outcome", started)
        performance.count_outcome(self.performance, outcome, result)
        status = result.outcome.value if result.outcome else "applied"
        self.result.tally.count("outcomes", outcome.channel, outcome.outcome, status)
        self._settle(key, result)

    def _settle(self, key: bytes, result: StepResult) -> bool:
        """Keep a step's new state and emit what it produced; False for a duplicate."""
        if result.duplicate:
            self.result.tally.count("duplicates")
            return False
        self._set(key, result.state)
        if result.stage_change is not None:
            change = result.stage_change
            self.result.tally.count("stage_transitions", change.from_stage, change.to_stage)
            self.flows[census.moved(change.from_stage, change.to_stage)] += 1
        self._emit(key, result)
        return True

    def _emit(self, key: bytes, result: StepResult) -> None:
        """The step's explain records, actions, learning updates and identity links."""
        tally = self.result.tally
        for timer_update in result.timer_updates:
            tally.count("timer_updates", timer_update.timer, timer_update.change.value)
        for timer in result.fired:
            tally.count("timers_fired", timer.name)
        for action in result.held:
            tally.count("actions_held", action.channel)
        for move in result.journeys:
            version, node, what, detail, group = (
                move.version,
                move.node,
                move.what,
                move.detail,
                move.group,
            )
            tally.count("journey_moves", move.journey, version, node, what, detail, group)
            self.flows[census.journey_move(version, node, what, detail, group)] += 1
        for decision in result.decisions:
            self._explain(key, decision, result)
        for action in result.to_send:
            tally.count("actions", action.action, action.channel)
            value = orjson.dumps(action.to_message())
            self._send(Destination.ACTIONS, action.customer_id, value, action.channel)
        for update in result.learning:
            tally.count("learning_updates", update.kind.value)
            if update.kind is UpdateKind.EXPOSURE:
                tally.count("uplift_exposures", update.action, update.group)
            elif update.kind is UpdateKind.CONVERSION:
                tally.count("uplift_conversions", update.action, update.group)
            self._send(Destination.LEARNING, update.action, orjson.dumps(update.to_message()))
        self._links(result.state, result.links, result.unlinks)
        performance.count_step(self.performance, result)

    def _explain(self, key: bytes, decision: Decision, result: StepResult) -> None:
        """Count a decision, keep its explain record and send it."""
        tally = self.result.tally
        if decision.trigger.type == RELEASE_TRIGGER:
            candidate = decision.candidates[0]
            channel = decision.actions[0].channel if decision.actions else "none"
            again = bool(decision.actions) and decision.actions[0] in result.held
            reason = "held_again" if again else candidate.reason.value
            tally.count("held_releases", channel, reason)
        else:
            for candidate in decision.candidates:
                if not candidate.chosen:
                    tally.count("suppressions", candidate.action, candidate.reason.value)
            self.result.decisions.append(decision)
        record = decision.to_message()
        self.explained.setdefault(key, []).append(record)
        self._send(Destination.DECISIONS, decision.customer_id, orjson.dumps(record))

    def _links(
        self,
        state: CustomerState,
        links: Sequence[str],
        unlinks: Sequence[str],
        erase: bool = False,
    ) -> None:
        """Tell the resolve step which tokens belong to (or left) this profile."""
        canonical = state.customer_key
        for token in links:
            self._send(Destination.IDENTITY_EVENTS, token, encode(Link(token, canonical)))
        for token in unlinks:
            self._send(Destination.IDENTITY_EVENTS, token, encode(Unlink(token, canonical, erase)))

    def _identity(
        self, key: bytes, message: Merge | MergeIn | Conflict | Erase, state: Profile
    ) -> Profile:
        """Merge out, merge in, a conflict note or erasure: the profile's new stored form."""
        if not isinstance(state, CustomerState):
            if isinstance(message, MergeIn):
                return self._merge_in(key, message, None)
            if isinstance(message, Erase):
                self._erase(key, message, None)
            return state
        match message:
            case Merge(into=into):
                incoming = MergeIn(key.decode(), state.to_dict())
                self._send(Destination.CUSTOMER_EVENTS, into, encode(incoming))
                self.result.tally.count("identity_merges")
                return Moved(into)
            case MergeIn():
                return self._merge_in(key, message, state)
            case Conflict():
                updated = state.copy()
                noted = [*state.identity_conflicts, _conflict_record(message)]
                updated.identity_conflicts = noted[-CONFLICTS_KEPT:]
                return updated
            case Erase():
                self._erase(key, message, state)
        return None

    def _merge_in(self, key: bytes, message: MergeIn, state: CustomerState | None) -> Profile:
        merged = merge_in(state, key.decode(), message.source, message.state, self.context.limits)
        if merged is None:
            return state  # a redelivered merge: applied once already
        # The merged profile's other identifiers now belong here too.
        other = message.state.get("linked", [])
        self._links(merged, [t for t in other if t != merged.customer_key], [])
        return merged

    def _erase(self, key: bytes, message: Erase, state: CustomerState | None) -> None:
        """Unlink every identifier and write the audit record (no personal data)."""
        linked = list(state.linked) if state is not None else []
        if state is not None:
            self._links(state, [], linked, erase=True)
            self.result.tally.count("erasures")
            self.result.note(f"erased customer {key.decode()} and {len(linked)} identifier(s)")
        # Requested for an identifier merged into this profile: the person is erased.
        requested_for = message.requested_for or key.decode()
        audit = {
            "customer_id": key.decode(),
            "requested_for": requested_for,
            "found": state is not None,
            "identifiers_removed": len(linked),
            "erased_at_ms": self.context.wall_ms,
        }
        self._send(Destination.ERASURES, requested_for, orjson.dumps(audit))

    def _send(self, destination: Destination, key: str, value: bytes, channel: str = "") -> None:
        self.result.outputs.append(Output(destination, key.encode(), value, channel))

    def finish(self, partition: int) -> BatchResult:
        """The batch's table writes and deadlines, after its last record."""
        self._write_census(partition)
        self.result.writes[CENSUS].update(
            performance.day_writes(self.performance, partition, self.context.now_ms, self.stored)
        )
        self._write_decisions()
        customers: Writes = {}
        due: Writes = {}
        now_ms = self.context.now_ms
        for key, profile in self.profiles.items():
            erased = key in self.dirty and profile is None
            if key in self.dirty:
                customers[key] = dump_profile(profile)
            if erased:
                self._forget_decisions(key)
            due_ms = profile.next_due_ms() if isinstance(profile, CustomerState) else None
            entry = due_entry(self.stored.due(key), due_ms, now_ms, erased)
            if entry.write:
                due[key] = entry.value
            self.result.deadlines[key] = entry.index_ms
            if key in self.retry and due_ms is not None:
                self.result.deadlines[key] = max(due_ms, now_ms + self.context.firing_retry_ms)
        self.result.writes[CUSTOMERS] = customers
        self.result.writes[DUE] = due
        return self.result

    def _write_census(self, partition: int) -> None:
        changes = [
            census.delta_from(self.counted[key], self.profiles[key])
            for key in self.dirty
            if key in self.counted
        ]
        flows = Counter({k: v for k, v in self.flows.items() if v})
        for key in self.dirty:
            flows.update(census.people(self.counted[key], self.profiles[key], key in self.fresh))
        changes.append(flows)
        self.result.writes[CENSUS] = {}
        if any(changes):
            stored = self.stored.census(partition)
            row = census.apply(orjson.loads(stored) if stored is not None else None, changes)
            self.result.writes[CENSUS][census_key(partition)] = orjson.dumps(row)

    def _forget_decisions(self, key: bytes) -> None:
        """An erased profile's decision history goes with it (nothing of this batch's)."""
        decisions = self.result.writes[DECISIONS]
        for written in self.ring_written.pop(key, ()):
            del decisions[written]
        kept = self.context.decisions_kept
        decisions.update(decision_deletes(key, self.stored.decisions(key), kept))

    def _write_decisions(self) -> None:
        kept = self.context.decisions_kept
        decisions: Writes = {}
        for key, records in self.explained.items():
            written = decision_writes(key, records, self.stored.decisions(key), kept)
            self.ring_written[key] = list(written)
            decisions.update(written)
        self.result.writes[DECISIONS] = decisions


def _conflict_record(conflict: Conflict) -> dict[str, Any]:
    return {"token": conflict.token, "belongs_to": conflict.belongs_to, "at_ms": conflict.at_ms}
