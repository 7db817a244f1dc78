"""Policy conditions that fail at run time: counted per action, logged without flooding.

``policy check`` refuses what it can see (unknown fields, impossible values); what is
left (an optional property read without ``has()``, a map key the customer does not have
yet) suppresses the candidate as ``condition_error``. Each one counts on
``journey_condition_errors_total{action}``; a warning names the action, the policy version
and the error, at most once per action per ``interval_s`` (with how many were not logged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter

from stream.core.decide import Decision, Policy, Reason

log = logging.getLogger(__name__)


class ConditionErrors:
    """Counts and logs the candidates a decision lost to a condition error."""

    def __init__(
        self,
        counter: Counter,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = counter
        self.interval_s = interval_s
        self.clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def track(self, policy: Policy) -> None:
        """Start every action's series at zero, so an alert query has data from the start."""
        for action in policy.actions:
            self.counter.labels(action.id)

    def record(self, decision: Decision) -> None:
        """Count each candidate removed by a condition error; log at most one line a minute."""
        for candidate in decision.candidates:
            if candidate.reason is Reason.CONDITION_ERROR:
                self.counter.labels(candidate.action).inc()
                self._warn(candidate.action, decision.policy_version, candidate.detail)

    def _warn(self, action: str, version: str, detail: str) -> None:
        now = self.clock()
        last = self._logged_at.get(action)
        if last is not None and now - last < self.interval_s:
            self._unlogged[action] = self._unlogged.get(action, 0) + 1
            return
        self._logged_at[action] = now
        unlogged = self._unlogged.pop(action, 0)
        log.warning(
            "action %s suppressed by a condition error (policy %s; %d more since the last "
            "line): %s",
            action,
            version,
            unlogged,
            detail,
        )
