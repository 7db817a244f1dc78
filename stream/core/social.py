"""Social media posts: what ingest adds to them, and the rules that read them. Pure.

A *post* is a mention, a review, a direct message or a reply to the brand
(``POST_TYPES``). At ingest (``enrich``) every post gets its ``sentiment``,
``sentiment_source`` and, when there is one, ``sentiment_score`` (see
``stream.core.sentiment``), and a *grievance* without a case id of the tool's gets the
case id it opens. The reducer (``stream.core.state``) and the stage rules
(``stream.core.stages``) read the two verdicts:

- a **grievance**: a negative mention, reply or direct message, or a review rated 1 or 2.
  From a known customer it opens a service case, like ``complaint_opened``.
- **praise**: a positive mention or reply, or a review rated 4 or 5: public praise, the
  advocacy stage's evidence.

A case's id is ``social-<platform>-<id>``: a direct-message conversation is one case (its
``thread_id``), a public post or a review one of its own (its ``post_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.core.sentiment import sentiment_of

POST_TYPES: frozenset[str] = frozenset({"mention", "review", "direct_message", "reply"})
PUBLIC_POST_TYPES: frozenset[str] = frozenset({"mention", "review", "reply"})
LOW_RATING = 2  # a review rated this or lower is a grievance
HIGH_RATING = 4  # ... this or higher, praise


def _rating(properties: Mapping[str, Any]) -> int | None:
    rating = properties.get("rating")
    return rating if isinstance(rating, int) and not isinstance(rating, bool) else None


def is_grievance(event_type: str, properties: Mapping[str, Any]) -> bool:
    """A negative mention, reply or direct message, or a review rated 1 or 2."""
    if event_type == "review":
        rating = _rating(properties)
        return rating is not None and rating <= LOW_RATING
    return event_type in POST_TYPES and properties.get("sentiment") == "negative"


def is_praise(event_type: str, properties: Mapping[str, Any]) -> bool:
    """Praise in public: a positive mention or reply, or a review rated 4 or 5."""
    if event_type == "review":
        rating = _rating(properties)
        return rating is not None and rating >= HIGH_RATING
    return event_type in PUBLIC_POST_TYPES and properties.get("sentiment") == "positive"


def case_id_of(event_type: str, properties: Mapping[str, Any], event_id: str = "") -> str:
    """The case a grievance opens: the tool's ``case_id``, else ``social-<platform>-<id>``."""
    case_id = properties.get("case_id")
    if isinstance(case_id, str) and case_id:
        return case_id
    key = "thread_id" if event_type == "direct_message" else "post_id"
    conversation = properties.get(key) or properties.get("post_id") or event_id
    platform = str(properties.get("platform", "social")).strip().lower()
    return f"social-{platform}-{conversation}"


def enrich(
    event_type: str, properties: dict[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """A post's properties with its sentiment (and a grievance's case id) added; any other
    social event's unchanged. The input is not modified."""
    if event_type not in POST_TYPES:
        return properties
    sentiment = sentiment_of(properties, context)
    enriched = {
        **properties,
        "sentiment": sentiment.label,
        "sentiment_source": sentiment.source.value,
    }
    if sentiment.score is not None:
        enriched["sentiment_score"] = sentiment.score
    if "case_id" not in enriched and is_grievance(event_type, enriched):
        enriched["case_id"] = case_id_of(event_type, enriched)
    return enriched
