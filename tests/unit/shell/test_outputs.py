"""Outputs: where each destination goes, and the commit order (outputs, flush, state)."""

from __future__ import annotations

import logging

import pytest

from stream.core.batch import BatchResult, Destination, Output
from stream.core.stored import Tables
from stream.shell.outputs import Outputs
from tests.unit.shell.steps.fakes import Worker, consumed

TOPICS = {
    Destination.DECISIONS: "cjo.decisions",
    Destination.LEARNING: "cjo.internal.learning",
    Destination.MODEL: "cjo.internal.model",
    Destination.IDENTITY_EVENTS: "cjo.internal.identity-events",
    Destination.CUSTOMER_EVENTS: "cjo.internal.customer-events",
    Destination.ERASURES: "cjo.internal.erasures",
}


def outputs(worker: Worker) -> Outputs:
    return worker.context().outputs


@pytest.mark.parametrize("destination", list(Destination), ids=str)
def test_every_destination_names_its_topic(destination: Destination) -> None:
    topic = outputs(Worker()).topic(Output(destination, b"k", b"v", channel="push"))
    assert topic == TOPICS.get(destination, "cjo.actions.push")


async def test_commit_sends_then_waits_for_the_acknowledgements_then_writes() -> None:
    worker = Worker()
    worker.table("customers", {b"gone": b"x"})
    result = BatchResult(outputs=[Output(Destination.DECISIONS, b"k", b"v")])
    result.writes["customers"] = {b"k": b"state", b"gone": None}
    source = [consumed("cjo.internal.customer-events", b"{}", b"k")]
    await outputs(worker).commit([(result, source)], "process")
    assert [entry[0] for entry in worker.log] == ["send", "ack", "write", "delete"]
    assert worker.tables["customers"] == {b"k": b"state"}


async def test_commit_without_writes_neither_flushes_nor_writes() -> None:
    worker = Worker()
    worker.table("customers")
    result = BatchResult(outputs=[Output(Destination.DECISIONS, b"k", b"v")])
    result.writes["customers"] = {}
    await outputs(worker).commit([(result, [])], "process")
    assert [entry[0] for entry in worker.log] == ["send"]


async def test_commit_logs_the_folds_notes_at_their_level(caplog: pytest.LogCaptureFixture) -> None:
    result = BatchResult()
    result.note("identity conflict: t", logging.WARNING)
    with caplog.at_level(logging.INFO, logger="stream.shell.outputs"):
        await outputs(Worker()).commit([(result, [])], "process")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "identity conflict: t")
    ]


def test_the_table_writer_deletes_on_none() -> None:
    table = {b"a": b"1"}
    Tables({"t": table}).write({"t": {b"a": None, b"b": b"2"}})
    assert table == {b"b": b"2"}


async def test_one_flush_covers_every_partition_and_each_writes_on_its_own() -> None:
    worker = Worker()
    worker.table("customers")
    parts = []
    for partition, key in ((0, b"a"), (3, b"b")):
        result = BatchResult(outputs=[Output(Destination.DECISIONS, key, b"v")])
        result.writes["customers"] = {key: b"state"}
        source = [consumed("cjo.internal.customer-events", b"{}", key, partition=partition)]
        parts.append((result, source))
    await outputs(worker).commit(parts, "process")
    assert [entry[0] for entry in worker.log] == ["send", "send", "ack", "ack", "write", "write"]
    assert [(entry[2], entry[4]) for entry in worker.writes()] == [(b"a", 0), (b"b", 3)]


def test_deleting_a_key_that_is_already_gone_is_not_an_error() -> None:
    table = {b"k": b"v"}
    Tables({"decisions": table}).write({"decisions": {b"k": None, b"never": None}})
    assert table == {}
