"""Fakes for driving a step through ``handle`` without a broker.

One ordered ``log`` records what leaves the worker: every producer ``send``, every wait for
a send's acknowledgement (``ack``), and every table write or delete (with the partition of
Faust's current event at that moment), so a test can check the commit order: outputs,
then their acknowledgements, then state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.streams import current_event

from stream.config import Settings
from stream.core.stored import Tables
from stream.shell.faust.state_writers import TableWriter
from stream.shell.metrics import Metrics
from stream.shell.outputs import Outputs
from stream.shell.steps import StepContext

NOW_MS = 1_795_428_000_000 + 3_600_000  # 11:00 in Paris: outside the default quiet hours

Entry = tuple[Any, ...]  # ("send", topic, key, value) | ("ack", ...) | ("write"/"delete", ...)


@dataclass(frozen=True)
class Acknowledged:
    """What the broker answers a send with (aiokafka's RecordMetadata, the part we read)."""

    topic: str
    partition: int | None
    offset: int


class Delivery:
    """A send's acknowledgement: awaiting it is logged, as the broker would answer then."""

    def __init__(self, log: list[Entry], topic: str, key: bytes | None, ack: Acknowledged) -> None:
        self.log, self.topic, self.key, self.ack = log, topic, key, ack

    def __await__(self) -> Any:
        self.log.append(("ack", self.topic, self.key))
        return self.ack
        yield  # a generator: awaiting it returns ``ack``


class FakeProducer:
    """Records sends and their acknowledgements, in order, into the shared log; each
    topic partition numbers its records from 0."""

    def __init__(self, log: list[Entry]) -> None:
        self.log = log
        self.offsets: dict[tuple[str, int | None], int] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> Delivery:
        assert (timestamp, headers) == (None, None)
        # The partitioner decides, but for a changelog record (its table's partition).
        assert partition is None or topic.endswith("-changelog"), topic
        self.log.append(("send", topic, key, value))
        offset = self.offsets[(topic, partition)] = self.offsets.get((topic, partition), -1) + 1
        return Delivery(self.log, topic, key, Acknowledged(topic, partition, offset))


class FakeApp:
    def __init__(self, log: list[Entry]) -> None:
        self.producer = FakeProducer(log)


class LoggedTable(dict):  # type: ignore[type-arg]
    """A dict table whose writes go to the log with the partition Faust would write to."""

    def __init__(self, name: str, log: list[Entry], items: Mapping[bytes, bytes] = ()) -> None:
        super().__init__(items)
        self.name = name
        self.log = log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append(("write", self.name, key, value, _current_partition()))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.log.append(("delete", self.name, key, _current_partition()))
        super().__delitem__(key)


def _current_partition() -> int | None:
    event = current_event()
    return None if event is None else event.message.partition


class ConsumedMessage:
    """The fields of a Faust message a step reads."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp: float | None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp  # seconds, as Faust keeps it


class ConsumedEvent:
    """A consumed event: a regular class, as Faust's partition_context takes a weakref."""

    def __init__(self, message: ConsumedMessage) -> None:
        self.message = message


def consumed(
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    *,
    partition: int = 0,
    offset: int = 0,
    timestamp_ms: int | None = None,
) -> ConsumedEvent:
    timestamp = None if timestamp_ms is None else timestamp_ms / 1000
    return ConsumedEvent(ConsumedMessage(topic, partition, offset, key, value, timestamp))


def batch_of(topic: str, *records: tuple[bytes | None, bytes | None], **kw: Any) -> list[Any]:
    """Consumed events of one partition, at consecutive offsets."""
    return [consumed(topic, value, key, offset=n, **kw) for n, (key, value) in enumerate(records)]


class FixedClock:
    """The processing clock, standing still at ``now``."""

    def __init__(self, now_ms: int = NOW_MS, speed: float = 1.0) -> None:
        self.now = now_ms
        self.speed = speed

    def now_ms(self) -> int:
        return self.now

    def real_seconds(self, clock_ms: float) -> float:
        return clock_ms / self.speed / 1000


@dataclass
class Worker:
    """A step's surroundings: the log, tables, metrics and the step context."""

    settings: Settings = field(default_factory=Settings)
    log: list[Entry] = field(default_factory=list)
    tables: dict[str, LoggedTable] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    clock: FixedClock = field(default_factory=FixedClock)

    def table(self, name: str, items: Mapping[bytes, bytes] = ()) -> LoggedTable:
        self.tables[name] = LoggedTable(name, self.log, items)
        return self.tables[name]

    def context(self) -> StepContext:
        outputs = Outputs(
            FakeApp(self.log),  # type: ignore[arg-type]
            self.settings.topics,
            self.metrics,
            TableWriter(Tables(self.tables)),
        )
        return StepContext(self.settings, self.metrics, outputs, self.clock)  # type: ignore[arg-type]

    @property
    def topics(self) -> Any:
        return self.settings.topics

    def sent(self, topic: str | None = None) -> list[Entry]:
        return [e for e in self.log if e[0] == "send" and (topic is None or e[1] == topic)]

    def flushes(self) -> int:
        """How many times a commit waited for its sends' acknowledgements."""
        kinds = [e[0] for e in self.log]
        return sum(
            1 for i, kind in enumerate(kinds) if kind == "ack" and (i == 0 or kinds[i - 1] != "ack")
        )

    def writes(self) -> list[Entry]:
        return [e for e in self.log if e[0] in ("write", "delete")]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(e[3]) for e in self.sent(self.topics.dlq)]

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if value is None else value


def assert_outputs_before_state(log: Iterable[Entry]) -> None:
    """Each commit: its sends, then their acknowledgements, then its table writes; never a
    table write while a send of the commit is unacknowledged or before any was awaited."""
    unacknowledged = 0
    acknowledged = False
    for entry in log:
        kind = entry[0]
        if kind == "send":
            unacknowledged += 1
        elif kind == "ack":
            unacknowledged -= 1
            acknowledged = True
        else:
            assert acknowledged, f"a table write before any acknowledgement: {entry}"
            assert unacknowledged == 0, f"a table write with a send unacknowledged: {entry}"
