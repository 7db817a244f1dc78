"""Check what a CEL expression reads against the shapes of its variables.

Finds, before a policy is used, what would otherwise fail every evaluation at run time
(``condition_error``) or never match: an unknown variable, field, event property or
constant (with a "did you mean"), a key a map cannot have, a string literal compared with
an enum-like value it can never be (naming the allowed values), arithmetic mixing int and
double, a string compared with a number. Names bound by macros (``x`` in
``list.exists(x, x > 1)``) take the shape of the list's elements (or the map's keys).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from stream.core.decide.cel_parse import (
    Call,
    Ident,
    Index,
    ListExpr,
    Literal,
    MapExpr,
    Node,
    Operator,
    Select,
    parse,
)
from stream.core.decide.shapes import (
    ANY,
    BOOL,
    DOUBLE,
    INT,
    STRING,
    ListOf,
    MapOf,
    Record,
    Scalar,
    Shape,
    merge_all,
)

_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_RESULTS: dict[str, Shape] = {
    "size": INT,
    "int": INT,
    "uint": Scalar("uint"),
    "double": DOUBLE,
    "string": STRING,
    "bool": BOOL,
    "contains": BOOL,
    "startsWith": BOOL,
    "endsWith": BOOL,
    "matches": BOOL,
}
_NUMBERS = frozenset({"int", "uint", "double"})  # "number": an int or a double
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_ORDERING = frozenset({"<", "<=", ">", ">="})


def check_expression(text: str, variables: Mapping[str, Shape]) -> list[str]:
    """Every problem found in the expression, each once (raises CelSyntaxError)."""
    walk = _Walk(variables)
    walk.shape(parse(text), {})
    problems = list(dict.fromkeys(walk.problems))
    if walk.unknown:
        names = ", ".join(dict.fromkeys(walk.unknown))
        hint = _suggest(walk.unknown[0], variables)
        problems.insert(
            0, f"CEL reads unknown variable(s) {names}{hint}; known: {', '.join(sorted(variables))}"
        )
    return problems


def _suggest(name: str, known: Iterable[str], prefix: str = "", quoted: bool = False) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quoted else f"; did you mean {prefix}{close[0]}?"


def _one_of(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def text_of(node: Node) -> str:
    """The expression a node was read from, short (for messages)."""
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Select):
        return f"{text_of(node.operand)}.{node.field}"
    if isinstance(node, Index):
        key = node.index
        inner = repr(key.value) if isinstance(key, Literal) else "..."
        return f"{text_of(node.operand)}[{inner}]"
    if isinstance(node, Call):
        target = f"{text_of(node.target)}." if node.target is not None else ""
        return f"{target}{node.function}(...)"
    if isinstance(node, Literal):
        return _literal_text(node)
    return "(...)"


def _literal_text(node: Literal) -> str:
    if node.type in ("string", "bytes"):
        return repr(node.value)
    if node.type in ("bool", "null"):
        return {True: "true", False: "false", None: "null"}[node.value]
    return f"{node.value}u" if node.type == "uint" else str(node.value)


class _Walk:
    """One pass over a syntax tree: the shape of every node, and the problems met."""

    def __init__(self, variables: Mapping[str, Shape]) -> None:
        self.variables = variables
        self.problems: list[str] = []
        self.unknown: list[str] = []

    def shape(self, node: Node, bound: Mapping[str, Shape]) -> Shape:
        """The shape of ``node``'s value; problems below it are recorded on the way."""
        if isinstance(node, Ident):
            if node.name in bound:
                return bound[node.name]
            if node.name in self.variables:
                return self.variables[node.name]
            self.unknown.append(node.name)
            return ANY
        if isinstance(node, Select):
            return self.member(self.shape(node.operand, bound), node.field, node)
        if isinstance(node, Index):
            return self.index(node, bound)
        if isinstance(node, Call):
            return self.call(node, bound)
        if isinstance(node, Literal):
            return Scalar(node.type) if node.type != "null" else ANY
        if isinstance(node, ListExpr):
            return ListOf(merge_all(self.shape(item, bound) for item in node.items))
        if isinstance(node, MapExpr):
            return self.map_literal(node, bound)
        return self.operator(node, bound)

    def member(self, shape: Shape, name: str, node: Node) -> Shape:
        """The shape of field or key ``name`` of a value of ``shape`` (read by ``node``)."""
        owner = text_of(node.operand) if isinstance(node, Select | Index) else "(...)"
        if isinstance(shape, Record):
            if name in shape.fields:
                return shape.fields[name]
            hint = _suggest(name, shape.fields, f"{owner}.")
            known = hint or f"; {owner} has: {_one_of(shape.fields) or 'nothing'}"
            self.problems.append(f"{text_of(node)}: unknown {shape.what}{known}")
            return ANY
        if isinstance(shape, MapOf):
            if shape.keys is not None and name not in shape.keys:
                self.problems.append(
                    f"{text_of(node)}: {name!r} is not a{_n(shape.what)} {shape.what}; one of: "
                    f"{_one_of(shape.keys) or 'none'}{_suggest(name, shape.keys, quoted=True)}"
                )
            return shape.value
        if isinstance(shape, Scalar | ListOf):
            kind = shape.type if isinstance(shape, Scalar) else "list"
            self.problems.append(f"{text_of(node)}: {owner} is a{_n(kind)} {kind}, without fields")
        return ANY

    def index(self, node: Index, bound: Mapping[str, Shape]) -> Shape:
        operand = self.shape(node.operand, bound)
        key = node.index
        self.shape(key, bound)
        if isinstance(key, Literal) and key.type == "string":
            return self.member(operand, key.value, node)
        if isinstance(operand, ListOf):
            return operand.element
        return operand.value if isinstance(operand, MapOf) else ANY

    def call(self, node: Call, bound: Mapping[str, Shape]) -> Shape:
        args = node.args
        if node.function == "has" and node.target is None and len(args) == 1:
            if isinstance(args[0], Select):
                self.member(self.shape(args[0].operand, bound), args[0].field, args[0])
            return BOOL
        target = ANY if node.target is None else self.shape(node.target, bound)
        if node.function in _COMPREHENSIONS and args and isinstance(args[0], Ident):
            element = _element(target)
            inner = {**bound, args[0].name: element}
            shapes = [self.shape(arg, inner) for arg in args[1:]]
            if node.function == "map" and shapes:
                return ListOf(shapes[-1])
            return ListOf(element) if node.function == "filter" else BOOL
        for arg in args:
            self.shape(arg, bound)
        return _RESULTS.get(node.function, ANY)

    def map_literal(self, node: MapExpr, bound: Mapping[str, Shape]) -> Shape:
        fields: dict[str, Shape] = {}
        literal_keys = True
        for key, value in node.entries:
            shape = self.shape(value, bound)
            if isinstance(key, Literal) and key.type == "string":
                fields[key.value] = shape
            elif not isinstance(key, Ident):  # a message's field names are not variables
                self.shape(key, bound)
                literal_keys = False
        return Record(fields, "key") if literal_keys else MapOf(ANY)

    def operator(self, node: Operator, bound: Mapping[str, Shape]) -> Shape:
        shapes = [self.shape(operand, bound) for operand in node.operands]
        op = node.op
        if op == "?:":
            return merge_all(shapes[1:])
        if op in ("!", "&&", "||"):
            return BOOL
        if op == "-" and len(shapes) == 1:
            return shapes[0]
        left, right = node.operands
        if op in ("==", "!="):
            self.literal_against(left, shapes[0], right)
            self.literal_against(right, shapes[1], left)
        elif op == "in":
            self.membership(left, shapes[0], right, shapes[1])
        self.types_agree(node, shapes[0], shapes[1])
        if op in _ARITHMETIC:
            return shapes[0] if isinstance(shapes[0], Scalar) else ANY
        return BOOL

    def literal_against(self, subject: Node, shape: Shape, literal: Node) -> None:
        """A string literal compared with an enum-like value must be one of its values."""
        if not (isinstance(literal, Literal) and literal.type == "string"):
            return
        if not isinstance(shape, Scalar) or shape.values is None or literal.value in shape.values:
            return
        what = shape.what
        hint = _suggest(literal.value, shape.values, quoted=True)
        self.problems.append(
            f"{text_of(subject)} is never {literal.value!r}: a{_n(what)} {what} is one "
            f"of {_one_of(shape.values)}{hint}"
        )

    def membership(self, left: Node, left_shape: Shape, right: Node, right_shape: Shape) -> None:
        """``x in [...]`` and ``'key' in map``: the literals must be possible."""
        if isinstance(right, ListExpr):
            for item in right.items:
                self.literal_against(left, left_shape, item)
        elif isinstance(right, MapExpr):
            for key, _ in right.entries:
                self.literal_against(left, left_shape, key)
        elif isinstance(left, Literal) and left.type == "string":
            if isinstance(right_shape, ListOf):
                self.literal_against(right, right_shape.element, left)
            elif isinstance(right_shape, Record | MapOf):
                self.member(right_shape, left.value, Index(right, left))

    def types_agree(self, node: Operator, left: Shape, right: Shape) -> None:
        """Arithmetic needs one number type; a string is never ordered against a number."""
        if not (isinstance(left, Scalar) and isinstance(right, Scalar)) or left.type == right.type:
            return
        a, b = node.operands
        pair = f"{text_of(a)} {node.op} {text_of(b)}"
        if node.op in _ARITHMETIC and {left.type, right.type} <= _NUMBERS:
            self.problems.append(
                f"{pair}: CEL does not mix {left.type} and {right.type} in arithmetic; "
                f"write a literal of the same type (500.0 for a double) or convert with "
                f"{right.type}() or {left.type}()"
            )
        elif node.op in _ORDERING | {"==", "!="} and "string" in (left.type, right.type):
            other = right.type if left.type == "string" else left.type
            if other in _NUMBERS | {"number"}:
                self.problems.append(f"{pair}: compares a string with a{_n(other)} {other}")


def _element(shape: Shape) -> Shape:
    """What a macro's bound name holds: a list's elements, a map's keys."""
    if isinstance(shape, ListOf):
        return shape.element
    if isinstance(shape, MapOf):
        return Scalar("string", shape.keys, shape.what)
    if isinstance(shape, Record):
        return Scalar("string", frozenset(shape.fields), shape.what)
    return ANY


def _n(word: str) -> str:
    """``n`` before a word starting with a vowel: "an int", "a double"."""
    return "n" if word[:1] in "aeiou" else ""
