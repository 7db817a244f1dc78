"""The Customer 360 view built from a state."""

from __future__ import annotations

import orjson

from stream.core.decide.holdout import HoldoutPolicy
from stream.core.identity import hash_identifier, normalise_email
from stream.core.profile import profile_view, valid_customer_id
from stream.core.state import Limits, new_state, reduce
from tests.unit.core.conftest import build_event


def test_customer_ids_are_checked_before_any_lookup() -> None:
    for good in ("C000123", "loyalty:L1", "email:" + "a" * 64, "anon:anon-3f.x_y"):
        assert valid_customer_id(good), good
    for bad in ("", " C1", "a b", "x/y", "C" * 201, "../etc", "é"):
        assert not valid_customer_id(bad), bad


def test_the_profile_shows_hashes_shortened_and_times_in_rfc3339() -> None:
    hashed = hash_identifier(normalise_email("Jeanne@Example.com"), "")
    state = new_state("C1")
    state = reduce(
        state,
        build_event("add_to_cart", properties={"product_id": "p", "price": 5.0, "quantity": 2}),
        Limits(),
    ).state
    state.identifiers["email_sha256"] = hashed
    view = profile_view(state, HoldoutPolicy())
    assert view["identifiers"]["email_sha256"] == hashed[:8] + "…"
    assert hashed not in orjson.dumps(view).decode()
    assert view["stage"] == "acquisition" and view["group"] == "treatment"
    assert view["cart"]["items"] == 2 and view["cart"]["value"] == 10.0
    assert view["stage_history"][0]["to"] == "acquisition"
    assert view["stage_history"][0]["at"].endswith("Z")
    assert view["recent_events"][0]["type"] == "add_to_cart"


def test_amounts_carry_the_customers_currency_or_the_default() -> None:
    state = new_state("C1")
    view = profile_view(state, HoldoutPolicy())
    assert view["orders"]["currency"] == view["cart"]["currency"] == "EUR"
    order = {"order_id": "o1", "value": 12.5, "currency": "GBP"}
    state = reduce(state, build_event("order_completed", properties=order), Limits()).state
    view = profile_view(state, HoldoutPolicy())
    assert (view["orders"]["revenue"], view["orders"]["currency"]) == (12.5, "GBP")
    assert view["cart"]["currency"] == "GBP"
