"""The learn stage: fold learning updates into the per-action ``propensity`` table.

Learning updates arrive keyed by action, so each action's row lives on one partition
and is written by one worker. Every row a batch changed is then published to the
compacted model topic, from which every worker's ``ModelView`` reads.

At least once: a redelivered update is counted again. The model is a statistical
estimate and one extra trial in thousands does not move it; uplift counts are exact
metrics on the process stage (``journey_uplift_*``). If a worker stops between the
table write and the publication, the row reaches the model topic with the action's
next update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from faust.types import EventT

from stream.core.propensity import LearningUpdate, fold
from stream.shell.clock import Clock
from stream.shell.metrics import Metrics

Send = Callable[[str, bytes | None, dict[str, Any]], Awaitable[None]]


class LearnStage:
    """The owner side of the learned model."""

    def __init__(self, table: Any, send: Send, model_topic: str, metrics: Metrics, clock: Clock):
        self.table = table
        self.send = send
        self.model_topic = model_topic
        self.metrics = metrics
        self.clock = clock
        self._changed: dict[bytes, dict[str, Any]] = {}

    def fold_partition(self, events: Sequence[EventT]) -> list[tuple[EventT, Exception]]:
        """Count one partition's updates into the table; returns the messages it refused."""
        by_action: dict[bytes, list[LearningUpdate]] = {}
        refused: list[tuple[EventT, Exception]] = []
        for item in events:
            key = item.message.key
            try:
                update = LearningUpdate.from_message(orjson.loads(item.message.value))
                if key is None or update.action.encode() != key:
                    raise ValueError(f"key {key!r} is not the update's action")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                refused.append((item, exc))
                continue
            by_action.setdefault(key, []).append(update)
        now_ms = self.clock.now_ms()
        for key, updates in by_action.items():
            stored = self.table.get(key)
            row = fold(orjson.loads(stored) if stored is not None else None, updates, now_ms)
            self.table[key] = orjson.dumps(row)
            self._changed[key] = row
        return refused

    async def publish(self) -> None:
        """Send every row changed since the last call to the model topic."""
        changed, self._changed = self._changed, {}
        for key, row in changed.items():
            await self.send(self.model_topic, key, row)
