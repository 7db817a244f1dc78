"""A post's sentiment: the listening tool's, else computed from English text, else unknown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stream.core.sentiment import (
    Sentiment,
    SentimentSource,
    covers,
    label_of,
    language_of,
    score_text,
    sentiment_of,
)

PROVIDED, COMPUTED = SentimentSource.PROVIDED, SentimentSource.COMPUTED


def test_the_tools_label_is_kept_even_when_the_text_says_otherwise() -> None:
    properties = {"text": "I love it!", "sentiment": "negative", "sentiment_score": -0.4}
    assert sentiment_of(properties, {}) == Sentiment("negative", -0.4, PROVIDED)


def test_a_score_alone_gives_the_label_by_vaders_cut_offs() -> None:
    assert sentiment_of({"sentiment_score": 0.3}, {}) == Sentiment("positive", 0.3, PROVIDED)
    assert sentiment_of({"sentiment_score": 0}, {}).label == "neutral"
    assert sentiment_of({"sentiment_score": -0.06}, {}).label == "negative"
    assert [label_of(s) for s in (0.05, -0.05, 0.051, -0.051)] == [
        "neutral",
        "neutral",
        "positive",
        "negative",
    ]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Love my new boots!!! 😍 Best shop ever", "positive"),
        ("Still waiting for my parcel after three weeks. Worst service ever.", "negative"),
        ("Do you have the Wool Overcoat in size M?", "neutral"),
        ("The delivery was not good", "negative"),  # negation
    ],
)
def test_english_text_is_scored_when_the_tool_sends_no_sentiment(text: str, label: str) -> None:
    result = sentiment_of({"text": text, "language": "en"}, {})
    assert (result.label, result.source) == (label, COMPUTED)
    assert result.score is not None and -1 <= result.score <= 1
    assert result == sentiment_of({"text": text}, {})  # no language stated: taken as English
    assert score_text(text) == result.score  # deterministic


def test_an_unknown_label_from_the_tool_is_computed_instead() -> None:
    result = sentiment_of({"text": "Awful, just awful.", "sentiment": "unknown"}, {})
    assert (result.label, result.source) == ("negative", COMPUTED)


@pytest.mark.parametrize(
    ("properties", "context"),
    [
        ({"text": "Die Schuhe sind super", "language": "de"}, {}),
        ({"text": "Les chaussures sont horribles", "language": "fr-FR"}, {}),
        ({"text": "Los zapatos son horribles"}, {"locale": "es-ES"}),
        ({"text": "Sapatos lindos", "language": "pt_BR"}, {"locale": "en-GB"}),  # the post's wins
    ],
)
def test_text_in_another_language_is_unknown_unless_the_tool_scores_it(
    properties: dict[str, object], context: dict[str, object]
) -> None:
    assert sentiment_of(properties, context) == Sentiment("unknown", None, SentimentSource.NONE)
    scored = {**properties, "sentiment": "positive"}
    assert sentiment_of(scored, context) == Sentiment("positive", None, PROVIDED)


def test_a_review_the_text_cannot_judge_takes_its_stars() -> None:
    rating = SentimentSource.RATING
    assert sentiment_of({"rating": 1}, {}) == Sentiment("negative", None, rating)
    assert sentiment_of({"rating": 3, "text": "Bof", "language": "fr"}, {}).label == "neutral"
    assert sentiment_of({"rating": 5, "text": "   "}, {}) == Sentiment("positive", None, rating)


def test_no_text_and_no_rating_is_unknown() -> None:
    assert sentiment_of({}, {}) == Sentiment("unknown", None, SentimentSource.NONE)


def test_language_of_reads_the_primary_subtag() -> None:
    assert language_of({"language": "EN-us"}, {}) == "en"
    assert language_of({}, {"locale": "nl_NL"}) == "nl"
    assert language_of({"language": " "}, {}) is None
    assert covers(None) and covers("en") and not covers("de")


def test_the_library_is_loaded_only_when_a_post_needs_it() -> None:
    script = (
        "import sys, orjson\n"
        "from stream.core.events import DecodeOptions, decode_event\n"
        "from stream.core.schemas import load_catalog\n"
        "options = DecodeOptions(load_catalog(), 4096, 'salt', 'FR')\n"
        "web = {'event_id': 'e1', 'type': 'page_view', 'channel': 'web',\n"
        "       'occurred_at': '2026-11-23T10:15:00.000Z', 'customer': {'customer_id': 'C1'},\n"
        "       'properties': {'url': '/'}}\n"
        "decode_event(orjson.dumps(web), 'web', options)\n"
        "print('vaderSentiment' in sys.modules)\n"
        "post = {**web, 'type': 'mention', 'channel': 'social',\n"
        "        'properties': {'platform': 'x', 'post_id': '1', 'text': 'great'}}\n"
        "decode_event(orjson.dumps(post), 'social', options)\n"
        "print('vaderSentiment' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]
