"""RFC 3339 timestamps at the JSON edge, epoch milliseconds everywhere inside."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp with an offset; raises ValueError."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return int(moment.timestamp() * 1000)


def format_ms(epoch_ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
