"""Fail-stop on a failed write: no commit may pass a record whose output was not delivered.

Faust acks every event of a ``take_events`` batch when the batch ends, even when its
processing raised, and commits acked offsets in the background; an exception that escapes
an agent restarts the agent and the group commits past the batch. A send that fails later,
in the producer (retries exhausted, a record the broker refuses), resolves a future nobody
awaits. Either way a record would be committed over without its outputs: lost, silently.

So every send of the worker (ours and Faust's own changelog and repartition writes, which
all pass through the aiokafka driver's ``Producer.send``) is guarded: a send that raises,
or whose delivery fails, ends the process at once with ``EXIT_WRITE_FAILED`` and a log line
naming the topic. Ending at once means no code runs after the failure: the batch is not
acked, Faust's commit (which flushes the producer first, and so waits for this very
delivery) never happens, and a restarted worker resumes from the last commit, before every
record whose output is unconfirmed. This is Kafka Streams' behaviour for a failed send
(the task dies), made sure. A permanent failure becomes a visible restart loop, never a loss.

For the fault tests, ``JOURNEY_FAULT_SEND`` (``<topic suffix>:<n>``) makes the delivery of
the n-th send (counting from 1) to a topic ending with that suffix fail as a broker's
refusal would.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from faust.transport.drivers.aiokafka import Producer

from stream.shell.faust.pinned import require_pinned_faust

log = logging.getLogger(__name__)

EXIT_WRITE_FAILED = 75  # EX_TEMPFAIL: restart me, nothing was committed past the failure

faust_send = Producer.send

#: Wrapped.
UPSTREAM = (faust_send,)


class InjectedSendFailure(KafkaError):  # type: ignore[misc]
    """The delivery failure ``JOURNEY_FAULT_SEND`` asked for (fault tests only)."""


@dataclass
class FaultRule:
    """Fail the delivery of the ``nth`` send to a topic ending with ``topic_suffix``."""

    topic_suffix: str
    nth: int
    seen: int = field(default=0)

    def trips(self, topic: str) -> bool:
        """Count a send to ``topic``; True for the one that must fail."""
        if not topic.endswith(self.topic_suffix):
            return False
        self.seen += 1
        return self.seen == self.nth


@dataclass
class FaultInjection:
    """The fault the guarded sends inject, if any (set from ``JOURNEY_FAULT_SEND``)."""

    rule: FaultRule | None = None

    def set(self, fault: tuple[str, int] | None) -> None:
        """Inject ``fault`` (topic suffix, n) from now on; the same fault keeps its count."""
        if fault is None:
            self.rule = None
        elif self.rule is None or (self.rule.topic_suffix, self.rule.nth) != fault:
            self.rule = FaultRule(*fault)

    def trips(self, topic: str) -> bool:
        """Count a send to ``topic``; True for the one that must fail."""
        return self.rule is not None and self.rule.trips(topic)


def fail_stop(topic: str, exc: BaseException) -> NoReturn:
    """Log the failed write and end the process now, before anything can be committed."""
    log.critical(
        "write to %s failed (%r): exiting with %d before any commit passes the records it "
        "belongs to; a restart resumes from the last commit",
        topic,
        exc,
        EXIT_WRITE_FAILED,
    )
    logging.shutdown()
    os._exit(EXIT_WRITE_FAILED)


Send = Callable[..., Awaitable[Awaitable[Any]]]


def guarded(
    send: Send, faults: FaultInjection, on_failure: Callable[[str, BaseException], Any]
) -> Send:
    """``send`` with every failure, raised or delivered, handed to ``on_failure``."""

    async def guarded_send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        if faults.trips(topic):  # not sent, as if the broker refused it
            delivery: Awaitable[Any] = _failed(InjectedSendFailure(f"JOURNEY_FAULT_SEND: {topic}"))
        else:
            try:
                delivery = await send(self, topic, *args, **kwargs)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                on_failure(topic, exc)
                raise
        future = asyncio.ensure_future(delivery)
        future.add_done_callback(lambda done: _check(done, topic, on_failure))
        return future

    return guarded_send


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def _check(
    done: asyncio.Future[Any], topic: str, on_failure: Callable[[str, BaseException], Any]
) -> None:
    if not done.cancelled() and done.exception() is not None:
        on_failure(topic, done.exception())  # type: ignore[arg-type]


faults = FaultInjection()
guarded_send = guarded(faust_send, faults, fail_stop)


def install(fault: tuple[str, int] | None = None) -> None:
    """Guard the aiokafka driver's ``Producer.send`` (once per process); ``fault``: the
    (topic suffix, n) of ``JOURNEY_FAULT_SEND`` to inject from now on, or None."""
    require_pinned_faust(__name__)
    faults.set(fault)
    if Producer.send is not guarded_send:
        Producer.send = guarded_send  # type: ignore[method-assign,assignment]
