"""RFC 3339 timestamps at the JSON edge, epoch milliseconds everywhere inside."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp with an offset; raises ValueError.

    RFC 3339 allows a lowercase ``t`` and ``z``; a leap second (``23:59:60``) counts as
    the first instant of the next minute, as epoch time has no leap seconds.
    """
    if not isinstance(text, str):
        raise TypeError(f"timestamp is {type(text).__name__}, not a string")
    text = text.upper()  # the only letters RFC 3339 allows are T and Z
    leap = len(text) > 19 and text[16:19] == ":60"
    if leap:
        text = f"{text[:17]}59{text[19:]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return int(moment.timestamp() * 1000) + (1000 - moment.microsecond // 1000 if leap else 0)


def format_ms(epoch_ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
