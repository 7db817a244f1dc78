"""Factories for core tests: events built directly, without the decoder."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from stream.core.events import Event

T0 = 1_790_000_000_000  # 2026-09-21, a fixed point in time for every test

_ids = itertools.count()


def build_event(
    type_: str,
    channel: str = "web",
    properties: dict[str, Any] | None = None,
    *,
    customer_key: str = "C000001",
    at_ms: int = T0,
    event_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> Event:
    """A validated event as the decoder would produce it."""
    return Event(
        event_id=event_id or f"e-{next(_ids)}",
        type=type_,
        channel=channel,
        occurred_at_ms=at_ms,
        customer_key=customer_key,
        identifiers={"customer_id": customer_key},
        properties=properties or {},
        context=context if context is not None else {"consent": {"email": True, "push": True}},
    )


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """The ``build_event`` factory."""
    return build_event
