"""Where the two replays decided differently, and why, in a marketer's words.

Decisions are matched by id (customer and trigger), so the same event decided by both
policies is compared even when the state has drifted apart. An example reads "customer
X: cart_reminder@email -> cart_reminder@push, because email: contact_cap".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.core.decide import Candidate, Decision
from stream.core.decide.probability import NOTHING
from stream.core.timestamps import format_ms

PER_PATTERN = 2  # examples per (before, after) pair before the others get a turn


@dataclass
class Differences:
    """The decisions both replays made, those that differ, and a few explained."""

    customers: MutableMapping[bytes, bytes]  # customers with a difference (on disk if long)
    wanted: int = 10
    customer_count: int = 0
    compared: int = 0
    differ: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    patterns: Counter[tuple[str, str]] = field(default_factory=Counter)
    reserve: list[dict[str, str]] = field(default_factory=list)  # more of a known pattern

    def compare(self, before: Iterable[Decision], after: Iterable[Decision]) -> None:
        """Compare one record's decisions under the current and the candidate policy."""
        current = {decision.decision_id: decision for decision in before}
        candidate = {decision.decision_id: decision for decision in after}
        for decision_id in sorted(current.keys() | candidate.keys()):
            old, new = current.get(decision_id), candidate.get(decision_id)
            self.compared += 1
            if _choice(old) == _choice(new):
                continue
            self.differ += 1
            either = old or new
            assert either is not None
            customer = either.customer_id.encode()
            if self.customers.get(customer) is None:
                self.customers[customer] = b"1"
                self.customer_count += 1
            self._example(old, new, either)

    def _example(self, old: Decision | None, new: Decision | None, either: Decision) -> None:
        pattern = (_choice(old), _choice(new))
        if len(self.examples) >= self.wanted:
            return
        repeated = self.patterns[pattern] >= PER_PATTERN
        if repeated and len(self.reserve) >= self.wanted:
            return
        self.patterns[pattern] += 1
        (self.reserve if repeated else self.examples).append(
            {
                "customer": either.customer_id,
                "at": format_ms(either.decided_at_ms),
                "trigger": f"{either.trigger.type} ({either.trigger.channel})",
                "before": pattern[0],
                "after": pattern[1],
                "because": because(old, new),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The report's ``differences`` section."""
        return {
            "decisions_compared": self.compared,
            "decisions_differ": self.differ,
            "customers_differ": self.customer_count,
            "examples": [*self.examples, *self.reserve][: self.wanted],
        }


def _choice(decision: Decision | None) -> str:
    return decision.choice if decision is not None else NOTHING


def because(old: Decision | None, new: Decision | None) -> str:
    """Why the candidate decided otherwise: what became of the current choice's actions
    under the candidate, or of the candidate's under the current policy."""
    lost = _pairs(old) - _pairs(new)
    if lost:
        return "; ".join(
            _fate(action, channel, new, "candidate") for action, channel in sorted(lost)
        )
    gained = _pairs(new) - _pairs(old)
    return "; ".join(_fate(action, channel, old, "current") for action, channel in sorted(gained))


def _pairs(decision: Decision | None) -> set[tuple[str, str]]:
    if decision is None or not decision.choice:
        return set()
    return {tuple(pair.split("@", 1)) for pair in decision.choice.split("+")}  # type: ignore[misc]


def _fate(action: str, channel: str, other: Decision | None, side: str) -> str:
    """What ``other`` (the other side's decision) did with ``action`` on ``channel``."""
    if other is None:
        return f"the {side} policy makes no decision for this trigger"
    candidate = next((c for c in other.candidates if c.action == action), None)
    if candidate is None:
        return f"{action} is not a candidate under the {side} policy"
    if candidate.chosen:
        return (
            f"{action} goes out on {candidate.channel} instead: {_channel_note(candidate, channel)}"
        )
    detail = f" ({candidate.detail})" if candidate.detail else ""
    return f"{action}: {candidate.reason.value}{detail} under the {side} policy"


def _channel_note(candidate: Candidate, channel: str) -> str:
    checks = dict(candidate.channel_checks)
    if channel in checks and checks[channel] != "chosen":
        return f"{channel}: {checks[channel]}"
    scores = dict(candidate.estimates)
    if channel in scores and candidate.channel in scores:
        better, worse = scores[candidate.channel].propensity, scores[channel].propensity
        return f"{candidate.channel} scored {better:.3f} against {channel} {worse:.3f}"
    return f"{channel} ranked lower"
