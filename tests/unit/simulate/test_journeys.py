"""Unit tests of the pure journey simulator against the event contract."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.simulate.journeys import SimulatedEvent, format_timestamp, generate_events, to_topic
from tests.contract import CONTRACT_TYPES

START_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z
SAMPLE_SIZE = 5_000
SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
RFC3339_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ENVELOPE_FIELDS = {"event_id", "type", "channel", "occurred_at", "customer", "properties"}
OPTIONAL_FIELDS = {"context", "source"}
CUSTOMER_FIELDS = {
    "customer_id",
    "anonymous_id",
    "loyalty_id",
    "email",
    "email_sha256",
    "phone",
    "phone_sha256",
    "social_handle",
}
# Event types per channel and their required properties, as in the contract.
REQUIRED_PROPERTIES = CONTRACT_TYPES


def take(
    n: int, customers: int = 300, seed: int = 7, mean_gap_ms: int = 60_000
) -> list[SimulatedEvent]:
    """The first ``n`` simulated events."""
    return list(itertools.islice(generate_events(customers, seed, START_MS, mean_gap_ms), n))


@pytest.fixture(scope="module")
def sample() -> list[SimulatedEvent]:
    """A fixed sample shared by the contract checks."""
    return take(SAMPLE_SIZE)


def serialised(events: list[SimulatedEvent]) -> list[tuple[str, bytes, bytes, int]]:
    """Everything a producer would send, as bytes."""
    return [(e.channel, e.key, orjson.dumps(e.value), e.occurred_at_ms) for e in events]


def test_same_seed_gives_identical_bytes() -> None:
    assert serialised(take(3_000)) == serialised(take(3_000))


def test_different_seeds_differ() -> None:
    assert serialised(take(500, seed=1)) != serialised(take(500, seed=2))


def test_rejects_nonsense_arguments() -> None:
    with pytest.raises(ValueError):
        generate_events(0, 1, START_MS)
    with pytest.raises(ValueError):
        generate_events(10, 1, START_MS, mean_gap_ms=0)


def test_to_topic() -> None:
    assert to_topic("cjo.", "call_center") == "cjo.events.call_center"


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_795_000_000_123) == "2026-11-18T11:06:40.123Z"


def test_envelope_is_complete(sample: list[SimulatedEvent]) -> None:
    for event in sample:
        value = event.value
        assert ENVELOPE_FIELDS <= value.keys() <= ENVELOPE_FIELDS | OPTIONAL_FIELDS
        assert 1 <= len(value["event_id"]) <= 128
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value["type"])
        assert value["channel"] == event.channel
        assert RFC3339_MS_Z.match(value["occurred_at"])
        assert value["occurred_at"] == format_timestamp(event.occurred_at_ms)
        assert value["customer"] and value["customer"].keys() <= CUSTOMER_FIELDS
        assert all(isinstance(v, str) and v for v in value["customer"].values())
        assert isinstance(value["properties"], dict)


def test_types_and_required_properties_follow_the_contract(sample: list[SimulatedEvent]) -> None:
    for event in sample:
        types = REQUIRED_PROPERTIES[event.channel]
        assert event.value["type"] in types, event.value
        required = types[event.value["type"]]
        assert required <= event.value["properties"].keys(), event.value


def test_event_ids_are_unique(sample: list[SimulatedEvent]) -> None:
    ids = [event.value["event_id"] for event in sample]
    assert len(set(ids)) == len(ids)


def test_events_are_in_time_order_from_start(sample: list[SimulatedEvent]) -> None:
    times = [event.occurred_at_ms for event in sample]
    assert times == sorted(times)
    assert times[0] >= START_MS


def test_keys_identify_the_customer(sample: list[SimulatedEvent]) -> None:
    for event in sample:
        customer = event.value["customer"]
        if "customer_id" in customer:
            expected = customer["customer_id"]
        elif "loyalty_id" in customer:  # the till knows the card only
            expected = "C" + customer["loyalty_id"][1:]
        elif "phone" in customer:  # a complaint by phone, before verification
            expected = f"C{int(customer['phone'].replace(' ', '')[4:]):06d}"
        elif "social_handle" in customer:  # a post: the tool knows the handle only
            number = int(customer["social_handle"][-6:])
            assert event.key == f"C{number:06d}".encode() or event.key.startswith(b"anon-")
            continue
        else:
            expected = customer["anonymous_id"]
        assert event.key and event.key == expected.encode()


def test_identifier_formats(sample: list[SimulatedEvent]) -> None:
    for event in sample:
        customer = event.value["customer"]
        if "customer_id" in customer:
            assert re.fullmatch(r"C\d{6}", customer["customer_id"])
            if "anonymous_id" in customer:  # a visitor's sign-up or a later login
                assert event.value["type"] == "login"
        elif "anonymous_id" in customer:
            assert re.fullmatch(r"anon-[0-9a-f]+", customer["anonymous_id"])
            assert event.channel == "web"
        elif "social_handle" in customer:
            assert event.value["type"] in {"mention", "direct_message", "reply"}
        else:
            assert event.value["type"] in {"store_purchase", "complaint_opened"}
        if "loyalty_id" in customer:
            assert re.fullmatch(r"L\d{6}", customer["loyalty_id"])
            if "customer_id" in customer:
                assert customer["loyalty_id"] == "L" + customer["customer_id"][1:]
        if "phone" in customer:
            assert re.fullmatch(r"\+33 6 \d{8}", customer["phone"])
            assert event.channel == "call_center"
        if "email" in customer:
            assert customer["email"] == customer["customer_id"].lower() + "@example.com"
        if "social_handle" in customer:
            handle = customer["social_handle"]
            assert re.fullmatch(r"(x|twitter|instagram|facebook|tiktok):@[Ss]hopper_\d{6}", handle)
            assert event.channel == "social"


def test_all_channels_and_a_realistic_share_of_anonymous_visitors(
    sample: list[SimulatedEvent],
) -> None:
    assert {event.channel for event in sample} == set(REQUIRED_PROPERTIES)
    keys = {event.key for event in sample}
    anonymous = {key for key in keys if key.startswith(b"anon-")}
    assert 0.1 < len(anonymous) / len(keys) < 0.3


def test_purchases_carry_positive_value_in_euro(sample: list[SimulatedEvent]) -> None:
    purchases = [
        e.value for e in sample if e.value["type"] in {"order_completed", "store_purchase"}
    ]
    assert purchases
    for value in purchases:
        properties = value["properties"]
        assert properties["value"] > 0
        assert properties["currency"] == "EUR"
        line_total = sum(item["price"] * item["quantity"] for item in properties["items"])
        assert properties["value"] == pytest.approx(line_total)


def test_order_ids_are_unique(sample: list[SimulatedEvent]) -> None:
    orders = [
        e.value["properties"]["order_id"]
        for e in sample
        if e.value["type"] in {"order_completed", "store_purchase"}
    ]
    assert len(set(orders)) == len(orders)


def test_complaints_resolve_only_after_they_were_opened() -> None:
    opened: dict[str, bytes] = {}
    resolved = 0
    for event in take(20_000, customers=100):
        properties = event.value["properties"]
        if event.value["type"] == "complaint_opened":
            assert properties["case_id"] not in opened
            opened[properties["case_id"]] = event.key
        elif event.channel == "social" and "platform" in properties:  # the case it may open
            key = "thread_id" if event.value["type"] == "direct_message" else "post_id"
            opened[f"social-{properties['platform']}-{properties[key]}"] = event.key
        elif event.value["type"] == "complaint_resolved":
            assert opened.get(properties["case_id"]) == event.key
            resolved += 1
    assert opened and resolved


def test_most_events_carry_context_with_consent(sample: list[SimulatedEvent]) -> None:
    contexts = [e.value["context"] for e in sample if "context" in e.value]
    assert len(contexts) > 0.8 * len(sample)
    for context in contexts:
        assert isinstance(context["timezone"], str) and "/" in context["timezone"]
        assert set(context["consent"]) == {"email", "sms", "push"}
    assert any(not context["consent"]["sms"] for context in contexts)


def test_app_onboarding_follows_a_first_order() -> None:
    ordered: set[bytes] = set()
    installs = 0
    for event in take(20_000, customers=100):
        customer = event.value["customer"]
        if event.value["type"] in {"order_completed", "store_purchase"}:
            ordered.add(event.key)
        elif event.value["type"] == "login" and "anonymous_id" in customer:
            if customer["anonymous_id"].encode() in ordered:  # ordered before signing up
                ordered.add(event.key)
        elif event.value["type"] == "app_installed":
            assert event.key in ordered
            installs += 1
        elif event.value["type"] == "qr_scanned":
            assert event.value["properties"]["placement"] in {
                "parcel",
                "store",
                "receipt",
                "print",
                "other",
            }
    assert installs


@pytest.mark.parametrize(("customers", "mean_gap_ms"), [(200, 60_000), (1_000, 5_000)])
def test_stream_rate_is_about_customers_per_mean_gap(customers: int, mean_gap_ms: int) -> None:
    events = take(20_000, customers=customers, mean_gap_ms=mean_gap_ms)[5_000:]
    span_ms = events[-1].occurred_at_ms - events[0].occurred_at_ms
    rate = len(events) / span_ms
    assert rate == pytest.approx(customers / mean_gap_ms, rel=0.25)


def load_schema_registry() -> tuple[Any, dict[str, Any]]:
    """jsonschema_rs Registry of every schema file, and the channel schemas by channel."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    channel_files = {c: SCHEMAS_DIR / "events" / f"{c}.schema.json" for c in REQUIRED_PROPERTIES}
    if not (SCHEMAS_DIR / "envelope.schema.json").exists() or not all(
        path.exists() for path in channel_files.values()
    ):
        pytest.skip("schemas/ not written yet")
    documents = [json.loads(p.read_text()) for p in sorted(SCHEMAS_DIR.rglob("*.schema.json"))]
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in documents if "$id" in doc])
    channel_schemas = {c: json.loads(p.read_text()) for c, p in channel_files.items()}
    return registry, channel_schemas


def test_sample_validates_against_the_json_schemas(sample: list[SimulatedEvent]) -> None:
    registry, channel_schemas = load_schema_registry()
    import jsonschema_rs

    validators = {
        channel: jsonschema_rs.validator_for(schema, registry=registry)
        for channel, schema in channel_schemas.items()
    }
    for channel, schema in channel_schemas.items():
        assert set(schema["$defs"]) == set(REQUIRED_PROPERTIES[channel])
    for event in sample:
        errors = [e.message for e in validators[event.channel].iter_errors(event.value)]
        assert not errors, (event.value, errors)


def test_social_posts_have_a_realistic_mix_and_texts_that_read_as_meant() -> None:
    from stream.core.sentiment import sentiment_of
    from stream.simulate.journeys import SOCIAL_TEXTS

    for tone, texts in SOCIAL_TEXTS.items():
        for text in texts:
            for item in ("pair of shoes", "jacket", "bag", "serum", "candle"):
                assert sentiment_of({"text": text.format(item=item)}, {}).label == tone, text
    posts = [
        e.value
        for e in take(20_000, customers=200)
        if e.value["type"] in {"mention", "review", "direct_message", "reply"}
    ]
    assert {p["type"] for p in posts} == {"mention", "review", "direct_message", "reply"}
    scored = [p["properties"] for p in posts if "sentiment" in p["properties"]]
    assert 0.3 < len(scored) / len(posts) < 0.5  # the tool scores some itself
    assert {p["sentiment"] for p in scored} == {"positive", "neutral", "negative"}
    languages = {p["properties"]["language"] for p in posts}
    assert "en" in languages and len(languages) > 2  # some the worker cannot read


def test_some_anonymous_authors_are_linked_later() -> None:
    posted: set[str] = set()
    linked_after_posting = 0
    for event in take(20_000, customers=200):
        customer = event.value["customer"]
        if event.value["type"] in {"mention", "direct_message", "reply"}:
            posted.add(customer["social_handle"])
        elif event.value["type"] == "handle_linked":
            assert "customer_id" in customer
            assert event.value["properties"]["linked_by"] in {"agent", "customer"}
            linked_after_posting += customer["social_handle"] in posted
    assert linked_after_posting >= 3
