"""Amounts of money: which currency an amount is in, and counting amounts exactly.

Orders carry their amount in ``properties.value`` and, optionally, its ISO 4217 code in
``properties.currency`` (schemas/events). An order without one is in ``DEFAULT_CURRENCY``.
Counters keep amounts as whole hundredths (``hundredths``), so sums over days and
workers stay exact integers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_CURRENCY = "EUR"  # the amount of an order that names no currency
# The schemas bound no amount; an absurd one saturates here, so that counters summed over
# days and workers stay within the 64-bit integers JSON (orjson) can hold.
MAX_AMOUNT = 1e9
_CODE = re.compile(r"^[A-Z]{3}$")  # the events' contract: three capital letters


def currency_of(properties: Mapping[str, Any]) -> str:
    """The ISO 4217 code an event's amounts are in: its ``currency``, else the default."""
    code = properties.get("currency")
    return code if isinstance(code, str) and _CODE.match(code) else DEFAULT_CURRENCY


def value_of(properties: Mapping[str, Any]) -> float:
    """An event's ``value`` as an amount in [0, ``MAX_AMOUNT``] (0.0 when it has none)."""
    value = properties.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return 0.0
    return min(max(float(value), 0.0), MAX_AMOUNT)


def hundredths(amount: float) -> int:
    """An amount in whole hundredths (cents for most currencies), rounded half to even."""
    return round(amount * 100)


def from_hundredths(count: int) -> float:
    """The amount a count of hundredths stands for."""
    return count / 100
