"""The variables a policy condition sees, and which of their fields a policy reads.

Variables (documented in the README, "Policy format"):
- ``customer``: a compact view of the state (see ``CUSTOMER_FIELDS``)
- ``event``: the trigger: ``id``, ``type``, ``channel``, ``occurred_at_ms``, ``properties``
- ``now_ms``: the decision time in epoch milliseconds
- ``local_hour``: the hour (0-23) in the customer's time zone at ``now_ms``
- ``constants``: the policy's ``constants`` map

CEL is strict about numbers: ``customer.orders.revenue`` is a double (compare with
``500.0``), counts are ints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stream.core.events import Event
from stream.core.state import CustomerState

# The names a condition can read (documented in the README, "Policy format").
CEL_VARIABLES: frozenset[str] = frozenset(
    {"customer", "event", "now_ms", "local_hour", "constants"}
)
# Each field of the ``customer`` variable and how to read it from the state.
CUSTOMER_FIELDS: dict[str, Callable[[CustomerState], Any]] = {
    "id": lambda s: s.customer_key,
    "stage": lambda s: s.stage,
    "stage_since_ms": lambda s: s.stage_since_ms,
    "created_at_ms": lambda s: s.created_at_ms,
    "event_count": lambda s: s.event_count,
    "known": lambda s: "customer_id" in s.identifiers,
    "loyalty_member": lambda s: "loyalty_id" in s.identifiers,
    "identifiers": lambda s: sorted(s.identifiers),
    "timezone": lambda s: s.timezone or "",
    "app_installed": lambda s: s.app_installed,
    "open_cases": lambda s: len(s.open_cases),
    "orders": lambda s: {
        "count": s.orders["count"],
        "revenue": float(s.orders["revenue"]),
        "returns": s.orders["returns"],
        "last_category": s.orders["last_category"] or "",
        "last_order_at_ms": s.orders["last_order_at_ms"] or 0,
    },
    "cart": lambda s: {
        "items": len(s.cart["items"]),
        "value": float(s.cart["value"]),
        "updated_at_ms": s.cart["updated_at_ms"],
    },
    "channels": lambda s: {name: seen["events"] for name, seen in s.channels.items()},
    "consent": lambda s: {name: s.has_consent(name) for name in ("email", "sms", "push")},
    "sent": lambda s: dict(s.sent_counts),
}
EVENT_FIELDS: dict[str, Callable[[Event], Any]] = {
    "id": lambda e: e.event_id,
    "type": lambda e: e.type,
    "channel": lambda e: e.channel,
    "occurred_at_ms": lambda e: e.occurred_at_ms,
    "properties": lambda e: e.properties,
}
_REFERENCE = re.compile(r"\b(customer|event|constants)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")


@dataclass(frozen=True)
class ViewPlan:
    """Which fields of each variable the policy's expressions read.

    The CEL runtime converts every value handed to it (microseconds per value), so a
    decision passes only what some expression of the policy reads: for each root, the
    first-level fields, and for each of those the second-level keys (None: all of it).
    """

    fields: dict[str, dict[str, frozenset[str] | None]]

    @classmethod
    def from_sources(cls, sources: Iterable[str]) -> ViewPlan:
        """The plan covering every expression given."""
        fields: dict[str, dict[str, set[str] | None]] = {}
        for source in sources:
            for root, first, second in _REFERENCE.findall(source):
                wanted = fields.setdefault(root, {})
                if first not in wanted:
                    wanted[first] = set()
                keys = wanted[first]
                if keys is not None:
                    if second:
                        keys.add(second)
                    else:
                        wanted[first] = None
        return cls(
            {
                root: {k: (frozenset(v) if v else None) for k, v in wanted.items()}
                for root, wanted in fields.items()
            }
        )

    def _pick(
        self, root: str, getters: dict[str, Callable[[Any], Any]], subject: Any
    ) -> dict[str, Any]:
        view: dict[str, Any] = {}
        for name, keys in self.fields.get(root, {}).items():
            getter = getters.get(name)
            if getter is None:
                continue
            value = getter(subject)
            if keys is not None and isinstance(value, dict):
                value = {k: value[k] for k in keys if k in value}
            view[name] = value
        return view

    def customer(self, state: CustomerState) -> dict[str, Any]:
        """The ``customer`` variable, with only the fields the policy reads."""
        return self._pick("customer", CUSTOMER_FIELDS, state)

    def event(self, event: Event) -> dict[str, Any]:
        """The ``event`` variable, with only the fields the policy reads."""
        return self._pick("event", EVENT_FIELDS, event)

    def constants(self, constants: dict[str, Any]) -> dict[str, Any]:
        """The ``constants`` variable, with only the entries the policy reads."""
        wanted = self.fields.get("constants", {})
        return {name: constants[name] for name in wanted if name in constants}
