"""Sender outcomes: decoding (with a DLQ reason for every way one is wrong) and applying them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.core.events import DlqReason, Rejection
from stream.core.outcomes import Outcome, OutcomeStatus, apply_outcome, decode_outcome
from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.state import CustomerState, append_contacts, new_state
from tests.unit.core.decide.helpers import CATALOG, SHIPPED_RULES, policy_from

MAX_BYTES = 4_096
AT_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z

VALID = {
    "outcome_id": "out-1",
    "action_id": "act-1",
    "customer_id": "C000001",
    "channel": "email",
    "outcome": "clicked",
    "occurred_at": "2026-11-23T10:00:00Z",
}

POLICY = SHIPPED_RULES  # rewards: clicked, converted


def decode(message: Any) -> Outcome | Rejection:
    raw = message if isinstance(message, bytes) or message is None else orjson.dumps(message)
    return decode_outcome(raw, CATALOG, MAX_BYTES)


def test_a_valid_outcome_decodes_with_its_time_in_epoch_ms() -> None:
    outcome = decode({**VALID, "detail": {"url": "/shoes"}})
    assert outcome == Outcome(
        "out-1", "act-1", "C000001", "email", "clicked", AT_MS, {"url": "/shoes"}
    )
    assert decode(VALID).detail == {}
    assert Outcome.from_record(outcome.to_record()) == outcome


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, DlqReason.NOT_AN_OBJECT),
        (b"x" * (MAX_BYTES + 1), DlqReason.TOO_LARGE),
        (b'{"outcome_id": "\xff"}', DlqReason.INVALID_UTF8),
        (b"{not json", DlqReason.INVALID_JSON),
        (b"[1, 2]", DlqReason.NOT_AN_OBJECT),
        ({**VALID, "outcome": "liked"}, DlqReason.SCHEMA_VIOLATION),
        ({k: v for k, v in VALID.items() if k != "action_id"}, DlqReason.SCHEMA_VIOLATION),
        ({**VALID, "channel": "fax"}, DlqReason.SCHEMA_VIOLATION),
        ({**VALID, "occurred_at": "2026-11-23T10:00:00"}, DlqReason.INVALID_TIMESTAMP),
        ({**VALID, "occurred_at": "yesterday"}, DlqReason.INVALID_TIMESTAMP),
        (b'{"detail": ' + b"[" * 40 + b"]" * 40 + b"}", DlqReason.TOO_DEEP),
        (b'{"outcome_id": "a", "outcome_id": "b"}', DlqReason.DUPLICATE_KEY),
        (b'{"detail": {"score": NaN}}', DlqReason.INVALID_NUMBER),
        (b'{"detail": {"score": 1e999}}', DlqReason.INVALID_NUMBER),
    ],
    ids=[
        "empty",
        "too large",
        "bad utf-8",
        "bad json",
        "array",
        "unknown outcome",
        "missing action_id",
        "unknown channel",
        "no utc offset",
        "not a time",
        "too deep",
        "duplicate key",
        "nan",
        "out of range",
    ],
)
def test_broken_outcomes_are_rejected_with_a_precise_reason(raw: Any, reason: DlqReason) -> None:
    rejection = decode(raw)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is reason
    assert rejection.detail


# --- applying outcomes to a customer's state


def contact(action_id: str, channel: str = "email", group: str = "treatment") -> dict[str, Any]:
    return {
        "action_id": action_id,
        "action": "promo",
        "channel": channel,
        "category": "marketing",
        "at_ms": AT_MS,
        "send_at_ms": AT_MS,
        "trigger_event_id": "e-1",
        "stage": "engagement",
        "group": group,
    }


def customer(*contacts: dict[str, Any]) -> CustomerState:
    """A customer with consent on email and push who was sent ``contacts``."""
    state = new_state("C000001")
    state.identifiers = {"customer_id": "C000001"}
    state.app_installed = True
    state.consent = {"email": True, "push": True}
    append_contacts(state, list(contacts))
    return state


def outcome(kind: str, action_id: str = "a1", channel: str = "email", **detail: Any) -> Outcome:
    return Outcome(f"{action_id}-{kind}", action_id, "C000001", channel, kind, AT_MS + 1, detail)


def test_an_outcome_for_an_unknown_action_changes_nothing() -> None:
    state = customer(contact("a1"))
    result = apply_outcome(state, outcome("clicked", "never-sent"), POLICY)
    assert result.status is OutcomeStatus.UNKNOWN_ACTION
    assert result.state is state
    assert result.learning == ()


def test_a_control_group_contact_was_never_sent_so_its_outcomes_are_unknown() -> None:
    state = customer(contact("a1", group="control"))
    result = apply_outcome(state, outcome("clicked"), POLICY)
    assert result.status is OutcomeStatus.UNKNOWN_ACTION
    assert result.state.responses == {}


def test_a_reward_counts_a_response_and_a_success_for_the_contacts_cell() -> None:
    state = customer(contact("a1", "push"))
    result = apply_outcome(state, outcome("clicked", channel="push"), POLICY)
    assert result.status is OutcomeStatus.APPLIED
    assert result.state.responses == {"push": 1}
    assert result.state.contacts[0]["outcomes"] == ["clicked"]
    assert result.learning == (LearningUpdate("promo", UpdateKind.SUCCESS, "engagement", "push"),)


def test_apply_outcome_does_not_change_its_input() -> None:
    state = customer(contact("a1"))
    snapshot = state.to_dict()
    apply_outcome(state, outcome("clicked"), POLICY)
    apply_outcome(state, outcome("bounced"), POLICY)
    assert state.to_dict() == snapshot


def test_the_same_outcome_type_twice_for_one_action_is_a_duplicate() -> None:
    state = apply_outcome(customer(contact("a1")), outcome("opened"), POLICY).state
    again = apply_outcome(state, outcome("opened"), POLICY)
    assert again.status is OutcomeStatus.DUPLICATE
    assert again.state is state
    assert apply_outcome(state, outcome("clicked"), POLICY).status is OutcomeStatus.APPLIED


def test_a_reward_is_counted_once_per_action() -> None:
    state = customer(contact("a1"), contact("a2"))
    clicked = apply_outcome(state, outcome("clicked", "a1"), POLICY)
    converted = apply_outcome(clicked.state, outcome("converted", "a1"), POLICY)
    assert converted.status is OutcomeStatus.APPLIED
    assert converted.learning == ()
    assert converted.state.responses == {"email": 1}
    assert converted.state.contacts[0]["outcomes"] == ["clicked", "converted"]
    other = apply_outcome(converted.state, outcome("converted", "a2"), POLICY)
    assert len(other.learning) == 1
    assert other.state.responses == {"email": 2}


def test_the_policys_rewards_decide_what_counts_as_a_success() -> None:
    opens = policy_from(
        """
        format: 1
        name: opens
        learning: {rewards: [opened]}
        actions:
          - {id: promo, category: marketing, channels: [email], triggers: [{event: page_view}]}
        """
    )
    state = customer(contact("a1"))
    assert len(apply_outcome(state, outcome("opened"), opens).learning) == 1
    assert apply_outcome(state, outcome("clicked"), opens).learning == ()
    assert apply_outcome(state, outcome("opened"), POLICY).learning == ()


@pytest.mark.parametrize("kind", ["opened", "clicked", "converted"])
def test_engaged_outcomes_reset_the_unanswered_streak_on_the_contacts_channel(kind: str) -> None:
    state = customer(contact("a1"), contact("a2"), contact("a3"), contact("p1", "push"))
    assert state.unanswered == {"email": 3, "push": 1}
    result = apply_outcome(state, outcome(kind, "a2"), POLICY)
    assert result.state.unanswered == {"email": 0, "push": 1}


@pytest.mark.parametrize("kind", ["delivered", "dismissed", "failed"])
def test_other_outcomes_are_only_recorded_on_the_contact(kind: str) -> None:
    state = customer(contact("a1"))
    result = apply_outcome(state, outcome(kind), POLICY)
    assert result.status is OutcomeStatus.APPLIED
    assert result.state.contacts[0]["outcomes"] == [kind]
    assert result.state.unanswered == {"email": 1}
    assert (result.state.responses, result.state.opt_outs, result.learning) == ({}, {}, ())
    assert result.state.consent == state.consent


@pytest.mark.parametrize("detail", [{}, {"bounce_type": "hard"}])
def test_a_hard_bounce_closes_the_channel_for_every_category(detail: dict[str, str]) -> None:
    state = apply_outcome(customer(contact("a1")), outcome("bounced", **detail), POLICY).state
    assert state.opt_outs == {"email": "hard_bounce"}
    assert not state.may_contact("email", "marketing")
    assert not state.may_contact("email", "transactional")
    assert state.may_contact("push", "marketing")


def test_a_soft_bounce_closes_nothing() -> None:
    state = customer(contact("a1"))
    after = apply_outcome(state, outcome("bounced", bounce_type="soft"), POLICY).state
    assert after.opt_outs == {}
    assert after.may_contact("email", "marketing")


def test_unsubscribing_stops_marketing_on_the_channel_but_not_service() -> None:
    state = apply_outcome(
        customer(contact("p1", "push")), outcome("unsubscribed", "p1", "push"), POLICY
    ).state
    assert state.opt_outs == {"push": "unsubscribed"}
    assert not state.may_contact("push", "marketing")
    assert state.may_contact("push", "service")
    assert state.may_contact("email", "marketing")


def test_unsubscribing_after_a_hard_bounce_keeps_the_hard_bounce() -> None:
    state = customer(contact("a1"), contact("a2"))
    bounced = apply_outcome(state, outcome("bounced", "a1"), POLICY).state
    after = apply_outcome(bounced, outcome("unsubscribed", "a2"), POLICY).state
    assert after.opt_outs == {"email": "hard_bounce"}
    assert not after.may_contact("email", "service")
