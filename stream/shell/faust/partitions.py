"""Process a ``take_events`` batch partition by partition, with table writes on each.

A Faust table decides which RocksDB partition and which changelog partition a write
goes to from the "current event" of the stream (a context variable). Inside a
``take_events`` batch that is the last event buffered, which can belong to another
partition than the key being written. ``partition_context`` sets the current event to
one of the partition being processed, so every table read and write in the block lands
on that partition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust import streams as faust_streams
from faust.types import EventT

#: The Faust code whose contract ``partition_context`` relies on (the current event is a
#: weak reference in ``faust.streams._current_event``); hashed in the upstream test.
UPSTREAM = (faust_streams.current_event,)


@contextmanager
def partition_context(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` (and so its partition) Faust's current event inside the block."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def group_by_partition(events: Sequence[EventT[Any]]) -> dict[int, list[EventT[Any]]]:
    """Events of a batch grouped by source partition, in offset order within each."""
    groups: dict[int, list[EventT[Any]]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups
