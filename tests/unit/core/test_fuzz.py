"""Fuzzing the decode -> validate -> reduce -> decide path (hypothesis, issue 10).

1. ``decode_event`` never raises: arbitrary bytes, arbitrary JSON values and mutated
   valid events (fields dropped, wrong types, extreme numbers, odd strings, unknown
   channels and types, timestamps far in the past or future) give an Event or a
   Rejection with a reason and a detail.
2. Journeys of valid events for a few customers across the five channels go through the
   decoder, ``step`` and ``fire`` (an exact scheduler: every deadline fires at its time)
   under the shipped policy, and after every call: no marketing action is sent without
   consent, beyond a cap, in quiet hours in the customer's zone or while a service case
   is open; a redelivered event changes nothing; the state round-trips through JSON and
   the input state is never mutated. The expectations are computed here from the policy
   file and the events sent, not with the engine's own functions.
3. Any event the decoder accepts, however extreme its values, goes through ``step`` and
   ``fire`` without raising, and the state it leaves still serialises and round-trips.

Bounded for CI: derandomized (the same examples every run), no example database.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from stream.core.decide import Action, Policy
from stream.core.events import DecodeOptions, DlqReason, Event, Rejection, decode_event
from stream.core.pipeline import StepResult, fire, step
from stream.core.schemas import default_schema_dir
from stream.core.state import CustomerState
from tests.unit.core.decide.helpers import CATALOG, DEFAULT_POLICY, LIMITS, ROOT, SHIPPED_RULES
from tests.unit.core.test_events import base_event

_FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def fuzz(examples: int) -> settings:
    """The bounded, deterministic profile of this file with ``examples`` examples."""
    return settings(_FUZZ, max_examples=examples)


OPTIONS = DecodeOptions(CATALOG, max_event_bytes=65_536, hash_salt="fuzz", default_region="FR")
CHANNELS = tuple(sorted(CATALOG.event_types))
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "UTC",
)

# --- the shipped policy, read here from the YAML itself (not through the engine) ------

RAW_POLICY = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
_UNIT_MS = {"s": 1_000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}


def _duration_ms(text: str) -> int:
    return int(text[:-1]) * _UNIT_MS[text[-1]]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class CapRule:
    name: str
    channels: frozenset[str] | None
    categories: frozenset[str] | None
    max: int
    window_ms: int

    def counts(self, action: Action) -> bool:
        return (self.channels is None or action.channel in self.channels) and (
            self.categories is None or action.category in self.categories
        )


_CONTACT = RAW_POLICY["contact_policy"]
DEFAULT_ZONE = _CONTACT["default_timezone"]
EXEMPT = frozenset(_CONTACT["exempt_categories"])
QUIET_START = _minutes(_CONTACT["quiet_hours"]["start"])
QUIET_END = _minutes(_CONTACT["quiet_hours"]["end"])
QUIET_CHANNELS = frozenset(_CONTACT["quiet_hours"]["channels"])
CAPS = tuple(
    CapRule(
        cap["name"],
        frozenset(cap["channels"]) if "channels" in cap else None,
        frozenset(cap["categories"]) if "categories" in cap else None,
        cap["max"],
        _duration_ms(cap["window"]),
    )
    for cap in _CONTACT["caps"]
)
# Marketing on these needs an explicit grant (docs/explain.md, step 4).
GRANT_CHANNELS = ("email", "sms", "push")


def _is_quiet(at_ms: int, zone: str) -> bool:
    local = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    if QUIET_START < QUIET_END:
        return QUIET_START <= minute < QUIET_END
    return minute >= QUIET_START or minute < QUIET_END


def test_the_policy_read_here_is_the_one_the_engine_loaded() -> None:
    """Guards the independent reading above against a policy file it does not understand."""
    engine = DEFAULT_POLICY.contact
    assert [(c.name, c.max, c.window_ms) for c in engine.caps] == [
        (c.name, c.max, c.window_ms) for c in CAPS
    ]
    assert engine.quiet_hours is not None
    assert (engine.quiet_hours.start_minute, engine.quiet_hours.end_minute) == (
        QUIET_START,
        QUIET_END,
    )
    assert engine.exempt_categories == EXEMPT and engine.default_timezone == DEFAULT_ZONE


# --- 1. decode_event never raises -------------------------------------------------------

TEMPLATES = [
    orjson.loads(path.read_bytes())
    for path in sorted((default_schema_dir() / "examples" / "valid").glob("*.json"))
    if path.name.count(".") == 2
]
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "\u202eevil",
    "é" * 3,
    "🙂",
    "a" * 300,
    "a" * 5_000,
    "Europe",  # a directory of the zone database, not a zone
    "Europe/Paris/",
    "../../etc/passwd",
    "UTC",
    "Factory",
    "posixrules",
    "zone.tab",
    "+33 6 12 34 56 78",
    "+++",
    "0",
    "NaN",
    "null",
    "fax",
    "WEB",
    "page_view",
    "complaint_opened",
]
EXTREME_NUMBERS = [
    0,
    -0.0,
    1,
    -1,
    0.5,
    5e-324,
    1e-300,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,  # parsed as a float by orjson
    10**30,
    -(2**63),
    -(10**30),
    1e308,
    1.7976931348623157e308,
    -1e308,
]
TIMESTAMPS = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00-23:59",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-23:59",
    "2026-03-29T02:30:00+01:00",
    "2026-11-23T10:15:00",
    "2026-11-23",
    "2026-11-23T10:15:00.123456789Z",
    "2026-11-23 10:15:00Z",
    "2026-11-23t10:15:00z",
    "2016-12-31T23:59:60Z",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23T24:00:00Z",
    "+2026-11-23T10:15:00Z",
    "20261123T101500Z",
    "not a date",
    "",
]

numbers = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
odd_strings = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=12))
# Lone surrogates too: \ud800 escaped in JSON, or invalid UTF-8 bytes when written raw.
hostile_strings = st.one_of(
    odd_strings, st.text(st.characters(categories=["Cs", "Co", "Cc", "Zs"]), max_size=4)
)


def _json_values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), numbers, strings),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(strings, st.sampled_from(["type", "channel"])), children),
        ),
        max_leaves=10,
    )


json_values = _json_values(hostile_strings)
clean_json_values = _json_values(odd_strings)
scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_strings)
datetimes = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).flatmap(
    lambda moment: st.builds(
        lambda offset, spec: moment.replace(tzinfo=timezone(offset)).isoformat(timespec=spec),
        st.timedeltas(timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59)).map(
            lambda t: timedelta(minutes=t // timedelta(minutes=1))
        ),
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    )
)
timestamps = st.one_of(st.sampled_from(TIMESTAMPS), datetimes)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member of a JSON value (dict keys and list indexes)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            found.append((*prefix, key))
            found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(message: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        message = message[key]
    return message


def _set(message: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set a value at a path of dict keys, creating (or replacing) objects on the way."""
    for key in path[:-1]:
        if not isinstance(message.get(key), dict):
            message[key] = {}
        message = message[key]
    message[path[-1]] = value


@st.composite
def mutated_messages(draw: st.DrawFn) -> tuple[Any, str | None]:
    """A valid example with 1 to 4 mutations, and the topic channel it arrives on."""
    message = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                [
                    "drop",
                    "replace",
                    "number",
                    "string",
                    "channel",
                    "type",
                    "occurred_at",
                    "timezone",
                    "consent",
                    "customer",
                    "extra",
                ]
            )
        )
        paths = _paths(message) if isinstance(message, dict) else []
        if kind in ("drop", "replace") and paths:
            path = draw(st.sampled_from(paths))
            parent = _parent(message, path)
            if kind == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(json_values)
        elif kind == "number":
            key = draw(
                st.sampled_from(["value", "price", "quantity", "cart_value", "results", "x"])
            )
            _set(message, ("properties", key), draw(numbers))
            if draw(st.booleans()):  # and a second one: quantity x price, say
                _set(
                    message,
                    ("properties", draw(st.sampled_from(["price", "quantity"]))),
                    draw(numbers),
                )
        elif kind == "string":
            key = draw(
                st.sampled_from(
                    ["product_id", "order_id", "case_id", "reason", "category", "url", "code"]
                )
            )
            _set(message, ("properties", key), draw(hostile_strings))
        elif kind == "channel":
            message["channel"] = draw(
                st.one_of(st.sampled_from(CHANNELS), hostile_strings, st.integers())
            )
        elif kind == "type":
            types = sorted(set().union(*CATALOG.event_types.values()))
            message["type"] = draw(st.one_of(st.sampled_from(types), hostile_strings))
        elif kind == "occurred_at":
            message["occurred_at"] = draw(timestamps)
        elif kind == "timezone":
            _set(message, ("context", "timezone"), draw(hostile_strings))
        elif kind == "consent":
            consent = draw(
                st.one_of(
                    json_values,
                    st.dictionaries(st.sampled_from(["email", "sms", "push", "web"]), scalars),
                )
            )
            _set(message, ("context", "consent"), consent)
        elif kind == "customer":
            name = draw(
                st.sampled_from(
                    ["customer_id", "anonymous_id", "loyalty_id", "email", "phone", "phone_sha256"]
                )
            )
            identifiers = {name: draw(st.one_of(hostile_strings, st.text(min_size=1, max_size=12)))}
            message["customer"] = draw(st.one_of(st.just(identifiers), json_values))
        else:
            _set(message, (draw(hostile_strings),), draw(json_values))
    topic = draw(st.one_of(st.none(), st.sampled_from(CHANNELS), st.just(message.get("channel"))))
    return message, topic if isinstance(topic, str) or topic is None else None


_EXTREME_AMOUNTS = [x for x in EXTREME_NUMBERS if x >= 0]
amounts = st.one_of(  # schema-valid (non-negative) but extreme, the extremes drawn most
    st.sampled_from(_EXTREME_AMOUNTS),
    st.sampled_from(_EXTREME_AMOUNTS[::-1]),
    st.integers(min_value=0, max_value=2**70),
    st.floats(min_value=0, allow_infinity=False),
)
quantities = st.one_of(
    st.sampled_from([1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30]),
    st.integers(min_value=1, max_value=2**70),
)
names = st.one_of(  # what a 1..128-character string field accepts
    st.sampled_from([s for s in ODD_STRINGS if 0 < len(s) <= 128]),
    st.text(min_size=1, max_size=20),
)


@st.composite
def odd_valid_messages(draw: st.DrawFn) -> tuple[Any, str | None]:
    """A valid example whose values are replaced by extreme ones the schemas still allow."""
    message = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    properties = message["properties"]
    for key, value in list(properties.items()):
        if isinstance(value, bool) or not draw(st.booleans()):
            continue
        if key == "quantity":
            properties[key] = draw(quantities)
        elif isinstance(value, int | float):
            properties[key] = draw(amounts)
        elif isinstance(value, str) and key not in ("currency", "sentiment", "bounce_type"):
            properties[key] = draw(names)
    for item in properties.get("items", []):
        item["quantity"] = draw(quantities)
        item["price"] = draw(amounts)
    if draw(st.booleans()):  # undeclared properties are allowed
        properties[draw(odd_strings)] = draw(clean_json_values)
    if draw(st.booleans()):
        message["event_id"] = draw(names)
    if draw(st.booleans()):
        message["occurred_at"] = draw(timestamps)
    if draw(st.booleans()):
        message["customer"] = {"customer_id": draw(names)}
    if draw(st.booleans()):
        message["context"] = {
            "timezone": draw(st.one_of(odd_strings, st.sampled_from(ZONES))),
            "consent": draw(
                st.dictionaries(st.sampled_from(["email", "sms", "push"]), st.booleans())
            ),
            draw(odd_strings): draw(clean_json_values),
        }
    return message, message["channel"]


def _encode(message: Any, ascii_only: bool) -> bytes:
    """JSON bytes the way a careless producer might write them (big ints, lone surrogates)."""
    return json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def assert_decoded(raw: bytes | None, topic_channel: str | None) -> Event | Rejection:
    """Decode and check the result is a well-formed Event or Rejection."""
    result = decode_event(raw, topic_channel, OPTIONS)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, DlqReason)
        assert isinstance(result.detail, str) and result.detail.strip(), result
        assert result.reason is not DlqReason.PROCESSING_ERROR  # only the worker says that
        return result
    assert isinstance(result, Event), result
    assert result.channel in CATALOG.event_types
    assert result.type in CATALOG.event_types[result.channel]
    assert topic_channel in (None, result.channel)
    assert isinstance(result.occurred_at_ms, int)
    assert result.customer_key and isinstance(result.customer_key, str)
    assert not {"email", "phone"} & set(result.identifiers)  # raw PII never leaves
    assert isinstance(result.properties, dict) and isinstance(result.context, dict)
    # the ingest step writes it to the internal topic and the process step reads it back
    assert Event.from_record(orjson.loads(orjson.dumps(result.to_record()))) == result
    return result


@fuzz(300)
@given(st.binary(max_size=300), st.booleans(), st.one_of(st.none(), st.sampled_from(CHANNELS)))
def test_decode_never_raises_on_arbitrary_bytes(raw: bytes, huge: bool, topic: str | None) -> None:
    if huge:  # over the size limit
        raw = raw + b" " * (OPTIONS.max_event_bytes + 1 - len(raw))
    assert_decoded(raw, topic)


@fuzz(300)
@given(json_values, st.booleans(), st.one_of(st.none(), st.sampled_from(CHANNELS)))
def test_decode_never_raises_on_arbitrary_json(value: Any, ascii_only: bool, topic: Any) -> None:
    result = assert_decoded(_encode(value, ascii_only), topic)
    assert isinstance(result, Rejection)  # nothing random is a valid event


@fuzz(600)
@given(mutated_messages(), st.booleans(), st.integers(0, 3))
def test_decode_never_raises_on_mutated_valid_events(
    mutated: tuple[Any, str | None], ascii_only: bool, damage: int
) -> None:
    message, topic = mutated
    raw = _encode(message, ascii_only)
    if damage == 1:  # cut short
        raw = raw[: len(raw) // 2]
    elif damage == 2:  # one byte that cannot start UTF-8
        raw = raw[:3] + b"\xff" + raw[3:]
    note(repr(raw[:500]))
    assert_decoded(raw, topic)


def test_every_valid_example_still_decodes_as_the_mutations_start_from_them() -> None:
    for template in TEMPLATES:
        result = assert_decoded(_encode(template, True), template["channel"])
        assert isinstance(result, Event), (template["type"], result)


@pytest.mark.parametrize(
    "overrides",
    [{"channel": []}, {"channel": {"web": 1}}, {"type": ["page_view"]}, {"type": {}}],
    ids=["channel-list", "channel-object", "type-list", "type-object"],
)
def test_an_unhashable_channel_or_type_is_a_rejection(overrides: dict[str, Any]) -> None:
    result = decode_event(orjson.dumps(base_event(**overrides)), None, OPTIONS)
    assert isinstance(result, Rejection)
    assert result.reason in (DlqReason.UNKNOWN_CHANNEL, DlqReason.UNKNOWN_EVENT_TYPE)


# --- 2. journeys through decode, step and fire: the contact invariants ------------------

# C000015 is in the shipped policy's 5 % control group: its marketing is decided, not sent.
CUSTOMERS = ("C000001", "C000002", "C000015")
# Around the 2026 DST changes in Europe, the US and Australia, and a plain week.
STARTS_MS = tuple(
    int(datetime(*day, tzinfo=UTC).timestamp() * 1000)
    for day in ((2026, 3, 6), (2026, 3, 27), (2026, 4, 3), (2026, 6, 15), (2026, 10, 23))
)
CATEGORIES = ("beauty", "shoes", "outerwear", "accessories", "home")
# Event kind -> its channels; a kind listed twice is drawn twice as often.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("page_view", ("web",)),
    ("product_view", ("web", "app")),
    ("search", ("web",)),
    ("add_to_cart", ("web", "app")),
    ("add_to_cart", ("web", "app")),
    ("remove_from_cart", ("web", "app")),
    ("checkout_started", ("web", "app")),
    ("order_completed", ("web", "app")),
    ("order_completed", ("web", "app")),
    ("login", ("web",)),
    ("app_installed", ("app",)),
    ("app_opened", ("app",)),
    ("push_opened", ("app",)),
    ("qr_scanned", ("app",)),
    ("email_delivered", ("email",)),
    ("email_opened", ("email",)),
    ("email_clicked", ("email",)),
    ("unsubscribed", ("email",)),
    ("bounced", ("email",)),
    ("store_visit", ("store",)),
    ("loyalty_scan", ("store",)),
    ("store_purchase", ("store",)),
    ("store_purchase", ("store",)),
    ("product_return", ("store",)),
    ("call_completed", ("call_center",)),
    ("complaint_opened", ("call_center",)),
    ("complaint_resolved", ("call_center",)),
    ("complaint_resolved", ("call_center",)),  # an open case pauses all marketing
)


@st.composite
def properties_of(draw: st.DrawFn, kind: str, index: int) -> dict[str, Any]:
    """Contract-valid properties for one event of ``kind``."""
    category = draw(st.sampled_from(CATEGORIES))
    product = f"P{draw(st.integers(0, 2))}"
    case = f"K{draw(st.integers(0, 2))}"
    value = draw(st.sampled_from([9.5, 49.9, 150.0, 620.0]))
    return {
        "page_view": {"url": f"/p/{index}"},
        "product_view": {"product_id": product, "category": category, "price": 19.9},
        "search": {"query": "boots", "results": 3},
        "add_to_cart": {
            "product_id": product,
            "price": 19.9,
            "quantity": draw(st.integers(1, 3)),
            "category": category,
        },
        "remove_from_cart": {"product_id": product},
        "checkout_started": {"cart_value": 19.9},
        "order_completed": {"order_id": f"O{index}", "value": value, "category": category},
        "login": {"method": "password"},
        "app_installed": {"platform": "ios"},
        "app_opened": {},
        "push_opened": {"campaign": "flash_sale"},
        "qr_scanned": {"code": "qr-1", "placement": "parcel"},
        "email_delivered": {"campaign": "weekly"},
        "email_opened": {"campaign": "weekly"},
        "email_clicked": {"campaign": "weekly", "url": "/sale"},
        "unsubscribed": {"list": "all"},
        "bounced": {"bounce_type": draw(st.sampled_from(["hard", "soft"]))},
        "store_visit": {"store_id": "S1"},
        "loyalty_scan": {"store_id": "S1"},
        "store_purchase": {
            "store_id": "S1",
            "order_id": f"S{index}",
            "value": value,
            "category": category,
        },
        "product_return": {"store_id": "S1", "product_id": product, "value": 9.5},
        "call_completed": {
            "reason": "order_status",
            "sentiment": draw(st.sampled_from(["positive", "neutral", "negative"])),
        },
        "complaint_opened": {"case_id": case, "reason": "late_delivery"},
        "complaint_resolved": {"case_id": case},
    }[kind]


# Mostly minutes and hours apart (caps and quiet hours get busy), sometimes days, and now
# and then long enough for the 30-day inactivity timer.
gaps = st.one_of(
    st.integers(0, 10 * MINUTE_MS),
    st.integers(0, 2 * HOUR_MS),
    st.integers(0, 16 * HOUR_MS),
    st.integers(0, 3 * DAY_MS),
    st.integers(0, 10 * MINUTE_MS),
    st.integers(0, 2 * HOUR_MS),
    st.integers(25 * DAY_MS, 45 * DAY_MS),
)
lags = st.one_of(st.just(0), st.integers(0, 2 * HOUR_MS), st.integers(-5 * MINUTE_MS, 0))
consents = st.one_of(  # grants first: a customer who consents to nothing gets nothing
    st.none(),
    st.dictionaries(st.sampled_from(GRANT_CHANNELS), st.sampled_from([True, False]), max_size=3),
)


POLICIES = {"thompson": DEFAULT_POLICY, "fixed": SHIPPED_RULES}


@st.composite
def journeys(draw: st.DrawFn) -> dict[str, Any]:
    """A few customers' events in processing order, with their arrival times.

    ``deliveries`` holds ``(arrival_ms, message)``; a message that is an int redelivers the
    bytes of that earlier delivery.
    """
    zones = {c: draw(st.sampled_from(ZONES)) for c in CUSTOMERS}
    # one to three customers: fewer customers, busier journeys
    customers = draw(st.lists(st.sampled_from(CUSTOMERS), min_size=1, max_size=3, unique=True))
    now = draw(st.sampled_from(STARTS_MS)) + draw(st.integers(0, DAY_MS))
    deliveries: list[tuple[int, dict[str, Any] | int]] = []
    for index in range(draw(st.integers(1, 60))):
        now += draw(gaps)
        if deliveries and draw(st.integers(0, 9)) == 0:  # a redelivery of an earlier message
            deliveries.append((now, draw(st.integers(0, len(deliveries) - 1))))
            continue
        customer = draw(st.sampled_from(customers))
        kind, channels = draw(st.sampled_from(KINDS))
        channel = draw(st.sampled_from(channels))
        message: dict[str, Any] = {
            "event_id": f"ev-{index}",
            "type": kind,
            "channel": channel,
            "occurred_at": datetime.fromtimestamp((now - draw(lags)) / 1000, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "customer": {"customer_id": customer},
            "properties": draw(properties_of(kind, index)),
        }
        if channel == "email" and draw(st.booleans()):
            message["customer"]["email"] = f" {customer}@Example.com "
        context: dict[str, Any] = {}
        if draw(st.booleans()):
            context["timezone"] = zones[customer]
        consent = draw(consents)
        if consent is not None:
            context["consent"] = consent
        if context:
            message["context"] = context
        deliveries.append((now, message))
    return {"policy": draw(st.sampled_from(sorted(POLICIES))), "deliveries": deliveries}


@dataclass
class Expected:
    """What the test knows of one customer from the events it sent (not from the engine)."""

    key: str
    zone: str = DEFAULT_ZONE
    consent: dict[str, bool] = field(default_factory=dict)
    unsubscribed: bool = False
    hard_bounced: bool = False
    app: bool = False
    cases: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    # the zone each action was decided in (quiet hours are the customer's at decision)
    zone_at_decision: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[int, Action]] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        self.seen.add(event.event_id)
        zone = event.context.get("timezone")
        if isinstance(zone, str):
            self.zone = zone
        consent = event.context.get("consent")
        if isinstance(consent, dict):
            self.consent.update({c: v for c, v in consent.items() if isinstance(v, bool)})
        if event.type == "unsubscribed":
            self.unsubscribed = True
        elif event.type == "bounced" and event.properties["bounce_type"] == "hard":
            self.hard_bounced = True
        elif event.type in ("app_installed", "app_opened", "qr_scanned", "push_opened"):
            self.app = True
        elif event.type == "complaint_opened":
            self.cases.add(event.properties["case_id"])
        elif event.type == "complaint_resolved":
            self.cases.discard(event.properties["case_id"])


def _check_round_trip(state: CustomerState) -> None:
    assert CustomerState.from_dict(orjson.loads(state.to_json())) == state


def _check_messages(result: StepResult) -> None:
    for action in (*result.to_send, *result.held):
        assert CATALOG.message_error("action", action.to_message()) is None, action
    for decision in result.decisions:
        assert CATALOG.message_error("decision", decision.to_message()) is None, decision


def _same_result(a: StepResult, b: StepResult) -> bool:
    """Two step results equal field by field, the states byte for byte."""
    return a.state.to_json() == b.state.to_json() and replace(a, state=b.state) == b


def _check_result(expected: Expected, result: StepResult, now_ms: int) -> None:
    """The contact invariants on what one step or firing sent, at ``now_ms``."""
    _check_round_trip(result.state)
    _check_messages(result)
    for action in result.held:
        assert action.send_after_ms is not None and action.send_after_ms > now_ms
        expected.zone_at_decision[action.action_id] = expected.zone
    for action in result.to_send:
        expected.zone_at_decision.setdefault(action.action_id, expected.zone)
        _check_sent(expected, action, now_ms)


def _check_sent(expected: Expected, action: Action, now_ms: int) -> None:
    assert action.customer_id == expected.key
    assert action.send_after_ms is None or action.send_after_ms <= now_ms, "sent early"
    assert now_ms < action.expires_at_ms, "sent expired"
    if action.channel == "email":
        assert not expected.hard_bounced, "email after a hard bounce"
    if action.category in EXEMPT:
        return
    assert action.category == "marketing"
    assert action.group != "control", "the control group got a marketing message"
    if action.channel in GRANT_CHANNELS:
        assert expected.consent.get(action.channel) is True, f"no consent on {action.channel}"
    if action.channel == "email":
        assert not expected.unsubscribed, "marketing email after an unsubscribe"
    if action.channel == "push":
        assert expected.app, "push without the app"
    assert not expected.cases, f"marketing while case(s) {expected.cases} are open"
    if action.channel in QUIET_CHANNELS:
        zone = expected.zone_at_decision[action.action_id]
        assert not _is_quiet(now_ms, zone), (
            f"{action.action} on {action.channel} at "
            f"{datetime.fromtimestamp(now_ms / 1000, tz=ZoneInfo(zone))} ({zone})"
        )
    expected.sent.append((now_ms, action))
    for cap in CAPS:
        if not cap.counts(action):
            continue
        # emission times only grow, so the windows to check are those ending now
        in_window = [
            a.action for t, a in expected.sent if cap.counts(a) and t > now_ms - cap.window_ms
        ]
        assert len(in_window) <= cap.max, (cap.name, in_window)


class Journey:
    """Runs deliveries through decode, step and an exact scheduler (fire at each deadline)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.states: dict[str, CustomerState] = {}
        self.expected: dict[str, Expected] = {}
        self.sent = 0
        self.held = 0
        # Per customer, the processing clock when it was last touched: customers are
        # independent, so firing each one's deadlines lazily is an exact global scheduler.
        self.clock_ms: dict[str, int] = {}

    def fire_until(self, key: str, until_ms: int) -> None:
        """Fire every deadline of ``key`` up to ``until_ms``, each at its time (or at once
        when it is already past: a timer armed by a late event)."""
        state = self.states.get(key)
        while state is not None and (due := state.next_due_ms()) is not None and due <= until_ms:
            at = max(due, self.clock_ms[key])
            before = state.to_json()
            result = fire(state, at, self.policy)
            assert state.to_json() == before, "fire mutated its input"
            _check_result(self.expected[key], result, at)
            self.clock_ms[key] = at
            state = result.state
            next_due = state.next_due_ms()
            assert next_due is None or next_due > at, "fire left something due"
            self.sent += len(result.to_send)
            self.held += len(result.held)
        if state is not None:
            self.states[key] = state

    def deliver(self, now_ms: int, topic: str, raw: bytes) -> None:
        event = decode_event(raw, topic, OPTIONS)
        assert isinstance(event, Event), event
        key = event.customer_key
        expected = self.expected.setdefault(key, Expected(key))
        self.fire_until(key, now_ms)
        self.clock_ms[key] = now_ms
        state = self.states.get(key)
        before = state.to_json() if state is not None else None
        result = step(state, event, now_ms, LIMITS, self.policy)
        if state is not None:
            assert state.to_json() == before, "step mutated its input"
            handed_over = step(state.copy(), event, now_ms, LIMITS, self.policy, owned=True)
            assert _same_result(handed_over, result), "an owned step differs from a copying one"
        if event.event_id in expected.seen:
            assert result.duplicate
            assert result.state.to_json() == before
            assert not (result.to_send or result.held or result.decisions or result.timer_updates)
            return
        assert not result.duplicate
        expected.apply(event)
        _check_result(expected, result, now_ms)
        self.states[key] = result.state
        self.sent += len(result.to_send)
        self.held += len(result.held)

    def finish(self, now_ms: int) -> None:
        """Let two months pass: every hold is released or withdrawn, every timer fires."""
        for key in list(self.states):
            self.fire_until(key, now_ms + 61 * DAY_MS)
            assert not self.states[key].held


def run_journey(journey: dict[str, Any]) -> Journey:
    runner = Journey(POLICIES[journey["policy"]])
    now = 0
    sent: list[tuple[str, bytes]] = []
    for now, message in journey["deliveries"]:
        if isinstance(message, int):
            topic, raw = sent[message]
        else:
            topic, raw = message["channel"], orjson.dumps(message)
        sent.append((topic, raw))
        runner.deliver(now, topic, raw)
    runner.finish(now)
    return runner


@fuzz(300)
@given(journeys())
def test_journeys_keep_consent_caps_quiet_hours_and_dedupe(journey: dict[str, Any]) -> None:
    run_journey(journey)


def test_the_journey_harness_sees_sent_and_held_marketing() -> None:
    """The checks above are not vacuous: a reminder decided at night is held, then sent."""
    paris = ZoneInfo("Europe/Paris")
    at = int(datetime(2026, 11, 23, 20, 45, tzinfo=paris).timestamp() * 1000)
    cart = {
        "event_id": "h-1",
        "type": "add_to_cart",
        "channel": "web",
        "occurred_at": datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(),
        "customer": {"customer_id": "C000001"},
        "properties": {"product_id": "p", "price": 10.0},
        "context": {"timezone": "Europe/Paris", "consent": {"email": True}},
    }
    runner = run_journey({"policy": "fixed", "deliveries": [(at, cart)]})
    sent = [
        (datetime.fromtimestamp(t / 1000, tz=paris).isoformat(), a.action, a.channel)
        for t, a in runner.expected["C000001"].sent
    ]
    assert sent == [
        ("2026-11-23T20:45:00+01:00", "loyalty_signup_nudge", "web"),
        ("2026-11-24T08:00:00+01:00", "cart_reminder", "email"),  # decided at 21:15, held
        # not opened a day later (21:15): the cart journey's follow-up, held again
        ("2026-11-25T08:00:00+01:00", "cart_follow_up", "email"),
    ]
    assert runner.held == 2


def test_caps_hold_however_many_contacts_follow() -> None:
    """Two orders send an email; 55 complaints, each called back (service, uncapped) and
    resolved, then push it out of the 50 contacts kept; the review request that follows
    within the hour is a second email within 24 h (email_daily: 1)."""
    at = int(datetime(2026, 11, 23, 9, tzinfo=UTC).timestamp() * 1000)  # 10:00 in Paris
    deliveries: list[tuple[int, dict[str, Any] | int]] = []

    def add(type_: str, channel: str, properties: dict[str, Any]) -> None:
        now = at + len(deliveries) * MINUTE_MS
        message = {
            "event_id": f"t-{len(deliveries)}",
            "type": type_,
            "channel": channel,
            "occurred_at": datetime.fromtimestamp(now / 1000, tz=UTC).isoformat(),
            "customer": {"customer_id": "C000001"},
            "properties": properties,
            "context": {"timezone": "Europe/Paris", "consent": {"email": True}},
        }
        deliveries.append((now, message))

    add("order_completed", "web", {"order_id": "o1", "value": 20.0, "category": "shoes"})
    add("order_completed", "web", {"order_id": "o2", "value": 20.0, "category": "shoes"})
    for case in range(55):
        add("complaint_opened", "call_center", {"case_id": f"K{case}", "reason": "late"})
        add("complaint_resolved", "call_center", {"case_id": f"K{case}"})
    run_journey({"policy": "fixed", "deliveries": deliveries})


# --- 3. any event the decoder accepts goes through step and fire -----------------------

NOON_PARIS_MS = int(datetime(2026, 11, 23, 11, tzinfo=UTC).timestamp() * 1000)


def _warm_state() -> CustomerState:
    """A customer with a cart, two orders, the app, consent, an open case and a timer."""
    runner = Journey(DEFAULT_POLICY)
    base = {
        "customer": {"customer_id": "C000001"},
        "context": {"timezone": "Europe/Paris", "consent": {"email": True, "push": True}},
    }
    events = [
        ("web", "add_to_cart", {"product_id": "p", "price": 10.0, "category": "beauty"}),
        ("web", "order_completed", {"order_id": "o1", "value": 80.0, "category": "beauty"}),
        ("app", "app_installed", {}),
        ("store", "store_purchase", {"store_id": "s", "order_id": "o2", "value": 30.0}),
        ("web", "add_to_cart", {"product_id": "q", "price": 20.0, "quantity": 2}),
    ]
    for index, (channel, kind, props) in enumerate(events):
        at = NOON_PARIS_MS - (len(events) - index) * HOUR_MS
        raw = orjson.dumps(
            {
                **base,
                "event_id": f"w-{index}",
                "type": kind,
                "channel": channel,
                "occurred_at": datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(),
                "properties": props,
            }
        )
        runner.deliver(at, channel, raw)
    return runner.states["C000001"]


WARM = _warm_state()
FOLLOW_UPS = [  # events whose reduction reads what an odd event may have left in the state
    ("web", "add_to_cart", {"product_id": "p", "price": 1.0, "quantity": 1}),
    ("web", "remove_from_cart", {"product_id": "p"}),
    ("web", "order_completed", {"order_id": "o9", "value": 1.0}),
    ("store", "product_return", {"store_id": "s", "product_id": "p", "value": 1.0}),
]


def _template(type_: str, channel: str = "web", **changes: Any) -> tuple[Any, str]:
    """The valid example of ``channel.type_`` with some of its top-level fields changed."""
    (message,) = [t for t in TEMPLATES if (t["channel"], t["type"]) == (channel, type_)]
    return {**copy.deepcopy(message), **changes}, channel


@fuzz(400)
@given(st.one_of(odd_valid_messages(), mutated_messages()), st.booleans())
# Found by this property (see the regression tests in test_state.py and decide/test_engine.py):
@example(_template("add_to_cart", properties={"product_id": "p", "price": 1e308}), False)
@example(
    _template("add_to_cart", properties={"product_id": "p", "quantity": 2**64, "price": 1}), False
)
@example(_template("order_completed", properties={"order_id": "o", "value": 1e308}), True)
@example(_template("page_view", context={"timezone": "Europe"}), True)
@example(_template("add_to_cart", context={"timezone": "a" * 300}), False)
def test_any_accepted_event_goes_through_step_and_fire(
    mutated: tuple[Any, str | None], warm: bool
) -> None:
    message, topic = mutated
    event = assert_decoded(_encode(message, True), topic)
    if isinstance(event, Rejection):
        return
    note(repr(event))
    state: CustomerState | None = None
    if warm:
        state = CustomerState.from_dict({**WARM.to_dict(), "customer_key": event.customer_key})
    key = event.customer_key
    follow_ups = [
        replace(event, event_id=f"{event.event_id}/again"),  # its odd values twice over
        *(
            Event(f"follow-{i}", kind, channel, event.occurred_at_ms, key, {}, props, {})
            for i, (channel, kind, props) in enumerate(FOLLOW_UPS)
        ),
    ]
    now = NOON_PARIS_MS
    for index, current in enumerate((event, *follow_ups)):
        result = step(state, current, now + index, LIMITS, DEFAULT_POLICY)
        _check_round_trip(result.state)
        _check_messages(result)
        state = result.state
    assert state is not None
    fired = fire(state, now + 40 * DAY_MS, DEFAULT_POLICY)
    _check_round_trip(fired.state)
    _check_messages(fired)
