"""Fault tests run on the real broker with the integration tests' fixtures and helpers."""

from tests.integration.conftest import broker, deployment, worker  # noqa: F401
