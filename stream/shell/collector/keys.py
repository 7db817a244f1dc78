"""The collector's API keys: the keys file, authentication and HMAC signatures.

The file (``JOURNEY_COLLECTOR_KEYS_FILE``, YAML, or JSON) lists one entry per source::

    keys:
      - name: web-tracker            # what logs and metrics call it (never the token)
        token: "pk-web-6c1f..."      # or token_sha256: <hex of SHA-256(token)>
        channels: [web, app]         # ingress channels it may write, and/or `outcomes`
        rate: 50                     # per second, refilled continuously (token bucket)
        burst: 100                   # bucket size (default: rate, at least 1)
        per: events                  # what `rate` counts: requests (default) or events
        max_body_bytes: 65536        # default and ceiling: JOURNEY_COLLECTOR_MAX_BODY_BYTES
        query_token: true            # may come as ?key=... (sendBeacon, URL-only webhooks)
        hmac_secret: "..."           # when set, every request must be signed (below)

An email provider's webhook key names the provider and the secret its calls are verified
with (docs/webhooks.md); it writes outcomes only and always comes in the URL::

      - name: sendgrid
        token: "wh-sendgrid-9a0e..."  # the webhook URL ends in ?key=<token>
        channels: [outcomes]
        rate: 50
        webhook: sendgrid            # sendgrid, mailgun or postmark
        webhook_secret: "MFkwEw..."  # SendGrid's verification key, Mailgun's signing key,
                                     # or Postmark's user:password

Tokens are compared as SHA-256 digests with ``hmac.compare_digest`` against every key, so
neither the time taken nor the comparison's length says which key, or how much of one,
matched. Only the digests are kept in memory.

A signed request carries ``X-Journey-Timestamp`` (Unix seconds) and
``X-Journey-Signature``: HMAC-SHA256 with the key's secret over ``<timestamp>.<body>``, as
hex or base64, optionally prefixed ``sha256=``. A timestamp further than the tolerance
from the collector's clock is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stream.core.collect import OUTCOMES
from stream.core.webhooks import PROVIDERS

MIN_TOKEN_LENGTH = 16
SIGNATURE_HEADER = "X-Journey-Signature"
TIMESTAMP_HEADER = "X-Journey-Timestamp"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FIELDS = frozenset(
    {
        "name",
        "token",
        "token_sha256",
        "channels",
        "rate",
        "burst",
        "per",
        "max_body_bytes",
        "query_token",
        "hmac_secret",
        "webhook",
        "webhook_secret",
    }
)


class KeysError(ValueError):
    """A keys file the collector cannot use; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One caller: what it may write, how fast, how much, and how it proves itself."""

    name: str
    token_digest: bytes  # SHA-256 of the token
    channels: frozenset[str]
    rate: float
    burst: float
    per_event: bool  # the bucket counts events, not requests
    max_body_bytes: int
    query_token: bool = False
    hmac_secret: bytes | None = None
    webhook: str | None = None  # the email provider whose calls this key takes
    webhook_secret: str | None = None  # what the provider's calls are verified with

    def may_write(self, channel: str) -> bool:
        """True if this key may write ``channel`` (or ``outcomes``)."""
        return channel in self.channels


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Every key of the file, looked up by token in constant time."""

    keys: tuple[ApiKey, ...]

    def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` belongs to, or None; compares against every key."""
        digest = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.token_digest):
                found = key
        return found


def load_keys(path: Path, channels: Collection[str], max_body_bytes: int) -> KeyRing:
    """The keys of the file at ``path``; ``KeysError`` naming the file and entry if bad."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KeysError(f"{path}: cannot read it ({_reason(exc)})") from None
    return parse_keys(document, str(path), channels, max_body_bytes)


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]


def parse_keys(
    document: Any, where: str, channels: Collection[str], max_body_bytes: int
) -> KeyRing:
    """The keys a parsed file describes (``where`` names it in errors)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeysError(f"{where}: expected `keys:` with a list of at least one key")
    keys = tuple(
        _parse_key(entry, f"{where}: key {n}", channels, max_body_bytes)
        for n, entry in enumerate(entries, start=1)
    )
    for attribute in ("name", "token_digest"):
        values = [getattr(key, attribute) for key in keys]
        if len(set(values)) != len(values):
            raise KeysError(f"{where}: two keys have the same {attribute.split('_')[0]}")
    return KeyRing(keys)


def _parse_key(entry: Any, where: str, channels: Collection[str], max_body_bytes: int) -> ApiKey:
    if not isinstance(entry, dict):
        raise KeysError(f"{where}: expected a mapping")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise KeysError(f"{where}: `name` must be 1-64 letters, digits, '_', '.', '-'")
    where = f"{where} ({name})"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise KeysError(f"{where}: unknown field(s) {', '.join(unknown)}")
    rate = _number(entry, "rate", where, required=True)
    burst = _number(entry, "burst", where, required=False) or max(rate, 1.0)
    per = entry.get("per", "requests")
    if per not in ("requests", "events"):
        raise KeysError(f"{where}: `per` must be requests or events, got {per!r}")
    body_limit = entry.get("max_body_bytes", max_body_bytes)
    if not _positive_int(body_limit):
        raise KeysError(f"{where}: `max_body_bytes` must be a positive integer")
    query_token = entry.get("query_token", False)
    if not isinstance(query_token, bool):
        raise KeysError(f"{where}: `query_token` must be true or false")
    webhook, webhook_secret = _webhook(entry, where)
    return ApiKey(
        name=name,
        token_digest=_token_digest(entry, where),
        channels=_channels(entry, where, channels),
        rate=rate,
        burst=burst,
        per_event=per == "events",
        max_body_bytes=min(body_limit, max_body_bytes),
        query_token=query_token or webhook is not None,
        hmac_secret=_secret(entry, where),
        webhook=webhook,
        webhook_secret=webhook_secret,
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(entry: Mapping[str, Any], field: str, where: str, *, required: bool) -> float:
    value = entry.get(field)
    if value is None and not required:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KeysError(f"{where}: `{field}` must be a positive number")
    if not 0 < value < math.inf:
        raise KeysError(f"{where}: `{field}` must be a positive number")
    return float(value)


def _token_digest(entry: Mapping[str, Any], where: str) -> bytes:
    token, digest = entry.get("token"), entry.get("token_sha256")
    if (token is None) == (digest is None):
        raise KeysError(f"{where}: give `token` or `token_sha256`, one of them")
    if digest is not None:
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            raise KeysError(f"{where}: `token_sha256` must be 64 hex digits")
        return bytes.fromhex(digest)
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or not token.isprintable():
        raise KeysError(f"{where}: `token` must be at least {MIN_TOKEN_LENGTH} printable chars")
    return hashlib.sha256(token.encode()).digest()


def _channels(entry: Mapping[str, Any], where: str, channels: Collection[str]) -> frozenset[str]:
    named = entry.get("channels")
    known = (*channels, OUTCOMES)
    if not isinstance(named, list) or not named:
        raise KeysError(f"{where}: `channels` must list what it may write: {', '.join(known)}")
    unknown = [c for c in named if c not in known]
    if unknown:
        raise KeysError(f"{where}: unknown channel(s) {unknown}; known: {', '.join(known)}")
    return frozenset(named)


def _webhook(entry: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """The provider and secret of a webhook key (both None for another key)."""
    provider, secret = entry.get("webhook"), entry.get("webhook_secret")
    if provider is None and secret is None:
        return None, None
    if provider not in PROVIDERS:
        raise KeysError(f"{where}: `webhook` must be one of {', '.join(PROVIDERS)}")
    if not isinstance(secret, str) or not secret:
        raise KeysError(f"{where}: a `webhook` key needs its provider's `webhook_secret`")
    problem = PROVIDERS[provider].secret_error(secret)
    if problem is not None:
        raise KeysError(f"{where}: `webhook_secret` for {provider}: {problem}")
    if entry.get("channels") != [OUTCOMES]:
        raise KeysError(f"{where}: a `webhook` key writes outcomes only: channels: [outcomes]")
    if "hmac_secret" in entry:
        raise KeysError(f"{where}: a `webhook` key is verified by its provider's signature")
    return provider, secret


def _secret(entry: Mapping[str, Any], where: str) -> bytes | None:
    secret = entry.get("hmac_secret")
    if secret is None:
        return None
    if not isinstance(secret, str) or len(secret) < MIN_TOKEN_LENGTH:
        raise KeysError(f"{where}: `hmac_secret` must be at least {MIN_TOKEN_LENGTH} chars")
    return secret.encode()


def signature_of(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a caller sends for ``body`` at ``timestamp`` (Unix seconds)."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_problem(
    secret: bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_s: float,
    tolerance_s: float,
) -> str | None:
    """Why a request's signature does not prove it (None: it does)."""
    if not signature or not timestamp:
        return f"this key signs its requests: send {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}"
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs(now_s - int(timestamp)) > tolerance_s:
        return f"{TIMESTAMP_HEADER} is more than {tolerance_s:g} s from the collector's clock"
    given = _signature_bytes(signature.strip().removeprefix("sha256="))
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).digest()
    if given is None or not hmac.compare_digest(given, expected):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None


def _signature_bytes(text: str) -> bytes | None:
    """The digest a signature header spells in hex or (standard or URL-safe) base64."""
    if _HEX_DIGEST.fullmatch(text):
        return bytes.fromhex(text)
    try:
        digest = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == hashlib.sha256().digest_size else None
