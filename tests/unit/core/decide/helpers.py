"""Shared helpers for decision tests: policies from YAML text, events, a step runner."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from stream.core.decide import Policy, load_policy, load_policy_file
from stream.core.pipeline import StepResult, step
from stream.core.schemas import load_catalog
from stream.core.state import CustomerState, Limits, new_state

ROOT = Path(__file__).resolve().parents[4]
CATALOG = load_catalog()
DEFAULT_POLICY = load_policy_file(ROOT / "policies" / "default.yaml", CATALOG)
# The shipped rules with learning off: Thompson draws would make channel choice a coin
# flip between channels of equal prior; the rule tests check eligibility and contact policy.
SHIPPED_RULES = load_policy(
    (ROOT / "policies" / "default.yaml")
    .read_text()
    .replace("strategy: thompson", "strategy: fixed"),
    CATALOG,
    "default.yaml (fixed)",
)
LIMITS = Limits()
# 2026-11-23 11:00 in Paris (10:00 UTC): outside the default quiet hours.
NOON_MS = 1_795_428_000_000 + 3_600_000


def policy_from(text: str) -> Policy:
    """A policy from inline YAML (dedented)."""
    return load_policy(dedent(text), CATALOG, "test.yaml")


def run(
    events,
    policy: Policy = SHIPPED_RULES,
    state: CustomerState | None = None,
    now_ms: int = NOON_MS,
    gap_ms: int = 0,
) -> tuple[CustomerState, list[StepResult]]:
    """Apply events in order (``gap_ms`` apart) and collect every step's result."""
    state = state or new_state("C000001")
    results = []
    for index, event in enumerate(events):
        result = step(state, event, now_ms + index * gap_ms, LIMITS, policy)
        state = result.state
        results.append(result)
    return state, results
