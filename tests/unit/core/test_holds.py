"""Quiet-hours holds: decided at night, kept in the state, released (or withdrawn) at morning."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.decide import Reason
from stream.core.decide.contact import in_quiet_hours
from stream.core.holds import RELEASE_TRIGGER
from stream.core.pipeline import fire, step
from stream.core.timestamps import format_ms
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import CATALOG, LIMITS, policy_from

HOUR_MS = 3_600_000

POLICY = policy_from(
    """
    format: 1
    name: quiet
    contact_policy:
      default_timezone: Europe/Paris
      quiet_hours: {start: "21:00", end: "08:00", channels: [email]}
      caps: [{name: email_daily, channels: [email], max: 1, window: 24h}]
    actions:
      - id: promo
        category: marketing
        channels: [email]
        validity: 1d
        triggers: [{event: order_completed}]
      - id: callback
        category: service
        channels: [call_center]
        triggers: [{event: complaint_opened}]
    """
)
PARIS = {"timezone": "Europe/Paris", "consent": {"email": True}}


def utc_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def order(at_ms: int, order_id: str = "o1", context: dict | None = None):
    return build_event(
        "order_completed",
        properties={"order_id": order_id, "value": 5.0},
        at_ms=at_ms,
        context=context or PARIS,
        event_id=order_id,
    )


def test_a_message_decided_at_night_is_held_not_sent() -> None:
    night = utc_ms(2026, 11, 23, 22)  # 23:00 in Paris
    result = step(None, order(night), night, LIMITS, POLICY)
    assert result.to_send == ()
    [held] = result.held
    assert format_ms(held.send_after_ms) == "2026-11-24T07:00:00.000Z"  # 08:00 Paris
    assert result.state.next_due_ms() == held.send_after_ms
    assert result.decision is not None and result.decision.actions == (held,)  # explained now
    assert result.state.sent_counts == {"promo": 1}  # caps count it at its send time


def test_the_held_message_is_released_unchanged_in_the_morning() -> None:
    night = utc_ms(2026, 11, 23, 22)
    held = step(None, order(night), night, LIMITS, POLICY)
    too_early = fire(held.state, utc_ms(2026, 11, 24, 6, 59), POLICY)
    assert too_early.to_send == () and too_early.state is held.state
    morning = fire(held.state, utc_ms(2026, 11, 24, 7), POLICY)
    assert morning.to_send == held.held
    [record] = morning.decisions
    assert (record.trigger.type, record.trigger.channel) == (RELEASE_TRIGGER, "timer")
    assert record.candidates[0].reason is Reason.CHOSEN
    assert CATALOG.message_error("decision", record.to_message()) is None
    assert morning.state.held == []
    assert fire(morning.state, utc_ms(2026, 11, 24, 8), POLICY).to_send == ()  # once


def test_a_complaint_during_the_night_withdraws_the_promotion() -> None:
    night = utc_ms(2026, 11, 23, 22)
    held = step(None, order(night), night, LIMITS, POLICY)
    complaint = build_event(
        "complaint_opened", "call_center", {"case_id": "K1", "reason": "late"}, at_ms=night + 1
    )
    after = step(held.state, complaint, night + HOUR_MS, LIMITS, POLICY)
    assert [a.action for a in after.to_send] == ["callback"]  # service is never held
    morning = fire(after.state, utc_ms(2026, 11, 24, 7), POLICY)
    assert morning.to_send == ()
    [record] = morning.decisions
    assert record.candidates[0].reason is Reason.OPEN_SERVICE_CASE
    assert "promo" not in {c["action"] for c in morning.state.counted_contacts()}  # caps freed
    assert [c["withdrawn"] for c in morning.state.contacts if c["action"] == "promo"] == [True]
    assert morning.state.sent_counts["promo"] == 0


def test_an_unsubscribe_during_the_night_withdraws_the_email() -> None:
    night = utc_ms(2026, 11, 23, 22)
    held = step(None, order(night), night, LIMITS, POLICY)
    unsubscribed = build_event("unsubscribed", "email", at_ms=night + 1, context=PARIS)
    after = step(held.state, unsubscribed, night + HOUR_MS, LIMITS, POLICY)
    morning = fire(after.state, utc_ms(2026, 11, 24, 7), POLICY)
    assert morning.to_send == ()
    assert morning.decisions[0].candidates[0].reason is Reason.NO_CONSENT


def test_a_release_processed_after_expiry_is_dropped() -> None:
    night = utc_ms(2026, 11, 23, 22)
    held = step(None, order(night), night, LIMITS, POLICY)
    days_later = fire(held.state, utc_ms(2026, 11, 26, 7), POLICY)  # worker down for two days
    assert days_later.to_send == ()
    assert days_later.decisions[0].candidates[0].reason is Reason.EXPIRED


def test_release_is_dst_safe_on_the_spring_forward_night() -> None:
    # Paris moves from 02:00 CET to 03:00 CEST on 2026-03-29: 08:00 local is 06:00 UTC.
    night = utc_ms(2026, 3, 28, 21, 30)  # 22:30 CET
    held = step(None, order(night), night, LIMITS, POLICY)
    [action] = held.held
    assert format_ms(action.send_after_ms) == "2026-03-29T06:00:00.000Z"
    assert fire(held.state, utc_ms(2026, 3, 29, 5, 59), POLICY).to_send == ()
    assert fire(held.state, utc_ms(2026, 3, 29, 6), POLICY).to_send == (action,)


def test_release_is_dst_safe_on_the_fall_back_night() -> None:
    # Paris moves from 03:00 CEST back to 02:00 CET on 2026-10-25: 08:00 local is 07:00 UTC.
    night = utc_ms(2026, 10, 24, 20)  # 22:00 CEST
    held = step(None, order(night), night, LIMITS, POLICY)
    assert format_ms(held.held[0].send_after_ms) == "2026-10-25T07:00:00.000Z"


def test_a_customer_now_in_another_zone_is_held_again_until_their_morning() -> None:
    night = utc_ms(2026, 11, 23, 22)  # 23:00 in Paris: held until 08:00 Paris, 07:00 UTC
    held = step(None, order(night), night, LIMITS, POLICY)
    [action] = held.held
    new_york = {"timezone": "America/New_York", "consent": {"email": True}}
    travelled = build_event("page_view", properties={"url": "/"}, at_ms=night, context=new_york)
    after = step(held.state, travelled, night + HOUR_MS, LIMITS, POLICY)
    assert after.to_send == () and after.state.timezone == "America/New_York"

    paris_morning = utc_ms(2026, 11, 24, 7)  # 02:00 in New York: still night there
    again = fire(after.state, paris_morning, POLICY)
    assert again.to_send == ()
    [moved] = again.held
    assert format_ms(moved.send_after_ms) == "2026-11-24T13:00:00.000Z"  # 08:00 New York
    assert moved.action_id == action.action_id  # the same message, the same sender key
    assert moved.idempotency_key == action.idempotency_key
    assert moved.expires_at_ms - action.expires_at_ms == 6 * HOUR_MS  # validity kept
    [record] = again.decisions
    assert record.candidates[0].reason is Reason.CHOSEN and record.actions == (moved,)
    assert "America/New_York" in record.candidates[0].detail
    assert CATALOG.message_error("decision", record.to_message()) is None
    assert again.state.next_due_ms() == moved.send_after_ms
    [contact] = [c for c in again.state.contacts if c["action"] == "promo"]
    assert contact["send_at_ms"] == moved.send_after_ms  # caps count it when it goes
    assert again.state.sent_counts == {"promo": 1}  # held again, not counted twice

    new_york_morning = fire(again.state, moved.send_after_ms, POLICY)
    assert new_york_morning.to_send == (moved,)
    [released] = new_york_morning.decisions
    assert released.decision_id != record.decision_id  # one release record per hold
    assert new_york_morning.state.held == []


def test_a_message_due_outside_quiet_hours_in_the_new_zone_goes_at_once() -> None:
    night = utc_ms(2026, 11, 23, 22)
    held = step(None, order(night), night, LIMITS, POLICY)
    tokyo = {"timezone": "Asia/Tokyo", "consent": {"email": True}}  # 16:00 at 07:00 UTC
    moved = step(
        held.state, build_event("page_view", at_ms=night, context=tokyo), night, LIMITS, POLICY
    )
    assert fire(moved.state, utc_ms(2026, 11, 24, 7), POLICY).to_send == held.held


ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]


@settings(max_examples=150, deadline=None)
@given(
    minute=st.integers(0, 7 * 24 * 60),
    decided_in=st.sampled_from(ZONES),
    released_in=st.sampled_from(ZONES),
)
def test_a_held_message_goes_only_outside_quiet_hours_in_the_zone_at_release(
    minute: int, decided_in: str, released_in: str
) -> None:
    quiet = POLICY.contact.quiet_hours
    assert quiet is not None
    at = utc_ms(2026, 10, 22) + minute * 60_000  # a week across the October DST changes
    decided = step(None, order(at, context=zone_context(decided_in)), at, LIMITS, POLICY)
    travelled = build_event("page_view", at_ms=at, context=zone_context(released_in))
    state = step(decided.state, travelled, at, LIMITS, POLICY).state
    released = []
    while (due := state.next_due_ms()) is not None and len(released) < 3:
        fired = fire(state, due, POLICY)
        state = fired.state
        released.extend((due, action) for action in fired.to_send)
    assert state.held == []
    assert len(decided.to_send) + len(released) == 1  # the promotion goes, once
    for due, _ in released:
        local = datetime.fromtimestamp(due / 1000, tz=UTC).astimezone(ZoneInfo(released_in))
        assert not in_quiet_hours(local.hour * 60 + local.minute, quiet), local


def zone_context(zone: str) -> dict:
    return {"timezone": zone, "consent": {"email": True}}
