"""Load the JSON Schemas of the topic contract and compile their validators once.

The schema files are the public contract (``schemas/`` in the repository, packaged as
``stream/_schemas`` in a wheel). The event type catalogue of each channel is read from
the ``$defs`` of its schema, so adding a type to a schema adds it to the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

MESSAGE_SCHEMAS: tuple[str, ...] = ("action", "outcome", "decision", "dlq", "policy")


def default_schema_dir() -> Path:
    """The packaged schemas if installed from a wheel, else the repository's ``schemas/``."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_schemas"
    return packaged if packaged.is_dir() else here.parent / "schemas"


@dataclass(frozen=True)
class SchemaCatalog:
    """Compiled validators for events (per channel) and for every outgoing message."""

    event_validators: Mapping[str, Any]
    event_types: Mapping[str, frozenset[str]]
    message_validators: Mapping[str, Any]
    # Per event type, the schema of its ``properties`` on each channel that has the type.
    event_properties: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)

    def first_error(self, validator: Any, instance: Any) -> str | None:
        """``path: message`` of the first violation, or None when the instance is valid."""
        for error in validator.iter_errors(instance):
            path = "/".join(str(part) for part in error.instance_path) or "(root)"
            return f"{path}: {error.message}"
        return None

    def message_error(self, kind: str, message: Any) -> str | None:
        """First violation of an outgoing message (action, outcome, decision, dlq) or None."""
        return self.first_error(self.message_validators[kind], message)


def load_catalog(schema_dir: Path | None = None) -> SchemaCatalog:
    """Read every schema file, register them by ``$id`` and compile the validators."""
    root = schema_dir or default_schema_dir()
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.schema.json")):
        document = orjson.loads(path.read_bytes())
        documents[path.relative_to(root).as_posix()] = document
    registry = jsonschema_rs.Registry([(doc["$id"], doc) for doc in documents.values()])

    def compile_schema(name: str) -> Any:
        # offline: a $ref missing from the registry fails at once instead of going to the network
        return jsonschema_rs.validator_for(documents[name], registry=registry, offline=True)

    event_validators: dict[str, Any] = {}
    event_types: dict[str, frozenset[str]] = {}
    event_properties: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for name, document in documents.items():
        if name.startswith("events/"):
            channel = name.removeprefix("events/").removesuffix(".schema.json")
            event_validators[channel] = compile_schema(name)
            event_types[channel] = frozenset(document.get("$defs", {}))
            for type_, schema in document.get("$defs", {}).items():
                event_properties[type_] = (*event_properties.get(type_, ()), schema)
    message_validators = {kind: compile_schema(f"{kind}.schema.json") for kind in MESSAGE_SCHEMAS}
    return SchemaCatalog(event_validators, event_types, message_validators, event_properties)
