"""Amounts of money: currencies and exact counting in hundredths."""

from __future__ import annotations

import math

from stream.core.money import (
    DEFAULT_CURRENCY,
    MAX_AMOUNT,
    currency_of,
    from_hundredths,
    hundredths,
    value_of,
)


def test_an_amount_is_in_its_events_currency_or_the_documented_default() -> None:
    assert currency_of({"currency": "GBP"}) == "GBP"
    assert DEFAULT_CURRENCY == "EUR"
    for properties in ({}, {"currency": "gbp"}, {"currency": "EURO"}, {"currency": 978}):
        assert currency_of(properties) == "EUR", properties


def test_a_value_is_a_bounded_non_negative_amount() -> None:
    assert value_of({"value": 89.9}) == 89.9
    assert value_of({"value": 3}) == 3.0
    for properties in ({}, {"value": True}, {"value": "12"}, {"value": math.nan}, {"value": -4}):
        assert value_of(properties) == 0.0, properties
    assert value_of({"value": math.inf}) == value_of({"value": 1e300}) == MAX_AMOUNT


def test_amounts_count_in_whole_hundredths() -> None:
    assert hundredths(89.9) == 8990
    assert hundredths(0.1) + hundredths(0.2) == hundredths(0.3)
    assert from_hundredths(hundredths(MAX_AMOUNT) * 3) == 3 * MAX_AMOUNT
