"""The collector's keys file, constant-time authentication, HMAC signatures and limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from pathlib import Path
from typing import Any

import pytest

from stream.config import CHANNELS_IN
from stream.shell.collector.keys import (
    KeyRing,
    KeysError,
    load_keys,
    parse_keys,
    signature_of,
    signature_problem,
)
from stream.shell.collector.limits import InFlight, RateLimiter, TokenBucket, retry_after

WEB_TOKEN = "web-token-0123456789"
SECRET = b"hook-secret-0123456789"


def ring(*entries: dict[str, Any]) -> KeyRing:
    return parse_keys({"keys": list(entries)}, "keys.yaml", CHANNELS_IN, 1_000_000)


def web_key(**overrides: Any) -> dict[str, Any]:
    return {"name": "web", "token": WEB_TOKEN, "channels": ["web", "app"], "rate": 10} | overrides


# --- the keys file ------------------------------------------------------------------------


def test_a_keys_file_is_read_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        f"  - {{name: web, token: {WEB_TOKEN}, channels: [web], rate: 5}}\n"
        "  - name: sender\n"
        f"    token_sha256: {hashlib.sha256(b'sender-token-0123456').hexdigest()}\n"
        "    channels: [outcomes]\n"
        "    rate: 100\n    burst: 500\n    per: events\n    max_body_bytes: 2048\n"
        f"    hmac_secret: {SECRET.decode()}\n"
    )
    web, sender = load_keys(path, CHANNELS_IN, 65536).keys
    assert (web.name, web.channels, web.rate, web.burst, web.per_event) == (
        "web",
        frozenset({"web"}),
        5.0,
        5.0,
        False,
    )
    assert web.max_body_bytes == 65536 and not web.query_token and web.hmac_secret is None
    assert (sender.burst, sender.per_event, sender.max_body_bytes) == (500.0, True, 2048)
    assert sender.hmac_secret == SECRET


def test_a_key_never_gets_a_larger_body_than_the_collectors_limit() -> None:
    [key] = parse_keys({"keys": [web_key(max_body_bytes=10**9)]}, "f", CHANNELS_IN, 4096).keys
    assert key.max_body_bytes == 4096


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (web_key(channels=["web", "fax"]), "unknown channel(s) ['fax']"),
        (web_key(channels=[]), "`channels` must list"),
        (web_key(token="short"), "at least 16"),
        (web_key(token_sha256="ab"), "give `token` or `token_sha256`"),
        (web_key(rate=0), "`rate` must be a positive number"),
        (web_key(rate=None), "`rate` must be a positive number"),
        (web_key(per="minutes"), "`per` must be requests or events"),
        (web_key(tokn="x"), "unknown field(s) tokn"),
        (web_key(name="has space"), "`name` must be"),
        (web_key(hmac_secret="short"), "`hmac_secret` must be at least 16"),
        (web_key(max_body_bytes=0), "`max_body_bytes` must be a positive integer"),
    ],
)
def test_a_bad_key_is_refused_naming_the_file_and_the_key(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(KeysError, match=r"keys\.yaml: key 1") as refused:
        ring(entry)
    assert message in str(refused.value)
    assert WEB_TOKEN not in str(refused.value)


def test_names_and_tokens_are_unique() -> None:
    with pytest.raises(KeysError, match="same name"):
        ring(web_key(), web_key(token="another-token-0123456"))
    with pytest.raises(KeysError, match="same token"):
        ring(web_key(), web_key(name="web2"))


def test_an_unreadable_or_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeysError, match="cannot read"):
        load_keys(tmp_path / "missing.yaml", CHANNELS_IN, 1000)
    (tmp_path / "empty.yaml").write_text("keys: []\n")
    with pytest.raises(KeysError, match="at least one key"):
        load_keys(tmp_path / "empty.yaml", CHANNELS_IN, 1000)


# --- authentication -----------------------------------------------------------------------


def test_a_token_finds_its_key_and_nothing_else_does() -> None:
    keys = ring(web_key(), web_key(name="crm", token="crm-token-0123456789", channels=["store"]))
    assert keys.authenticate(WEB_TOKEN).name == "web"  # type: ignore[union-attr]
    assert keys.authenticate("crm-token-0123456789").name == "crm"  # type: ignore[union-attr]
    for wrong in ("", WEB_TOKEN[:-1], WEB_TOKEN + "x", WEB_TOKEN.upper()):
        assert keys.authenticate(wrong) is None


def test_authentication_compares_digests_in_constant_time_with_every_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ring(web_key(), web_key(name="crm", token="crm-token-0123456789"))
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr("stream.shell.collector.keys.hmac.compare_digest", compare)
    keys.authenticate(WEB_TOKEN)  # the first key matches: the second is compared all the same
    assert len(compared) == 2 and all(len(a) == len(b) == 32 for a, b in compared)


# --- signatures -----------------------------------------------------------------------------

NOW_S = 1_800_000_000.0


def problem(signature: str | None, timestamp: str | None, body: bytes = b"{}") -> str | None:
    return signature_problem(SECRET, body, signature, timestamp, NOW_S, 300)


def test_a_signature_in_hex_or_base64_over_timestamp_and_body_proves_the_request() -> None:
    timestamp = str(int(NOW_S))
    hex_signature = signature_of(SECRET, timestamp, b"{}")
    assert hex_signature == hmac.new(SECRET, b"1800000000.{}", hashlib.sha256).hexdigest()
    digest = bytes.fromhex(hex_signature)
    for form in (
        hex_signature,
        f"sha256={hex_signature}",
        hex_signature.upper(),
        base64.b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode(),
    ):
        assert problem(form, timestamp) is None, form


def test_a_wrong_signature_or_body_or_secret_is_refused() -> None:
    timestamp = str(int(NOW_S))
    good = signature_of(SECRET, timestamp, b"{}")
    assert problem(good, timestamp, b"{ }") == "X-Journey-Signature does not match the body"
    assert problem(signature_of(b"other-secret-0123456", timestamp, b"{}"), timestamp)
    assert problem("not a signature", timestamp)
    assert problem(good, str(int(NOW_S) + 1))  # the timestamp is signed too
    assert "send X-Journey-Signature" in (problem(None, timestamp) or "")
    assert "send X-Journey-Signature" in (problem(good, None) or "")


@pytest.mark.parametrize(
    ("offset_s", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)]
)
def test_the_timestamp_must_be_within_the_tolerance_window(offset_s: int, accepted: bool) -> None:
    timestamp = str(int(NOW_S) + offset_s)
    result = problem(signature_of(SECRET, timestamp, b"{}"), timestamp)
    assert (result is None) is accepted, result


def test_a_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    for timestamp in ("2026-11-23T10:00:00Z", "-5", "1e9", "١٨٠٠٠٠٠٠٠٠"):
        assert problem(signature_of(SECRET, timestamp, b"{}"), timestamp) == (
            "X-Journey-Timestamp must be Unix seconds"
        )


# --- limits ---------------------------------------------------------------------------------


def test_a_token_bucket_lets_a_burst_through_then_the_rate() -> None:
    bucket = TokenBucket.full(rate=2, burst=4, now_s=0.0)
    assert [bucket.take(1, 0.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(1, 0.0) == pytest.approx(0.5)
    assert bucket.take(1, 0.5) == 0.0
    assert bucket.take(3, 0.5) == pytest.approx(1.5)
    assert bucket.take(5, 100.0) == math.inf  # above the burst: never
    assert bucket.take(4, 100.0) == 0.0  # refilled, never above the burst


def test_the_rate_limiter_counts_requests_or_events_per_key() -> None:
    limiter = RateLimiter()
    [per_request, per_event] = ring(
        web_key(rate=1, burst=2),
        web_key(name="app", token="app-token-0123456789", rate=10, burst=10, per="events"),
    ).keys
    assert limiter.take(per_request, 50, 0.0) == 0.0  # one request, whatever it holds
    assert limiter.take(per_request, 50, 0.0) == 0.0
    assert limiter.take(per_request, 1, 0.0) == pytest.approx(1.0)
    assert limiter.take(per_event, 8, 0.0) == 0.0
    assert limiter.take(per_event, 3, 0.0) == pytest.approx(0.1)
    assert retry_after(0.1) == 1 and retry_after(2.2) == 3


def test_a_reloaded_key_with_another_rate_starts_a_new_bucket() -> None:
    limiter = RateLimiter()
    [slow] = ring(web_key(rate=1, burst=1)).keys
    [fast] = ring(web_key(rate=100, burst=100)).keys
    assert limiter.take(slow, 1, 0.0) == 0.0
    assert limiter.take(slow, 1, 0.0) > 0
    assert limiter.take(fast, 1, 0.0) == 0.0


def test_in_flight_requests_and_bytes_are_bounded() -> None:
    inflight = InFlight(max_requests=2, max_bytes=100)
    assert inflight.try_enter(500)  # alone, a request always fits the byte bound
    assert not inflight.try_enter(1)  # ... but nothing joins it past the bound
    inflight.leave(500)
    assert inflight.try_enter(60) and not inflight.try_enter(41) and inflight.try_enter(40)
    assert not inflight.try_enter(0)  # two requests: the bound
    inflight.leave(60)
    inflight.leave(40)
    assert (inflight.requests, inflight.bytes) == (0, 0)
