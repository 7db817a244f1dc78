"""The policy's feedback-loop sections: `learning`, `fatigue`, `holdout`, `experiments`.

Valid sections become frozen policy objects; a broken one is refused with
``file:line: path: message``, like every other policy problem.
"""

from __future__ import annotations

import pytest

from stream.core.decide import PolicyError
from stream.core.decide.holdout import DEFAULT_CONVERSION_WINDOW_MS, Experiment, Variant
from stream.core.decide.learning import DEFAULT_EVIDENCE, FatiguePolicy, LearningPolicy
from tests.unit.core.decide.helpers import policy_from

DAY_MS = 86_400_000

BASE = """\
format: 1
name: adaptive
actions:
  - id: promo_a
    category: marketing
    channels: [email, push]
    evidence: 50
    triggers: [{event: order_completed}]
  - id: promo_b
    category: marketing
    channels: [email]
    triggers: [{event: order_completed}]
"""  # 12 lines: the sections below start on line 13

SECTIONS = """\
learning:
  strategy: ucb
  evidence: 10
  rewards: [opened, clicked]
  ucb_z: 1.5
  customer_weight: 4
  response_window: 12h
fatigue:
  after: 4
  effect: lower
  factor: 0.8
  channels: [push]
holdout:
  control_share: 0.1
  salt: team-2026
  categories: [marketing, service]
  conversion_window: 3d
  conversion_events: [store_purchase]
experiments:
  - name: offer
    description: money off or a gift
    variants:
      - {name: a, share: 0.25, action: promo_a}
      - {name: b, share: 0.75, action: promo_b}
"""


def test_valid_sections_build_the_policy_objects() -> None:
    policy = policy_from(BASE + SECTIONS)
    assert policy.learning == LearningPolicy(
        strategy="ucb",
        evidence=10.0,
        rewards=frozenset({"opened", "clicked"}),
        ucb_z=1.5,
        customer_weight=4.0,
        response_window_ms=DAY_MS // 2,
        fatigue=FatiguePolicy(
            after=4, effect="lower", pause_ms=7 * DAY_MS, factor=0.8, channels=frozenset({"push"})
        ),
    )
    holdout = policy.holdout
    assert (holdout.control_share, holdout.salt) == (0.1, "team-2026")
    assert holdout.categories == frozenset({"marketing", "service"})
    assert holdout.conversion_window_ms == 3 * DAY_MS
    assert holdout.conversion_events == frozenset({"store_purchase"})
    offer = Experiment(
        "offer",
        (Variant("a", 0.25, "promo_a"), Variant("b", 0.75, "promo_b")),
        None,
        "money off or a gift",
    )
    assert holdout.experiments == (offer,)
    assert holdout.by_action == {"promo_a": offer, "promo_b": offer}
    assert [a.evidence for a in policy.actions] == [50.0, None]


def test_without_the_sections_nothing_is_learnt_or_held_out() -> None:
    policy = policy_from(BASE)
    assert policy.learning == LearningPolicy()
    assert (policy.learning.strategy, policy.learning.evidence) == ("fixed", DEFAULT_EVIDENCE)
    assert policy.learning.fatigue is None
    assert policy.holdout.control_share == 0.0
    assert policy.holdout.conversion_window_ms == DEFAULT_CONVERSION_WINDOW_MS
    assert policy.holdout.conversion_events == frozenset({"order_completed", "store_purchase"})
    assert (policy.holdout.experiments, dict(policy.holdout.by_action)) == ((), {})


def test_pause_fatigue_defaults_to_a_week_on_the_message_channels() -> None:
    policy = policy_from(BASE + "fatigue: {after: 3}\n")
    assert policy.learning.fatigue == FatiguePolicy(
        after=3, effect="pause", pause_ms=7 * DAY_MS, channels=frozenset({"email", "sms", "push"})
    )


def test_a_channel_test_names_its_action_and_each_variants_channels() -> None:
    policy = policy_from(
        BASE
        + """\
experiments:
  - name: channels
    action: promo_a
    variants:
      - {name: push_first, share: 0.5, channels: [push, email]}
      - {name: email_first, share: 0.5, channels: [email, push]}
"""
    )
    [experiment] = policy.holdout.experiments
    assert experiment.action == "promo_a"
    assert [v.channels for v in experiment.variants] == [("push", "email"), ("email", "push")]
    assert experiment.actions == frozenset({"promo_a"})
    assert set(policy.holdout.by_action) == {"promo_a"}


AB = """\
experiments:
  - name: ab
    variants:
      - {name: a, share: %s, action: promo_a}
      - {name: b, share: %s, action: %s}
"""  # `- name: ab` is line 14, its variants line 15, variant a line 16, b line 17

CHANNEL_TEST = """\
  - name: channels
    action: promo_a
    variants:
      - {name: push_first, share: 0.5, channels: [push, email]}
      - {name: email_first, share: 0.5, channels: [email, push]}
"""  # after "experiments:" (line 13) its action is line 15; after AB its name is line 18

BROKEN = [
    (
        "shares not summing to 1",
        BASE + AB % (0.6, 0.6, "promo_b"),
        ["test.yaml:15: experiments/0/variants:", "variant shares sum to 1.2, not 1"],
    ),
    (
        "unknown action in an action test",
        BASE + AB % (0.5, 0.5, "promo_zz"),
        ["test.yaml:17: experiments/0/variants/1/action:", "unknown action 'promo_zz'"],
    ),
    (
        "unknown action under a channel test",
        BASE + "experiments:\n" + CHANNEL_TEST.replace("action: promo_a", "action: promo_zz"),
        ["test.yaml:15: experiments/0/action:", "unknown action 'promo_zz'"],
    ),
    (
        "action in two experiments",
        BASE + AB % (0.5, 0.5, "promo_b") + CHANNEL_TEST,
        ["test.yaml:18: experiments/1:", "action 'promo_a' is already in experiment 'ab'"],
    ),
    (
        "channel-test variant with an action",
        BASE
        + "experiments:\n"
        + CHANNEL_TEST.replace("channels: [email, push]}", "action: promo_b}"),
        [
            "test.yaml:18: experiments/0/variants/1:",
            "a channel test's variant sets `channels`, not `action`",
        ],
    ),
    (
        "action-test variant without an action",
        BASE + AB.replace("action: %s", "channels: [email]") % (0.5, 0.5),
        ["test.yaml:17: experiments/0/variants/1:", "an action test's variant sets `action`"],
    ),
    (
        "duplicate variant",
        BASE + AB.replace("name: b", "name: a") % (0.5, 0.5, "promo_b"),
        ["test.yaml:17: experiments/0/variants/1/name:", "duplicate variant 'a'"],
    ),
    (
        "two variants with one action",
        BASE + AB % (0.5, 0.5, "promo_a"),
        ["test.yaml:15: experiments/0/variants:", "two variants name the same action"],
    ),
    (
        "duplicate experiment",
        BASE + AB % (0.5, 0.5, "promo_b") + CHANNEL_TEST.replace("name: channels", "name: ab"),
        ["test.yaml:18: experiments/1/name:", "duplicate experiment 'ab'"],
    ),
    (
        "unknown conversion event",
        BASE + "holdout:\n  conversion_events: [order_completed, moon_landing]\n",
        ["test.yaml:14: holdout/conversion_events/1:", "unknown event type 'moon_landing'"],
    ),
    (
        "bad strategy",
        BASE + "learning:\n  strategy: greedy\n",
        ["test.yaml:14: learning/strategy:", "greedy"],
    ),
    (
        "control share above one half",
        BASE + "holdout:\n  control_share: 0.6\n",
        ["test.yaml:14: holdout/control_share:", "0.6 is greater than the maximum of 0.5"],
    ),
    (
        "fatigue without after",
        BASE + "fatigue:\n  effect: pause\n",
        ["test.yaml:13: fatigue:", "after"],
    ),
    (
        "bad response window",
        BASE + "learning:\n  response_window: two days\n",
        ["test.yaml:14: learning/response_window:", "not a duration"],
    ),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [(t, f) for _, t, f in BROKEN], ids=[name for name, _, _ in BROKEN]
)
def test_broken_sections_are_refused_with_file_line_and_path(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    message = str(refused.value)
    for fragment in fragments:
        assert fragment in message, message


def test_every_experiment_problem_is_reported_at_once() -> None:
    text = BASE + AB % (0.5, 0.9, "promo_zz") + "holdout:\n  conversion_events: [moon_landing]\n"
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    paths = sorted(problem.path for problem in refused.value.problems)
    assert paths == [
        "experiments/0/variants",
        "experiments/0/variants/1/action",
        "holdout/conversion_events/0",
    ]
    assert all(problem.line for problem in refused.value.problems)


def test_a_channel_test_variant_may_only_use_its_actions_channels() -> None:
    """A variant orders the action's own channels; any other channel is refused.

    holdout.py calls them "variants of one action's channel list": an unlisted channel
    would send the action where the policy never allowed it (here: sms for an action
    listed on email and push).
    """
    text = (
        BASE + "experiments:\n" + CHANNEL_TEST.replace("channels: [push, email]", "channels: [sms]")
    )
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    [problem] = refused.value.problems
    assert problem.path.startswith("experiments/0/variants/0")
    assert "sms" in problem.message
