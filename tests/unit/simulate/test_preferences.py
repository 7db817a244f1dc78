"""Unit tests of the simulator's ground-truth preferences."""

from __future__ import annotations

from collections import Counter

import pytest

from stream.simulate.preferences import (
    ACTION_CHANNELS,
    CONVERSION_PROBABILITY,
    Preferences,
    Segment,
    preferences_for,
)

KEYS = [f"C{n:06d}" for n in range(1, 10_001)]
EXPECTED_SHARES = {
    "app-first": 0.35,
    "email-reader": 0.35,
    "sms-responder": 0.10,
    "unresponsive": 0.20,
}


def key_in(prefs: Preferences, segment: str) -> str:
    """The first customer key of the given segment."""
    return next(key for key in KEYS if prefs.segment(key) == segment)


def test_same_seed_and_key_give_the_same_answers() -> None:
    first, second = preferences_for("default", 7), preferences_for("default", 7)
    for key in [*KEYS[:200], "loyalty:L000001", "anon:anon-00ff", "email:" + "a" * 64]:
        assert first.segment(key) == second.segment(key)
        for channel in ACTION_CHANNELS:
            assert first.click_probability(key, "cart_reminder", channel) == (
                second.click_probability(key, "cart_reminder", channel)
            )


def test_segment_is_pinned_by_sha256_not_python_hash() -> None:
    # a fixed answer: Python's salted hash() would change it from one process to the next
    assert preferences_for("default", 7).segment("C000123") == "email-reader"


def test_different_seeds_put_some_customers_elsewhere() -> None:
    one, other = preferences_for("default", 1), preferences_for("default", 2)
    moved = sum(one.segment(key) != other.segment(key) for key in KEYS[:1_000])
    assert moved > 300


def test_segment_shares_follow_the_default_profile() -> None:
    prefs = preferences_for("default", 7)
    counts = Counter(prefs.segment(key) for key in KEYS)
    assert set(counts) == set(EXPECTED_SHARES)
    for segment, share in EXPECTED_SHARES.items():
        assert counts[segment] / len(KEYS) == pytest.approx(share, abs=0.03)


def test_click_probability_is_the_segment_rate_times_the_action_multiplier() -> None:
    prefs = preferences_for("default", 7)
    app_first = key_in(prefs, "app-first")
    assert prefs.click_probability(app_first, "complete_the_look", "push") == pytest.approx(0.30)
    assert prefs.click_probability(app_first, "cart_reminder", "push") == pytest.approx(0.45)
    assert prefs.click_probability(app_first, "referral_request", "push") == pytest.approx(0.15)
    assert prefs.click_probability(app_first, "cross_sell", "email") == pytest.approx(0.03)
    reader = key_in(prefs, "email-reader")
    assert prefs.click_probability(reader, "review_request", "email") == pytest.approx(0.12)
    assert prefs.click_probability(reader, "win_back", "email") == pytest.approx(0.14)


def test_each_segment_prefers_its_channel() -> None:
    prefs = preferences_for("default", 7)
    for segment, channel in [
        ("app-first", "push"),
        ("email-reader", "email"),
        ("sms-responder", "sms"),
    ]:
        key = key_in(prefs, segment)
        best = max(
            ("email", "sms", "push", "web"),
            key=lambda c, key=key: prefs.click_probability(key, "cross_sell", c),
        )
        assert best == channel


def test_unresponsive_customers_hardly_answer_online() -> None:
    prefs = preferences_for("default", 7)
    key = key_in(prefs, "unresponsive")
    for channel in ("email", "sms", "push", "web"):
        assert prefs.click_probability(key, "cross_sell", channel) == pytest.approx(0.01)


def test_store_and_call_center_contacts_usually_land() -> None:
    prefs = preferences_for("default", 7)
    for segment in EXPECTED_SHARES:
        key = key_in(prefs, segment)
        for channel in ("store", "call_center"):
            assert prefs.click_probability(key, "service_recovery", channel) == pytest.approx(0.3)


def test_click_probability_is_capped() -> None:
    prefs = Preferences("custom", 1, (Segment("eager", 1.0, {"push": 0.8}),), {"cart": 1.5})
    assert prefs.click_probability("C000001", "cart", "push") == 0.95
    assert prefs.click_probability("C000001", "cart", "email") == 0.0


def test_push_only_customers_answer_on_push_only() -> None:
    prefs = preferences_for("push-only", 7)
    for key in KEYS[:100]:
        assert prefs.segment(key) == "push-only"
        for channel in ACTION_CHANNELS:
            expected = 0.6 if channel == "push" else 0.0
            assert prefs.click_probability(key, "cart_reminder", channel) == expected


def test_conversion_probability_is_the_documented_constant() -> None:
    for profile in ("default", "push-only"):
        prefs = preferences_for(profile, 3)
        assert prefs.conversion_probability("C000001", "cart_reminder") == CONVERSION_PROBABILITY
    assert CONVERSION_PROBABILITY == 0.35


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*default, push-only"):
        preferences_for("nope", 7)
