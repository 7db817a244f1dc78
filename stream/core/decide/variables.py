"""The variables a policy condition sees, and which of their fields a policy reads.

Variables (documented in docs/policy.md):
- ``customer``: a compact view of the state (see ``CUSTOMER_FIELDS``)
- ``event``: the trigger: ``id``, ``type``, ``channel``, ``occurred_at_ms``, ``properties``
- ``now_ms``: the decision time in epoch milliseconds
- ``local_hour``: the hour (0-23) in the customer's time zone at ``now_ms``
- ``constants``: the policy's ``constants`` map

CEL is strict about numbers: ``customer.orders.revenue`` is a double (compare with
``500.0``), counts are ints.

``ConditionScope`` tells ``policy check`` the shape of each variable: the fields of
``customer`` and ``event`` are read off a new state and a blank event through the getters
below (a field added there is known at once); the event properties come from the event
schemas; only what a blank value cannot show is stated here (map keys, enum values).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream.core.decide.shapes import (
    ANY,
    INT,
    STRING,
    ListOf,
    MapOf,
    Record,
    Scalar,
    Shape,
    merge_all,
    shape_of,
    shape_of_schema,
)
from stream.core.events import Event
from stream.core.identity import KEY_ORDER
from stream.core.schemas import SchemaCatalog
from stream.core.sentiment import LABELS
from stream.core.stages import Stage
from stream.core.state import CustomerState

# The names a condition can read (documented in docs/policy.md).
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
    "open_case_ids": lambda s: sorted(s.open_cases),
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
    "social": lambda s: social_view(s.social),
    "journeys": lambda s: {
        journey: {
            "node": run["node"],
            "since_ms": run["since_ms"],
            "entered_at_ms": run["entered_at_ms"],
            "version": run["version"],
        }
        for journey, run in s.journeys.items()
    },
}
EVENT_FIELDS: dict[str, Callable[[Event], Any]] = {
    "id": lambda e: e.event_id,
    "type": lambda e: e.type,
    "channel": lambda e: e.channel,
    "occurred_at_ms": lambda e: e.occurred_at_ms,
    "properties": lambda e: e.properties,
}
# root.first[.second]; a second followed by "(" is a method (``.exists(``): all of first.
_REFERENCE = re.compile(
    r"\b(customer|event|constants)\s*\.\s*([A-Za-z_]\w*)(?:\s*\.\s*([A-Za-z_]\w*)(\s*\()?)?"
)
# A root read otherwise (``customer['stage']``, ``size(constants)``): all of it.
_WHOLE = re.compile(r"\b(customer|event|constants)\b(?!\s*\.\s*[A-Za-z_])")
ALL = "*"  # in a plan: every field of the root


def social_view(social: Mapping[str, Any]) -> dict[str, Any]:
    """``customer.social``: posts, posts per sentiment, the latest post's sentiment and time."""
    sentiment = social.get("sentiment", {})
    last = social.get("last") or {}
    return {
        "posts": sum(social.get("posts", {}).values()),
        **{label: sentiment.get(label, 0) for label in ("positive", "neutral", "negative")},
        "last_sentiment": last.get("sentiment", ""),
        "last_at_ms": last.get("at_ms", 0),
    }


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
            for root in _WHOLE.findall(source):
                fields.setdefault(root, {})[ALL] = None
            for root, first, second, call in _REFERENCE.findall(source):
                wanted = fields.setdefault(root, {})
                if first not in wanted:
                    wanted[first] = set()
                keys = wanted[first]
                if keys is not None:
                    if second and not call:
                        keys.add(second)
                    else:
                        wanted[first] = None
        return cls(
            {
                root: {k: (frozenset(v) if v else None) for k, v in wanted.items()}
                for root, wanted in fields.items()
            }
        )

    def union(self, other: ViewPlan) -> ViewPlan:
        """The plan covering the expressions of both plans."""
        fields = {root: dict(wanted) for root, wanted in self.fields.items()}
        for root, wanted in other.fields.items():
            mine = fields.setdefault(root, {})
            for name, keys in wanted.items():
                if name not in mine:
                    mine[name] = keys
                else:
                    known = mine[name]
                    mine[name] = None if known is None or keys is None else known | keys
        return ViewPlan(fields)

    def _pick(
        self, root: str, getters: dict[str, Callable[[Any], Any]], subject: Any
    ) -> dict[str, Any]:
        view: dict[str, Any] = {}
        wanted = self.fields.get(root, {})
        if ALL in wanted:
            wanted = dict.fromkeys(getters)
        for name, keys in wanted.items():
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
        if ALL in wanted:
            return dict(constants)
        return {name: constants[name] for name in wanted if name in constants}


def _customer_shape(
    event_channels: frozenset[str], action_ids: frozenset[str], journey_ids: frozenset[str]
) -> Record:
    """``customer``: every field of ``CUSTOMER_FIELDS``, as read off a new state."""
    blank = CustomerState(customer_key="")
    fields = {name: shape_of(read(blank)) for name, read in CUSTOMER_FIELDS.items()}
    run = Record({"node": STRING, "since_ms": INT, "entered_at_ms": INT, "version": STRING})
    fields.update(
        journeys=MapOf(run, journey_ids, "journey id"),
        stage=Scalar("string", frozenset(stage.value for stage in Stage), "stage"),
        identifiers=ListOf(Scalar("string", frozenset(KEY_ORDER), "identifier kind")),
        open_case_ids=ListOf(STRING),
        channels=MapOf(INT, event_channels, "event channel"),
        sent=MapOf(INT, action_ids, "action id"),
    )
    social = fields["social"]
    assert isinstance(social, Record)
    last = Scalar("string", frozenset({"", *LABELS}), "sentiment")
    fields["social"] = Record({**social.fields, "last_sentiment": last})
    return Record(fields)


def _timer_event(name: str, armed_by: frozenset[str]) -> tuple[str, Shape]:
    """The channel and ``event.properties`` of a fired timer (``FiredTimer.to_event``)."""
    from stream.core.timers import FiredTimer  # timers imports the policy, which imports us

    event = FiredTimer(name, "", 0, 0, "").to_event("")
    blank = shape_of(event.properties, "property")
    assert isinstance(blank, Record)
    properties = Record(
        {
            **blank.fields,
            "timer": Scalar("string", frozenset({name}), "timer"),
            "armed_by": Scalar("string", armed_by, "event type"),
        },
        "property",
    )
    return event.channel, properties


@dataclass(frozen=True)
class ConditionScope:
    """The shapes of the variables one policy's conditions read (for ``policy check``)."""

    customer: Record
    constants: Shape
    properties: Mapping[str, Shape]  # event type -> its properties
    channels: Mapping[str, frozenset[str]]  # event type -> the channels it arrives on

    @classmethod
    def build(
        cls,
        catalog: SchemaCatalog,
        action_ids: Iterable[str],
        constants: Mapping[str, Any],
        journey_ids: Iterable[str] = (),
    ) -> ConditionScope:
        """The scope of a policy with these actions and constants."""
        channels: dict[str, frozenset[str]] = {}
        for channel, types in catalog.event_types.items():
            for type_ in types:
                channels[type_] = channels.get(type_, frozenset()) | {channel}
        properties = {
            type_: merge_all(shape_of_schema(schema) for schema in schemas)
            for type_, schemas in catalog.event_properties.items()
        }
        customer = _customer_shape(
            frozenset(catalog.event_types), frozenset(action_ids), frozenset(journey_ids)
        )
        return cls(customer, shape_of(dict(constants), "constant"), properties, channels)

    def event(self, event_types: Iterable[str], timers: Mapping[str, frozenset[str]]) -> Shape:
        """``event`` when the trigger is one of these types or timers (name: types arming it)."""
        types = sorted(set(event_types))
        if not types and not timers:
            return ANY
        fired = [_timer_event(name, armed_by) for name, armed_by in sorted(timers.items())]
        channels: frozenset[str] | None = frozenset(channel for channel, _ in fired)
        for type_ in types:
            known = self.channels.get(type_)
            channels = None if known is None or channels is None else channels | known
        found = [self.properties.get(type_, ANY) for type_ in types]
        properties = merge_all([*found, *(shape for _, shape in fired)])
        if isinstance(properties, Record):
            names = [*types, *(f"timer {name}" for name in sorted(timers))]
            more = f" and {len(names) - 3} more" if len(names) > 4 else ""
            of = ", ".join(names[:3] if more else names) + more
            properties = Record(properties.fields, f"property of {of}")
        blank = Event("", "", "", 0, "", {}, {}, {})
        fields = {name: shape_of(read(blank)) for name, read in EVENT_FIELDS.items()}
        fields.update(
            type=Scalar("string", frozenset(types) | frozenset(timers), "event type"),
            channel=Scalar("string", channels, "channel"),
            properties=properties,
        )
        return Record(fields)

    def variables(
        self, event_types: Iterable[str] = (), timers: Mapping[str, frozenset[str]] | None = None
    ) -> dict[str, Shape]:
        """Every variable of ``CEL_VARIABLES`` with its shape, for a condition so triggered."""
        return {
            "customer": self.customer,
            "event": self.event(event_types, timers or {}),
            "now_ms": INT,
            "local_hour": INT,
            "constants": self.constants,
        }
