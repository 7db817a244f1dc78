"""The process step's pure fold: customer-events records become table writes and outputs.

Each test folds a batch against dict-backed tables (``StoredTables`` below) and, where
a second batch follows, commits the first one's writes as the shell would.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from stream.core import census
from stream.core import fold as fold_module
from stream.core.batch import BatchResult, Destination, Output
from stream.core.events import DlqReason, Event
from stream.core.fold import FoldContext, fold_partition
from stream.core.merge import CONFLICTS_KEPT
from stream.core.messages import (
    Conflict,
    Erase,
    EraseStub,
    EventMessage,
    Firing,
    Link,
    Merge,
    MergeIn,
    Message,
    OutcomeMessage,
    Unlink,
    decode,
    encode,
)
from stream.core.outcomes import Outcome
from stream.core.propensity import EMPTY_MODEL
from stream.core.state import CustomerState, Limits, new_state
from stream.core.stored import (
    CENSUS,
    CUSTOMERS,
    DECISIONS,
    DUE,
    Tables,
    census_key,
    read_decisions,
    ring_key,
)
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import NOON_MS, SHIPPED_RULES

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
RETRY_MS = 60_000
WALL_MS = 1_700_000_000_123  # the erasure audit's real-time stamp
KEY = b"C000001"
ANON = b"anon:a1"


class StoredTables(Tables):
    """The fold's ``StoredView`` over plain dicts; ``commit`` applies a batch's writes."""

    def commit(self, result: BatchResult) -> None:
        self.write(result.writes)

    def state(self, key: bytes = KEY) -> CustomerState:
        return CustomerState.from_dict(orjson.loads(self.tables[CUSTOMERS][key]))

    def put(self, state: CustomerState) -> None:
        self.tables[CUSTOMERS][state.customer_key.encode()] = state.to_json()


def context(now_ms: int = NOON_MS, **overrides: Any) -> FoldContext:
    fields: dict[str, Any] = {
        "now_ms": now_ms,
        "wall_ms": WALL_MS,
        "policy": SHIPPED_RULES,
        "model": EMPTY_MODEL,
        "limits": Limits(),
        "decisions_kept": 5,
        "firing_retry_ms": RETRY_MS,
    }
    fields.update(overrides)
    return FoldContext(**fields)


def fold(
    stored: StoredTables,
    *records: tuple[bytes, Message | bytes],
    now_ms: int = NOON_MS,
    commit: bool = False,
    **overrides: Any,
) -> BatchResult:
    """Fold one batch of partition 0 (messages encoded); commit its writes if asked."""
    raw = [(key, m if isinstance(m, bytes) else encode(m)) for key, m in records]
    result = fold_partition(0, raw, stored, context(now_ms, **overrides))
    if commit:
        stored.commit(result)
    return result


def event(type_: str = "page_view", key: bytes = KEY, at_ms: int = NOON_MS, **kw: Any) -> Event:
    properties = kw.pop("properties", None)
    if properties is None:
        properties = {"url": "/"} if type_ == "page_view" else {}
        if type_ == "add_to_cart":
            properties = {"product_id": "p1", "price": 20.0}
    return build_event(type_, properties=properties, customer_key=key.decode(), at_ms=at_ms, **kw)


def anonymous_event(at_ms: int = NOON_MS) -> Event:
    """A page view of an anonymous visitor whose phone is known too."""
    visit = event(key=ANON, at_ms=at_ms)
    return replace(visit, identifiers={"anonymous_id": "a1", "phone_sha256": "p1"})


def outputs_to(result: BatchResult, destination: Destination) -> list[Output]:
    return [output for output in result.outputs if output.destination is destination]


def no_writes(result: BatchResult) -> bool:
    return not result.has_writes()


# --- events -----------------------------------------------------------------------------


def test_a_first_event_creates_the_profile_and_counts_it_in_the_census() -> None:
    stored = StoredTables()
    result = fold(stored, (KEY, EventMessage(event(), NOON_MS - 30)))
    state = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert (state.customer_key, state.event_count, state.stage) == ("C000001", 1, "awareness")
    row = orjson.loads(result.writes[CENSUS][census_key(0)])
    assert row["created"] == 1
    assert row["stage:awareness"] == 1
    assert row["timer:inactivity"] == 1


def test_a_first_event_sends_its_action_to_the_channels_topic() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event(), NOON_MS - 30)))
    [action] = outputs_to(result, Destination.ACTIONS)
    message = orjson.loads(action.value)
    assert (action.key, action.channel) == (KEY, "web")
    assert (message["action"], message["channel"]) == ("welcome_content", "web")
    assert result.tally.counts[("actions", "welcome_content", "web")] == 1


def history(stored: StoredTables, kept: int = 5) -> list[dict[str, Any]] | None:
    """The customer's explain records as the API reads them, newest first."""
    return read_decisions(stored.tables[DECISIONS].get, KEY, kept)


def test_a_first_event_keeps_its_explain_record_and_sends_it() -> None:
    stored = StoredTables()
    result = fold(stored, (KEY, EventMessage(event())), commit=True)
    [sent] = outputs_to(result, Destination.DECISIONS)
    kept = history(stored)
    assert kept == [orjson.loads(sent.value)]
    assert kept[0]["customer_id"] == "C000001"
    assert [decision.decision_id for decision in result.decisions] == [kept[0]["decision_id"]]


def test_a_first_event_arms_the_inactivity_timer_in_the_due_table() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event())))
    assert result.writes[DUE] == {KEY: str(NOON_MS + 30 * DAY_MS).encode()}
    assert result.deadlines == {KEY: NOON_MS + 30 * DAY_MS}


def test_an_event_records_its_latencies_for_the_shell() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event(at_ms=NOON_MS - 9), NOON_MS - 30)))
    [latency] = result.latencies
    assert (latency.ingress_ts_ms, latency.occurred_at_ms, latency.sent) == (
        NOON_MS - 30,
        NOON_MS - 9,
        True,
    )


def test_an_event_times_its_decision_with_the_stopwatch() -> None:
    ticks = iter([10.0, 10.25])
    result = fold(StoredTables(), (KEY, EventMessage(event())), stopwatch=lambda: next(ticks))
    assert result.tally.observations == [("decision_seconds", ("event",), 0.25)]


def test_an_events_learning_updates_go_to_the_learning_topic_keyed_by_action() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event())))
    learning = outputs_to(result, Destination.LEARNING)
    kinds = [orjson.loads(update.value)["kind"] for update in learning]
    assert {update.key for update in learning} == {b"welcome_content"}
    assert sorted(kinds) == ["exposure", "trial"]
    assert result.tally.counts[("learning_updates", "trial")] == 1
    assert result.tally.counts[("uplift_exposures", "welcome_content", "treatment")] == 1


def test_a_stage_change_is_counted_as_a_transition_in_the_tally_and_the_census() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    result = fold(stored, (KEY, EventMessage(event("add_to_cart"))))
    assert result.tally.counts[("stage_transitions", "awareness", "acquisition")] == 1
    row = orjson.loads(result.writes[CENSUS][census_key(0)])
    assert row["moved:awareness>acquisition"] == 1
    assert row["stage:acquisition"] == 1
    assert "stage:awareness" not in row
    assert row["created"] == 1  # kept from the first batch, not counted again


def test_a_duplicate_event_is_counted_and_writes_nothing() -> None:
    stored = StoredTables()
    first = event()
    fold(stored, (KEY, EventMessage(first)), commit=True)
    result = fold(stored, (KEY, EventMessage(first)))
    assert result.tally.counts == {("duplicates",): 1}
    assert result.outputs == []
    assert no_writes(result)
    assert result.latencies == []


def test_an_event_whose_identifiers_are_new_links_them_to_the_profile() -> None:
    seen = replace(event(), identifiers={"customer_id": "C000001", "anonymous_id": "a1"})
    result = fold(StoredTables(), (KEY, EventMessage(seen)))
    [link] = outputs_to(result, Destination.IDENTITY_EVENTS)
    assert link.key == ANON
    assert decode(link.value) == Link("anon:a1", "C000001")


# --- firings ----------------------------------------------------------------------------


def carted(stored: StoredTables, minutes_ago: int = 31) -> int:
    """A customer who left a cart ``minutes_ago``; returns the cart timer's deadline."""
    at_ms = NOON_MS - minutes_ago * MINUTE_MS
    fold(stored, (KEY, EventMessage(event("add_to_cart", at_ms=at_ms))), now_ms=at_ms, commit=True)
    return at_ms + 30 * MINUTE_MS


def test_a_firing_moves_the_due_journey_and_observes_its_lag_in_real_seconds() -> None:
    stored = StoredTables()
    due_ms = carted(stored)
    result = fold(stored, (KEY, Firing(due_ms, NOON_MS)), clock_speed=2.0)
    moves = [key[3:6] for key in result.tally.counts if key[0] == "journey_moves"]
    assert ("wait_30m", "edge", "next") in moves  # the cart journey's wait is over
    lag = [value for name, _, value in result.tally.observations if name == "timer_fire_lag"]
    assert lag == [(NOON_MS - due_ms) / 2.0 / 1000]
    fired = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert fired.journeys["cart_abandonment"]["node"] == "wait_open"
    # the fold reads, never writes
    assert stored.state().journeys["cart_abandonment"]["node"] == "wait_30m"
    [action] = outputs_to(result, Destination.ACTIONS)
    assert orjson.loads(action.value)["action"] == "cart_reminder"


def test_a_firing_with_nothing_due_writes_nothing() -> None:
    stored = StoredTables()
    due_ms = carted(stored, minutes_ago=5)
    result = fold(stored, (KEY, Firing(due_ms, NOON_MS)))
    assert (result.outputs, result.tally.counts) == ([], {})
    assert no_writes(result)
    assert result.deadlines == {KEY: due_ms}


def test_a_firing_for_an_unknown_customer_does_nothing() -> None:
    result = fold(StoredTables(), (KEY, Firing(NOON_MS, NOON_MS)))
    assert (result.outputs, result.dead_letters, result.tally.counts) == ([], [], {})
    assert no_writes(result)


def test_a_failed_firing_is_a_dead_letter_retried_later_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    due_ms = carted(stored)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fold_module, "fire", broken)
    other = event(key=b"C000002")
    result = fold(stored, (KEY, Firing(due_ms, NOON_MS)), (b"C000002", EventMessage(other)))
    [dead] = result.dead_letters
    assert dead.position == 0
    assert dead.rejection.reason is DlqReason.PROCESSING_ERROR
    assert dead.rejection.detail == "RuntimeError: boom"
    assert isinstance(dead.error, RuntimeError)
    assert due_ms <= NOON_MS  # due now: the index would fire it again at once
    assert result.deadlines[KEY] == NOON_MS + RETRY_MS
    assert KEY not in result.writes[DUE]  # the due table keeps the deadline
    assert b"C000002" in result.writes[CUSTOMERS]  # the next record was processed


def test_a_failed_firing_keeps_a_deadline_later_than_the_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)  # inactivity: due in 30 days

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fold_module, "fire", broken)
    result = fold(stored, (KEY, Firing(NOON_MS, NOON_MS)))
    assert result.deadlines[KEY] == NOON_MS + 30 * DAY_MS


def test_a_failed_event_is_a_dead_letter_but_not_retried_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    due_ms = carted(stored)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("bad")

    monkeypatch.setattr(fold_module, "step", broken)
    result = fold(stored, (KEY, EventMessage(event())))
    assert [d.rejection.detail for d in result.dead_letters] == ["ValueError: bad"]
    assert result.deadlines[KEY] == due_ms  # only a firing is pushed back


def test_a_step_that_fails_after_updating_its_profile_in_place_leaves_the_profile_as_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    carted(stored)
    stored_before = stored.tables[CUSTOMERS][KEY]
    real_step = fold_module.step
    calls: list[bool] = []

    def fails_once_after_updating(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["owned"])
        result = real_step(*args, **kwargs)  # the stored profile is now changed in place
        if len(calls) == 1:
            raise ValueError("bad")
        return result

    monkeypatch.setattr(fold_module, "step", fails_once_after_updating)
    failed, then = event("page_view", event_id="e-failed"), event("login", event_id="e-then")
    result = fold(stored, (KEY, EventMessage(failed)), (KEY, EventMessage(then)), commit=True)
    assert calls == [True, True]  # the first event stepped the stored profile in place
    assert [d.rejection.detail for d in result.dead_letters] == ["ValueError: bad"]
    monkeypatch.undo()
    expected = StoredTables()
    expected.tables[CUSTOMERS][KEY] = stored_before
    fold(expected, (KEY, EventMessage(then)), commit=True)
    assert stored.state() == expected.state()  # as if the failed event never came
    assert "e-failed" not in stored.state().seen_event_ids


def test_a_profiles_second_event_in_a_batch_steps_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    carted(stored)
    real_step = fold_module.step
    owned: list[bool] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        owned.append(kwargs["owned"])
        return real_step(*args, **kwargs)

    monkeypatch.setattr(fold_module, "step", recording)
    fold(
        stored, (KEY, EventMessage(event(event_id="e1"))), (KEY, EventMessage(event(event_id="e2")))
    )
    assert owned == [True, False]


def test_an_undecodable_record_is_a_dead_letter_and_the_rest_of_the_batch_proceeds() -> None:
    result = fold(
        StoredTables(),
        (KEY, b"{not json"),
        (KEY, b'{"snooze": {}}'),
        (KEY, EventMessage(event())),
    )
    assert [dead.position for dead in result.dead_letters] == [0, 1]
    assert {d.rejection.reason for d in result.dead_letters} == {DlqReason.PROCESSING_ERROR}
    assert "MessageError" in result.dead_letters[1].rejection.detail
    assert KEY in result.writes[CUSTOMERS]


# --- outcomes ---------------------------------------------------------------------------


def outcome(kind: str = "clicked", action_id: str = "act-1", channel: str = "web") -> Outcome:
    return Outcome(f"out-{kind}", action_id, "C000001", channel, kind, NOON_MS, {})


def test_an_outcome_for_an_unknown_customer_is_counted_and_writes_nothing() -> None:
    result = fold(StoredTables(), (KEY, OutcomeMessage(outcome(channel="email"))))
    assert result.tally.counts == {("outcomes", "email", "clicked", "unknown_customer"): 1}
    assert result.outputs == []
    assert no_writes(result)


def test_an_outcome_for_a_sent_action_is_applied_and_teaches_the_model() -> None:
    stored = StoredTables()
    first = fold(stored, (KEY, EventMessage(event())), commit=True)
    [action] = outputs_to(first, Destination.ACTIONS)
    action_id = orjson.loads(action.value)["action_id"]
    result = fold(stored, (KEY, OutcomeMessage(outcome(action_id=action_id))))
    assert result.tally.counts[("outcomes", "web", "clicked", "applied")] == 1
    [learning] = outputs_to(result, Destination.LEARNING)
    assert orjson.loads(learning.value)["kind"] == "success"
    assert stored.state().responses == {}  # not committed yet
    assert CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY])).responses == {
        "web": 1
    }


def test_an_outcome_for_an_unknown_action_is_counted_as_such_and_writes_no_profile() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    result = fold(stored, (KEY, OutcomeMessage(outcome(action_id="never-sent"))))
    assert result.tally.counts[("outcomes", "web", "clicked", "unknown_action")] == 1
    assert result.writes[CUSTOMERS] == {}


# --- merges -----------------------------------------------------------------------------


def anonymous_profile(stored: StoredTables) -> dict[str, Any]:
    """An anonymous visitor's stored profile (linked to a phone); returns its dict."""
    fold(stored, (ANON, EventMessage(anonymous_event())), commit=True)
    return orjson.loads(stored.tables[CUSTOMERS][ANON])


def test_a_merge_leaves_a_stub_and_sends_the_state_to_the_survivor() -> None:
    stored = StoredTables()
    state = anonymous_profile(stored)
    assert state["linked"] == ["phone:p1"]
    result = fold(stored, (ANON, Merge("anon:a1", "C000001")))
    assert orjson.loads(result.writes[CUSTOMERS][ANON]) == {"merged_into": "C000001"}
    assert result.outputs == [
        Output(Destination.CUSTOMER_EVENTS, KEY, encode(MergeIn("anon:a1", state)))
    ]
    assert result.tally.counts == {("identity_merges",): 1}


def test_a_merged_profile_leaves_the_census() -> None:
    stored = StoredTables()
    anonymous_profile(stored)
    result = fold(stored, (ANON, Merge("anon:a1", "C000001")))
    row = orjson.loads(result.writes[CENSUS][census_key(0)])
    assert "stage:awareness" not in row and "timer:inactivity" not in row
    assert row["created"] == 1


def test_a_merge_of_an_unknown_profile_does_nothing() -> None:
    result = fold(StoredTables(), (ANON, Merge("anon:a1", "C000001")))
    assert (result.outputs, result.tally.counts) == ([], {})
    assert no_writes(result)


def test_a_merge_in_folds_the_state_and_links_the_merged_profiles_other_identifiers() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    state = anonymous_profile(stored)
    result = fold(stored, (KEY, MergeIn("anon:a1", state)))
    merged = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert merged.event_count == 2
    assert set(merged.linked) == {"phone:p1", "anon:a1"}
    assert "merge:anon:a1" in merged.seen_event_ids
    assert result.outputs == [
        Output(Destination.IDENTITY_EVENTS, b"phone:p1", encode(Link("phone:p1", "C000001")))
    ]


def test_a_redelivered_merge_in_changes_nothing() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    state = anonymous_profile(stored)
    fold(stored, (KEY, MergeIn("anon:a1", state)), commit=True)
    result = fold(stored, (KEY, MergeIn("anon:a1", state)))
    assert (result.outputs, result.tally.counts) == ([], {})
    assert no_writes(result)


def test_a_merge_in_to_a_key_without_a_profile_creates_it() -> None:
    stored = StoredTables()
    state = anonymous_profile(stored)
    result = fold(stored, (KEY, MergeIn("anon:a1", state)))
    merged = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert merged.customer_key == "C000001"
    assert orjson.loads(result.writes[CENSUS][census_key(0)])["created"] == 2


def test_an_anonymous_profile_merged_into_a_new_one_enters_the_funnel_once() -> None:
    stored = StoredTables()
    state = anonymous_profile(stored)
    fold(stored, (ANON, Merge("anon:a1", "C000001")), commit=True)
    fold(stored, (KEY, MergeIn("anon:a1", state)), commit=True)
    row = orjson.loads(stored.tables[CENSUS][census_key(0)])
    assert (row["created"], row["merged"]) == (2, 1)  # two profiles, one of them merged
    awareness = census.funnel(row, NOON_MS)[0]
    assert (awareness["entered"], awareness["customers"]) == (1, 1)


def test_an_anonymous_profile_merged_into_a_known_customer_enters_the_funnel_once() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    state = anonymous_profile(stored)
    fold(stored, (ANON, Merge("anon:a1", "C000001")), (KEY, MergeIn("anon:a1", state)), commit=True)
    awareness = census.funnel(orjson.loads(stored.tables[CENSUS][census_key(0)]), NOON_MS)[0]
    assert (awareness["entered"], awareness["customers"]) == (1, 1)


def test_a_profile_created_and_merged_in_one_batch_is_counted_only_where_it_went() -> None:
    stored = StoredTables()
    batch = fold(
        stored,
        (ANON, EventMessage(anonymous_event())),
        (ANON, Merge("anon:a1", "C000001")),
        commit=True,
    )
    assert census_key(0) not in batch.writes[CENSUS]  # neither created nor merged away
    [merge_in] = [o for o in batch.outputs if o.destination is Destination.CUSTOMER_EVENTS]
    fold(stored, (KEY, decode(merge_in.value)), commit=True)
    awareness = census.funnel(orjson.loads(stored.tables[CENSUS][census_key(0)]), NOON_MS)[0]
    assert (awareness["entered"], awareness["customers"]) == (1, 1)


# --- a merged profile's stub ------------------------------------------------------------


def stubbed(stored: StoredTables) -> None:
    stored.tables[CUSTOMERS][ANON] = orjson.dumps({"merged_into": "C000001"})


def test_a_stub_forwards_an_event_to_the_survivor_re_addressed() -> None:
    stored = StoredTables()
    stubbed(stored)
    visit = anonymous_event()
    result = fold(stored, (ANON, EventMessage(visit, NOON_MS - 3)))
    [forwarded] = result.outputs
    assert (forwarded.destination, forwarded.key) == (Destination.CUSTOMER_EVENTS, KEY)
    assert decode(forwarded.value) == EventMessage(
        replace(visit, customer_key="C000001"), NOON_MS - 3
    )
    assert result.tally.counts == {("identity_redirects",): 1}
    assert no_writes(result)


@pytest.mark.parametrize(
    "message",
    [
        OutcomeMessage(outcome()),
        Erase(NOON_MS, "anon:a1"),
        Conflict("loyalty:L1", "C000002", NOON_MS),
        MergeIn("anon:b2", {"customer_key": "anon:b2"}),
    ],
    ids=lambda m: type(m).__name__,
)
def test_a_stub_forwards_other_messages_to_the_survivor_unchanged(message: Message) -> None:
    stored = StoredTables()
    stubbed(stored)
    result = fold(stored, (ANON, message))
    assert result.outputs == [Output(Destination.CUSTOMER_EVENTS, KEY, encode(message))]
    assert result.tally.counts == {("identity_redirects",): 1}
    assert no_writes(result)


@pytest.mark.parametrize(
    "message", [Firing(NOON_MS, NOON_MS), Merge("anon:a1", "C000002")], ids=["Firing", "Merge"]
)
def test_a_stub_drops_firings_and_merges(message: Message) -> None:
    stored = StoredTables()
    stubbed(stored)
    result = fold(stored, (ANON, message))
    assert (result.outputs, result.tally.counts) == ([], {})
    assert no_writes(result)


def test_a_stubs_passed_due_entry_is_deleted_by_its_firing() -> None:
    stored = StoredTables()
    stubbed(stored)
    stored.tables[DUE][ANON] = str(NOON_MS - 1).encode()  # moved with the state; still here
    result = fold(stored, (ANON, Firing(NOON_MS - 1, NOON_MS)))
    assert result.writes[DUE] == {ANON: None}
    assert result.deadlines == {ANON: None}


def test_erase_stub_deletes_the_stub() -> None:
    stored = StoredTables()
    stubbed(stored)
    result = fold(stored, (ANON, EraseStub("C000001")))
    assert result.writes[CUSTOMERS] == {ANON: None}
    assert result.outputs == []


def test_erase_stub_leaves_a_live_profile_alone() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    result = fold(stored, (KEY, EraseStub("C000009")))
    assert no_writes(result)


# --- erasure ----------------------------------------------------------------------------


def known_customer(stored: StoredTables) -> None:
    """C000001, with an anonymous id linked, a decision history and a due entry."""
    seen = replace(event(), identifiers={"customer_id": "C000001", "anonymous_id": "a1"})
    fold(stored, (KEY, EventMessage(seen)), commit=True)
    assert stored.tables[DECISIONS][KEY] and stored.tables[DUE][KEY]


def test_erase_deletes_the_profile_its_decision_history_and_its_due_entry() -> None:
    stored = StoredTables()
    known_customer(stored)
    result = fold(stored, (KEY, Erase(NOON_MS)))
    assert result.writes[CUSTOMERS] == {KEY: None}
    assert result.writes[DECISIONS] == {KEY: None, ring_key(KEY, 0): None}
    assert result.writes[DUE] == {KEY: None}
    assert result.deadlines == {KEY: None}
    assert result.tally.counts == {("erasures",): 1}
    row = orjson.loads(result.writes[CENSUS][census_key(0)])
    assert "stage:awareness" not in row


def test_erase_unlinks_every_identifier_and_writes_an_audit_record() -> None:
    stored = StoredTables()
    known_customer(stored)
    result = fold(stored, (KEY, Erase(NOON_MS)))
    [unlink] = outputs_to(result, Destination.IDENTITY_EVENTS)
    assert unlink.key == ANON
    assert decode(unlink.value) == Unlink("anon:a1", "C000001", erase=True)
    [audit] = outputs_to(result, Destination.ERASURES)
    assert audit.key == KEY
    assert orjson.loads(audit.value) == {
        "customer_id": "C000001",
        "requested_for": "C000001",
        "found": True,
        "identifiers_removed": 1,
        "erased_at_ms": WALL_MS,
    }
    assert any("erased customer C000001" in line for _, line in result.notes)


def test_erase_requested_for_a_merged_identifier_is_audited_under_that_identifier() -> None:
    stored = StoredTables()
    known_customer(stored)
    result = fold(stored, (KEY, Erase(NOON_MS, "anon:a1")))
    [audit] = outputs_to(result, Destination.ERASURES)
    assert audit.key == ANON
    assert orjson.loads(audit.value)["requested_for"] == "anon:a1"
    assert orjson.loads(audit.value)["customer_id"] == "C000001"


def test_erase_of_an_unknown_customer_writes_only_an_audit_saying_not_found() -> None:
    result = fold(StoredTables(), (KEY, Erase(NOON_MS)))
    [audit] = result.outputs
    assert audit.destination is Destination.ERASURES
    record = orjson.loads(audit.value)
    assert (record["found"], record["identifiers_removed"]) == (False, 0)
    assert no_writes(result)
    assert result.tally.counts == {}


def test_a_profile_created_and_erased_in_one_batch_leaves_no_decision_history() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event())), (KEY, Erase(NOON_MS)))
    assert result.writes[DECISIONS] == {}
    assert result.writes[CUSTOMERS] == {KEY: None}
    assert result.writes[DUE] == {}  # nothing was stored
    assert census_key(0) not in result.writes[CENSUS]  # created and gone: no net change


# --- conflicts --------------------------------------------------------------------------


def test_a_conflict_is_noted_on_the_profile() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    result = fold(stored, (KEY, Conflict("loyalty:L1", "C000002", NOON_MS)))
    state = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert state.identity_conflicts == [
        {"token": "loyalty:L1", "belongs_to": "C000002", "at_ms": NOON_MS}
    ]


def test_a_conflict_keeps_at_most_the_latest_conflicts_kept_notes() -> None:
    stored = StoredTables()
    state = new_state("C000001")
    state.identity_conflicts = [
        {"token": f"t{n}", "belongs_to": "C2", "at_ms": n} for n in range(CONFLICTS_KEPT)
    ]
    stored.put(state)
    result = fold(stored, (KEY, Conflict("loyalty:L1", None, NOON_MS)))
    noted = CustomerState.from_dict(orjson.loads(result.writes[CUSTOMERS][KEY]))
    assert len(noted.identity_conflicts) == CONFLICTS_KEPT
    assert noted.identity_conflicts[0]["token"] == "t1"  # the oldest went
    assert noted.identity_conflicts[-1] == {
        "token": "loyalty:L1",
        "belongs_to": None,
        "at_ms": NOON_MS,
    }


def test_a_conflict_for_an_unknown_customer_does_nothing() -> None:
    result = fold(StoredTables(), (KEY, Conflict("loyalty:L1", "C000002", NOON_MS)))
    assert result.outputs == []
    assert no_writes(result)


# --- the due table ----------------------------------------------------------------------


def with_due(stored: StoredTables, due_ms: int) -> None:
    stored.tables[DUE][KEY] = str(due_ms).encode()


def test_an_earlier_deadline_is_written_to_the_due_table() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)  # inactivity: 30 days
    result = fold(stored, (KEY, EventMessage(event("add_to_cart"))))
    assert result.writes[DUE] == {KEY: str(NOON_MS + 30 * MINUTE_MS).encode()}
    assert result.deadlines == {KEY: NOON_MS + 30 * MINUTE_MS}


def test_a_deadline_that_only_moved_later_keeps_the_earlier_entry() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    later = NOON_MS + DAY_MS
    result = fold(stored, (KEY, EventMessage(event(at_ms=later))), now_ms=later)
    assert result.writes[DUE] == {}  # the inactivity timer re-armed a day later
    assert result.deadlines == {KEY: NOON_MS + 30 * DAY_MS}


def test_a_passed_entry_is_rewritten_to_the_next_deadline() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    with_due(stored, NOON_MS - 1)  # fired, or early: passed
    result = fold(stored, (KEY, Conflict("t", None, NOON_MS)))
    assert result.writes[DUE] == {KEY: str(NOON_MS + 30 * DAY_MS).encode()}
    assert result.deadlines == {KEY: NOON_MS + 30 * DAY_MS}


def test_a_passed_entry_without_a_next_deadline_is_deleted() -> None:
    stored = StoredTables()
    stored.put(new_state("C000001"))  # no timer, nothing held
    with_due(stored, NOON_MS)
    result = fold(stored, (KEY, Conflict("t", None, NOON_MS)))
    assert result.writes[DUE] == {KEY: None}
    assert result.deadlines == {KEY: None}


def test_a_future_entry_without_a_next_deadline_is_kept_until_it_passes() -> None:
    stored = StoredTables()
    stored.put(new_state("C000001"))
    with_due(stored, NOON_MS + 1)
    result = fold(stored, (KEY, Conflict("t", None, NOON_MS)))
    assert result.writes[DUE] == {}
    assert result.deadlines == {KEY: NOON_MS + 1}


def test_a_missing_entry_is_healed_on_the_customers_next_message() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    del stored.tables[DUE][KEY]  # a crash between the state and due writes
    result = fold(stored, (KEY, OutcomeMessage(outcome(action_id="never-sent"))))
    assert result.writes[DUE] == {KEY: str(NOON_MS + 30 * DAY_MS).encode()}


# --- the decision history ---------------------------------------------------------------


def test_a_history_in_the_old_list_format_is_read_and_folded_into_the_ring() -> None:
    stored = StoredTables()
    older = [{"decision_id": f"old{n}"} for n in range(1, 4)]  # newest first
    stored.tables[DECISIONS][KEY] = orjson.dumps(older)
    assert history(stored, kept=3) == older  # read as it is, before any new decision
    fold(
        stored,
        (KEY, EventMessage(event(event_id="first"))),
        (KEY, EventMessage(event(event_id="second"))),
        decisions_kept=3,
        commit=True,
    )
    kept = history(stored, kept=3) or []
    assert [record["trigger"]["event_id"] for record in kept[:2]] == ["second", "first"]
    assert kept[2:] == [{"decision_id": "old1"}]


def test_each_decision_writes_one_slot_of_the_ring_not_the_whole_history() -> None:
    stored = StoredTables()
    ids = []
    for n in range(7):
        result = fold(
            stored,
            (KEY, EventMessage(event(event_id=f"e{n}", at_ms=NOON_MS + n))),
            now_ms=NOON_MS + n,
            decisions_kept=3,
            commit=True,
        )
        written = result.writes[DECISIONS]
        assert set(written) == {KEY, ring_key(KEY, n % 3)}  # the head and one slot
        ids.append(orjson.loads(written[ring_key(KEY, n % 3)])[1]["trigger"]["event_id"])
    assert [r["trigger"]["event_id"] for r in history(stored, kept=3) or []] == ids[::-1][:3]
    assert len(stored.tables[DECISIONS]) == 1 + 3


def test_erasing_a_history_in_the_old_list_format_deletes_it() -> None:
    stored = StoredTables()
    stored.put(new_state("C000001"))
    stored.tables[DECISIONS][KEY] = orjson.dumps([{"decision_id": "old"}])
    result = fold(stored, (KEY, Erase(NOON_MS)), commit=True)
    assert result.writes[DECISIONS] == {KEY: None}
    assert stored.tables[DECISIONS] == {}


# --- the census -------------------------------------------------------------------------


def test_the_census_adds_to_the_partitions_stored_row() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    other = b"C000002"
    result = fold(stored, (other, EventMessage(event(key=other))))
    row = orjson.loads(result.writes[CENSUS][census_key(0)])
    assert (row["created"], row["stage:awareness"], row["timer:inactivity"]) == (2, 2, 2)


def test_a_batch_that_changes_no_profile_leaves_the_census_alone() -> None:
    result = fold(StoredTables(), (KEY, OutcomeMessage(outcome())))
    assert result.writes[CENSUS] == {}


def test_the_census_row_is_the_folded_partitions_own() -> None:
    stored = StoredTables()
    result = fold_partition(7, [(KEY, encode(EventMessage(event())))], stored, context())
    assert census_key(7) == b"p7" in result.writes[CENSUS]
    assert all(key.startswith(b"p7") for key in result.writes[CENSUS])  # performance rows too


# --- what the old worker counted --------------------------------------------------------


def test_an_event_that_arms_a_timer_counts_the_timer_update() -> None:
    result = fold(StoredTables(), (KEY, EventMessage(event())))
    assert result.tally.counts[("timer_updates", "inactivity", "armed")] == 1


def test_suppressed_candidates_are_counted_by_action_and_reason() -> None:
    stored = StoredTables()
    fold(stored, (KEY, EventMessage(event())), commit=True)
    result = fold(stored, (KEY, EventMessage(event())))  # welcome content: once per customer
    suppressions = {k: v for k, v in result.tally.counts.items() if k[0] == "suppressions"}
    assert suppressions
    assert all(action == "welcome_content" for _, action, _ in suppressions)


def test_a_failed_firing_of_a_profile_with_nothing_pending_leaves_no_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = StoredTables()
    stored.put(new_state("C000001"))  # no timer, nothing held: an early or stale firing

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fold_module, "fire", broken)
    result = fold(stored, (KEY, Firing(NOON_MS, NOON_MS)))
    assert len(result.dead_letters) == 1
    assert result.deadlines == {KEY: None}


def test_a_ring_grown_by_a_larger_decisions_kept_reads_and_erases_cleanly() -> None:
    stored = StoredTables()
    for n in range(3):
        fold(stored, (KEY, EventMessage(event(event_id=f"e{n}"))), decisions_kept=2, commit=True)
    fold(stored, (KEY, EventMessage(event(event_id="e3"))), decisions_kept=5, commit=True)
    ids = [r["trigger"]["event_id"] for r in history(stored, kept=5) or []]
    assert ids[0] == "e3" and len(ids) == len(set(ids))
    fold(stored, (KEY, Erase(NOON_MS)), decisions_kept=5, commit=True)
    assert stored.tables[DECISIONS] == {}
