"""``journey watch``: follow the action topics and show what the engine decides, live."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from stream.config import Settings
from stream.core.timestamps import format_ms
from stream.shell.kafka_security import client_kwargs

SUMMARY_EVERY_S = 5.0
SUMMARY_METRICS = (
    "journey_events_total",
    "journey_timers_fired_total",
    "journey_actions_held_total",
    "journey_identity_merges_total",
    "journey_outcomes_total",
)


Samples = list[tuple[str, dict[str, str], float]]


def scrape(metrics_url: str) -> Samples | None:
    """Every sample (name, labels, value) on a worker's /metrics, or None if unreachable."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for sample_name, sample_labels, value in samples
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """Sum of the samples of ``name`` per value of ``label``."""
    sums: dict[str, float] = {}
    for sample_name, sample_labels, value in samples:
        if sample_name == name and label in sample_labels:
            sums[sample_labels[label]] = sums.get(sample_labels[label], 0.0) + value
    return sums


def events_total(metrics_url: str) -> float | None:
    """Sum of journey_events_total on a worker's /metrics, or None if unreachable."""
    samples = scrape(metrics_url)
    return None if samples is None else total(samples, "journey_events_total")


def learning_line(samples: Samples) -> str:
    """What the engine learnt: response rate per channel and treated-vs-control conversion."""
    trials = by_label(samples, "journey_model_trials", "channel")
    successes = by_label(samples, "journey_model_successes", "channel")
    rates = ", ".join(
        f"{channel} {100 * successes.get(channel, 0) / sent:.1f}% of {sent:.0f}"
        for channel, sent in sorted(trials.items(), key=lambda item: -item[1])
        if sent
    )
    parts = [f"learnt response rates: {rates or 'nothing sent yet'}"]
    arms = []
    for group in ("treatment", "control"):
        exposed = total(samples, "journey_uplift_exposures_total", group=group)
        converted = total(samples, "journey_uplift_conversions_total", group=group)
        if exposed:
            arms.append(f"{group} {100 * converted / exposed:.1f}% of {exposed:.0f}")
    if arms:
        parts.append("conversion " + " vs ".join(arms))
    return "--- " + "; ".join(parts)


def journeys_line(samples: Samples) -> str | None:
    """Per journey: runs active now, entered, converted, exited (None before any entry)."""
    moves = "journey_run_moves_total"
    entered = {
        journey: count
        for journey, count in by_label(
            [s for s in samples if s[1].get("move") == "entered"], moves, "journey"
        ).items()
        if count
    }
    if not entered:
        return None
    active = by_label(samples, "journey_runs_active", "journey")
    parts = [
        f"{journey} {active.get(journey, 0):.0f} active / {count:.0f} entered / "
        f"{total(samples, moves, journey=journey, move='converted'):.0f} converted / "
        f"{total(samples, moves, journey=journey, move='exited'):.0f} exited"
        for journey, count in sorted(entered.items())
    ]
    return "--- journeys: " + "; ".join(parts)


def social_line(samples: Samples) -> str | None:
    """Social posts by sentiment and the community team's tasks (None before any post)."""
    posts = by_label(samples, "journey_social_posts_total", "sentiment")
    if not sum(posts.values()):
        return None
    tasks = by_label(
        [s for s in samples if s[1].get("channel") == "social"], "journey_actions_total", "action"
    )
    mix = ", ".join(f"{label} {count:.0f}" for label, count in sorted(posts.items()) if count)
    replies = ", ".join(
        f"{action.removeprefix('social_reply_')} {count:.0f}"
        for action, count in sorted(tasks.items())
    )
    return (
        f"--- social: {sum(posts.values()):.0f} posts ({mix}); community tasks: {replies or 'none'}"
    )


def format_action(action: dict[str, object]) -> str:
    """One readable line per action (a community task says how to reply, and why)."""
    trigger = action.get("trigger") or {}
    assert isinstance(trigger, dict)
    line = (
        f"{action['channel']:>11} | {action['customer_id']:<12} | {action['action']:<20} "
        f"<- {trigger.get('channel')}/{trigger.get('type')}: {action['reason']}"
    )
    payload = action.get("payload")
    if action["channel"] == "social" and isinstance(payload, dict) and "reply" in payload:
        line += f" [reply in {payload['reply']}: {payload.get('why', '')}]"
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
        **client_kwargs(settings),
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
                samples = scrape(metrics_url) if metrics_url else None
                if samples is not None:
                    totals = {name: total(samples, name) for name in SUMMARY_METRICS}
                    if totals:
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
                            f"profiles merged {totals['journey_identity_merges_total']:.0f}, "
                            f"outcomes {totals['journey_outcomes_total']:.0f}"
                        )
                print(line, flush=True)
                if samples is not None:
                    print(learning_line(samples), flush=True)
                    journeys = journeys_line(samples)
                    if journeys is not None:
                        print(journeys, flush=True)
                    social = social_line(samples)
                    if social is not None:
                        print(social, flush=True)
                actions_since, last = 0, now
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
