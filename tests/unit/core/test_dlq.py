"""The dead-letter record: whole when small, bounded with size and hash when large."""

from __future__ import annotations

import base64
import hashlib

import orjson

from stream.core.dlq import KEY_LIMIT, ORIGINAL_LIMIT, SourcePosition, dlq_key, dlq_record
from stream.core.events import DlqReason, Rejection
from stream.core.schemas import load_catalog

CATALOG = load_catalog()
TOO_LARGE = Rejection(DlqReason.TOO_LARGE, "1048000 bytes, limit 65536")
KAFKA_REQUEST_LIMIT = 1024 * 1024  # the producer's default max.request.size


def record_for(value: bytes, key: bytes | None = b"C1") -> dict:
    source = SourcePosition("cjo.events.web", 0, 41, 1_800_000_000_000, key)
    return dlq_record(TOO_LARGE, value, source, 1_800_000_000_000)


def test_a_small_original_is_kept_whole_with_its_size() -> None:
    record = record_for(b'{"event_id": "x"}')
    assert base64.b64decode(record["original_b64"]) == b'{"event_id": "x"}'
    assert record["original_size"] == 17
    assert "original_truncated" not in record and "original_sha256" not in record
    assert CATALOG.message_error("dlq", record) is None


def test_a_one_megabyte_original_keeps_a_bounded_prefix_its_size_and_hash() -> None:
    value = b"x" * 1_048_000
    record = record_for(value)
    assert base64.b64decode(record["original_b64"]) == value[:ORIGINAL_LIMIT]
    assert record["original_truncated"] is True
    assert record["original_size"] == len(value)
    assert record["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert len(orjson.dumps(record)) < KAFKA_REQUEST_LIMIT // 2
    assert CATALOG.message_error("dlq", record) is None


def test_an_original_of_exactly_the_limit_is_whole() -> None:
    record = record_for(b"y" * ORIGINAL_LIMIT)
    assert record["original_size"] == ORIGINAL_LIMIT and "original_truncated" not in record


def test_a_huge_key_is_cut_in_the_record_and_hashed_as_the_message_key() -> None:
    key = b"k" * 900_000
    record = record_for(b"{}", key)
    source = record["source"]
    assert base64.b64decode(source["key_b64"]) == key[:KEY_LIMIT]
    assert source["key_truncated"] is True and source["key_size"] == len(key)
    assert source["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert dlq_key(key) == hashlib.sha256(key).digest()
    assert CATALOG.message_error("dlq", record) is None


def test_an_ordinary_key_stays_the_message_key() -> None:
    assert dlq_key(b"C1") == b"C1"
    assert dlq_key(None) is None
    assert "key_truncated" not in record_for(b"{}", b"C1")["source"]
