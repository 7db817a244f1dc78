import pytest

from stream.core.state import Limits, new_state, reduce
from tests.unit.core.conftest import T0, build_event

LIMITS = Limits(dedupe_window=4, recent_events=3)


def apply(*events, state=None):
    state = state or new_state("C000001")
    for event in events:
        state = reduce(state, event, LIMITS).state
    return state


def test_reduce_does_not_mutate_its_input() -> None:
    before = new_state("C000001")
    snapshot = before.to_dict()
    reduce(before, build_event("add_to_cart", properties={"product_id": "p", "price": 5}), LIMITS)
    assert before.to_dict() == snapshot


def test_duplicate_event_id_changes_nothing() -> None:
    event = build_event("add_to_cart", properties={"product_id": "p1", "price": 10.0})
    once = apply(event)
    result = reduce(once, event, LIMITS)
    assert result.duplicate
    assert result.state.to_dict() == once.to_dict()


def test_dedupe_memory_is_bounded_per_customer() -> None:
    events = [build_event("page_view", properties={"url": "/"}) for _ in range(10)]
    state = apply(*events)
    assert state.seen_event_ids == [e.event_id for e in events[-4:]]
    assert len(state.recent_events) == 3
    assert not reduce(state, events[0], LIMITS).duplicate  # forgotten beyond the window


def test_cart_adds_removes_and_totals() -> None:
    state = apply(
        build_event("add_to_cart", properties={"product_id": "a", "price": 10.0, "quantity": 2}),
        build_event("add_to_cart", properties={"product_id": "b", "price": 5.5}),
        build_event("remove_from_cart", properties={"product_id": "a", "quantity": 1}),
    )
    assert state.cart["items"]["a"]["quantity"] == 1
    assert state.cart["value"] == 15.5
    state = apply(build_event("remove_from_cart", properties={"product_id": "b"}), state=state)
    assert set(state.cart["items"]) == {"a"}


def test_order_clears_cart_and_counts_revenue() -> None:
    state = apply(
        build_event("add_to_cart", properties={"product_id": "a", "price": 10.0}),
        build_event(
            "order_completed",
            properties={
                "order_id": "o1",
                "value": 10.0,
                "items": [{"product_id": "a", "category": "shoes"}],
            },
        ),
        build_event("store_purchase", "store", {"store_id": "s1", "order_id": "o2", "value": 20.0}),
    )
    assert state.cart["items"] == {} and state.cart["value"] == 0
    assert state.orders["count"] == 2 and state.orders["revenue"] == 30.0
    assert state.orders["last_category"] == "shoes"


@pytest.mark.parametrize("owned", [False, True], ids=["copied", "owned"])
def test_stage_transitions_are_recorded_with_the_event(owned: bool) -> None:
    cart = build_event("add_to_cart", properties={"product_id": "a", "price": 1.0}, at_ms=T0 + 1)
    order = build_event("order_completed", properties={"order_id": "o", "value": 1.0}, at_ms=T0 + 2)
    state = apply(build_event("page_view", properties={"url": "/"}, at_ms=T0), cart)
    result = reduce(state, order, LIMITS, owned=owned)
    assert (result.state is state) is owned
    assert result.stage_change is not None
    assert (result.stage_change.from_stage, result.stage_change.to_stage) == (
        "acquisition",
        "onboarding",
    )
    assert result.first_order
    assert [(h["from"], h["to"], h["event_id"]) for h in result.state.stage_history] == [
        ("awareness", "acquisition", cart.event_id),
        ("acquisition", "onboarding", order.event_id),
    ]
    assert result.state.stage_since_ms == T0 + 2


def test_unsubscribe_stops_email_for_good() -> None:
    state = apply(build_event("unsubscribed", "email", {}))
    assert not state.has_consent("email")
    state = apply(
        build_event("page_view", properties={"url": "/"}, context={"consent": {"email": True}}),
        state=state,
    )
    assert state.consent["email"] is True
    assert not state.has_consent("email")


def test_hard_bounce_opts_out_but_soft_bounce_does_not() -> None:
    assert apply(build_event("bounced", "email", {"bounce_type": "soft"})).has_consent("email")
    assert not apply(build_event("bounced", "email", {"bounce_type": "hard"})).has_consent("email")


def test_an_unsubscribe_after_a_hard_bounce_does_not_reopen_service_email() -> None:
    state = apply(
        build_event("bounced", "email", {"bounce_type": "hard"}),
        build_event("unsubscribed", "email", {}),
    )
    assert state.opt_outs == {"email": "hard_bounce"}
    assert not state.may_contact("email", "service")


def test_complaints_open_and_resolve_cases() -> None:
    opened = build_event("complaint_opened", "call_center", {"case_id": "K1", "reason": "late"})
    state = apply(opened)
    assert set(state.open_cases) == {"K1"}
    state = apply(build_event("complaint_resolved", "call_center", {"case_id": "K1"}), state=state)
    assert state.open_cases == {}


def test_per_channel_engagement_counts_and_last_seen() -> None:
    state = apply(
        build_event("page_view", properties={"url": "/"}, at_ms=T0),
        build_event("app_opened", "app", at_ms=T0 + 5),
        build_event("page_view", properties={"url": "/x"}, at_ms=T0 + 9),
    )
    assert state.channels == {
        "web": {"events": 2, "last_seen_ms": T0 + 9},
        "app": {"events": 1, "last_seen_ms": T0 + 5},
    }
    assert state.app_installed


def test_state_round_trips_through_json() -> None:
    import orjson

    from stream.core.state import CustomerState

    state = apply(build_event("add_to_cart", properties={"product_id": "a", "price": 1.0}))
    assert CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state


def test_absurd_but_valid_amounts_saturate_and_the_state_stays_writable() -> None:
    # Found by tests/unit/core/test_fuzz.py: the schemas bound neither prices nor
    # quantities; an infinite sum was stored as null (the next order then raised) and a
    # quantity beyond 64 bits made the state unwritable.
    import sys

    import orjson

    from stream.core.state import MAX_QUANTITY, CustomerState

    huge = {"product_id": "a", "price": 1e308, "quantity": 2.0**64}
    state = apply(
        build_event("add_to_cart", properties=huge),
        build_event("add_to_cart", properties=huge),
        build_event("order_completed", properties={"order_id": "o1", "value": 1e308}),
        build_event("order_completed", properties={"order_id": "o2", "value": 1e308}),
        build_event("add_to_cart", properties=huge),
    )
    assert state.cart["items"]["a"]["quantity"] == MAX_QUANTITY
    assert state.cart["value"] == state.orders["revenue"] == sys.float_info.max
    assert CustomerState.from_dict(orjson.loads(state.to_json())) == state
    state = apply(
        build_event("store_purchase", "store", {"store_id": "s", "order_id": "o3", "value": 1.0}),
        state=state,
    )
    assert state.orders["count"] == 3


def test_contact_history_keeps_the_newest_fifty_of_each_category() -> None:
    from stream.core.state import CONTACT_HISTORY_LIMIT, bounded_contacts

    email = [{"action_id": f"m{i}", "category": "marketing"} for i in range(3)]
    calls = [{"action_id": f"s{i}", "category": "service"} for i in range(60)]
    kept = bounded_contacts([*email, *calls])
    assert [c["action_id"] for c in kept] == ["m0", "m1", "m2", *[f"s{i}" for i in range(10, 60)]]
    assert len([c for c in kept if c["category"] == "service"]) == CONTACT_HISTORY_LIMIT
    short = email[:2]
    assert bounded_contacts(short) is short


def test_an_order_sets_the_customers_currency_and_one_without_keeps_it() -> None:
    def order(n: int, **currency: str):
        return build_event(
            "order_completed", properties={"order_id": f"o{n}", "value": 1.0, **currency}
        )

    assert "currency" not in apply(order(1)).orders  # none yet: the default applies
    assert apply(order(1, currency="GBP")).orders["currency"] == "GBP"
    assert apply(order(1, currency="GBP"), order(2)).orders["currency"] == "GBP"
    assert apply(order(1, currency="GBP"), order(2, currency="USD")).orders["currency"] == "USD"
