"""Small helpers the policy loaders share: durations and the nearest known name."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

DURATION_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"[0-9]+[smhd]")


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a duration like ``30m``, ``24h`` or ``7d``."""
    return int(text[:-1]) * DURATION_MS[text[-1]]


def lenient_duration_ms(text: Any) -> int:
    """A duration's milliseconds, or 1 for a bad one (the schema check has reported it).

    Lets the rest of the policy be checked, so all its problems are listed at once.
    """
    if isinstance(text, str) and _DURATION.fullmatch(text):
        return parse_duration_ms(text)
    return 1


def close_name(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the known name closest to ``name``, if one is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
