"""Poison input: every kind gets its own DLQ reason, and valid look-alikes are not refused.

The kinds of issue 10: invalid UTF-8, non-JSON, JSON of the wrong shape, missing
identifiers, payloads over the configured maximum, deep nesting, timestamps in the future
or too old, unknown channel or type, NaN/Infinity and duplicate keys.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.events import (
    MAX_AGE_MS,
    MAX_DEPTH,
    MAX_FUTURE_MS,
    DecodeOptions,
    DlqReason,
    Event,
    Rejection,
    _deeper_than,
    _repeated_key,
    decode_event,
)
from stream.core.schemas import load_catalog

CATALOG = load_catalog()
OPTIONS = DecodeOptions(CATALOG, max_event_bytes=65_536, hash_salt="pepper", default_region="FR")
OCCURRED_AT = "2026-11-23T10:15:00.000Z"
OCCURRED_MS = 1_795_428_900_000
NOW_MS = OCCURRED_MS + 60_000  # the processing clock, a minute after the event
DAY_MS = 86_400_000


def message(**overrides: Any) -> dict[str, Any]:
    """A valid web page_view, with fields replaced."""
    return {
        "event_id": "e1",
        "type": "page_view",
        "channel": "web",
        "occurred_at": OCCURRED_AT,
        "customer": {"customer_id": "C1"},
        "properties": {"url": "https://shop.example.com/"},
        "context": {"timezone": "Europe/Paris"},
        **overrides,
    }


VALID = orjson.dumps(message())


def decode(raw: bytes | None, now_ms: int | None = NOW_MS) -> Event | Rejection:
    return decode_event(raw, "web", OPTIONS, now_ms)


def rejected(raw: bytes | None, now_ms: int | None = NOW_MS) -> Rejection:
    result = decode(raw, now_ms)
    assert isinstance(result, Rejection), f"accepted: {raw!r:.200}"
    assert result.detail.strip()
    return result


def nested(depth: int, inner: bytes = b"1") -> bytes:
    """``depth`` nested arrays around ``inner``."""
    return b"[" * depth + inner + b"]" * depth


def in_context(value: bytes) -> bytes:
    """The valid event with ``value`` (JSON text) as ``context.x``."""
    assert VALID.endswith(b'"Europe/Paris"}}')
    return VALID[:-2] + b',"x":' + value + b"}}"


def with_context_depth(depth: int) -> bytes:
    """The valid event with context.x nested so that the whole event is ``depth`` deep."""
    return in_context(nested(depth - 2))  # the event and its context: 2


def at(ms: int, hours: int = 0) -> bytes:
    """The valid event at epoch ``ms``, written with a UTC offset of ``hours``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone(timedelta(hours=hours)))
    return orjson.dumps(message(occurred_at=moment.isoformat(timespec="milliseconds")))


# One message per poison kind, with the reason it must get.
POISON: dict[str, tuple[bytes | None, DlqReason]] = {
    "over the size limit": (
        orjson.dumps(message(properties={"url": "/", "title": "x" * 70_000})),
        DlqReason.TOO_LARGE,
    ),
    "invalid utf-8": (VALID.replace(b"C1", b"C\xff\xfe"), DlqReason.INVALID_UTF8),
    "not json": (b"event_id=e1&type=page_view", DlqReason.INVALID_JSON),
    "truncated json": (VALID[:-10], DlqReason.INVALID_JSON),
    "NaN": (in_context(b"NaN"), DlqReason.INVALID_NUMBER),
    "Infinity": (in_context(b"[1, Infinity]"), DlqReason.INVALID_NUMBER),
    "-Infinity": (in_context(b"-Infinity"), DlqReason.INVALID_NUMBER),
    "number beyond a double": (in_context(b"1e400"), DlqReason.INVALID_NUMBER),
    "nested 33 levels": (with_context_depth(MAX_DEPTH + 1), DlqReason.TOO_DEEP),
    "nested beyond orjson's limit": (nested(5000), DlqReason.TOO_DEEP),
    "duplicate top-level key": (VALID[:-1] + b',"event_id":"e2"}', DlqReason.DUPLICATE_KEY),
    "duplicate nested key": (
        VALID.replace(b'"C1"}', b'"C1","customer_id":"C2"}'),
        DlqReason.DUPLICATE_KEY,
    ),
    "array, not an object": (b"[1, 2, 3]", DlqReason.NOT_AN_OBJECT),
    "tombstone": (None, DlqReason.NOT_AN_OBJECT),
    "no customer": (
        orjson.dumps({k: v for k, v in message().items() if k != "customer"}),
        DlqReason.MISSING_FIELD,
    ),
    "empty customer": (orjson.dumps(message(customer={})), DlqReason.MISSING_IDENTIFIER),
    "unknown channel": (orjson.dumps(message(channel="fax")), DlqReason.UNKNOWN_CHANNEL),
    "unknown type": (orjson.dumps(message(type="teleported")), DlqReason.UNKNOWN_EVENT_TYPE),
    "unparsable timestamp": (
        orjson.dumps(message(occurred_at="2026-11-23T10:15:00")),
        DlqReason.INVALID_TIMESTAMP,
    ),
    "timestamp in the future": (at(NOW_MS + MAX_FUTURE_MS + 1000), DlqReason.TIMESTAMP_IN_FUTURE),
    "ancient timestamp": (at(0), DlqReason.TIMESTAMP_TOO_OLD),
}


@pytest.mark.parametrize(("raw", "reason"), POISON.values(), ids=POISON.keys())
def test_each_poison_kind_gets_its_reason(raw: bytes | None, reason: DlqReason) -> None:
    assert rejected(raw).reason is reason


def test_the_new_kinds_each_have_a_reason_of_their_own() -> None:
    reasons = [reason for _, reason in POISON.values()]
    for reason in (
        DlqReason.INVALID_NUMBER,
        DlqReason.TOO_DEEP,
        DlqReason.DUPLICATE_KEY,
        DlqReason.TIMESTAMP_IN_FUTURE,
        DlqReason.TIMESTAMP_TOO_OLD,
    ):
        assert reason in reasons
    assert set(DlqReason) - set(reasons) == {
        DlqReason.CHANNEL_MISMATCH,  # tests/unit/core/test_events.py
        DlqReason.INVALID_IDENTIFIER,
        DlqReason.SCHEMA_VIOLATION,
        DlqReason.PROCESSING_ERROR,  # only the worker says that
    }


def test_the_valid_event_decodes() -> None:
    assert isinstance(decode(VALID), Event)


# --- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal", [b"NaN", b"-NaN", b"nan", b"Infinity", b"+Infinity", b"-Infinity", b"inf", b"-1e999"]
)
def test_non_finite_numbers_are_invalid_numbers(literal: bytes) -> None:
    result = rejected(in_context(b'{"y":[0,' + literal + b"]}"))
    assert result.reason is DlqReason.INVALID_NUMBER
    assert literal.lstrip(b"+-").decode()[:3] in result.detail


def test_nan_after_an_earlier_syntax_error_is_invalid_json() -> None:
    assert rejected(b'{"a" 1, "b": NaN}').reason is DlqReason.INVALID_JSON


@pytest.mark.parametrize(
    "text", ['"NaN"', '"Infinity"', "1e308", "-1.5e-300", "12345678901234567890"]
)
def test_numbers_and_look_alikes_that_are_valid_json_are_accepted(text: str) -> None:
    assert isinstance(decode(in_context(text.encode())), Event)


# --- nesting -------------------------------------------------------------------------


def test_nesting_at_the_limit_is_accepted_and_one_more_level_is_not() -> None:
    assert isinstance(decode(with_context_depth(MAX_DEPTH)), Event)
    assert rejected(with_context_depth(MAX_DEPTH + 1)).reason is DlqReason.TOO_DEEP
    # a bare array at the limit is judged on its shape, one level deeper on its depth
    assert rejected(nested(MAX_DEPTH)).reason is DlqReason.NOT_AN_OBJECT
    assert rejected(nested(MAX_DEPTH + 1)).reason is DlqReason.TOO_DEEP


def test_objects_count_as_levels_like_arrays() -> None:
    deep = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    assert rejected(deep).reason is DlqReason.TOO_DEEP
    shallow = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert rejected(shallow).reason is DlqReason.MISSING_FIELD


def test_many_brackets_side_by_side_are_not_depth() -> None:
    wide = in_context(b"[" + b",".join([b'{"k":[1]}'] * 500) + b"]")
    assert isinstance(decode(wide), Event)


def test_brackets_inside_strings_are_not_depth() -> None:
    text = "[{" * 100 + '\\"' + "}]" * 3 + "\\\\"
    raw = orjson.dumps(message(properties={"url": "/", "title": text}))
    assert raw.count(b"[") > MAX_DEPTH
    assert isinstance(decode(raw), Event)


def test_deep_and_cut_short_is_too_deep_but_shallow_and_cut_short_is_invalid_json() -> None:
    assert rejected(b"[" * (MAX_DEPTH + 1)).reason is DlqReason.TOO_DEEP
    assert rejected(b"[" * MAX_DEPTH).reason is DlqReason.INVALID_JSON
    # brackets in a string cut short do not count either
    assert rejected(b'[[1, "' + b"[" * 100).reason is DlqReason.INVALID_JSON


def test_a_syntax_error_before_the_deep_part_is_invalid_json() -> None:
    assert rejected(b'{"a" 1, "b": ' + nested(100) + b"}").reason is DlqReason.INVALID_JSON


def test_the_depth_limit_comes_from_the_options() -> None:
    options = DecodeOptions(CATALOG, 65_536, "pepper", "FR", max_depth=3)
    raw = with_context_depth(4)
    result = decode_event(raw, "web", options, NOW_MS)
    assert isinstance(result, Rejection) and result.reason is DlqReason.TOO_DEEP
    assert "3 levels" in result.detail
    assert isinstance(decode_event(with_context_depth(3), "web", options, NOW_MS), Event)


# --- duplicate keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"a":1,"a":1}', "a"),
        (b'{"a" : 1 , "b":2, "a" :2}', "a"),  # spaces around the colon
        (b'{\n  "a": {"b": 1,\n   "b": [1]}}', "b"),
        (b'[{"ok": 1}, {"x": ":", "x": "y"}]', "x"),
        (b'{"a": 1, "\\u0061": 2}', "a"),  # the same key spelt two ways
        (b'{"k:": 1, "k\\u003a": 2}', "k:"),  # ... one with an escaped colon
        (b'{"k\\u003A": 1, "k\\u003a": 2}', "k:"),
        (b'{"u": "\\u003a", "v": 1, "v": 2}', "v"),  # an escaped colon elsewhere
    ],
)
def test_repeated_keys_are_found_and_named(raw: bytes, key: str) -> None:
    result = rejected(raw)
    assert result.reason is DlqReason.DUPLICATE_KEY
    assert repr(key) in result.detail


@pytest.mark.parametrize(
    "properties",
    [
        {"url": "/", "title": 'he said ":" then "a":1, "a":2'},  # colons and quotes in a value
        {"url": "/", "title": "{[:]}", "url_copy": "{:}"},
        {"url": "https://x:8443/a:b?c=d:e", "title": "10:15:00"},
        {"url": "/", "title": "\\u003a is not an escape here"},
    ],
)
def test_colons_braces_and_quotes_in_strings_are_not_keys(properties: dict[str, str]) -> None:
    assert isinstance(decode(orjson.dumps(message(properties=properties))), Event)


def test_the_same_key_in_different_objects_is_not_a_duplicate() -> None:
    raw = orjson.dumps(
        message(
            properties={"url": "/", "customer_id": "C1", "timezone": "UTC"},
            context={"timezone": "Europe/Paris", "url": {"url": {"url": "/"}}, "a": [{"a": 1}]},
        )
    )
    assert isinstance(decode(raw), Event)


def test_an_escaped_colon_in_a_valid_event_is_not_a_duplicate() -> None:
    raw = VALID.replace(b'"https://', b'"https\\u003a//')
    result = decode(raw)
    assert isinstance(result, Event) and result.properties["url"].startswith("https://")


def test_pretty_printed_json_is_accepted() -> None:
    raw = json.dumps(message(), indent=4, separators=(" , ", " : ")).encode()
    assert isinstance(decode(raw), Event)


# Random JSON built as text, with keys from a small set (repeats are likely) holding
# colons, quotes and escapes, and random whitespace around the separators.
_KEY_TEXTS = st.sampled_from(["a", "b", "a:", ":", '\\"', "\\u0061", "a\\u003a", "\\u003A", "{"])
_SPACE = st.sampled_from(["", " ", "\n  "])
_SCALARS = st.one_of(
    st.sampled_from(["1", "-2.5e3", "true", "null", '"x:y"', '"\\":\\""', '"{[:]}"', '""']),
    st.text(alphabet=':{}[]"\\ab', max_size=6).map(lambda s: json.dumps(s)),
)


def _json_text(depth: int = 0) -> st.SearchStrategy[str]:
    if depth >= 3:
        return _SCALARS
    inner = st.deferred(lambda: _json_text(depth + 1))
    member = st.tuples(_KEY_TEXTS, _SPACE, _SPACE, inner).map(
        lambda m: f'"{m[0]}"{m[1]}:{m[2]}{m[3]}'
    )
    objects = st.lists(member, max_size=5).map(lambda ms: "{" + ",".join(ms) + "}")
    arrays = st.lists(inner, max_size=4).map(lambda vs: "[" + ", ".join(vs) + "]")
    return st.one_of(_SCALARS, objects, arrays)


def _oracle_repeats(raw: bytes) -> bool:
    """Whether any object repeats a key: the standard library sees every member."""
    repeats = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeats
        repeats = repeats or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(raw, object_pairs_hook=hook)
    return repeats


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(_json_text())
def test_the_colon_count_finds_exactly_the_repeated_keys(text: str) -> None:
    raw = text.encode()
    parsed = orjson.loads(raw)
    repeats = _oracle_repeats(raw)
    assert (_repeated_key(raw, parsed) is not None) == repeats
    if b"\\u003" not in raw:  # the fast check alone decides, both ways
        same_colons = raw.count(b":") == orjson.dumps(parsed).count(b":")
        assert same_colons == (not repeats)


def _all_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Every member of an object, repeated keys too (renamed): the depth of all the text."""
    return {str(i): value for i, (_, value) in enumerate(pairs)}


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(_json_text(), st.integers(0, 6))
def test_the_bracket_scan_measures_the_parsed_depth(text: str, extra: int) -> None:
    raw = nested(extra, text.encode())
    depth = _depth(json.loads(raw, object_pairs_hook=_all_members))
    for limit in (max(0, depth - 1), depth, depth + 1):
        assert _deeper_than(raw, limit) == (depth > limit)


# --- timestamps ----------------------------------------------------------------------


def test_timestamps_at_the_limits_are_accepted_and_beyond_them_refused() -> None:
    assert isinstance(decode(at(NOW_MS + MAX_FUTURE_MS)), Event)
    future = rejected(at(NOW_MS + MAX_FUTURE_MS + 1))
    assert future.reason is DlqReason.TIMESTAMP_IN_FUTURE and "ahead" in future.detail
    assert isinstance(decode(at(NOW_MS - MAX_AGE_MS)), Event)
    old = rejected(at(NOW_MS - MAX_AGE_MS - 1))
    assert old.reason is DlqReason.TIMESTAMP_TOO_OLD and "behind" in old.detail


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("9999-12-31T23:59:59Z", DlqReason.TIMESTAMP_IN_FUTURE),
        ("2126-11-23T10:15:00+14:00", DlqReason.TIMESTAMP_IN_FUTURE),
        ("0001-01-01T00:00:00Z", DlqReason.TIMESTAMP_TOO_OLD),
        ("1970-01-01T00:00:00.000Z", DlqReason.TIMESTAMP_TOO_OLD),
        ("2026-10-01T00:00:00-05:00", DlqReason.TIMESTAMP_TOO_OLD),
        ("2026-11-23T10:15:00", DlqReason.INVALID_TIMESTAMP),
        ("23/11/2026 10:15", DlqReason.INVALID_TIMESTAMP),
        ("2026-02-30T10:15:00Z", DlqReason.INVALID_TIMESTAMP),
    ],
)
def test_timestamps_that_cannot_be_right(occurred_at: str, reason: DlqReason) -> None:
    assert rejected(orjson.dumps(message(occurred_at=occurred_at))).reason is reason


@pytest.mark.parametrize("hours", [-12, 0, 14])
def test_a_timestamp_is_judged_in_utc_whatever_its_offset(hours: int) -> None:
    assert isinstance(decode(at(NOW_MS + MAX_FUTURE_MS, hours)), Event)
    assert rejected(at(NOW_MS + MAX_FUTURE_MS + 1, hours)).reason is DlqReason.TIMESTAMP_IN_FUTURE
    assert isinstance(decode(at(NOW_MS - MAX_AGE_MS, hours)), Event)
    assert rejected(at(NOW_MS - MAX_AGE_MS - 1, hours)).reason is DlqReason.TIMESTAMP_TOO_OLD


def test_without_a_clock_the_time_is_not_judged() -> None:
    assert isinstance(decode(at(0), now_ms=None), Event)
    assert isinstance(decode(at(NOW_MS + 365 * DAY_MS), now_ms=None), Event)


def test_the_time_limits_come_from_the_options() -> None:
    options = DecodeOptions(CATALOG, 65_536, "pepper", "FR", max_future_ms=1000, max_age_ms=DAY_MS)
    result = decode_event(at(NOW_MS + 2000), "web", options, NOW_MS)
    assert isinstance(result, Rejection) and result.reason is DlqReason.TIMESTAMP_IN_FUTURE
    result = decode_event(at(NOW_MS - 2 * DAY_MS), "web", options, NOW_MS)
    assert isinstance(result, Rejection) and result.reason is DlqReason.TIMESTAMP_TOO_OLD


# --- shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"channel": ["web"]}, DlqReason.UNKNOWN_CHANNEL),
        ({"channel": {"web": 1}}, DlqReason.UNKNOWN_CHANNEL),
        ({"channel": None}, DlqReason.UNKNOWN_CHANNEL),
        ({"type": ["page_view"]}, DlqReason.UNKNOWN_EVENT_TYPE),
        ({"type": {}}, DlqReason.UNKNOWN_EVENT_TYPE),
        ({"type": 7}, DlqReason.UNKNOWN_EVENT_TYPE),
        ({"customer": ["C1"]}, DlqReason.MISSING_IDENTIFIER),
        ({"customer": {"nickname": "C1"}}, DlqReason.MISSING_IDENTIFIER),
        ({"properties": []}, DlqReason.SCHEMA_VIOLATION),
    ],
)
def test_fields_of_the_wrong_shape_are_rejections_not_crashes(
    overrides: dict[str, Any], reason: DlqReason
) -> None:
    assert rejected(orjson.dumps(message(**overrides))).reason is reason


def test_a_long_unknown_channel_is_cut_short_in_the_detail() -> None:
    result = rejected(orjson.dumps(message(channel=["x" * 10_000])))
    assert result.reason is DlqReason.UNKNOWN_CHANNEL and len(result.detail) < 200
