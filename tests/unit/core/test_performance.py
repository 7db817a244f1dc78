"""Per-day performance counters: what the fold counts, the day rows, range sums, the table.

The fold-level tests fold real batches (the shipped rules: a first page view sends the
``welcome_content`` banner on web, a marketing action) against dict-backed tables.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from stream.core import performance
from stream.core.batch import BatchResult
from stream.core.decide.holdout import group_of
from stream.core.decide.records import Action, JourneyRef, TriggerRef
from stream.core.messages import EventMessage, OutcomeMessage
from stream.core.outcomes import Outcome, OutcomeStatus
from stream.core.pipeline import StepResult
from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.state import new_state
from stream.core.stored import CENSUS
from tests.unit.core.decide.helpers import NOON_MS, SHIPPED_RULES
from tests.unit.core.test_fold import StoredTables, event, fold

DAY_MS = performance.DAY_MS
HOUR_MS = 3_600_000
TODAY = performance.day_of(NOON_MS)
KEY = b"C000001"
CONTROL_KEY = next(  # the first customer of the shipped policy's control group
    f"C{n:06d}".encode()
    for n in range(2, 10_000)
    if group_of(f"C{n:06d}", SHIPPED_RULES.holdout) == "control"
)


def today_row(result: BatchResult, partition: int = 0) -> dict[str, int]:
    """The day row a batch wrote for its partition's day."""
    row: dict[str, int] = orjson.loads(result.writes[CENSUS][performance.day_key(partition, TODAY)])
    return row


def visit(key: bytes = KEY, at_ms: int = NOON_MS) -> EventMessage:
    """A first page view: the welcome banner is decided (sent, or held out for control)."""
    return EventMessage(event(key=key, at_ms=at_ms), at_ms)


def purchase(key: bytes, at_ms: int, **properties: Any) -> EventMessage:
    order = {"order_id": f"o-{at_ms}", "value": 89.9, **properties}
    return EventMessage(event("order_completed", key=key, at_ms=at_ms, properties=order), at_ms)


def sent_action_id(result: BatchResult) -> str:
    [action] = [o for o in result.outputs if o.destination.value == "actions"]
    return str(orjson.loads(action.value)["action_id"])


def answer(action_id: str, kind: str) -> OutcomeMessage:
    return OutcomeMessage(Outcome(f"o-{kind}", action_id, "C000001", "web", kind, NOON_MS, {}))


# --- what the fold counts -----------------------------------------------------------------


def test_a_sent_action_counts_as_sent_and_exposed_in_todays_row() -> None:
    result = fold(StoredTables(), (KEY, visit()))
    assert today_row(result) == {
        "action:welcome_content:sent": 1,
        "action:welcome_content:exposures:treatment": 1,
    }
    assert orjson.loads(result.writes[CENSUS][performance.days_key(0)]) == [TODAY]


def test_a_control_customers_action_is_an_exposure_never_sent() -> None:
    result = fold(StoredTables(), (CONTROL_KEY, visit(CONTROL_KEY)))
    assert today_row(result) == {"action:welcome_content:exposures:control": 1}


def test_each_outcome_of_a_message_counts_once_for_its_action() -> None:
    stored = StoredTables()
    action_id = sent_action_id(fold(stored, (KEY, visit()), commit=True))
    result = fold(
        stored,
        (KEY, answer(action_id, "delivered")),
        (KEY, answer(action_id, "opened")),
        (KEY, answer(action_id, "opened")),  # a repeat: the contact has it already
        (KEY, answer("never-sent", "clicked")),  # no such message: nothing to credit
    )
    assert today_row(result) == {
        "action:welcome_content:sent": 1,  # the first batch's, already stored
        "action:welcome_content:exposures:treatment": 1,
        "action:welcome_content:delivered": 1,
        "action:welcome_content:opened": 1,
    }


def test_a_purchase_after_an_exposure_converts_it_and_counts_its_value_as_revenue() -> None:
    stored = StoredTables()
    fold(stored, (KEY, visit()), commit=True)
    fold(stored, (CONTROL_KEY, visit(CONTROL_KEY)), commit=True)
    later = NOON_MS + HOUR_MS
    result = fold(
        stored,
        (KEY, purchase(KEY, later, currency="GBP")),
        (CONTROL_KEY, purchase(CONTROL_KEY, later)),  # no currency: the default, EUR
        now_ms=later,
    )
    row = today_row(result)
    assert row["action:welcome_content:conversions:treatment"] == 1
    assert row["action:welcome_content:revenue:treatment:GBP"] == 8990  # hundredths
    assert row["action:welcome_content:conversions:control"] == 1
    assert row["action:welcome_content:revenue:control:EUR"] == 8990


def test_a_purchase_before_the_decision_converts_nothing() -> None:
    stored = StoredTables()
    fold(stored, (KEY, visit()), commit=True)
    result = fold(stored, (KEY, purchase(KEY, NOON_MS - HOUR_MS)))
    rows = [
        orjson.loads(value)
        for key, value in result.writes[CENSUS].items()
        if performance.is_performance_key(key) and value is not None
    ]
    # (the first order starts the onboarding journey, whose invitation is counted as sent)
    assert not any("conversions" in name or "revenue" in name for row in rows for name in row)


def journey_action(journey: JourneyRef | None) -> Action:
    return Action(
        action_id="act-j",
        idempotency_key="idem-j",
        customer_id="C000001",
        action="cart_reminder",
        channel="push",
        category="marketing",
        trigger=TriggerRef("e-1", "page_view", "web"),
        policy_version="v1",
        decided_at_ms=NOON_MS,
        send_after_ms=None,
        expires_at_ms=NOON_MS + DAY_MS,
        reason="cart left",
        stage="acquisition",
        journey=journey,
    )


def test_a_journeys_step_counts_for_its_action_and_its_journey() -> None:
    ref = JourneyRef("cart_recovery", "3", "push_first", "run-1")
    update = LearningUpdate
    result = StepResult(
        new_state("C000001"),
        to_send=(journey_action(ref),),
        learning=(
            update("cart_reminder", UpdateKind.EXPOSURE, group="treatment", journey=ref.journey),
            update(
                "cart_reminder",
                UpdateKind.CONVERSION,
                group="treatment",
                journey=ref.journey,
                value=10.0,
                currency="EUR",
            ),
            update("cart_reminder", UpdateKind.TRIAL),  # the model's business, not ours
        ),
    )
    counts: Counter[str] = Counter()
    performance.count_step(counts, result)
    for scope in ("action:cart_reminder", "journey:cart_recovery"):
        assert counts[f"{scope}:sent"] == 1
        assert counts[f"{scope}:exposures:treatment"] == 1
        assert counts[f"{scope}:conversions:treatment"] == 1
        assert counts[f"{scope}:revenue:treatment:EUR"] == 1000
    assert len(counts) == 8


def test_an_outcome_of_a_journeys_message_counts_for_the_journey_too() -> None:
    state = new_state("C000001")
    state.contacts = [{**journey_action(None).to_contact(), "journey": "cart_recovery"}]
    outcome = Outcome("o-1", "act-j", "C000001", "push", "clicked", NOON_MS, {})
    counts: Counter[str] = Counter()
    applied = StepResult(state, outcome=OutcomeStatus.APPLIED)
    performance.count_outcome(counts, outcome, applied)
    assert counts == {"action:cart_reminder:clicked": 1, "journey:cart_recovery:clicked": 1}
    performance.count_outcome(counts, outcome, StepResult(state, outcome=OutcomeStatus.DUPLICATE))
    assert sum(counts.values()) == 2


# --- the day rows -------------------------------------------------------------------------


def test_a_batch_rewrites_only_todays_row_and_adds_to_it() -> None:
    stored = StoredTables()
    fold(stored, (KEY, visit()), commit=True)
    other = b"C000003"
    result = fold(stored, (other, visit(other)), now_ms=NOON_MS + HOUR_MS)
    written = [key for key in result.writes[CENSUS] if performance.is_performance_key(key)]
    assert written == [performance.day_key(0, TODAY)]  # the list of days is unchanged
    assert today_row(result)["action:welcome_content:sent"] == 2


def test_a_new_days_first_batch_lists_the_day_and_deletes_rows_out_of_the_kept_days() -> None:
    stored = StoredTables()
    kept, gone = TODAY - performance.DAYS_KEPT + 1, TODAY - performance.DAYS_KEPT
    census = stored.tables[CENSUS]
    for day in (gone, kept):
        census[performance.day_key(0, day)] = orjson.dumps({"action:x:sent": 1})
    census[performance.days_key(0)] = orjson.dumps([gone, kept])
    result = fold(stored, (KEY, visit()))
    writes = result.writes[CENSUS]
    assert writes[performance.day_key(0, gone)] is None
    assert performance.day_key(0, kept) not in writes  # still within the kept days
    assert orjson.loads(writes[performance.days_key(0)]) == [kept, TODAY]


def test_a_batch_that_counts_nothing_writes_no_day_row() -> None:
    stored = StoredTables()
    fold(stored, (KEY, visit()), commit=True)
    result = fold(stored, (KEY, visit(at_ms=NOON_MS + 1)))  # welcome is shown once only
    assert not any(performance.is_performance_key(key) for key in result.writes[CENSUS])


def test_days_are_utc_dates_in_keys() -> None:
    assert performance.iso_day(TODAY) == "2026-11-23"
    assert performance.day_key(3, TODAY) == b"p3/day/2026-11-23"
    assert performance.parse_day_key(b"p3/day/2026-11-23") == (3, TODAY)
    assert performance.parse_day_key(b"p3") is None
    assert performance.parse_day("2026-11-23") == TODAY
    for bad in ("2026-11-31", "20261123", "yesterday"):
        try:
            performance.parse_day(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


# --- range sums and the table -----------------------------------------------------------


def rows(*items: tuple[int, int, dict[str, int]], asked: int = 0) -> list[Any]:
    return [
        (asked, performance.day_key(partition, day), orjson.dumps(row))
        for partition, day, row in items
    ]


def test_a_range_sums_the_rows_of_its_days_for_the_partition_asked() -> None:
    stored = rows(
        (0, TODAY, {"action:a:sent": 2}),
        (0, TODAY - 6, {"action:a:sent": 3}),
        (0, TODAY - 7, {"action:a:sent": 100}),  # out of a 7-day range
        (1, TODAY, {"action:a:sent": 1000}),  # another partition's row (a memory store)
    )
    stored.append((0, b"p0", orjson.dumps({"stage:awareness": 5})))  # the census row
    assert performance.in_range(stored, TODAY - 6, TODAY) == {"action:a:sent": 5}
    assert performance.in_range(stored, TODAY, TODAY) == {"action:a:sent": 2}


def test_the_table_has_the_message_funnel_revenue_and_uplift_per_action_and_journey() -> None:
    total = {
        "action:promo:sent": 10,
        "action:promo:delivered": 9,
        "action:promo:opened": 5,
        "action:promo:clicked": 2,
        "action:promo:converted": 1,
        "action:promo:exposures:treatment": 10,
        "action:promo:conversions:treatment": 3,
        "action:promo:revenue:treatment:EUR": 26970,
        "action:promo:revenue:treatment:GBP": 1000,
        "action:promo:exposures:control": 4,
        "action:promo:conversions:control": 0,
        "action:banner:sent": 20,
        "journey:onboarding:sent": 7,
    }
    table = performance.report(total)
    assert [row["action"] for row in table["actions"]] == ["banner", "promo"]  # most sent first
    promo = table["actions"][1]
    assert [promo[m] for m in ("sent", "delivered", "opened", "clicked", "converted")] == [
        10,
        9,
        5,
        2,
        1,
    ]
    assert promo["revenue"] == {"EUR": 269.7, "GBP": 10.0}
    assert promo["treatment"] == {
        "exposures": 10,
        "conversions": 3,
        "conversion_rate": 0.3,
        "revenue": {"EUR": 269.7, "GBP": 10.0},
    }
    assert promo["control"]["conversion_rate"] == 0.0
    assert promo["uplift"] == 0.3
    banner = table["actions"][0]
    assert banner["treatment"]["conversion_rate"] is None and banner["uplift"] is None
    [onboarding] = table["journeys"]
    assert (onboarding["journey"], onboarding["sent"]) == ("onboarding", 7)
