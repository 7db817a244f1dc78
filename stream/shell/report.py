"""``journey report uplift|model``: what the engine learnt, read from the model topic.

The learn step publishes one row per action to the compacted model topic; this reads
every partition up to its end (outside any consumer group) and keeps the latest row per
action, so the report covers all workers and needs no worker running.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from stream.config import Settings
from stream.core.uplift import Uplift, learned_rates
from stream.shell.kafka_security import client_kwargs
from stream.shell.model_view import caught_up, end_offsets, whole_topic_consumer


async def read_model(settings: Settings, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The latest learned row of every action (empty if nothing was learnt yet)."""
    consumer = whole_topic_consumer(
        settings.broker, settings.topics.model, security=client_kwargs(settings)
    )
    await consumer.start()
    try:
        end = await end_offsets(consumer, deadline_s=timeout_s)
        rows: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while not await caught_up(consumer, end):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the model topic to its end in {timeout_s} s")
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    if message.value is not None:
                        row = orjson.loads(message.value)
                        rows[str(row["action"])] = row
        return [rows[action] for action in sorted(rows)]
    finally:
        await consumer.stop()


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_uplift(report: list[Uplift]) -> str:
    """The uplift table, one action per line, then the experiment variants."""
    if not report:
        return "no exposures yet: no marketing action was decided since the model topic began"
    lines = [
        f"{'action':<24} {'treated':>16} {'control':>16} {'uplift':>8}  95% interval",
    ]
    for item in report:
        t, c = item.treatment, item.control
        interval = item.interval
        span = f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}] pts" if interval else "-"
        difference = item.difference
        lines.append(
            f"{item.action:<24} "
            f"{f'{t.converted}/{t.exposed} {_percent(t.rate)}':>16} "
            f"{f'{c.converted}/{c.exposed} {_percent(c.rate)}':>16} "
            f"{'-' if difference is None else f'{100 * difference:+.1f}':>8}  {span}"
        )
    variants = [(item.action, name, arm) for item in report for name, arm in item.variants]
    if variants:
        lines.append("")
        lines.append(f"{'experiment=variant':<40} {'converted/exposed':>20}")
        for _, name, arm in variants:
            lines.append(f"{name:<40} {f'{arm.converted}/{arm.exposed} {_percent(arm.rate)}':>20}")
    return "\n".join(lines)


def format_model(rows: list[dict[str, Any]]) -> str:
    """The learned cells: trials, rewarded trials and the observed rate."""
    cells = learned_rates(rows)
    if not cells:
        return "nothing learnt yet: no action was sent since the model topic began"
    header = ("action", "stage", "channel", "sent", "rewarded", "rate")
    lines = ["{:<24} {:<12} {:<12} {:>7} {:>9} {:>7}".format(*header)]
    for action, stage, channel, trials, successes in cells:
        rate = successes / trials if trials else None
        lines.append(
            f"{action:<24} {stage:<12} {channel:<12} {trials:>7} {successes:>9} {_percent(rate):>7}"
        )
    return "\n".join(lines)
