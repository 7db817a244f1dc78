"""Unit tests never read the settings file a local `make demo` leaves in the working tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream import config


@pytest.fixture(autouse=True)
def no_demo_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """JOURNEY_ENV_FILE unset, and its default a file that does not exist."""
    monkeypatch.delenv("JOURNEY_ENV_FILE", raising=False)
    monkeypatch.setattr(config, "DEFAULT_ENV_FILE", Path("/nonexistent/journey.env"))
