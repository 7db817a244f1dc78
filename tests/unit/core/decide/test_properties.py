"""Invariants of the decision engine over arbitrary event sequences (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.decide.contact import in_quiet_hours
from stream.core.pipeline import step
from stream.core.state import new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import DEFAULT_POLICY, LIMITS

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
# Around both 2026 DST changes in Europe and the US, and a plain week.
STARTS_MS = [
    int(datetime(2026, 3, 27, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2026, 10, 23, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2026, 3, 6, tzinfo=UTC).timestamp() * 1000),
]


def _event(kind: str, index: int, zone: str, consent: dict[str, bool]):
    context = {"timezone": zone, "consent": consent}
    order_props = {"order_id": f"o{index}", "value": 150.0, "category": "beauty"}
    make = {
        "order": lambda: build_event("order_completed", properties=order_props, context=context),
        "store": lambda: build_event(
            "store_purchase", "store", {**order_props, "store_id": "s"}, context=context
        ),
        "app": lambda: build_event("app_installed", "app", context=context),
        "cart": lambda: build_event(
            "add_to_cart", properties={"product_id": "p", "price": 9.0}, context=context
        ),
        "view": lambda: build_event("page_view", properties={"url": "/"}, context=context),
        "complaint": lambda: build_event(
            "complaint_opened",
            "call_center",
            {"case_id": f"k{index}", "reason": "r"},
            context=context,
        ),
        "resolved": lambda: build_event(
            "complaint_resolved", "call_center", {"case_id": f"k{index - 1}"}, context=context
        ),
        "happy": lambda: build_event(
            "call_completed",
            "call_center",
            {"reason": "r", "sentiment": "positive"},
            context=context,
        ),
        "unhappy": lambda: build_event(
            "call_completed",
            "call_center",
            {"reason": "r", "sentiment": "negative"},
            context=context,
        ),
        "unsubscribe": lambda: build_event("unsubscribed", "email", context=context),
        "push_open": lambda: build_event("push_opened", "app", context=context),
    }
    return make[kind]()


journeys = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "start_ms": st.sampled_from(STARTS_MS),
        "consent": st.fixed_dictionaries({c: st.booleans() for c in ("email", "sms", "push")}),
        "steps": st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "order",
                        "store",
                        "app",
                        "cart",
                        "view",
                        "complaint",
                        "resolved",
                        "happy",
                        "unhappy",
                        "unsubscribe",
                        "push_open",
                    ]
                ),
                st.integers(min_value=0, max_value=14 * 3_600_000),
            ),
            min_size=1,
            max_size=40,
        ),
    }
)


def simulate(journey):
    """Run the journey; returns every action sent, the actions decided after the first
    unsubscribe (by the events that followed it, whatever their time), and the decisions."""
    state = new_state("C000001")
    now = journey["start_ms"]
    sent, after_unsubscribe, decisions = [], [], []
    unsubscribed = False
    for index, (kind, gap) in enumerate(journey["steps"]):
        now += gap
        event = _event(kind, index, journey["zone"], journey["consent"])
        result = step(state, event, now, LIMITS, DEFAULT_POLICY)
        state = result.state
        if result.decision is not None:
            decisions.append((event, result.decision, state))
            sent.extend(result.decision.actions)
            if unsubscribed:
                after_unsubscribe.extend(result.decision.actions)
        unsubscribed = unsubscribed or kind == "unsubscribe"
    return sent, after_unsubscribe, decisions


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(journeys)
def test_caps_are_never_exceeded(journey) -> None:
    sent, _, _ = simulate(journey)
    for cap in DEFAULT_POLICY.contact.caps:
        times = sorted(
            a.send_after_ms or a.decided_at_ms
            for a in sent
            if cap.counts(a.channel, a.category)
            and a.category not in DEFAULT_POLICY.contact.exempt_categories
        )
        for i, start in enumerate(times):
            in_window = [t for t in times[i:] if t - start < cap.window_ms]
            assert len(in_window) <= cap.max, (cap.name, times)


@PROPERTY_SETTINGS
@given(journeys)
def test_an_opted_out_channel_is_never_chosen_for_marketing(journey) -> None:
    # An order and an unsubscribe in the same millisecond once failed a time-based check:
    # the order's reminder was decided before the unsubscribe arrived. Order, not time.
    sent, after_unsubscribe, _ = simulate(journey)
    for action in sent:
        if action.category == "marketing" and action.channel in ("email", "sms", "push"):
            assert journey["consent"][action.channel]
    for action in after_unsubscribe:
        assert not (action.channel == "email" and action.category == "marketing")


@PROPERTY_SETTINGS
@given(journeys)
def test_no_message_is_scheduled_inside_quiet_hours_in_the_customers_zone(journey) -> None:
    from zoneinfo import ZoneInfo

    quiet = DEFAULT_POLICY.contact.quiet_hours
    assert quiet is not None
    sent, _, _ = simulate(journey)
    zone = ZoneInfo(journey["zone"])
    for action in sent:
        if action.category == "marketing" and action.channel in quiet.channels:
            at = action.send_after_ms or action.decided_at_ms
            local = datetime.fromtimestamp(at / 1000, tz=UTC).astimezone(zone)
            assert not in_quiet_hours(local.hour * 60 + local.minute, quiet), local


@PROPERTY_SETTINGS
@given(journeys)
def test_service_goes_through_while_marketing_is_paused(journey) -> None:
    _, _, decisions = simulate(journey)
    for event, decision, state in decisions:
        if event.type == "complaint_opened":
            assert [a.action for a in decision.actions] == ["service_recovery"]
        if state.open_cases:
            assert all(a.category != "marketing" for a in decision.actions)
