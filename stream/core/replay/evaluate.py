"""``journey evaluate-policy``'s core: a candidate's expected reward, from logged decisions.

Each decision the live worker logged (its explain record: the choice and how likely the
policy in force was to make it) is a round. Its context is the customer's state at that
moment, rebuilt by replaying the log with the policy in force; the candidate decides on
that same state (a shadow fold, never written), which gives how likely it was to make
the logged choice, and its whole distribution of choices. The round's reward comes from
the outcomes the log holds for the actions the decision sent: clicks, conversions and
the conversions' value. ``stream.core.ope`` turns the rounds into IPS, SNIPS and DR
estimates with intervals.

Probabilities here are the selection's (the Thompson draws' shares): the holdout group
and experiment arms are the same for both policies (``journey evaluate-policy`` refuses a
candidate that changes them), so their shares cancel in every weight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.decide import Decision, Policy
from stream.core.decide.probability import DRAWS, NOTHING
from stream.core.fold import FoldContext, fold_partition
from stream.core.holds import RELEASE_TRIGGER
from stream.core.messages import Firing, Message, OutcomeMessage, encode
from stream.core.money import value_of
from stream.core.ope import Round, cross_fit, evaluate
from stream.core.replay.log import Clock, LogRecord, processing_ms
from stream.core.replay.side import Side, decoded

METRICS = ("clicks", "conversions", "value")
UNSUPPORTED_KEPT = 10  # candidate choices the log never tried, named in the report


@dataclass(frozen=True, slots=True)
class Logged:
    """What the live worker logged for one decision."""

    choice: str
    share: float  # the logging policy's probability of the choice (selection only)
    shares: Mapping[str, float]  # its distribution of choices (one choice: deterministic)
    sent: tuple[str, ...]  # the action ids it sent
    stage: str


def logged_from_record(record: Mapping[str, Any]) -> Logged | None:
    """A decision record as a round's logged half; None for one written before records
    had a ``probability``, and for releases of held actions (not decisions)."""
    if "probability" not in record or record["trigger"]["type"] == RELEASE_TRIGGER:
        return None
    choice = str(record.get("choice", ""))
    drawn = {str(k): float(v) for k, v in (record.get("choices") or {}).items()}
    shares = drawn or {choice: 1.0}
    share = max(shares.get(choice, 0.0), 0.5 / DRAWS)
    return Logged(choice, share, shares, tuple(record.get("chosen", ())), str(record["stage"]))


def logged_key(record: Mapping[str, Any]) -> bytes:
    """The key a logged decision is found by: its decision id."""
    return str(record["decision_id"]).encode()


def encode_logged(logged: Logged) -> bytes:
    """A logged decision in a store."""
    return orjson.dumps(
        [logged.choice, logged.share, dict(logged.shares), list(logged.sent), logged.stage]
    )


def decode_logged(raw: bytes) -> Logged:
    """Inverse of ``encode_logged``."""
    choice, share, shares, sent, stage = orjson.loads(raw)
    return Logged(choice, share, shares, tuple(sent), stage)


def target_shares(decision: Decision | None) -> dict[str, float]:
    """The candidate's distribution of choices for a decision (None: it makes none)."""
    if decision is None:
        return {NOTHING: 1.0}
    shares = dict(decision.choices) or {decision.choice: 1.0}
    total = sum(shares.values())
    return {choice: share / total for choice, share in shares.items()}


@dataclass
class _Round:
    logged: Logged
    target: dict[str, float]
    rewards: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


@dataclass
class Collected:
    """The rounds of a window and what could not be used."""

    rounds: list[_Round] = field(default_factory=list)
    source: str = ""  # where the window came from
    records: int = 0  # records of the window replayed
    logged_missing: int = 0  # replayed decisions with no logged record (older, or not sent)
    failed: int = 0  # records the fold could not process (skipped, as the worker does)
    by_action: dict[str, int] = field(default_factory=dict)  # sent action id -> round
    unsupported: Counter[str] = field(default_factory=Counter)  # candidate choices never tried
    unsupported_mass: float = 0.0

    def add(self, logged: Logged, target: dict[str, float]) -> None:
        """A round: its logged half and the candidate's distribution."""
        index = len(self.rounds)
        self.rounds.append(_Round(logged, target))
        for action_id in logged.sent:
            self.by_action[action_id] = index
        for choice, share in target.items():  # sending nothing earns nothing: known
            if share > 0 and choice != NOTHING and logged.shares.get(choice, 0.0) == 0.0:
                self.unsupported[choice] += 1
                self.unsupported_mass += share

    def reward(self, message: OutcomeMessage) -> None:
        """Count an outcome for the round whose decision sent its action."""
        index = self.by_action.get(message.outcome.action_id)
        if index is None:
            return
        rewards = self.rounds[index].rewards
        if message.outcome.outcome == "clicked":
            rewards[0] = 1.0
        elif message.outcome.outcome == "converted":
            rewards[1] = 1.0
            rewards[2] += value_of(message.outcome.detail)


def collect(
    records: Iterable[LogRecord],
    current: Side,
    candidate: Policy,
    logged: Callable[[str], Logged | None],
    context: Callable[[int, Policy], FoldContext],
    clock: Clock,
    source: str = "",
) -> Collected:
    """Replay the log with the policy in force (firing its own deadlines, as in
    ``simulate``); at each logged decision, ask the candidate."""
    collected = Collected(source=source)
    ask = _Asker(collected, current, candidate, logged, context)
    for record in records:
        collected.records += 1
        message = decoded(record.value, current)
        if message is None:
            continue
        if isinstance(message, OutcomeMessage):
            collected.reward(message)
        now_ms = processing_ms(record, message, clock)
        for partition, key, firing in current.due(now_ms):
            ask(partition, key, firing, firing.due_ms)
        if not isinstance(message, Firing):
            ask(record.partition, record.key, message, now_ms)
    collected.failed = current.summary.failed
    return collected


@dataclass
class _Asker:
    """Folds a message with the policy in force and, on the same state, the candidate's
    shadow; each logged decision becomes a round."""

    collected: Collected
    current: Side
    candidate: Policy
    logged: Callable[[str], Logged | None]
    context: Callable[[int, Policy], FoldContext]

    def __call__(self, partition: int, key: bytes, message: Message, now_ms: int) -> None:
        """One message at ``now_ms``."""
        context = self.context(now_ms, self.candidate)
        shadow = fold_partition(partition, [(key, encode(message))], self.current.tables, context)
        theirs = {decision.decision_id: decision for decision in shadow.decisions}
        for decision in self.current.apply(partition, key, message, now_ms):
            found = self.logged(decision.decision_id)
            if found is None:
                self.collected.logged_missing += 1
                continue
            self.collected.add(found, target_shares(theirs.get(decision.decision_id)))


def estimates(collected: Collected, confidence: float = 0.95) -> dict[str, Any]:
    """Every metric's estimates (``ope.evaluate``) for the collected rounds."""
    result: dict[str, Any] = {}
    for index, metric in enumerate(METRICS):
        rewards = [round_.rewards[index] for round_ in collected.rounds]
        keys = [f"{r.logged.choice}|{r.logged.stage}" for r in collected.rounds]
        targets = [
            {f"{choice}|{r.logged.stage}": share for choice, share in r.target.items()}
            for r in collected.rounds
        ]
        predicted, expected = cross_fit(keys, rewards, targets)
        rounds = [
            Round(r.logged.share, reward, r.target.get(r.logged.choice, 0.0), guess, value)
            for r, reward, guess, value in zip(
                collected.rounds, rewards, predicted, expected, strict=True
            )
        ]
        result[metric] = evaluate(rounds, confidence).to_dict()
    return result


def support(collected: Collected) -> dict[str, Any]:
    """Where the candidate would do what the policy in force never did."""
    rounds = len(collected.rounds)
    return {
        "rounds": rounds,
        "unsupported_share": collected.unsupported_mass / rounds if rounds else 0.0,
        "unsupported_choices": dict(collected.unsupported.most_common(UNSUPPORTED_KEPT)),
        "logged_missing": collected.logged_missing,
        "failed_records": collected.failed,
    }
