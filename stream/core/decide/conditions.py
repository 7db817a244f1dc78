"""The variables a policy condition sees, and how a condition is evaluated.

Variables (documented in the README, "Policy format"):
- ``customer``: a compact view of the state (see ``customer_view``)
- ``event``: the trigger: ``id``, ``type``, ``channel``, ``occurred_at_ms``, ``properties``
- ``now_ms``: the decision time in epoch milliseconds
- ``local_hour``: the hour (0-23) in the customer's time zone at ``now_ms``
- ``constants``: the policy's ``constants`` map

CEL is strict about numbers: ``customer.orders.revenue`` is a double (compare with
``500.0``), counts are ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cel

from stream.core.decide.policy import Condition
from stream.core.events import Event
from stream.core.state import CustomerState


class ConditionError(Exception):
    """A condition failed at run time (missing field, wrong type, non-boolean result)."""


def customer_view(state: CustomerState) -> dict[str, Any]:
    """The ``customer`` variable: the parts of the state conditions may read."""
    return {
        "id": state.customer_key,
        "stage": state.stage,
        "stage_since_ms": state.stage_since_ms,
        "created_at_ms": state.created_at_ms,
        "event_count": state.event_count,
        "known": "customer_id" in state.identifiers,
        "loyalty_member": "loyalty_id" in state.identifiers,
        "identifiers": sorted(state.identifiers),
        "timezone": state.timezone or "",
        "app_installed": state.app_installed,
        "open_cases": len(state.open_cases),
        "orders": {
            "count": state.orders["count"],
            "revenue": float(state.orders["revenue"]),
            "returns": state.orders["returns"],
            "last_category": state.orders["last_category"] or "",
            "last_order_at_ms": state.orders["last_order_at_ms"] or 0,
        },
        "cart": {
            "items": len(state.cart["items"]),
            "value": float(state.cart["value"]),
            "updated_at_ms": state.cart["updated_at_ms"],
        },
        "channels": {name: seen["events"] for name, seen in state.channels.items()},
        "consent": {name: state.has_consent(name) for name in ("email", "sms", "push")},
        "sent": dict(state.sent_counts),
    }


def event_view(event: Event) -> dict[str, Any]:
    """The ``event`` variable."""
    return {
        "id": event.event_id,
        "type": event.type,
        "channel": event.channel,
        "occurred_at_ms": event.occurred_at_ms,
        "properties": event.properties,
    }


@dataclass
class Evaluator:
    """One decision's CEL environment, built once and reused by every condition."""

    context: Any  # cel.Context

    @classmethod
    def build(cls, variables: dict[str, Any]) -> Evaluator:
        """An evaluator over these variables."""
        return cls(cel.Context(variables=variables))

    def value(self, condition: Condition) -> Any:
        """The result of an expression; raises ConditionError on a run-time failure."""
        try:
            return condition.program.execute(self.context)
        except Exception as exc:  # the CEL runtime raises KeyError, TypeError, RuntimeError
            raise ConditionError(f"{condition.path}: {type(exc).__name__}: {exc}") from None

    def holds(self, condition: Condition | None) -> bool:
        """True if the condition is absent or evaluates to true."""
        if condition is None:
            return True
        result = self.value(condition)
        if not isinstance(result, bool):
            raise ConditionError(f"{condition.path}: expected a bool, got {result!r}")
        return result

    def number(self, condition: Condition | None, default: float) -> float:
        """A numeric expression's value (ints accepted)."""
        if condition is None:
            return default
        result = self.value(condition)
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise ConditionError(f"{condition.path}: expected a number, got {result!r}")
        return float(result)
