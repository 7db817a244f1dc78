"""The drain loop's fast path: deliver a message without a race when nothing can block.

Faust awaits every delivery through ``wait_first(callback(message),
suspend_flow.wait())``: four asyncio tasks started, awaited and three cancelled per
message, about half of a bare Faust agent's time. The race only matters when the
delivery could wait; ``delivery_check`` tells when it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.transport.conductor import Conductor, ConductorCompiler

#: The conductor's message callbacks, whose every wait ``delivery_check`` mirrors.
UPSTREAM = (Conductor._compile_message_handler, ConductorCompiler.build)


def delivery_check(consumer: Any) -> Callable[[Any], bool]:
    """A check that delivering a message of a partition to its streams cannot block now.

    Faust's conductor callback for a message waits on three things: flow control (off
    during a rebalance), the producer buffer ebbing, and room in every subscribed stream's
    queue; it also takes the conductor's callback lock. When none of them would wait, the
    callback completes without suspending, so it needs no race against ``suspend_flow``.
    """
    app = consumer.app
    suspended = consumer.suspend_flow.is_set
    flow_active = app.flow_control.is_active
    buffer = app.producer.buffer
    conductor = app.topics
    tp_index = conductor._tp_index
    callback_lock = conductor._tp_to_callback_lock

    def can_deliver_now(tp: Any) -> bool:
        if suspended() or not flow_active() or callback_lock.locked():
            return False
        if buffer.size > buffer.max_messages:
            return False
        channels = tp_index.get(tp)
        if not channels:
            return False
        return not any(channel.queue.full() for channel in channels)

    return can_deliver_now


def never(tp: Any) -> bool:
    """The check with the fast path off: every delivery races a rebalance, as in Faust."""
    return False
