"""What a CEL variable holds, as far as a policy check needs to know: fields, keys, values.

A shape is read off a value (``shape_of``: a new customer state's view, the constants)
or off a JSON Schema (``shape_of_schema``: an event type's properties). ``AnyShape``
means "not known": nothing is checked below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnyShape:
    """A value the check knows nothing about."""


@dataclass(frozen=True)
class Scalar:
    """A bool, int, uint, double, number (int or double) or string.

    ``values``: the only strings it can be, if known.
    """

    type: str
    values: frozenset[str] | None = None
    what: str = "value"  # what one of ``values`` is called: "stage", "channel"


@dataclass(frozen=True)
class Record:
    """A map with a fixed set of fields (read as ``x.field`` or ``x['field']``)."""

    fields: Mapping[str, Shape]
    what: str = "field"  # "field", "property", "constant"


@dataclass(frozen=True)
class MapOf:
    """A map from string keys (``keys``: the only ones it can have, if known) to values."""

    value: Shape
    keys: frozenset[str] | None = None
    what: str = "key"


@dataclass(frozen=True)
class ListOf:
    """A list of elements of one shape."""

    element: Shape = field(default_factory=AnyShape)


Shape = AnyShape | Scalar | Record | MapOf | ListOf
ANY = AnyShape()
BOOL = Scalar("bool")
INT = Scalar("int")
DOUBLE = Scalar("double")
STRING = Scalar("string")
# A JSON number reaches CEL as an int or a double, as the producer wrote it (10 or 10.5).
NUMBER = Scalar("number")
_SCALAR_OF_JSON = {"boolean": BOOL, "integer": INT, "number": NUMBER, "string": STRING}


def shape_of(value: Any, what: str = "field") -> Shape:
    """The shape of a Python value as the CEL runtime sees it (dicts: closed records)."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return STRING
    if isinstance(value, dict):
        return Record({str(k): shape_of(v, what) for k, v in value.items()}, what)
    if isinstance(value, list | tuple):
        return ListOf(merge_all(shape_of(item, what) for item in value))
    return ANY


def shape_of_schema(schema: Any, name: str = "value") -> Shape:
    """The shape of values a JSON Schema accepts (objects: records of their properties)."""
    if not isinstance(schema, dict):
        return ANY
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        if values and all(isinstance(v, str) for v in values):
            return Scalar("string", frozenset(values), name)
        return ANY
    kind = schema.get("type")
    if kind == "object" and isinstance(schema.get("properties"), dict):
        properties = {key: shape_of_schema(sub, key) for key, sub in schema["properties"].items()}
        return Record(properties, "property")
    if kind == "array":
        return ListOf(shape_of_schema(schema.get("items"), name))
    return _SCALAR_OF_JSON.get(kind, ANY) if isinstance(kind, str) else ANY


def merge(a: Shape, b: Shape) -> Shape:
    """A shape covering both: the union of fields, keys and values (ANY if they differ)."""
    if isinstance(a, Record) and isinstance(b, Record):
        fields = dict(a.fields)
        for key, sub in b.fields.items():
            fields[key] = merge(fields[key], sub) if key in fields else sub
        return Record(fields, a.what)
    if isinstance(a, Scalar) and isinstance(b, Scalar) and a.type == b.type:
        values = None if a.values is None or b.values is None else a.values | b.values
        return Scalar(a.type, values, a.what)
    if isinstance(a, ListOf) and isinstance(b, ListOf):
        return ListOf(merge(a.element, b.element))
    if isinstance(a, MapOf) and isinstance(b, MapOf):
        keys = None if a.keys is None or b.keys is None else a.keys | b.keys
        return MapOf(merge(a.value, b.value), keys, a.what)
    return a if a == b else ANY


def merge_all(shapes: Iterable[Shape]) -> Shape:
    """The merge of every shape given (ANY for none)."""
    result: Shape | None = None
    for shape in shapes:
        result = shape if result is None else merge(result, shape)
    return ANY if result is None else result
