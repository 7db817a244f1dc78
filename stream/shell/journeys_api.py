"""The journeys API: ``GET /journeys`` and ``GET /journeys/{journey_id}`` (docs/api.md).

Both sum the census over every worker and lay it on the journeys of the policy in force
and the versions runs are pinned to; the assembly is ``stream.core.journeys.report``.
Registered by ``stream.shell.api.register_api`` behind the same token check.
"""

from __future__ import annotations

import re
from typing import Any

from stream.core.decide.policy import Policy
from stream.core.journeys.report import journey_report, journey_summaries
from stream.shell.api import ApiContext, ApiError, ApiView, census_of_every_worker

JOURNEY_ID = re.compile(r"^[a-z][a-z0-9_]*$")  # the policy schema's identifier


async def journeys_view(context: ApiContext, web: Any, request: Any) -> Any:
    """Every journey of the policy in force and every one still counted, with its totals."""
    total = await census_of_every_worker(context, request)
    policy = context.policy.current
    summaries = journey_summaries(total, policy.journeys, policy.journey_versions)
    return web.json({"journeys": summaries})


async def journey_view(context: ApiContext, web: Any, request: Any, journey_id: str) -> Any:
    """One journey, per version: its nodes and edges with their live counts; 404 if unknown."""
    policy = context.policy.current
    if not JOURNEY_ID.match(journey_id):
        raise _unknown(journey_id, policy)
    total = await census_of_every_worker(context, request)
    report = journey_report(journey_id, total, policy.journeys, policy.journey_versions)
    if report is None:
        raise _unknown(journey_id, policy)
    return web.json(report)


def _unknown(journey_id: str, policy: Policy) -> ApiError:
    """A 404 naming the journeys there are."""
    known = ", ".join(journey.id for journey in policy.journeys) or "none"
    detail = f"no journey {journey_id[:64]!r} in the policy or the counts; the policy has: {known}"
    return ApiError(404, "not_found", detail)


JOURNEY_VIEWS: tuple[tuple[str, ApiView], ...] = (
    ("/journeys", journeys_view),
    ("/journeys/{journey_id}", journey_view),
)
