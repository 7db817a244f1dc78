"""The send guard: every failed write, raised or delivered, reaches the fail-stop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from stream.config import SettingsError, load_settings
from stream.shell.faust.patches.send_guard import (
    FaultInjection,
    FaultRule,
    InjectedSendFailure,
    guarded,
)


class FakeProducer:
    """Records sends; each returns a delivery future the test resolves."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.deliveries: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, *args: Any) -> asyncio.Future[Any]:
        if topic == "too-big":
            raise MessageSizeTooLargeError("1048000 bytes")
        self.sent.append(topic)
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


def guard(fault: FaultRule | None = None) -> tuple[FakeProducer, Any, list[tuple[str, str]]]:
    failures: list[tuple[str, str]] = []
    send = guarded(
        FakeProducer.send,
        FaultInjection(fault),
        lambda t, e: failures.append((t, type(e).__name__)),
    )
    return FakeProducer(), send, failures


async def test_a_send_that_raises_is_a_failure_and_still_raises() -> None:
    producer, send, failures = guard()
    with pytest.raises(MessageSizeTooLargeError):
        await send(producer, "too-big", b"k", b"v")
    assert failures == [("too-big", "MessageSizeTooLargeError")]


async def test_a_delivery_that_fails_later_is_a_failure() -> None:
    producer, send, failures = guard()
    delivery = await send(producer, "cjo.actions.email", b"k", b"v")
    producer.deliveries[0].set_exception(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await delivery
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert failures == [("cjo.actions.email", "KafkaTimeoutError")]


async def test_delivered_sends_are_not_failures() -> None:
    producer, send, failures = guard()
    delivery = await send(producer, "cjo.decisions", b"k", b"v")
    producer.deliveries[0].set_result("metadata")
    assert await delivery == "metadata"
    await asyncio.sleep(0)
    assert failures == []


async def test_the_injected_fault_fails_exactly_the_nth_send_to_its_topic_unsent() -> None:
    producer, send, failures = guard(FaultRule("-customers-changelog", 2))
    await send(producer, "app-customers-changelog", b"k", b"v")
    await send(producer, "cjo.decisions", b"k", b"v")
    failed = await send(producer, "app-customers-changelog", b"k", b"v")
    await send(producer, "app-customers-changelog", b"k", b"v")
    with pytest.raises(InjectedSendFailure):
        await failed
    await asyncio.sleep(0)
    assert failures == [("app-customers-changelog", "InjectedSendFailure")]
    assert producer.sent.count("app-customers-changelog") == 2  # the failed one never went


@pytest.mark.parametrize("spec", ["dlq", "dlq:0", ":3", "dlq:x"])
def test_a_malformed_fault_spec_is_refused_by_name(spec: str) -> None:
    with pytest.raises(SettingsError, match="JOURNEY_FAULT_SEND"):
        load_settings({"JOURNEY_FAULT_SEND": spec})


def test_the_fault_spec_is_read_once_into_suffix_and_count() -> None:
    assert load_settings({"JOURNEY_FAULT_SEND": "-customers-changelog:2"}).fault_send == (
        "-customers-changelog",
        2,
    )
    assert load_settings({"JOURNEY_FAULT_SEND": ""}).fault_send is None
