"""What every step shares: recording a fold's tally on the real metrics, and the batch loop."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from faust.streams import current_event

from stream.core import fold, intake, routing
from stream.core.batch import BatchResult, Tally
from stream.core.fold import Record
from stream.shell.metrics import Metrics
from stream.shell.steps import Step, run_step
from stream.shell.steps.batch import PartitionedStep, record_tally
from tests.unit.shell.steps.fakes import Worker, consumed

FOLD_MODULES = (fold, intake, routing)


def tally_calls(module: Any) -> list[tuple[str, str, int]]:
    """(method, metric name, label count) of every ``...tally.count/observe("name", ...)``."""
    tree = ast.parse(Path(module.__file__).read_text())
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        named_tally = (isinstance(receiver, ast.Name) and receiver.id == "tally") or (
            isinstance(receiver, ast.Attribute) and receiver.attr == "tally"
        )
        if not named_tally or node.func.attr not in ("count", "observe"):
            continue
        name = node.args[0]
        assert isinstance(name, ast.Constant), f"{module.__name__}: a metric named by a variable"
        labels = len(node.args) - 1 if node.func.attr == "count" else len(node.args) - 2
        calls.append((node.func.attr, name.value, labels))
    return calls


def test_the_folds_count_something() -> None:
    names = {name for module in FOLD_MODULES for _, name, _ in tally_calls(module)}
    assert {"actions", "duplicates", "identity_links", "events", "decision_seconds"} <= names


@pytest.mark.parametrize("module", FOLD_MODULES, ids=lambda m: m.__name__)
def test_every_tally_metric_is_a_metric_with_the_same_labels(module: Any) -> None:
    metrics = Metrics()
    for method, name, labels in tally_calls(module):
        assert hasattr(metrics, name), f"{module.__name__} counts {name!r}, not a metric"
        metric = getattr(metrics, name)
        kind = "counter" if method == "count" else "histogram"
        assert metric._type == kind, f"{name}: {method} on a {metric._type}"
        assert len(metric._labelnames) == labels, f"{name}: labels {metric._labelnames}"


def test_record_tally_increments_counters_with_and_without_labels() -> None:
    metrics = Metrics()
    tally = Tally()
    tally.count("actions", "promo", "email")
    tally.count("actions", "promo", "email", amount=2)
    tally.count("duplicates")
    record_tally(metrics, tally)
    registry = metrics.registry
    labels = {"action": "promo", "channel": "email"}
    assert registry.get_sample_value("journey_actions_total", labels) == 3
    assert registry.get_sample_value("journey_events_duplicate_total") == 1


def test_record_tally_observes_histograms_with_and_without_labels() -> None:
    metrics = Metrics()
    tally = Tally()
    tally.observe("decision_seconds", 0.5, "event")
    tally.observe("timer_fire_lag", 2.0)
    record_tally(metrics, tally)
    registry = metrics.registry
    assert registry.get_sample_value("journey_decision_seconds_sum", {"kind": "event"}) == 0.5
    assert registry.get_sample_value("journey_timer_fire_lag_seconds_sum") == 2.0


class Recorder(Step):
    name = "recorder"

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker.context())
        self.batches: list[int] = []

    async def handle(self, batch: Sequence[Any]) -> None:
        self.batches.append(len(batch))
        result = BatchResult()
        result.tally.count("duplicates", amount=len(batch))
        await self.commit([(result, batch)])


class Batches:
    """A stream whose ``take_events`` yields the given batches."""

    def __init__(self, *sizes: int) -> None:
        self.sizes = sizes
        self.asked: tuple[int, float] | None = None

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        self.asked = (max_, within)
        for size in self.sizes:
            yield [object()] * size


async def test_run_step_hands_every_batch_to_the_step_and_times_it() -> None:
    worker = Worker()
    step = Recorder(worker)
    stream = Batches(3, 1)
    await run_step(step, stream, worker.settings)
    assert step.batches == [3, 1]
    assert stream.asked == (worker.settings.batch_size, worker.settings.batch_within_s)
    assert worker.sample("journey_batch_events_count", {"agent": "recorder"}) == 2
    assert worker.sample("journey_batch_events_sum", {"agent": "recorder"}) == 4
    assert worker.sample("journey_batch_duration_seconds_count", {"agent": "recorder"}) == 2
    assert worker.sample("journey_events_duplicate_total") == 4  # commit records the tally
    assert worker.log == []  # nothing to send or write


class PartitionRecorder(PartitionedStep):
    """Records the partition of Faust's current event while each partition is folded."""

    name = "partitions"

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker.context())
        self.seen: list[tuple[int, int | None]] = []

    def fold(self, partition: int, records: Sequence[Record]) -> BatchResult:
        event = current_event()
        self.seen.append((partition, None if event is None else event.message.partition))
        return BatchResult()


async def test_each_partition_is_folded_with_one_of_its_records_as_the_current_event() -> None:
    step = PartitionRecorder(Worker())
    batch = [consumed("t", b"{}", b"k", partition=p, offset=n) for n, p in enumerate((2, 0, 2))]
    await step.handle(batch)
    assert step.seen == [(2, 2), (0, 0)]  # a table read lands on the partition folded
    assert current_event() is None  # and nothing is left behind
