"""Off-policy evaluation on a replayed log: a logging policy that draws between email and
web, customers who click on web only, a candidate that always picks web."""

from __future__ import annotations

import random

import orjson

from stream.core.decide import Decision, Policy
from stream.core.messages import EventMessage, OutcomeMessage, decode, encode
from stream.core.outcomes import Outcome
from stream.core.propensity import EMPTY_MODEL
from stream.core.replay.evaluate import (
    Logged,
    collect,
    estimates,
    logged_from_record,
    support,
    target_shares,
)
from stream.core.replay.log import LogRecord
from stream.core.replay.side import new_context
from stream.core.replay.simulate import memory_stores, new_side
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import CATALOG, LIMITS, NOON_MS, ROOT, policy_from

DAY_MS = 86_400_000
POLICY = """
    format: 1
    name: %(name)s
    learning: {strategy: %(strategy)s, evidence: 2}
    actions:
      - {id: cart_reminder, category: marketing, channels: %(channels)s, propensity: 0.3,
         triggers: [{event: add_to_cart}]}
"""
CONTEXT = new_context(LIMITS, EMPTY_MODEL, 5)


def policy(name: str, channels: str = "[email, web]", strategy: str = "thompson") -> Policy:
    return policy_from(POLICY % {"name": name, "channels": channels, "strategy": strategy})


def live_run(customers: int = 300) -> tuple[list[LogRecord], dict[str, Logged]]:
    """The logging policy live: each customer adds to cart once; web messages are clicked
    (70 %), email ones never. Returns the customer-events log and the logged decisions."""
    side = new_side("live", policy("current"), CONTEXT, memory_stores)
    rng = random.Random(5)
    log: list[LogRecord] = []
    logged: dict[str, Logged] = {}
    for n in range(customers):
        at_ms = NOON_MS + n * 60_000
        event = build_event(
            "add_to_cart",
            properties={"product_id": "p1", "price": 5.0},
            customer_key=f"C{n:04d}",
            at_ms=at_ms,
            event_id=f"cart-{n}",
        )
        log.append(
            LogRecord(0, len(log), at_ms, event.customer_key.encode(), encode(EventMessage(event)))
        )
        for decision in side.apply(0, log[-1].key, decode(log[-1].value), at_ms):
            logged[decision.decision_id] = _logged(decision)
            for action in decision.actions:
                if action.channel == "web" and rng.random() < 0.7:
                    outcome = Outcome(
                        f"o{n}",
                        action.action_id,
                        action.customer_id,
                        "web",
                        "clicked",
                        at_ms + 1,
                        {},
                    )
                    log.append(
                        LogRecord(
                            0, len(log), at_ms + 1, log[-1].key, encode(OutcomeMessage(outcome))
                        )
                    )
    return log, logged


def _logged(decision: Decision) -> Logged:
    found = logged_from_record(decision.to_message())
    assert found is not None
    return found


def evaluate(candidate: Policy) -> tuple[dict, dict]:
    log, logged = live_run()
    current = new_side("current", policy("current"), CONTEXT, memory_stores)
    collected = collect(log, current, candidate, logged.get, CONTEXT, clock=lambda ms: ms)
    return estimates(collected), support(collected)


def test_the_logging_policy_really_draws_between_its_channels() -> None:
    _, logged = live_run()
    choices = {found.choice for found in logged.values()}
    assert choices == {"cart_reminder@email", "cart_reminder@web"}
    assert all(0 < found.share < 1 for found in logged.values())


def test_the_policy_in_force_evaluated_against_itself_is_its_logged_value() -> None:
    result, covered = evaluate(policy("current"))
    clicks = result["clicks"]
    assert clicks["ips"]["value"] == clicks["logged"]["value"]
    assert clicks["effective_sample_size"] == covered["rounds"] == 300
    assert covered["unsupported_share"] == 0.0


def test_a_web_only_candidate_is_estimated_at_the_web_click_rate() -> None:
    """Truth: every decision sends on web, clicked 70 % of the time."""
    result, covered = evaluate(policy("web", "[web]", strategy="fixed"))
    clicks = result["clicks"]
    assert clicks["logged"]["value"] < 0.6  # the policy in force wastes some on email
    for estimator in ("ips", "snips", "dr"):
        assert clicks[estimator]["low"] <= 0.7 <= clicks[estimator]["high"], estimator
    assert result["conversions"]["ips"]["value"] == 0.0
    assert covered["unsupported_share"] == 0.0


def test_a_candidate_choice_the_log_never_tried_is_reported() -> None:
    renamed = POLICY.replace("id: cart_reminder", "id: cart_nudge")
    candidate = policy_from(renamed % {"name": "n", "channels": "[web]", "strategy": "fixed"})
    result, covered = evaluate(candidate)
    assert covered["unsupported_choices"] == {"cart_nudge@web": 300}
    assert covered["unsupported_share"] == 1.0
    assert result["clicks"]["effective_sample_size"] == 0.0


def test_a_candidate_that_sends_nothing_is_worth_nothing_and_fully_supported() -> None:
    result, covered = evaluate(policy("sms", "[sms]", strategy="fixed"))  # no sms consent
    assert result["clicks"]["ips"]["value"] == 0.0
    assert covered["unsupported_choices"] == {}


def test_a_candidate_that_makes_no_decision_chooses_nothing() -> None:
    assert target_shares(None) == {"": 1.0}


def test_a_record_written_before_probabilities_is_still_valid_and_left_out() -> None:
    old = orjson.loads((ROOT / "schemas" / "examples" / "valid" / "decision.json").read_bytes())
    assert "probability" not in old
    assert CATALOG.message_error("decision", old) is None
    assert logged_from_record(old) is None
    assert CATALOG.message_error("decision", {**old, "probability": 0}) is not None
    with_one = logged_from_record({**old, "probability": 1.0, "choice": ""})
    assert with_one is not None and with_one.share == 1.0
