"""The feedback loop's policy sections: ``learning``, ``fatigue``, ``holdout``, ``experiments``.

The JSON Schema checks shapes; these functions check what a schema cannot (shares that
sum to 1, actions that exist, an action in at most one experiment) and build the
frozen policy objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stream.core.decide.holdout import (
    DEFAULT_CONVERSION_WINDOW_MS,
    Experiment,
    HoldoutPolicy,
    Variant,
)
from stream.core.decide.learning import (
    DEFAULT_EVIDENCE,
    DEFAULT_REWARDS,
    FatiguePolicy,
    LearningPolicy,
)

Report = Callable[[tuple[str | int, ...], str], None]
SHARE_TOLERANCE = 1e-6


def parse_learning(
    data: Mapping[str, Any],
    fatigue: Mapping[str, Any] | None,
    duration_ms: Callable[[str], int],
) -> LearningPolicy:
    """The ``learning`` and ``fatigue`` sections (already schema-checked)."""
    fatigue_policy = None
    if fatigue is not None:
        fatigue_policy = FatiguePolicy(
            after=int(fatigue["after"]),
            effect=fatigue.get("effect", "pause"),
            pause_ms=duration_ms(fatigue.get("pause", "7d")),
            factor=float(fatigue.get("factor", 0.5)),
            channels=frozenset(fatigue.get("channels", ["email", "sms", "push"])),
        )
    return LearningPolicy(
        strategy=data.get("strategy", "fixed"),
        evidence=float(data.get("evidence", DEFAULT_EVIDENCE)),
        rewards=frozenset(data.get("rewards", DEFAULT_REWARDS)),
        ucb_z=float(data.get("ucb_z", 1.96)),
        customer_weight=float(data.get("customer_weight", 2.0)),
        response_window_ms=duration_ms(data.get("response_window", "2d")),
        fatigue=fatigue_policy,
    )


def parse_holdout(
    data: Mapping[str, Any],
    experiments: Iterable[Mapping[str, Any]],
    actions: Mapping[str, tuple[str, ...]],
    event_types: frozenset[str],
    duration_ms: Callable[[str], int],
    report: Report,
) -> HoldoutPolicy:
    """The ``holdout`` and ``experiments`` sections; ``actions`` maps id -> channels."""
    for index, event_type in enumerate(data.get("conversion_events", [])):
        if event_type not in event_types:
            report(("holdout", "conversion_events", index), f"unknown event type {event_type!r}")
    built = tuple(_experiment(item, i, actions, report) for i, item in enumerate(experiments))
    by_action: dict[str, Experiment] = {}
    for index, experiment in enumerate(built):
        for action in sorted(experiment.actions):
            other = by_action.get(action)
            if other is not None:
                report(
                    ("experiments", index),
                    f"action {action!r} is already in experiment {other.name!r}",
                )
            by_action.setdefault(action, experiment)
    names = [experiment.name for experiment in built]
    for index, name in enumerate(names):
        if name in names[:index]:
            report(("experiments", index, "name"), f"duplicate experiment {name!r}")
    window = data.get("conversion_window")
    return HoldoutPolicy(
        control_share=float(data.get("control_share", 0.0)),
        salt=str(data.get("salt", "journey-stream")),
        categories=frozenset(data.get("categories", ["marketing"])),
        conversion_window_ms=duration_ms(window) if window else DEFAULT_CONVERSION_WINDOW_MS,
        conversion_events=frozenset(
            data.get("conversion_events", ["order_completed", "store_purchase"])
        ),
        experiments=built,
        by_action=by_action,
    )


def _experiment(
    data: Mapping[str, Any],
    index: int,
    actions: Mapping[str, tuple[str, ...]],
    report: Report,
) -> Experiment:
    path: tuple[str | int, ...] = ("experiments", index)
    action = data.get("action")
    if action is not None and action not in actions:
        report((*path, "action"), f"unknown action {action!r}")
    variants = tuple(
        Variant(v["name"], float(v["share"]), v.get("action"), _channels(v))
        for v in data["variants"]
    )
    total = sum(variant.share for variant in variants)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        report((*path, "variants"), f"variant shares sum to {total:g}, not 1")
    seen: set[str] = set()
    for v_index, variant in enumerate(variants):
        v_path = (*path, "variants", v_index)
        if variant.name in seen:
            report((*v_path, "name"), f"duplicate variant {variant.name!r}")
        seen.add(variant.name)
        if action is not None:
            if variant.action is not None or variant.channels is None:
                report(v_path, "a channel test's variant sets `channels`, not `action`")
            elif action in actions and not set(variant.channels) <= set(actions[action]):
                extra = sorted(set(variant.channels) - set(actions[action]))
                report(
                    (*v_path, "channels"),
                    f"{', '.join(extra)} not among {action}'s channels {list(actions[action])}",
                )
        elif variant.action is None or variant.channels is not None:
            report(v_path, "an action test's variant sets `action` (or give the experiment one)")
        elif variant.action not in actions:
            report((*v_path, "action"), f"unknown action {variant.action!r}")
    arm_actions = [v.action for v in variants if v.action]
    if len(set(arm_actions)) != len(arm_actions):
        report((*path, "variants"), "two variants name the same action")
    return Experiment(data["name"], variants, action, data.get("description", ""))


def _channels(variant: Mapping[str, Any]) -> tuple[str, ...] | None:
    channels = variant.get("channels")
    return tuple(channels) if channels is not None else None
