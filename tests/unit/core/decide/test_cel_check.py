"""The CEL reader behind `policy check`: field chains found precisely, macros' names bound."""

from __future__ import annotations

import cel
import pytest

from stream.core.decide.cel_check import check_expression
from stream.core.decide.cel_parse import (
    Call,
    CelSyntaxError,
    Ident,
    Index,
    Literal,
    Operator,
    Select,
    parse,
)
from stream.core.decide.shapes import INT, STRING, ListOf, MapOf, Record, Scalar
from stream.core.decide.variables import CEL_VARIABLES, CUSTOMER_FIELDS, EVENT_FIELDS
from stream.core.timers import FiredTimer
from tests.unit.core.decide.helpers import CATALOG, DEFAULT_POLICY, ROOT

CUSTOMER = Ident("customer")
VARIABLES = {
    "customer": Record(
        {
            "stage": Scalar("string", frozenset({"awareness", "advocacy"}), "stage"),
            "tags": ListOf(STRING),
            "counts": MapOf(INT, frozenset({"web"}), "channel"),
        }
    ),
    "now_ms": INT,
}


def test_selections_indexes_calls_and_literals_are_told_apart() -> None:
    assert parse("customer.stage") == Select(CUSTOMER, "stage")
    assert parse("customer['stage']") == Index(CUSTOMER, Literal("string", "stage"))
    assert parse("customer.tags.exists(t, t == 'x')") == Call(
        Select(CUSTOMER, "tags"),
        "exists",
        (Ident("t"), Operator("==", (Ident("t"), Literal("string", "x")))),
    )
    assert parse("-1 + 2.5") == Operator("+", (Literal("int", -1), Literal("double", 2.5)))
    assert parse("a || b && !c") == Operator(
        "||", (Ident("a"), Operator("&&", (Ident("b"), Operator("!", (Ident("c"),)))))
    )


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'customer.stag'", "customer.stag"),
        ("'it\\'s'", "it's"),
        ("'''a 'quoted' b'''", "a 'quoted' b"),
        ("r'\\d+'", "\\d+"),
        ('"tab\\there"', "tab\there"),
    ],
)
def test_string_literals_are_read_whole(source: str, value: str) -> None:
    assert parse(source) == Literal("string", value)


def test_field_like_text_in_strings_and_comments_is_not_a_field() -> None:
    assert check_expression("'customer.stag' in customer.tags // customer.stag", VARIABLES) == []


def test_a_name_bound_by_a_macro_is_not_a_variable_and_has_the_element_shape() -> None:
    assert check_expression("customer.tags.exists(t, t.startsWith('a'))", VARIABLES) == []
    assert check_expression("customer.counts.all(c, c == 'web')", VARIABLES) == []
    assert check_expression("customer.counts.exists(c, c == 'wbe')", VARIABLES) == [
        "c is never 'wbe': a channel is one of web; did you mean 'web'?"
    ]
    assert check_expression("customer.tags.map(t, t.size)", VARIABLES) == [
        "t.size: t is a string, without fields"
    ]
    assert check_expression("[1, 2].filter(x, x > now_ms).size() > 0", VARIABLES) == []
    # the name is bound inside the macro only
    [problem] = check_expression("customer.tags.exists(t, true) && t == 'x'", VARIABLES)
    assert problem.startswith("CEL reads unknown variable(s) t;")


def test_each_problem_is_reported_once() -> None:
    assert check_expression("customer.stag == 'a' || customer.stag == 'b'", VARIABLES) == [
        "customer.stag: unknown field; did you mean customer.stage?"
    ]


def test_the_reader_knows_every_expression_cel_accepts_in_the_shipped_policies() -> None:
    import yaml

    text = (ROOT / "policies" / "default.yaml").read_text()
    expressions = [
        value
        for value in _strings(yaml.safe_load(text))
        if any(name in value for name in CEL_VARIABLES) and _compiles(value)
    ]
    assert len(expressions) > 20
    for expression in expressions:
        parse(expression)  # no CelSyntaxError
    assert DEFAULT_POLICY.actions


def test_syntax_it_does_not_know_is_an_error_not_a_guess() -> None:
    with pytest.raises(CelSyntaxError):
        parse("customer.?stage")
    with pytest.raises(CelSyntaxError):
        parse("customer.stage ==")


def test_the_customer_and_event_shapes_cover_every_field_the_engine_passes() -> None:
    from stream.core.decide.variables import ConditionScope

    scope = ConditionScope.build(CATALOG, ["promo"], {"n": 1})
    variables = scope.variables(["order_completed"], {"t": frozenset({"login"})})
    assert set(variables) == CEL_VARIABLES
    assert set(scope.customer.fields) == set(CUSTOMER_FIELDS)
    event = variables["event"]
    assert isinstance(event, Record) and set(event.fields) == set(EVENT_FIELDS)
    properties = event.fields["properties"]
    assert isinstance(properties, Record)
    fired = FiredTimer("t", "id", 0, 0, "login").to_event("C1")
    assert set(fired.properties) <= set(properties.fields)
    assert {"order_id", "value", "items"} <= set(properties.fields)
    assert event.fields["channel"] == Scalar(
        "string", frozenset({"web", "app", fired.channel}), "channel"
    )


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _compiles(text: str) -> bool:
    try:
        cel.compile(text)
    except ValueError:
        return False
    return True
