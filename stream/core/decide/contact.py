"""Contact policy: quiet hours in the customer's zone and frequency caps over rolling windows.

Quiet hours hold a message (``send_after`` = the end of the quiet period, local time)
instead of dropping it. Caps count contacts at their send time; a new contact at ``t``
is allowed if fewer than ``max`` counted contacts lie within ``window`` of ``t`` on either
side, which keeps every rolling window of that length at or under ``max``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream.core.decide.policy import Cap, ContactPolicy, QuietHours

MINUTE_MS = 60_000


def customer_zone(timezone: str | None, default: str) -> ZoneInfo:
    """The customer's time zone, or the policy default if unknown or invalid.

    The name comes from the events' context (any string): besides unknown names, a
    directory of the zone database ("Europe") or an overlong name fails with an OSError.
    """
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return ZoneInfo(default)


def in_quiet_hours(minute_of_day: int, quiet: QuietHours) -> bool:
    """True if a local clock time (minutes after midnight) is inside the quiet window."""
    if quiet.start_minute < quiet.end_minute:
        return quiet.start_minute <= minute_of_day < quiet.end_minute
    return minute_of_day >= quiet.start_minute or minute_of_day < quiet.end_minute


def quiet_release_ms(now_ms: int, zone: ZoneInfo, quiet: QuietHours) -> int | None:
    """When a message decided at ``now_ms`` may be sent, or None if it may go now.

    DST-safe: the release is the instant whose local wall-clock time is the end of the
    quiet window (after the gap if that wall time does not exist that day).
    """
    local = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(zone)
    if not in_quiet_hours(local.hour * 60 + local.minute, quiet):
        return None
    end_hour, end_minute = divmod(quiet.end_minute, 60)
    day = local.date()
    if local.hour * 60 + local.minute >= quiet.end_minute:
        day += timedelta(days=1)
    naive = datetime(day.year, day.month, day.day, end_hour, end_minute)
    # fold=0: an ambiguous wall time (autumn) is its first occurrence; a wall time in a
    # spring-forward gap maps to the instant just after the gap (zoneinfo semantics).
    release = naive.replace(tzinfo=zone)
    return int(release.astimezone(UTC).timestamp() * 1000)


def contact_send_ms(contact: dict[str, Any]) -> int:
    """When a recorded contact is (or was) sent."""
    send_at = contact.get("send_at_ms")
    return int(send_at) if send_at is not None else int(contact["at_ms"])


def cap_breached(
    caps: Iterable[Cap],
    contacts: Sequence[dict[str, Any]],
    channel: str,
    category: str,
    send_at_ms: int,
) -> Cap | None:
    """The first cap a new contact would break, or None."""
    for cap in caps:
        if not cap.counts(channel, category):
            continue
        near = sum(
            1
            for c in contacts
            if cap.counts(c["channel"], c["category"])
            and abs(contact_send_ms(c) - send_at_ms) < cap.window_ms
        )
        if near >= cap.max:
            return cap
    return None


def is_exempt(policy: ContactPolicy, category: str) -> bool:
    """True if the category bypasses caps and quiet hours."""
    return category in policy.exempt_categories
