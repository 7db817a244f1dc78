"""The topic contract in schemas/: valid 2020-12 schemas, examples that match, broken ones refused.

No broker and no worker code: the schema files are loaded into one ``jsonschema_rs.Registry``
by their ``$id``, so the channel schemas' ``"$ref": "../envelope.schema.json"`` resolves
offline, exactly as the worker resolves it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from stream.core.events import DlqReason
from tests.contract import CONTRACT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = SCHEMA_DIR / "examples"
BASE_URI = "https://journeystream.dev/schemas/"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

CHANNELS = ("web", "app", "email", "store", "call_center", "social")
MESSAGES = ("action", "outcome", "decision", "dlq")


CONTRACT_DLQ_REASONS = {
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "schema_violation",
    "unknown_channel",
    "unknown_event_type",
    "channel_mismatch",
    "missing_identifier",
    "invalid_timestamp",
}

SCHEMA_FILES = sorted(SCHEMA_DIR.rglob("*.schema.json"))
VALID_EXAMPLES = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID_EXAMPLES = sorted((EXAMPLES / "invalid").glob("*.json"))


def _name(path: Path) -> str:
    """Path of a schema file relative to schemas/, e.g. ``events/web.schema.json``."""
    return path.relative_to(SCHEMA_DIR).as_posix()


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    return {_name(path): _load(path) for path in SCHEMA_FILES}


@functools.cache
def _registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry([(doc["$id"], doc) for doc in _documents().values()])


@functools.cache
def _validator(name: str) -> Any:
    """Compiled validator of one schema file; unresolvable $refs fail instead of fetching."""
    return jsonschema_rs.validator_for(_documents()[name], registry=_registry(), offline=True)


def _errors(name: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.instance_path) or '(root)'}: {error.message}"
        for error in _validator(name).iter_errors(instance)
    ]


def _event_schema(channel: Any) -> str:
    """The schema an event is checked against: its channel's, or the envelope's if unknown."""
    return f"events/{channel}.schema.json" if channel in CHANNELS else "envelope.schema.json"


def test_every_contract_file_is_present() -> None:
    expected = {"envelope.schema.json"}
    expected |= {f"events/{channel}.schema.json" for channel in CHANNELS}
    expected |= {f"{kind}.schema.json" for kind in MESSAGES}
    expected |= {"policy.schema.json"}  # not a message: the policy file format
    assert set(_documents()) == expected


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_name)
def test_schema_is_valid_2020_12_with_id_title_and_description(path: Path) -> None:
    document = _load(path)
    jsonschema_rs.meta.validate(document)  # raises ValidationError if not a valid schema
    assert document["$schema"] == DRAFT_2020_12
    assert document["$id"] == BASE_URI + _name(path)
    assert document["title"].strip()
    assert document["description"].strip()
    assert path.read_text(encoding="utf-8") == json.dumps(document, indent=2) + "\n", (
        "keep schema files as 2-space indented JSON"
    )


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_name)
def test_schema_compiles_with_refs_resolved_from_the_registry(path: Path) -> None:
    assert _validator(_name(path)) is not None


@pytest.mark.parametrize("path", VALID_EXAMPLES, ids=lambda p: p.stem)
def test_valid_example_matches_its_schema(path: Path) -> None:
    example = _load(path)
    parts = path.stem.split(".")
    if len(parts) == 2:  # <channel>.<type>.json: an ingress event
        channel, type_ = parts
        assert (example["channel"], example["type"]) == (channel, type_), "name the file after it"
        schema = _event_schema(example["channel"])
    else:  # action.json, outcome.json, decision.json, dlq.json
        schema = f"{path.stem}.schema.json"
    assert _errors(schema, example) == []


@pytest.mark.parametrize("kind", MESSAGES)
def test_every_message_kind_has_a_valid_example(kind: str) -> None:
    assert (EXAMPLES / "valid" / f"{kind}.json").is_file()


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_event_type_has_a_valid_example(channel: str) -> None:
    types = set(_documents()[f"events/{channel}.schema.json"]["$defs"])
    examples = {p.stem.split(".")[1] for p in (EXAMPLES / "valid").glob(f"{channel}.*.json")}
    assert examples == types


@pytest.mark.parametrize("path", INVALID_EXAMPLES, ids=lambda p: p.stem)
def test_invalid_example_is_rejected(path: Path) -> None:
    example = _load(path)
    assert set(example) == {"expect_reason", "message"}
    dlq_reasons = _documents()["dlq.schema.json"]["properties"]["reason"]["enum"]
    assert example["expect_reason"] in dlq_reasons
    message = example["message"]
    assert _errors(_event_schema(message.get("channel")), message) != []


@pytest.mark.parametrize("channel", CHANNELS)
def test_channel_schema_defs_are_its_type_catalogue(channel: str) -> None:
    document = _documents()[f"events/{channel}.schema.json"]
    types = document["properties"]["type"]["enum"]
    assert len(types) == len(set(types))
    assert set(document["$defs"]) == set(types)
    assert document["properties"]["channel"] == {"const": channel}
    envelope, *branches = document["allOf"]
    assert envelope == {"$ref": "../envelope.schema.json"}
    mapped = {
        branch["if"]["properties"]["type"]["const"]: branch["then"]["properties"]["properties"]
        for branch in branches
    }
    assert len(mapped) == len(branches)
    assert mapped == {type_: {"$ref": f"#/$defs/{type_}"} for type_ in types}
    for type_, schema in document["$defs"].items():
        assert schema["type"] == "object", type_
        assert schema["additionalProperties"] is True, f"{type_} must stay forward compatible"


@pytest.mark.parametrize("channel", CHANNELS)
def test_channel_has_the_contract_types_and_required_properties(channel: str) -> None:
    defs = _documents()[f"events/{channel}.schema.json"]["$defs"]
    assert set(CONTRACT_TYPES[channel]) <= set(defs)
    required = {type_: set(defs[type_].get("required", [])) for type_ in CONTRACT_TYPES[channel]}
    assert required == CONTRACT_TYPES[channel]


def test_dlq_reasons_cover_the_contract_and_the_decoder() -> None:
    reasons = _documents()["dlq.schema.json"]["properties"]["reason"]["enum"]
    assert set(reasons) >= CONTRACT_DLQ_REASONS
    assert set(reasons) == {reason.value for reason in DlqReason}


@pytest.mark.parametrize(
    ("overrides", "valid"),
    [
        ({}, True),
        ({"properties": {"url": "/", "utm_source": "newsletter"}}, True),
        ({"context": {"timezone": "Europe/Paris", "screen": "1920x1080"}}, True),
        ({"customer": {"email": "Ann@Example.com", "phone": "+33612345678"}}, True),
        ({"properties": {}}, False),
        ({"customer": {"email_sha256": "A" * 64}}, False),
        ({"customer": {"customer_id": "C000123", "ip": "203.0.113.7"}}, False),
        ({"channel": "app"}, False),
        ({"type": "Page-View"}, False),
        ({"event_id": "e" * 129}, False),
        ({"context": {"consent": {"email": "yes"}}}, False),
    ],
    ids=[
        "minimal",
        "extra_property_allowed",
        "extra_context_allowed",
        "raw_email_and_phone_accepted_at_ingest",
        "missing_required_property",
        "uppercase_hash",
        "unknown_identifier",
        "channel_not_const",
        "type_pattern",
        "event_id_too_long",
        "consent_not_boolean",
    ],
)
def test_web_event_edges(overrides: dict[str, Any], valid: bool) -> None:
    event: dict[str, Any] = {
        "event_id": "0b7e6f1c-6f1c-4b1e-9a53-2b0f2f6a3c10",
        "type": "page_view",
        "channel": "web",
        "occurred_at": "2026-11-23T10:15:00.000Z",
        "customer": {"customer_id": "C000123"},
        "properties": {"url": "/"},
    }
    event.update(overrides)
    assert (_errors("events/web.schema.json", event) == []) is valid
