"""`journey watch` summaries from a real metrics registry, parsed as `scrape` parses /metrics."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.shell.metrics import Metrics
from stream.shell.watch import (
    Samples,
    by_label,
    format_action,
    journeys_line,
    learning_line,
    social_line,
    total,
)


def samples_of(metrics: Metrics) -> Samples:
    """What ``scrape`` returns for a worker exporting ``metrics``."""
    text = generate_latest(metrics.registry).decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_total_sums_the_samples_matching_the_labels() -> None:
    metrics = Metrics()
    metrics.outcomes.labels("email", "clicked", "applied").inc(3)
    metrics.outcomes.labels("push", "clicked", "applied").inc(2)
    metrics.outcomes.labels("push", "opened", "duplicate").inc(1)
    samples = samples_of(metrics)
    assert total(samples, "journey_outcomes_total") == 6
    assert total(samples, "journey_outcomes_total", status="applied") == 5
    assert total(samples, "journey_outcomes_total", channel="push", outcome="clicked") == 2
    assert total(samples, "journey_outcomes_total", channel="sms") == 0
    assert total(samples, "journey_no_such_metric") == 0


def test_by_label_sums_per_label_value() -> None:
    metrics = Metrics()
    metrics.model_trials.labels("promo", "engagement", "email").set(40)
    metrics.model_trials.labels("welcome", "awareness", "email").set(10)
    metrics.model_trials.labels("promo", "engagement", "push").set(20)
    samples = samples_of(metrics)
    assert by_label(samples, "journey_model_trials", "channel") == {"email": 50, "push": 20}
    assert by_label(samples, "journey_model_trials", "action") == {"promo": 60, "welcome": 10}
    assert by_label(samples, "journey_model_trials", "no_such_label") == {}


def test_learning_line_before_anything_was_learnt() -> None:
    assert learning_line(samples_of(Metrics())) == "--- learnt response rates: nothing sent yet"


def test_learning_line_shows_rates_by_channel_most_sent_first() -> None:
    metrics = Metrics()
    metrics.model_trials.labels("promo", "engagement", "email").set(150)
    metrics.model_successes.labels("promo", "engagement", "email").set(3)
    metrics.model_trials.labels("welcome", "awareness", "email").set(50)
    metrics.model_successes.labels("welcome", "awareness", "email").set(1)
    metrics.model_trials.labels("promo", "engagement", "push").set(80)
    metrics.model_successes.labels("promo", "engagement", "push").set(20)
    metrics.model_trials.labels("promo", "engagement", "sms").set(0)
    line = learning_line(samples_of(metrics))
    assert line == "--- learnt response rates: email 2.0% of 200, push 25.0% of 80"


def test_learning_line_compares_treated_and_control_conversion() -> None:
    metrics = Metrics()
    metrics.model_trials.labels("promo", "engagement", "push").set(10)
    metrics.uplift_exposures.labels("promo", "treatment").inc(90)
    metrics.uplift_exposures.labels("welcome", "treatment").inc(110)
    metrics.uplift_conversions.labels("promo", "treatment").inc(20)
    metrics.uplift_exposures.labels("promo", "control").inc(10)
    metrics.uplift_conversions.labels("promo", "control").inc(1)
    line = learning_line(samples_of(metrics))
    assert line == (
        "--- learnt response rates: push 0.0% of 10; "
        "conversion treatment 10.0% of 200 vs control 10.0% of 10"
    )


def test_learning_line_leaves_out_a_group_without_exposures() -> None:
    metrics = Metrics()
    metrics.uplift_exposures.labels("promo", "treatment").inc(4)
    metrics.uplift_conversions.labels("promo", "treatment").inc(1)
    line = learning_line(samples_of(metrics))
    assert line.endswith("; conversion treatment 25.0% of 4")
    assert "control" not in line


def test_journeys_line_counts_runs_per_journey() -> None:
    metrics = Metrics()
    assert journeys_line(samples_of(metrics)) is None
    moves = metrics.journey_moves
    moves.labels("cart", "cart@1", "wait", "entered", "", "treatment").inc(10)
    moves.labels("cart", "cart@2", "wait", "entered", "", "control").inc(2)
    moves.labels("cart", "cart@1", "wait", "converted", "", "treatment").inc(3)
    moves.labels("cart", "cart@1", "done", "exited", "completed", "treatment").inc(4)
    moves.labels("cart", "cart@1", "wait", "edge", "next", "treatment").inc(7)
    metrics.journey_runs.labels("cart", "cart@1", "wait").set(5)
    assert journeys_line(samples_of(metrics)) == (
        "--- journeys: cart 5 active / 12 entered / 3 converted / 4 exited"
    )


def test_social_line_counts_posts_by_sentiment_and_the_community_tasks() -> None:
    metrics = Metrics()
    assert social_line(samples_of(metrics)) is None
    metrics.social_posts.labels("mention", "negative", "computed").inc(2)
    metrics.social_posts.labels("review", "positive", "provided").inc(3)
    metrics.social_posts.labels("reply", "unknown", "none").inc(1)
    metrics.actions.labels("social_reply_public", "social").inc(4)
    metrics.actions.labels("social_reply_private", "social").inc(2)
    metrics.actions.labels("cart_reminder", "email").inc(9)
    assert social_line(samples_of(metrics)) == (
        "--- social: 6 posts (negative 2, positive 3, unknown 1); "
        "community tasks: private 2, public 4"
    )


def test_a_community_task_line_says_how_to_reply_and_why() -> None:
    task = {
        "channel": "social",
        "customer_id": "C000123",
        "action": "social_reply_private",
        "trigger": {"channel": "social", "type": "mention"},
        "reason": "direct message or unhappy post; answer in private",
        "payload": {"reply": "private", "why": "negative mention in public"},
    }
    assert format_action(task).endswith(
        "<- social/mention: direct message or unhappy post; answer in private "
        "[reply in private: negative mention in public]"
    )
