"""The replay of a log through two policies: same policy, no difference; a stricter cap,
exactly the messages it stops; outcomes kept only where the same action went out."""

from __future__ import annotations

from typing import Any

import orjson

from stream.core.decide import Policy
from stream.core.messages import EventMessage, OutcomeMessage, decode, encode
from stream.core.outcomes import Outcome
from stream.core.propensity import EMPTY_MODEL
from stream.core.replay.compare import Differences
from stream.core.replay.log import LogRecord, from_line, to_line
from stream.core.replay.side import new_context
from stream.core.replay.simulate import Window, memory_stores, new_side, report, simulate
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000

POLICY = """
    format: 1
    name: %(name)s
    learning: {strategy: fixed}
    contact_policy:
      caps:
        - {name: email_daily, channels: [email], max: %(cap)d, window: 24h}
    actions:
      - {id: cart_reminder, category: marketing, channels: [email, web], propensity: 0.2,
         triggers: [{event: add_to_cart}]}
"""


def policy(name: str = "current", cap: int = 2) -> Policy:
    return policy_from(POLICY % {"name": name, "cap": cap})


def cart(customer: str, hour: int) -> LogRecord:
    event = build_event(
        "add_to_cart",
        properties={"product_id": "p1", "price": 5.0},
        customer_key=customer,
        at_ms=NOON_MS + hour * HOUR_MS,
        event_id=f"{customer}-cart-{hour}",
    )
    return record(customer, encode(EventMessage(event)), NOON_MS + hour * HOUR_MS)


def record(customer: str, value: bytes, at_ms: int) -> LogRecord:
    return LogRecord(0, at_ms, at_ms, customer.encode(), value)


def clicked(customer: str, action_id: str, channel: str, at_ms: int) -> LogRecord:
    outcome = Outcome(f"o-{action_id}", action_id, customer, channel, "clicked", at_ms, {})
    return record(customer, encode(OutcomeMessage(outcome)), at_ms)


def replay(log: list[LogRecord], current: Policy, candidate: Policy) -> dict[str, Any]:
    context = new_context(LIMITS, EMPTY_MODEL, 5)
    before = new_side("current", current, context, memory_stores)
    after = new_side("candidate", candidate, context, memory_stores)
    differences = Differences({})
    count, first, last = simulate(log, before, after, differences, clock=lambda ms: ms)
    window = Window("test", count, first, last)
    return report(window, before, after, differences, threshold=1, model="priors only")


LOG = [cart("C1", 0), cart("C1", 1), cart("C1", 2), cart("C2", 0)]


def test_the_same_policy_twice_gives_zero_differences() -> None:
    result = replay(LOG, policy(), policy("candidate"))
    assert result["differences"]["decisions_compared"] == 4
    assert result["differences"]["decisions_differ"] == 0
    assert result["sides"]["current"] == result["sides"]["candidate"]
    assert result["window"] == {
        "source": "test",
        "records": 4,
        "from": "2026-11-23T11:00:00.000Z",
        "to": "2026-11-23T13:00:00.000Z",
        "customers": 2,
    }


def test_a_stricter_cap_stops_exactly_the_second_email_of_the_day() -> None:
    result = replay(LOG, policy(), policy("one_a_day", cap=1))
    current, candidate = result["sides"]["current"], result["sides"]["candidate"]
    # current: C1 gets email, email, then web (cap 2 reached); C2 gets email
    assert current["channels"] == {"email": 3, "web": 1}
    # candidate: C1 gets email, then web twice; C2 gets email
    assert candidate["channels"] == {"email": 2, "web": 2}
    assert candidate["cap_hits"] == {}  # web was free: the candidate never ran out
    differences = result["differences"]
    assert differences["decisions_differ"] == 1
    assert differences["customers_differ"] == 1
    [example] = differences["examples"]
    assert example["customer"] == "C1"
    assert example["trigger"] == "add_to_cart (web)"
    assert (example["before"], example["after"]) == ("cart_reminder@email", "cart_reminder@web")
    assert example["because"] == "cart_reminder goes out on web instead: email: contact_cap"
    assert current["messages_per_customer"]["3"] == 1
    assert current["over_threshold"] == {"threshold": 1, "customers": 1, "examples": ["C1"]}


def test_a_cap_with_no_other_channel_sends_fewer_messages() -> None:
    email_only = (POLICY % {"name": "strict", "cap": 1}).replace("[email, web]", "[email]")
    current = policy_from(POLICY.replace("[email, web]", "[email]") % {"name": "c", "cap": 2})
    result = replay(LOG, current, policy_from(email_only))
    assert result["sides"]["current"]["messages"] == 3
    assert result["sides"]["candidate"]["messages"] == 2
    assert result["sides"]["candidate"]["cap_hits"] == {"email_daily": 2}
    assert result["sides"]["candidate"]["suppressions"] == {"contact_cap": 2}
    befores = {(e["customer"], e["before"], e["after"]) for e in result["differences"]["examples"]}
    assert befores == {("C1", "cart_reminder@email", "")}


def test_an_outcome_is_kept_only_where_the_same_action_went_out_on_the_same_channel() -> None:
    probe = replay(LOG[:2], policy(), policy())
    assert probe["outcomes"]["current"] == {"kept": 0, "dropped": 0}
    # the second cart's email, clicked: the candidate sent that action on web instead
    context = new_context(LIMITS, EMPTY_MODEL, 5)
    side = new_side("current", policy(), context, memory_stores)
    decisions = [side.apply(0, r.key, decode(r.value), r.timestamp_ms) for r in LOG[:2]]
    action_id = decisions[1][0].actions[0].action_id
    log = [*LOG[:2], clicked("C1", action_id, "email", NOON_MS + 2 * HOUR_MS)]
    result = replay(log, policy(), policy("one_a_day", cap=1))
    assert result["outcomes"]["current"] == {"kept": 1, "dropped": 0}
    assert result["outcomes"]["candidate"] == {"kept": 0, "dropped": 1}


def test_an_exported_log_line_reads_back_as_the_same_record() -> None:
    original = LOG[0]
    line = to_line(original)
    assert line.endswith(b"\n") and orjson.loads(line)["value"]["event"]["type"] == "add_to_cart"
    assert from_line(line, 1) == LogRecord(
        0, original.offset, original.timestamp_ms, b"C1", orjson.dumps(orjson.loads(original.value))
    )


TIMER = """
    format: 1
    name: %(name)s
    timers:
      - {name: cart, delay: %(delay)s, start: [{event: add_to_cart}]}
    actions:
      - {id: remind, category: marketing, channels: [web], triggers: [{timer: cart}]}
"""


def views(customer: str, *hours: float) -> list[LogRecord]:
    records = []
    for hour in hours:
        at_ms = NOON_MS + int(hour * HOUR_MS)
        event = build_event("page_view", customer_key=customer, at_ms=at_ms, event_id=f"v{hour}")
        records.append(record(customer, encode(EventMessage(event)), at_ms))
    return records


def test_each_side_fires_its_own_timers_when_their_time_comes() -> None:
    """The log's recorded firings were the policy in force's; a candidate with a shorter
    wait reminds at its own time, seen when the next record moves the clock past it."""
    current = policy_from(TIMER % {"name": "two_hours", "delay": "2h"})
    candidate = policy_from(TIMER % {"name": "one_hour", "delay": "1h"})
    log = [cart("C1", 0), *views("C1", 1.5, 3)]
    context = new_context(LIMITS, EMPTY_MODEL, 5)
    before = new_side("current", current, context, memory_stores)
    after = new_side("candidate", candidate, context, memory_stores)
    differences = Differences({})
    simulate(log, before, after, differences, clock=lambda ms: ms)
    assert before.summary.actions == {"remind": 1} == after.summary.actions
    times = sorted((e["at"], e["before"], e["after"]) for e in differences.examples)
    assert times == [
        ("2026-11-23T12:00:00.000Z", "", "remind@web"),  # the candidate, at 1 h
        ("2026-11-23T13:00:00.000Z", "remind@web", ""),  # the policy in force, at 2 h
    ]


def test_a_deadline_after_the_last_record_does_not_fire() -> None:
    policy = policy_from(TIMER % {"name": "p", "delay": "2h"})
    result = replay([cart("C1", 0), *views("C1", 1)], policy, policy)
    assert result["sides"]["current"]["messages"] == 0


def test_a_record_the_fold_cannot_process_is_skipped_and_said() -> None:
    broken = record("C1", b'{"event": {"event_id": "x"}}', NOON_MS)  # no type, no time
    result = replay([broken, *LOG], policy(), policy())
    assert result["failed_records"]["current"]["records"] == 1
    assert "could not be folded under the current policy" in result["limits"][-2]
    assert result["sides"]["current"]["messages"] == 4  # the rest went on
