"""A syntax tree of a CEL expression, for the policy check (the ``cel`` package has none).

Only expressions ``cel.compile`` accepted are parsed here, so this parser can be simple:
it follows the grammar of the CEL specification (langdef.md) and raises ``CelSyntaxError``
on anything it does not know, after which the check falls back to what ``cel`` reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class CelSyntaxError(ValueError):
    """The expression uses syntax this parser does not know."""


@dataclass(frozen=True)
class Ident:
    """A variable (or a macro's bound name)."""

    name: str


@dataclass(frozen=True)
class Select:
    """``operand.field``."""

    operand: Node
    field: str


@dataclass(frozen=True)
class Index:
    """``operand[index]``."""

    operand: Node
    index: Node


@dataclass(frozen=True)
class Call:
    """``function(args)`` or ``target.function(args)``; macros (``has``, ``exists``) too."""

    target: Node | None
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Literal:
    """A constant: ``type`` is int, uint, double, string, bytes, bool or null."""

    type: str
    value: Any


@dataclass(frozen=True)
class ListExpr:
    """``[a, b]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapExpr:
    """``{k: v}`` (or a message ``Name{field: v}``, whose keys are Idents)."""

    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Operator:
    """A unary (``!``, ``-``), binary or conditional (``?:``) operator."""

    op: str
    operands: tuple[Node, ...]


Node = Ident | Select | Index | Call | Literal | ListExpr | MapExpr | Operator

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
        |'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?
        |(?:[0-9]+\.[0-9]+|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|[0-9]+[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?"}
# Binary operators, loosest first.
_LEVELS: Sequence[tuple[str, ...]] = (
    ("||",),
    ("&&",),
    ("==", "!=", "<", "<=", ">", ">=", "in"),
    ("+", "-"),
    ("*", "/", "%"),
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise CelSyntaxError(f"unexpected {text[position]!r} at {position}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            word = match.group()
            if kind == "ident" and word in ("true", "false", "null", "in"):
                kind = "punct" if word == "in" else "keyword"
            tokens.append((kind, word))
    tokens.append(("end", ""))
    return tokens


def _string(token: str) -> Literal:
    prefix = re.match(r"[rRbB]*", token)
    flags = prefix.group().lower() if prefix else ""
    body = token[len(flags) :]
    quote = 3 if body[:3] in ("'''", '"""') else 1
    body = body[quote:-quote]
    if "r" not in flags:
        body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group()), body)
    return Literal("bytes" if "b" in flags else "string", body)


def _number(token: str) -> Literal:
    if token[-1] in "uU":
        return Literal("uint", int(token[:-1], 0))
    if token[:2] in ("0x", "0X"):
        return Literal("int", int(token, 16))
    if any(c in token for c in ".eE"):
        return Literal("double", float(token))
    return Literal("int", int(token))


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, *words: str) -> bool:
        kind, word = self.tokens[self.at]
        return kind in ("punct", "end") and word in words

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, word: str) -> None:
        kind, found = self.take()
        if found != word or kind not in ("punct",):
            raise CelSyntaxError(f"expected {word!r}, found {found!r}")

    def expression(self) -> Node:
        condition = self.binary(0)
        if not self.peek("?"):
            return condition
        self.take()
        then = self.binary(0)
        self.expect(":")
        return Operator("?:", (condition, then, self.expression()))

    def binary(self, level: int) -> Node:
        levels = _LEVELS
        if level == len(levels):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek(*levels[level]):
            op = self.take()[1]
            left = Operator(op, (left, self.binary(level + 1)))
        return left

    def unary(self) -> Node:
        if self.peek("!", "-"):
            op = self.take()[1]
            operand = self.unary()
            if op == "-" and isinstance(operand, Literal) and operand.type in ("int", "double"):
                return Literal(operand.type, -operand.value)
            return Operator(op, (operand,))
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while self.peek(".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "ident":
                    raise CelSyntaxError(f"expected a field name, found {name!r}")
                if self.peek("("):
                    node = Call(node, name, self.arguments(")"))
                else:
                    node = Select(node, name)
            else:
                index = self.expression()
                self.expect("]")
                node = Index(node, index)
        return node

    def arguments(self, close: str) -> tuple[Node, ...]:
        self.take()  # the opening bracket
        items: list[Node] = []
        while not self.peek(close):
            items.append(self.expression())
            if not self.peek(close):
                self.expect(",")
        self.take()
        return tuple(items)

    def primary(self) -> Node:
        kind, word = self.take()
        if kind == "punct" and word == ".":  # a leading dot: the root scope
            kind, word = self.take()
        if kind == "ident":
            if self.peek("("):
                return Call(None, word, self.arguments(")"))
            name = word
            while self.peek(".") and self.tokens[self.at + 2][1] == "{":
                self.take()  # a qualified message name: pkg.Name{...}
                name = f"{name}.{self.take()[1]}"
            if self.peek("{"):
                return self.map_or_message(message=True)
            return Ident(name)
        if kind == "string":
            return _string(word)
        if kind == "number":
            return _number(word)
        if kind == "keyword":
            return Literal("null", None) if word == "null" else Literal("bool", word == "true")
        if word == "(":
            node = self.expression()
            self.expect(")")
            return node
        if word == "[":
            self.at -= 1
            return ListExpr(self.arguments("]"))
        if word == "{":
            self.at -= 1
            return self.map_or_message(message=False)
        raise CelSyntaxError(f"unexpected {word!r}")

    def map_or_message(self, message: bool) -> MapExpr:
        self.take()  # {
        entries: list[tuple[Node, Node]] = []
        while not self.peek("}"):
            key = Ident(self.take()[1]) if message else self.expression()
            self.expect(":")
            entries.append((key, self.expression()))
            if not self.peek("}"):
                self.expect(",")
        self.take()
        return MapExpr(tuple(entries))


def parse(text: str) -> Node:
    """The syntax tree of an expression; raises CelSyntaxError if it cannot be read."""
    parser = _Parser(text)
    try:
        node = parser.expression()
    except IndexError:
        raise CelSyntaxError("unexpected end of the expression") from None
    if parser.tokens[parser.at][0] != "end":
        raise CelSyntaxError(f"unexpected {parser.tokens[parser.at][1]!r}")
    return node
