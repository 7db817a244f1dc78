"""Benchmark of the decision step (not a test): microseconds per decision.

Replays simulated journeys (seeded) and times, under the shipped policy and under a
generated 200-action policy:
- ``step``: reduce + timers + decide + record, for every event (issue 21's target is a
  median of 60 µs per event with the shipped policy);
- ``decide_event`` alone, for every event that names at least one action.
Prints median/p90/p99 and writes bench/results/<date>-<machine>-decide.json.

    .venv/bin/python bench/decide.py [--events 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice
from pathlib import Path

import orjson
from benchlib import shipped_policy_without_journeys, write_results

from stream.core.decide import Policy, decide_event, load_policy, load_policy_file
from stream.core.events import DecodeOptions, Event, decode_event
from stream.core.pipeline import step
from stream.core.schemas import load_catalog
from stream.core.state import CustomerState, Limits, new_state, record_contacts, reduce
from stream.simulate.journeys import generate_events

ROOT = Path(__file__).resolve().parents[1]
TRIGGERS = [
    "order_completed",
    "store_purchase",
    "add_to_cart",
    "page_view",
    "complaint_opened",
    "call_completed",
    "app_installed",
    "login",
    "product_view",
    "complaint_resolved",
]
CONDITIONS = [
    "customer.orders.count >= {n}",
    "customer.stage != 'advocacy' && customer.cart.value > {n}.0",
    "customer.orders.revenue >= {n}0.0 || customer.app_installed",
    "!customer.loyalty_member && customer.event_count > {n}",
]


def generated_policy(actions: int) -> str:
    """A policy with ``actions`` actions spread over the trigger events, each with conditions."""
    lines = [
        "format: 1",
        "name: generated",
        "contact_policy:",
        "  quiet_hours: {start: '21:00', end: '08:00'}",
        "  caps:",
        "    - {name: email_daily, channels: [email], max: 1, window: 24h}",
        "    - {name: marketing_daily, categories: [marketing], max: 3, window: 24h}",
        "actions:",
    ]
    for i in range(actions):
        lines += [
            f"  - id: action_{i}",
            "    category: marketing",
            "    channels: [email, push, sms]",
            f"    value: {1 + i % 17}",
            f"    propensity: {0.01 + (i % 50) / 100:.2f}",
            "    cooldown: 1d",
            f"    triggers: [{{event: {TRIGGERS[i % len(TRIGGERS)]}}}]",
            f'    eligibility: "{CONDITIONS[i % len(CONDITIONS)].format(n=i % 5)}"',
            f'    payload: {{n: "customer.orders.count + {i}"}}',
        ]
    return "\n".join(lines) + "\n"


def simulated_events(events: int) -> list[Event]:
    """Seeded simulated traffic, decoded."""
    options = DecodeOptions(load_catalog(), 65536, "", "US")
    start_ms = 1_795_428_000_000
    decoded_events = []
    for simulated in islice(generate_events(2000, seed=3, start_ms=start_ms), events):
        decoded = decode_event(orjson.dumps(simulated.value), simulated.channel, options)
        assert isinstance(decoded, Event)
        decoded_events.append(decoded)
    return decoded_events


def workload(events: list[Event]) -> list[tuple[CustomerState, Event]]:
    """(state before decision, event) pairs: the events reduced without deciding."""
    states: dict[str, CustomerState] = {}
    limits = Limits()
    pairs = []
    for decoded in events:
        state = states.get(decoded.customer_key) or new_state(decoded.customer_key)
        reduction = reduce(state, decoded, limits)
        states[decoded.customer_key] = reduction.state
        pairs.append((reduction.state, decoded))
    return pairs


def summary(timings: list[float]) -> dict[str, float]:
    """Median, p90, p99 and max of microsecond timings."""
    timings.sort()
    return {
        "median_us": round(statistics.median(timings), 1),
        "p90_us": round(timings[int(len(timings) * 0.90)], 1),
        "p99_us": round(timings[int(len(timings) * 0.99)], 1),
        "max_us": round(timings[-1], 1),
    }


def measure_step(policy: Policy, events: list[Event], owned: bool) -> dict[str, float]:
    """Time ``step`` (reduce, timers, decide, record) on every event, in order.

    ``owned``: the state is handed over and updated in place, as the worker's fold does
    for a profile's first event of a batch; otherwise every step copies it first.
    """
    states: dict[str, CustomerState] = {}
    limits = Limits()
    timings = []
    for event in events:
        state = states.get(event.customer_key)
        started = time.perf_counter_ns()
        result = step(state, event, event.occurred_at_ms, limits, policy, owned=owned)
        timings.append((time.perf_counter_ns() - started) / 1000)
        states[event.customer_key] = result.state
    return {"events": len(timings), **summary(timings)}


def measure(policy: Policy, pairs: list[tuple[CustomerState, Event]]) -> dict[str, float]:
    """Time decide_event on every pair whose event triggers something."""
    timings = []
    decided = chosen = 0
    for state, event in pairs:
        if event.type not in policy.by_event:
            continue
        now_ms = event.occurred_at_ms
        started = time.perf_counter_ns()
        decision = decide_event(state, event, policy, now_ms)
        timings.append((time.perf_counter_ns() - started) / 1000)
        decided += 1
        if decision is not None and decision.actions:
            chosen += 1
            record_contacts(state, [a.to_contact() for a in decision.actions])
    return {"decisions": decided, "with_action": chosen, **summary(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    catalog = load_catalog()
    default = load_policy_file(ROOT / "policies" / "default.yaml", catalog)
    generated = load_policy(generated_policy(200), catalog, "generated-200")
    bare = load_policy(shipped_policy_without_journeys(), catalog, "default-without-journeys")
    events = simulated_events(args.events)
    pairs = workload(events)
    results: dict[str, object] = {"events_replayed": len(pairs)}
    policies = (
        ("default_policy", default),
        ("default_without_journeys", bare),
        ("generated_200", generated),
    )
    for name, policy in policies:
        stepped = measure_step(policy, events, owned=True)
        copying = measure_step(policy, events, owned=False)
        decided = measure(policy, pairs)
        results[name] = {
            "version": policy.version,
            "actions": len(policy.actions),
            "step": stepped,
            "step_copying": copying,
            **decided,
        }
        print(
            f"{name:>24}: {len(policy.actions):>3} actions | step per event: median "
            f"{stepped['median_us']} µs, p90 {stepped['p90_us']} µs, p99 {stepped['p99_us']} µs"
            f" (copying the state first: median {copying['median_us']} µs)"
            f" | decide_event ({decided['decisions']} decisions, {decided['with_action']} "
            f"with an action): median {decided['median_us']} µs, p90 {decided['p90_us']} µs, "
            f"p99 {decided['p99_us']} µs"
        )
    write_results("decide", results)


if __name__ == "__main__":
    main()
