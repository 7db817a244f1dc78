"""Benchmark of the decision step (not a test): microseconds per decision.

Replays simulated journeys (seeded) through the reducer and times ``decide_event`` for
every event that names at least one action, under the shipped policy and under a
generated 200-action policy. Prints median/p90/p99 and writes
bench/results/<date>-<machine>-decide.json.

    .venv/bin/python bench/decide.py [--events 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice
from pathlib import Path

import orjson
from benchlib import write_results

from stream.core.decide import Policy, decide_event, load_policy, load_policy_file
from stream.core.events import DecodeOptions, Event, decode_event
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


def workload(events: int) -> list[tuple[CustomerState, Event]]:
    """(state before decision, event) pairs from seeded simulated traffic."""
    catalog = load_catalog()
    options = DecodeOptions(catalog, 65536, "", "US")
    states: dict[str, CustomerState] = {}
    limits = Limits()
    pairs = []
    start_ms = 1_795_428_000_000
    for simulated in islice(generate_events(2000, seed=3, start_ms=start_ms), events):
        decoded = decode_event(orjson.dumps(simulated.value), simulated.channel, options)
        assert isinstance(decoded, Event)
        state = states.get(decoded.customer_key) or new_state(decoded.customer_key)
        reduction = reduce(state, decoded, limits)
        states[decoded.customer_key] = reduction.state
        pairs.append((reduction.state, decoded))
    return pairs


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
    timings.sort()
    return {
        "decisions": decided,
        "with_action": chosen,
        "median_us": round(statistics.median(timings), 1),
        "p90_us": round(timings[int(len(timings) * 0.90)], 1),
        "p99_us": round(timings[int(len(timings) * 0.99)], 1),
        "max_us": round(timings[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    catalog = load_catalog()
    default = load_policy_file(ROOT / "policies" / "default.yaml", catalog)
    generated = load_policy(generated_policy(200), catalog, "generated-200")
    pairs = workload(args.events)
    results = {
        "events_replayed": len(pairs),
        "default_policy": {
            "version": default.version,
            "actions": len(default.actions),
            **measure(default, pairs),
        },
        "generated_200": {
            "version": generated.version,
            "actions": len(generated.actions),
            **measure(generated, pairs),
        },
    }
    for name in ("default_policy", "generated_200"):
        r = results[name]
        print(
            f"{name:>15}: {r['actions']:>3} actions, {r['decisions']} decisions "
            f"({r['with_action']} with an action): median {r['median_us']} µs, "
            f"p90 {r['p90_us']} µs, p99 {r['p99_us']} µs, max {r['max_us']} µs"
        )
    write_results("decide", results)


if __name__ == "__main__":
    main()
