"""``journey watch``: follow the action topics and show what the engine decides, live."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import orjson
from aiokafka import AIOKafkaConsumer

from stream.config import Settings
from stream.core.timestamps import format_ms

SUMMARY_EVERY_S = 5.0
SUMMARY_METRICS = (
    "journey_events_total",
    "journey_timers_fired_total",
    "journey_actions_held_total",
    "journey_identity_merges_total",
)


def metric_totals(metrics_url: str, names: tuple[str, ...]) -> dict[str, float] | None:
    """Sum of each named counter (all labels) on a worker's /metrics, or None if unreachable."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    totals = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def events_total(metrics_url: str) -> float | None:
    """Sum of journey_events_total on a worker's /metrics, or None if unreachable."""
    totals = metric_totals(metrics_url, ("journey_events_total",))
    return None if totals is None else totals["journey_events_total"]


def format_action(action: dict[str, object]) -> str:
    """One readable line per action."""
    trigger = action.get("trigger") or {}
    assert isinstance(trigger, dict)
    line = (
        f"{action['channel']:>11} | {action['customer_id']:<12} | {action['action']:<20} "
        f"<- {trigger.get('channel')}/{trigger.get('type')}: {action['reason']}"
    )
    if action.get("send_after"):
        line += f" [held by quiet hours, released at {action['send_after']}]"
    return line


async def watch_actions(
    settings: Settings, metrics_url: str | None, duration_s: float | None, quiet: bool
) -> None:
    """Print every action from now on, and every few seconds the action and event rates."""
    consumer = AIOKafkaConsumer(
        *settings.topics.all_actions,
        bootstrap_servers=settings.broker,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    clock = settings.clock()
    started = last = time.monotonic()
    actions_since = 0
    events_before = events_total(metrics_url) if metrics_url else None
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    actions_since += 1
                    if not quiet and record.value is not None:
                        print(format_action(orjson.loads(record.value)), flush=True)
            now = time.monotonic()
            if now - last >= SUMMARY_EVERY_S:
                line = f"--- {actions_since / (now - last):.1f} actions/s"
                if clock.speed != 1:
                    moment = format_ms(clock.now_ms())[:16]
                    line = f"--- clock {moment}Z (x{clock.speed:g}): {line[4:]}"
                if metrics_url:
                    totals = metric_totals(metrics_url, SUMMARY_METRICS)
                    if totals is not None:
                        events_now = totals["journey_events_total"]
                        if events_before is not None:
                            rate = (events_now - events_before) / (now - last)
                            line += (
                                f", worker ingested {rate:.0f} events/s ({events_now:.0f} in total)"
                            )
                        events_before = events_now
                        line += (
                            f"; timers fired {totals['journey_timers_fired_total']:.0f}, "
                            f"actions held {totals['journey_actions_held_total']:.0f}, "
                            f"profiles merged {totals['journey_identity_merges_total']:.0f}"
                        )
                print(line, flush=True)
                actions_since, last = 0, now
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
