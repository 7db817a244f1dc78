"""Policy-as-code: load a YAML policy, check it completely, compile its CEL once.

A policy that fails any check is refused as a whole with every problem listed as
``file:line: path: message``; the worker keeps the last good one. The CEL is checked
against what its variables hold (``variables.ConditionScope``, ``cel_check``): an
unknown field, property or constant, or a value an enum-like field never has, is a
problem here rather than a ``condition_error`` on every decision at run time.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cel
import yaml

from stream.core.decide.adaptive_policy import parse_holdout, parse_learning
from stream.core.decide.cel_check import check_expression
from stream.core.decide.cel_parse import CelSyntaxError
from stream.core.decide.durations import (
    DURATION_MS,
    close_name,
    lenient_duration_ms,
    parse_duration_ms,
)
from stream.core.decide.holdout import HoldoutPolicy
from stream.core.decide.learning import LearningPolicy
from stream.core.decide.shapes import ANY, Shape
from stream.core.decide.variables import CEL_VARIABLES, ConditionScope, ViewPlan
from stream.core.decide.yaml_source import YamlDocument, load_yaml
from stream.core.journeys.load import (
    TIMER_ENTRY,
    entry_index,
    journey_actions,
    journey_expressions,
    load_journeys,
)
from stream.core.journeys.spec import Journey
from stream.core.resolve import DEFAULT_MAX_IDENTIFIERS, IdentityRules
from stream.core.schemas import SchemaCatalog

DEFAULT_PROPENSITY = 0.05
DEFAULT_VALIDITY_MS = 7 * DURATION_MS["d"]
DEFAULT_TIMER_GRACE_MS = DURATION_MS["h"]
ANY_EVENT = "*"
# What a value that fails one of the policy schema's patterns should look like.
_PATTERN_WORDS = {
    "duration": "not a duration; use a number with s, m, h or d, like 90s or 2d",
    "clock": "not a time of day; use hh:mm from 00:00 to 23:59, like 08:00",
    "identifier": "not a name; use lower-case letters, digits and _, starting with a letter",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file."""

    source: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path or '(root)'}: {self.message}"


class PolicyError(ValueError):
    """A policy that cannot be used, with every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL expression and where it came from."""

    source: str
    path: str
    program: Any  # cel.Program


@dataclass(frozen=True, slots=True)
class Trigger:
    """What makes an action a candidate: an event type or a timer, and an optional condition."""

    event: str | None
    timer: str | None
    when: Condition | None


@dataclass(frozen=True, slots=True)
class TimerTrigger:
    """An event type (or ``*``) that starts or cancels a timer, and an optional condition."""

    event: str
    when: Condition | None
    excluded: frozenset[str] = frozenset()  # the policy's ``except``, for ``*``

    def matches(self, event_type: str) -> bool:
        """True if an event of this type is a candidate for the trigger (``when`` aside)."""
        if self.event == ANY_EVENT:
            return event_type not in self.excluded
        return self.event == event_type


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A durable per-customer timer: "if nothing happens by then"."""

    name: str
    delay_ms: int
    start: tuple[TimerTrigger, ...]
    cancel: tuple[TimerTrigger, ...] = ()
    restart: bool = True
    grace_ms: int = DEFAULT_TIMER_GRACE_MS
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action of the catalogue."""

    id: str
    order: int
    category: str
    channels: tuple[str, ...]
    value: float
    lever: float
    propensity: float
    validity_ms: int
    triggers: tuple[Trigger, ...]
    evidence: float | None = None  # prior weight in sends (None: learning.evidence)
    channel_propensity: dict[str, float] = field(default_factory=dict)  # per-channel priors

    def prior(self, channel: str) -> float:
        """The prior propensity of sending this action on ``channel``."""
        return self.channel_propensity.get(channel, self.propensity)

    description: str = ""
    reason: str = ""
    content: str | None = None
    cooldown_ms: int | None = None
    max_per_customer: int | None = None
    context_weight: Condition | None = None
    eligibility: Condition | None = None
    applicability: Condition | None = None
    suitability: Condition | None = None
    payload: tuple[tuple[str, Condition], ...] = ()


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``max`` contacts matching the channels/categories within any ``window_ms``."""

    name: str
    max: int
    window_ms: int
    channels: frozenset[str] | None
    categories: frozenset[str] | None

    def counts(self, channel: str, category: str) -> bool:
        """True if a contact on this channel and of this category counts against the cap."""
        return (self.channels is None or channel in self.channels) and (
            self.categories is None or category in self.categories
        )


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local clock window (minutes after midnight) in which messages are held, not sent."""

    start_minute: int
    end_minute: int
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """Caps, quiet hours and the categories exempt from both."""

    default_timezone: str = "UTC"
    exempt_categories: frozenset[str] = frozenset({"service", "transactional"})
    quiet_hours: QuietHours | None = None
    caps: tuple[Cap, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A loaded, checked policy. ``version`` is ``name@<content hash>``."""

    name: str
    version: str
    actions: tuple[ActionSpec, ...]
    contact: ContactPolicy
    max_actions: int = 1
    one_per_channel: bool = False
    constants: dict[str, Any] = field(default_factory=dict)
    view_plan: ViewPlan = field(default_factory=lambda: ViewPlan({}))
    by_event: dict[str, tuple[tuple[ActionSpec, Trigger], ...]] = field(default_factory=dict)
    timers: tuple[TimerSpec, ...] = ()
    identity: IdentityRules = field(default_factory=IdentityRules)
    by_timer: dict[str, tuple[tuple[ActionSpec, Trigger], ...]] = field(default_factory=dict)
    learning: LearningPolicy = field(default_factory=LearningPolicy)
    holdout: HoldoutPolicy = field(default_factory=HoldoutPolicy)
    journeys: tuple[Journey, ...] = ()
    action_index: Mapping[str, ActionSpec] = field(default_factory=dict)
    # every journey version a run may be pinned to: this policy's and earlier ones'
    journey_versions: Mapping[str, Journey] = field(default_factory=dict)
    # actions of earlier policies this one removed: the earlier versions may still send them
    earlier_actions: Mapping[str, ActionSpec] = field(default_factory=dict)

    def with_earlier_versions(self, earlier: Policy) -> Policy:
        """This policy, still knowing the journey versions ``earlier`` knew (a reload:
        customers already in a journey finish the version they entered), and what those
        versions need: the actions they send that this policy removed, the constants it
        removed (a changed one has its new value) and the fields their conditions read.
        What this policy learnt before is kept (the archive teaches a worker one earlier
        policy at a time)."""
        versions = {**earlier.journey_versions, **self.journey_versions}
        removed = {**self.earlier_actions, **earlier.earlier_actions, **earlier.action_index}
        updated: Policy = dataclasses.replace(
            self,
            journey_versions=versions,
            earlier_actions={k: v for k, v in removed.items() if k not in self.action_index},
            view_plan=self.view_plan.union(earlier.view_plan),
            constants={**earlier.constants, **self.constants},
        )
        return updated

    @functools.cached_property
    def journey_ids(self) -> frozenset[str]:
        """The ids of this policy's journeys."""
        return frozenset(journey.id for journey in self.journeys)

    @functools.cached_property
    def _entry_index(self) -> dict[str, tuple[Journey, ...]]:
        return entry_index(self.journeys)

    def journeys_entered_by(self, event_type: str) -> tuple[Journey, ...]:
        """The journeys an event of this type (or a fired timer of this name) may start,
        in policy order: those it is an entry of, and those entered by a condition."""
        index = self._entry_index
        return index.get(event_type, index[""])

    def action_for_journey(self, action_id: str) -> ActionSpec | None:
        """The action a journey node sends: this policy's, else the earlier one's a pinned
        run still sends (None: unknown)."""
        return self.action_index.get(action_id) or self.earlier_actions.get(action_id)

    def marketing_actions(self) -> list[str]:
        """The actions a control group can be held out of (uplift is counted for)."""
        return [a.id for a in self.actions if a.category in self.holdout.categories]


def _clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _path_text(path: tuple[str | int, ...]) -> str:
    return "/".join(str(part) for part in path)


class _Checker:
    """Collects problems while building the policy, so one run reports them all."""

    def __init__(self, source: str, document: YamlDocument) -> None:
        self.source = source
        self.document = document
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(
            Problem(self.source, _path_text(path), self.document.line_of(path), message)
        )

    def condition(
        self,
        data: dict[str, Any],
        key: str,
        path: tuple[str | int, ...],
        variables: Mapping[str, Shape],
    ) -> Condition | None:
        """The compiled expression at ``data[key]``, or None if absent or not usable."""
        text = data.get(key)
        if text is None:
            return None
        full = (*path, key)
        try:
            program = cel.compile(text)
        except ValueError as exc:
            message = str(exc).replace("\n", " ")
            self.problem(full, f"CEL does not compile: {message}")
            return None
        problems = _cel_problems(text, program, variables)
        for message in problems:
            self.problem(full, message)
        return None if problems else Condition(text, _path_text(full), program)


def _cel_problems(text: str, program: Any, variables: Mapping[str, Shape]) -> list[str]:
    """What the expression reads that its variables do not have."""
    try:
        return check_expression(text, variables)
    except CelSyntaxError:  # syntax the field check cannot read: the variables at least
        unknown = sorted(set(program.variables()) - CEL_VARIABLES)
        if not unknown:
            return []
        known = ", ".join(sorted(CEL_VARIABLES))
        return [f"CEL reads unknown variable(s) {', '.join(unknown)}; known: {known}"]


@dataclass(frozen=True)
class _Build:
    """What building an action or a timer needs besides its own data."""

    checker: _Checker
    scope: ConditionScope
    event_types: frozenset[str]
    timer_starts: Mapping[str, frozenset[str]]  # timer name -> the event types that arm it
    prior: float
    # action id -> the event types that start a journey run sending it ("*": any)
    journey_events: Mapping[str, set[str]] = field(default_factory=dict)

    def unknown_event(self, path: tuple[str | int, ...], name: str) -> None:
        """Report an event type the schemas do not have."""
        self.checker.problem(
            path, f"unknown event type {name!r}{close_name(name, self.event_types)}"
        )


def _action_triggers(
    build: _Build, action_id: str, items: list[dict[str, Any]], path: tuple[str | int, ...]
) -> tuple[tuple[Trigger, ...], dict[str, Shape]]:
    """The triggers, and the variables the action's other conditions see: any trigger's,
    or the event that started a journey run sending it."""
    triggers = []
    started = build.journey_events.get(action_id, set())
    events: set[str] = set(build.event_types) if "*" in started else set(started)
    timers = {
        name: build.timer_starts.get(name, frozenset())
        for name in (e.removeprefix(TIMER_ENTRY) for e in events if e.startswith(TIMER_ENTRY))
    }
    events = {e for e in events if not e.startswith(TIMER_ENTRY)}
    unknown = False
    for t_index, trigger in enumerate(items):
        t_path = (*path, "triggers", t_index)
        event, timer = trigger.get("event"), trigger.get("timer")
        mine: set[str] = set()
        if event is not None:
            mine.add(event)
            if event not in build.event_types:
                build.unknown_event((*t_path, "event"), event)
                unknown = True
        armed_by: dict[str, frozenset[str]] = {}
        if timer is not None and timer in build.timer_starts:
            armed_by[timer] = build.timer_starts[timer]
        unknown |= timer is not None and not armed_by  # reported by _check_timer_links
        events |= mine
        timers.update(armed_by)
        variables = build.scope.variables(mine, armed_by)
        when = build.checker.condition(trigger, "when", t_path, variables)
        triggers.append(Trigger(event, timer, when))
    variables = build.scope.variables(events, timers)
    if unknown:
        variables["event"] = ANY
    return tuple(triggers), variables


def _action(build: _Build, data: dict[str, Any], index: int) -> ActionSpec:
    checker = build.checker
    path: tuple[str | int, ...] = ("actions", index)
    triggers, variables = _action_triggers(build, data["id"], data.get("triggers", []), path)
    payload = []
    for name in data.get("payload", {}):
        expression = checker.condition(data["payload"], name, (*path, "payload"), variables)
        if expression is not None:
            payload.append((name, expression))

    def condition(key: str) -> Condition | None:
        return checker.condition(data, key, path, variables)

    return ActionSpec(
        id=data["id"],
        order=index,
        category=data["category"],
        channels=tuple(data["channels"]),
        value=float(data.get("value", 1.0)),
        lever=float(data.get("lever", 1.0)),
        propensity=build.prior
        if isinstance(data.get("propensity"), dict)
        else float(data.get("propensity", build.prior)),
        channel_propensity=_channel_propensity(checker, data, path),
        validity_ms=lenient_duration_ms(data["validity"])
        if "validity" in data
        else DEFAULT_VALIDITY_MS,
        triggers=triggers,
        evidence=float(data["evidence"]) if "evidence" in data else None,
        description=data.get("description", ""),
        reason=data.get("reason", ""),
        content=data.get("content"),
        cooldown_ms=lenient_duration_ms(data["cooldown"]) if "cooldown" in data else None,
        max_per_customer=data.get("max_per_customer"),
        context_weight=condition("context_weight"),
        eligibility=condition("eligibility"),
        applicability=condition("applicability"),
        suitability=condition("suitability"),
        payload=tuple(payload),
    )


def _channel_propensity(
    checker: _Checker, data: dict[str, Any], path: tuple[str | int, ...]
) -> dict[str, float]:
    """Per-channel priors; each channel named must be one of the action's."""
    value = data.get("propensity")
    if not isinstance(value, dict):
        return {}
    for channel in value:
        if channel not in data["channels"]:
            checker.problem(
                (*path, "propensity", channel), f"{channel!r} is not one of the action's channels"
            )
    return {channel: float(p) for channel, p in value.items()}


def _timer_triggers(
    build: _Build, items: list[dict[str, Any]], path: tuple[str | int, ...]
) -> tuple[TimerTrigger, ...]:
    triggers = []
    for index, item in enumerate(items):
        event = item["event"]
        if event != ANY_EVENT and event not in build.event_types:
            build.unknown_event((*path, index, "event"), event)
        excluded = item.get("except", [])
        if excluded and event != ANY_EVENT:
            build.checker.problem((*path, index, "except"), "except is only for event '*'")
        for position, name in enumerate(excluded):
            if name not in build.event_types:
                build.unknown_event((*path, index, "except", position), name)
        types = build.event_types - set(excluded) if event == ANY_EVENT else {event}
        variables = build.scope.variables(types)
        condition = build.checker.condition(item, "when", (*path, index), variables)
        triggers.append(TimerTrigger(event, condition, frozenset(excluded)))
    return tuple(triggers)


def _timer(build: _Build, data: dict[str, Any], index: int) -> TimerSpec:
    path: tuple[str | int, ...] = ("timers", index)
    delay_ms = lenient_duration_ms(data["delay"])
    if delay_ms <= 0:
        build.checker.problem((*path, "delay"), "delay must be positive")
    return TimerSpec(
        name=data["name"],
        delay_ms=delay_ms,
        start=_timer_triggers(build, data["start"], (*path, "start")),
        cancel=_timer_triggers(build, data.get("cancel", []), (*path, "cancel")),
        restart=data.get("restart", True),
        grace_ms=lenient_duration_ms(data["grace"]) if "grace" in data else DEFAULT_TIMER_GRACE_MS,
        description=data.get("description", ""),
    )


def _timers(
    build: _Build, items: list[dict[str, Any]], blocked: set[tuple[str | int, ...]]
) -> tuple[TimerSpec, ...]:
    """The timers the schema check left readable (``blocked``: those it did not)."""
    timers: list[TimerSpec] = []
    for index, data in enumerate(items):
        if ("timers", index) in blocked:
            continue
        if data["name"] in {t.name for t in timers}:
            build.checker.problem(("timers", index, "name"), f"duplicate timer {data['name']!r}")
        timers.append(_timer(build, data, index))
    return tuple(timers)


def _timer_starts(items: Any, event_types: frozenset[str]) -> dict[str, frozenset[str]]:
    """Per timer name, the event types that can arm it (read before any check passed)."""
    starts: dict[str, frozenset[str]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        types: set[str] = set()
        starts_list = item.get("start")
        for start in starts_list if isinstance(starts_list, list) else []:
            event = start.get("event") if isinstance(start, dict) else None
            excluded = start.get("except") if isinstance(start, dict) else None
            if event == ANY_EVENT:
                names = excluded if isinstance(excluded, list) else []
                types |= event_types - {name for name in names if isinstance(name, str)}
            elif isinstance(event, str):
                types.add(event)
        starts[item["name"]] = frozenset(types)
    return starts


def _check_timer_links(
    checker: _Checker,
    actions: Iterable[ActionSpec],
    timers: Iterable[TimerSpec],
    journey_timers: set[str],
) -> None:
    """Every timer an action names exists, and every timer triggers an action or a journey."""
    names = {timer.name for timer in timers}
    used: set[str] = set()
    for index, action in enumerate(actions):
        for t_index, trigger in enumerate(action.triggers):
            if trigger.timer is None:
                continue
            used.add(trigger.timer)
            if trigger.timer not in names:
                checker.problem(
                    ("actions", index, "triggers", t_index, "timer"),
                    f"unknown timer {trigger.timer!r}; "
                    f"declared: {', '.join(sorted(names)) or 'none'}",
                )
    used |= journey_timers
    for index, timer in enumerate(timers):
        if timer.name not in used:
            checker.problem(
                ("timers", index, "name"),
                f"timer {timer.name!r} triggers no action and starts no journey",
            )


def _contact_policy(checker: _Checker, data: dict[str, Any]) -> ContactPolicy:
    timezone = data.get("default_timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        checker.problem(("contact_policy", "default_timezone"), f"unknown time zone {timezone!r}")
    quiet = data.get("quiet_hours")
    quiet_hours = None
    if quiet is not None:
        quiet_hours = QuietHours(
            _clock_minutes(quiet["start"]),
            _clock_minutes(quiet["end"]),
            frozenset(quiet.get("channels", ["email", "sms", "push"])),
        )
        if quiet_hours.start_minute == quiet_hours.end_minute:
            checker.problem(("contact_policy", "quiet_hours"), "start and end are equal")
    caps: list[Cap] = []
    for index, cap in enumerate(data.get("caps", [])):
        if cap["name"] in {c.name for c in caps}:
            checker.problem(
                ("contact_policy", "caps", index, "name"), f"duplicate cap {cap['name']!r}"
            )
        caps.append(
            Cap(
                cap["name"],
                cap["max"],
                lenient_duration_ms(cap["window"]),
                frozenset(cap["channels"]) if "channels" in cap else None,
                frozenset(cap["categories"]) if "categories" in cap else None,
            )
        )
    return ContactPolicy(
        default_timezone=timezone,
        exempt_categories=frozenset(data.get("exempt_categories", ["service", "transactional"])),
        quiet_hours=quiet_hours,
        caps=tuple(caps),
    )


def _expressions(actions: Iterable[ActionSpec], timers: Iterable[TimerSpec]) -> Iterable[str]:
    for timer in timers:
        for timer_trigger in (*timer.start, *timer.cancel):
            if timer_trigger.when is not None:
                yield timer_trigger.when.source
    for action in actions:
        for trigger in action.triggers:
            if trigger.when is not None:
                yield trigger.when.source
        for condition in (
            action.context_weight,
            action.eligibility,
            action.applicability,
            action.suitability,
        ):
            if condition is not None:
                yield condition.source
        for _, expression in action.payload:
            yield expression.source


def _index_triggers(
    actions: Iterable[ActionSpec], kind: str
) -> dict[str, tuple[tuple[ActionSpec, Trigger], ...]]:
    """Event type (or timer name) -> (action, trigger), one entry per action: its first."""
    index: dict[str, dict[str, tuple[ActionSpec, Trigger]]] = {}
    for action in actions:
        for trigger in action.triggers:
            name = trigger.event if kind == "event" else trigger.timer
            if name is not None:
                index.setdefault(name, {}).setdefault(action.id, (action, trigger))
    return {name: tuple(entries.values()) for name, entries in index.items()}


def _schema_message(error: Any) -> tuple[str, bool]:
    """A schema violation in words, and whether it leaves its part of the policy unreadable.

    A wrong value of the right type does not (a bad duration is read leniently), so the
    rest of that part, its CEL included, is still checked and reported with it.
    """
    schema_path = [str(part) for part in error.schema_path]
    defined = schema_path[-2] if len(schema_path) >= 3 and schema_path[-3] == "$defs" else ""
    value = error.instance
    kind = type(error.kind).__name__
    blocking = (
        kind not in _HARMLESS
        or defined == "clock"
        or (kind in ("Enum", "Constant") and not isinstance(value, str))
    )
    if defined in _PATTERN_WORDS and schema_path[-1] in ("pattern", "type"):
        return f"{value}: {_PATTERN_WORDS[defined]}", blocking and defined != "duration"
    if schema_path[-1] == "enum" and isinstance(value, str):
        options = [str(option) for option in error.kind.options]
        what = f"a{'n' if defined[:1] in 'aeiou' else ''} {defined}" if defined else "allowed here"
        hint = close_name(value, options)
        return f"{value!r} is not {what}; one of: {', '.join(options)}{hint}", blocking
    return error.message, blocking


# Schema violations of a value the build can still read (a string, a number, a list).
_HARMLESS = frozenset(
    {
        "AdditionalProperties",
        "Constant",
        "Enum",
        "ExclusiveMaximum",
        "ExclusiveMinimum",
        "MaxLength",
        "Maximum",
        "MinItems",
        "MinLength",
        "Minimum",
        "Pattern",
        "PropertyNames",
        "UniqueItems",
    }
)
# Parts of a policy the build reads before its own checks: a schema violation in one of
# them stops the load there.
_NEEDED = frozenset({(), ("actions",), ("timers",), ("constants",), ("propensity_prior",)})


def _check_schema(
    checker: _Checker, catalog: SchemaCatalog, data: Any
) -> set[tuple[str | int, ...]] | None:
    """Report every schema violation; the parts they leave unreadable (None: too much)."""
    blocked: set[tuple[str | int, ...]] = set()
    for error in catalog.message_validators["policy"].iter_errors(data):
        path = tuple(error.instance_path)
        message, blocking = _schema_message(error)
        checker.problem(path, message)
        if blocking:
            listed = path[:1] in (("actions",), ("timers",), ("journeys",))
            blocked.add(path[:2] if listed else path[:1])
    return None if blocked & _NEEDED else blocked


def _refused(checker: _Checker) -> PolicyError:
    """The error listing every problem found, in the order of the file."""
    return PolicyError(sorted(checker.problems, key=lambda problem: problem.line or 0))


def _document(text: str, source: str) -> YamlDocument:
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError([Problem(source, "", line, f"YAML syntax: {exc}")]) from None


def _prepare(checker: _Checker, catalog: SchemaCatalog, data: dict[str, Any]) -> _Build:
    """What the build of every action and timer shares."""
    event_types = frozenset().union(*catalog.event_types.values())
    action_ids = [
        action["id"]
        for action in data["actions"]
        if isinstance(action, dict) and isinstance(action.get("id"), str)
    ]
    return _Build(
        checker,
        ConditionScope.build(
            catalog, action_ids, data.get("constants", {}), _journey_ids(data.get("journeys"))
        ),
        event_types,
        _timer_starts(data.get("timers", []), event_types),
        float(data.get("propensity_prior", DEFAULT_PROPENSITY)),
        journey_actions(data.get("journeys", [])),
    )


def _actions(
    build: _Build, items: list[dict[str, Any]], blocked: set[tuple[str | int, ...]]
) -> list[ActionSpec]:
    """The actions the schema check left readable (``blocked``: those it did not)."""
    actions: list[ActionSpec] = []
    for index, action_data in enumerate(items):
        if ("actions", index) in blocked:
            continue
        if action_data["id"] in {action.id for action in actions}:
            build.checker.problem(
                ("actions", index, "id"), f"duplicate action id {action_data['id']!r}"
            )
        actions.append(_action(build, action_data, index))
    return actions


def load_policy(
    text: str,
    catalog: SchemaCatalog,
    source: str = "<policy>",
) -> Policy:
    """Check and compile a policy; raises PolicyError listing every problem."""
    document = _document(text, source)
    checker = _Checker(source, document)
    data = document.data
    blocked = _check_schema(checker, catalog, data)
    if blocked is None:
        raise _refused(checker)
    build = _prepare(checker, catalog, data)
    actions = _actions(build, data["actions"], blocked)
    contact = ContactPolicy()
    if ("contact_policy",) not in blocked:
        contact = _contact_policy(checker, data.get("contact_policy", {}))
    timers = _timers(build, data.get("timers", []), blocked)
    journeys = _journeys(build, data.get("journeys", []), blocked, actions)
    holdout = HoldoutPolicy()
    if not any(key[:1] in (("actions",), ("timers",)) for key in blocked):
        _check_timer_links(checker, actions, timers, _journey_timers(journeys))
        _check_untriggered(checker, actions, build.journey_events)
        if not blocked & {("holdout",), ("experiments",)}:
            holdout = parse_holdout(
                data.get("holdout", {}),
                data.get("experiments", []),
                {action.id: action.channels for action in actions},
                build.event_types,
                lenient_duration_ms,
                checker.problem,
            )
    if checker.problems:
        raise _refused(checker)
    arbitration = data.get("arbitration", {})
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Policy(
        name=data["name"],
        version=f"{data['name']}@{digest}",
        actions=tuple(actions),
        contact=contact,
        max_actions=arbitration.get("max_actions", 1),
        one_per_channel=arbitration.get("one_per_channel", False),
        constants=data.get("constants", {}),
        view_plan=ViewPlan.from_sources(
            [*_expressions(actions, timers), *journey_expressions(journeys)]
        ),
        by_event=_index_triggers(actions, "event"),
        timers=timers,
        identity=_identity_rules(data.get("identity", {})),
        by_timer=_index_triggers(actions, "timer"),
        learning=parse_learning(data.get("learning", {}), data.get("fatigue"), parse_duration_ms),
        holdout=holdout,
        journeys=journeys,
        action_index={action.id: action for action in actions},
        journey_versions={journey.version: journey for journey in journeys},
    )


def _journey_timers(journeys: Iterable[Journey]) -> set[str]:
    """The timers whose firing starts a journey."""
    return {j.entries[0].event for j in journeys if j.entry_timer}


def _journey_ids(items: Any) -> list[str]:
    """The journey ids of the policy (read before any check passed)."""
    found = [item.get("id") for item in items or [] if isinstance(item, dict)]
    return [name for name in found if isinstance(name, str)]


def _journeys(
    build: _Build,
    items: list[dict[str, Any]],
    blocked: set[tuple[str | int, ...]],
    actions: Iterable[ActionSpec],
) -> tuple[Journey, ...]:
    """The journeys the schema check left readable."""
    if ("journeys",) in blocked:
        return ()
    readable = [(i, item) for i, item in enumerate(items) if ("journeys", i) not in blocked]
    return load_journeys(build, readable, [action.id for action in actions])


def _check_untriggered(
    checker: _Checker, actions: Iterable[ActionSpec], journey_events: Mapping[str, set[str]]
) -> None:
    """An action with no trigger must be sent by some journey."""
    for index, action in enumerate(actions):
        if not action.triggers and action.id not in journey_events:
            checker.problem(
                ("actions", index, "id"),
                f"action {action.id!r} has no triggers and no journey sends it",
            )


def _identity_rules(data: dict[str, Any]) -> IdentityRules:
    return IdentityRules(
        max_identifiers=data.get("max_identifiers", DEFAULT_MAX_IDENTIFIERS),
        non_merging_kinds=frozenset(data.get("non_merging", [])),
        non_merging_tokens=frozenset(data.get("non_merging_identifiers", [])),
    )


def load_policy_file(path: Path, catalog: SchemaCatalog) -> Policy:
    """Read and load a policy file; an unreadable file is a PolicyError too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(str(path), "", None, f"cannot read: {exc}")]) from None
    return load_policy(text, catalog, str(path))
