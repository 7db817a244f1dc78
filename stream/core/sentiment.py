"""The sentiment of a social post: the listening tool's, else computed from the text.

Pure and deterministic. In order:

1. **provided**: the tool's label (``positive``, ``neutral``, ``negative``) is kept as it
   is, with its score if it sent one; a score alone gives the label by VADER's own cut-offs
   (above 0.05 positive, below -0.05 negative, neutral between).
2. **computed**: an English text (``language`` ``en``/``en-*``, or none stated by the
   post or the event's ``context.locale``) is scored by VADER (the ``vaderSentiment``
   package: a lexicon and rules tuned for social media: emoji, slang, capitals, "!!!",
   negation; English only; the lexicon ships in the wheel, nothing is downloaded). The
   score is VADER's ``compound``, -1 to 1, rounded to 4 places.
3. **rating**: a review the text cannot judge takes its stars (1-2 negative, 3 neutral,
   4-5 positive).
4. **none**: ``unknown``: a text in another language (VADER would read German "Die" as
   the English verb), or no text at all.

VADER is imported on the first post that needs it (about 30 ms, once per process), so a
worker that sees no social traffic never loads it; a post costs 15 to 130 µs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

LABELS: tuple[str, ...] = ("positive", "neutral", "negative", "unknown")
KNOWN_LABELS: frozenset[str] = frozenset(LABELS[:3])
POSITIVE_ABOVE = 0.05  # VADER's documented thresholds on its compound score
NEGATIVE_BELOW = -0.05
COVERED_LANGUAGES: frozenset[str] = frozenset({"en"})


class SentimentSource(StrEnum):
    """Where a post's sentiment came from (``properties.sentiment_source``)."""

    PROVIDED = "provided"
    COMPUTED = "computed"
    RATING = "rating"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A label (one of ``LABELS``), a score from -1 to 1 when there is one, and its source."""

    label: str
    score: float | None
    source: SentimentSource


def label_of(score: float) -> str:
    """The label of a score from -1 to 1."""
    if score > POSITIVE_ABOVE:
        return "positive"
    if score < NEGATIVE_BELOW:
        return "negative"
    return "neutral"


def label_of_rating(rating: int) -> str:
    """The label of a review's stars: 1-2 negative, 3 neutral, 4-5 positive."""
    return "negative" if rating <= 2 else "neutral" if rating == 3 else "positive"


def language_of(properties: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """The primary language subtag of the post (``pt`` of ``pt-BR``), lower-case, or None."""
    for stated in (properties.get("language"), context.get("locale")):
        if isinstance(stated, str) and stated.strip():
            return stated.strip().replace("_", "-").split("-")[0].lower()
    return None


def covers(language: str | None) -> bool:
    """True if the library can score a text in this language (unstated counts as English)."""
    return language is None or language in COVERED_LANGUAGES


@functools.cache
def _analyzer() -> Callable[[str], dict[str, float]]:
    """VADER's scorer, loaded once, on first use."""
    from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
        SentimentIntensityAnalyzer,
    )

    scorer: Callable[[str], dict[str, float]] = SentimentIntensityAnalyzer().polarity_scores
    return scorer


def score_text(text: str) -> float:
    """VADER's compound score of an English text, -1 to 1, rounded to 4 places."""
    return round(float(_analyzer()(text)["compound"]), 4)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def sentiment_of(properties: Mapping[str, Any], context: Mapping[str, Any]) -> Sentiment:
    """The post's sentiment: the tool's, computed from its text, its rating, or unknown."""
    label, score = properties.get("sentiment"), _number(properties.get("sentiment_score"))
    if label in KNOWN_LABELS:
        return Sentiment(str(label), score, SentimentSource.PROVIDED)
    if score is not None:
        return Sentiment(label_of(score), score, SentimentSource.PROVIDED)
    text = properties.get("text")
    if isinstance(text, str) and text.strip() and covers(language_of(properties, context)):
        computed = score_text(text)
        return Sentiment(label_of(computed), computed, SentimentSource.COMPUTED)
    rating = properties.get("rating")
    if isinstance(rating, int) and not isinstance(rating, bool):
        return Sentiment(label_of_rating(rating), None, SentimentSource.RATING)
    return Sentiment("unknown", None, SentimentSource.NONE)
