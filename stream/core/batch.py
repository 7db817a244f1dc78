"""What a pure batch fold returns: the messages to send, the table writes, the counts.

A fold never touches a topic, a table or a metric. It says, for one partition's batch:
which messages leave (``Output``, addressed by ``Destination``, which the shell maps to a
topic name), which table entries change (``Writes``: a value, or ``None`` to delete),
which input records are dead letters, and what to count (``Tally``, by metric name).
The shell sends the outputs, waits for the broker to acknowledge them, and only then
writes the tables (``stream/shell/outputs.py`` states why).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from stream.core.decide import Decision
from stream.core.events import DlqReason, Rejection


class Destination(StrEnum):
    """Where an output goes; the shell's ``Topics`` names the topic."""

    ACTIONS = "actions"  # one topic per channel: ``Output.channel``
    DECISIONS = "decisions"
    LEARNING = "learning"
    MODEL = "model"
    IDENTITY_EVENTS = "identity_events"
    CUSTOMER_EVENTS = "customer_events"
    ERASURES = "erasures"


@dataclass(frozen=True, slots=True)
class Output:
    """One message to send: destination, Kafka key, serialised value."""

    destination: Destination
    key: bytes | None
    value: bytes
    channel: str = ""  # for ``Destination.ACTIONS``


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record the fold could not process: its position in the batch and why."""

    position: int
    rejection: Rejection
    error: Exception | None = None  # the exception of a bug, for the log's traceback


def processing_error(position: int, exc: Exception) -> DeadLetter:
    """The dead letter of a record the fold failed on (a bug, not bad input)."""
    detail = f"{type(exc).__name__}: {exc}"
    return DeadLetter(position, Rejection(DlqReason.PROCESSING_ERROR, detail), exc)


Writes = dict[bytes, bytes | None]  # table key -> new value, or None to delete


@dataclass
class Tally:
    """Counts and observations a fold asks the shell to record, by metric name."""

    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    observations: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)

    def count(self, metric: str, *labels: str, amount: int = 1) -> None:
        """Add ``amount`` to a counter (``labels`` in the metric's label order)."""
        self.counts[(metric, *labels)] += amount

    def observe(self, metric: str, value: float, *labels: str) -> None:
        """Record one observation of a histogram."""
        self.observations.append((metric, labels, value))


@dataclass(frozen=True, slots=True)
class Latency:
    """An event's timestamps, for the event→state and event→action latency metrics."""

    ingress_ts_ms: int | None
    occurred_at_ms: int | None  # only for an event that sent an action
    sent: bool


@dataclass
class BatchResult:
    """Everything a batch asks the shell to do, in the order it must be done."""

    outputs: list[Output] = field(default_factory=list)
    writes: dict[str, Writes] = field(default_factory=dict)  # table name -> writes
    deadlines: dict[bytes, int | None] = field(default_factory=dict)  # scheduler index
    dead_letters: list[DeadLetter] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    decisions: list[Decision] = field(default_factory=list)  # made now (not releases)
    latencies: list[Latency] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (logging level, line)

    def note(self, line: str, level: int = logging.INFO) -> None:
        """A line for the worker's log (the core does not log itself)."""
        self.notes.append((level, line))

    def has_writes(self) -> bool:
        """True when any table changes."""
        return any(self.writes.values())
