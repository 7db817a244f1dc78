"""RFC 3339 timestamps at the JSON edge, epoch milliseconds everywhere inside."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# RFC 3339 section 5.6 date-time, nothing more: the T (or t) is required, seconds are
# required, the offset is Z (or z) or +hh:mm / -hh:mm. ASCII digits only (``\d`` would
# take any Unicode digit).
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
FORM = "YYYY-MM-DDThh:mm:ss[.fraction] and Z or +hh:mm"


def parse_timestamp_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 date-time; raises ValueError for anything else.

    RFC 3339 allows a lowercase ``t`` and ``z``; a leap second (``23:59:60``) counts as
    the first instant of the next minute, as epoch time has no leap seconds. Other ISO
    8601 forms (week or ordinal dates, the basic format, ``+0000``, no offset) are refused.
    """
    if not isinstance(text, str):
        raise TypeError(f"timestamp is {type(text).__name__}, not a string")
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:40]!r} is not an RFC 3339 date-time ({FORM}){_hint(text)}")
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10)
    try:
        days = date(year, month, day).toordinal() - _EPOCH_DAY
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"{text!r}: time of day out of range")
    offset_s = 0
    if sign is not None:
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            raise ValueError(f"{text!r}: UTC offset out of range")
        offset_s = int(offset_hours) * 3600 + int(offset_minutes) * 60
        offset_s = -offset_s if sign == "-" else offset_s
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s
    # A leap second's fraction is dropped: 23:59:60.5 is the next minute's first instant.
    millis = 0 if second == 60 or fraction is None else int(fraction[1:4].ljust(3, "0"))
    return seconds * 1000 + millis


def _hint(text: str) -> str:
    """Why a near miss is not RFC 3339, for the DLQ detail."""
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return ": a date without a time"
    if re.match(r"[0-9]{4}-?W", text):
        return ": an ISO week date"
    if re.match(r"[0-9]{4}-[0-9]{3}(?![0-9-])", text):
        return ": an ISO ordinal date"
    if re.match(r"[0-9]{8}", text):
        return ": the basic format without separators"
    if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2} ", text):
        return ": date and time must be separated by T"
    if re.search(r"[0-9][+-][0-9]{2}[0-9]{0,2}$", text):
        return ": the UTC offset must be written +hh:mm"
    if re.search(r"T[0-9:.]+$", text, re.IGNORECASE):
        return ": no UTC offset"
    return ""


def format_ms(epoch_ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
