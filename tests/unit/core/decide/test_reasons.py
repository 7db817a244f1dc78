"""Reason codes in plain words."""

from __future__ import annotations

from stream.core.decide.reasons import REASON_TEXT, describe, with_reason_text
from stream.core.decide.records import Reason


def test_every_reason_code_has_plain_words_of_its_own() -> None:
    assert set(REASON_TEXT) == set(Reason)
    texts = list(REASON_TEXT.values())
    assert len(set(texts)) == len(texts)
    assert all(text and text != code.value for code, text in REASON_TEXT.items())
    assert describe("contact_cap") == "Contact limit reached"


def test_an_unknown_code_is_shown_as_it_is() -> None:
    assert describe("from_a_newer_version") == "from_a_newer_version"


def test_an_explain_record_gets_the_words_beside_each_code_and_is_not_changed() -> None:
    record = {
        "decision_id": "d1",
        "candidates": [
            {"action": "promo", "reason": "holdout"},
            {"action": "banner", "reason": "chosen"},
        ],
    }
    shown = with_reason_text(record)
    assert [(c["reason"], c["reason_text"]) for c in shown["candidates"]] == [
        ("holdout", "Control group: decided but not sent"),
        ("chosen", "Chosen: the best action for this customer now"),
    ]
    assert "reason_text" not in record["candidates"][0]
    assert with_reason_text({"decision_id": "d2"}) == {"decision_id": "d2"}
