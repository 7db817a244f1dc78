"""What the journeys API shows: known census rows on each journey's graph, as exact JSON."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stream.core.census import at_node, journey_move
from stream.core.journeys.report import (
    duration_text,
    journey_report,
    journey_summaries,
    node_summary,
)
from tests.unit.core.decide.helpers import policy_from

POLICY = """
    format: 1
    name: report
    contact_policy: {default_timezone: UTC}
    holdout: {control_share: 0.5}
    actions:
      - {id: app_invite, category: marketing, channels: [email]}
      - {id: getting_started, category: marketing, channels: [push]}
      - {id: sms_invite, category: marketing, channels: [sms]}
      - {id: tips, category: marketing, channels: [email]}
    journeys:
      - id: onboarding
        description: invite to the app; welcome if installed, else one SMS
        entry: {event: order_completed, when: customer.orders.count == 1}
        reentry: never
        max_duration: 10d
        exit: [{event: product_return}]
        goal: {event: app_installed}
        start: invite
        nodes:
          invite: {send: app_invite, next: wait_install, suppressed: done}
          wait_install:
            wait_for: {event: app_installed}
            timeout: 2d
            next: welcome
            on_timeout: sms
          welcome: {send: getting_started, next: done}
          sms: {send: sms_invite, next: done}
          done: {exit: completed}
      - id: nurture
        entry: {event: page_view}
        max_duration: 30d
        start: pause
        nodes:
          pause: {wait: 1d, next: who}
          who:
            branch: [{name: repeat, when: customer.orders.count > 1, next: pick}]
            else: arms
          arms:
            split: [{arm: a, weight: 50, next: pick}, {arm: b, weight: 50, next: morning}]
          morning: {wait: {until_local: "09:00"}, next: pick}
          pick: {decide: [tips, getting_started], next: opened}
          opened:
            wait_for: {outcome: opened}
            timeout: 36h
            next: done
            on_timeout: done
          done: {exit: finished}
"""
P = policy_from(POLICY)
ONBOARDING, NURTURE = P.journeys
V1 = ONBOARDING.version
# The same journey before a reload: a shorter wait for the install (another version).
OLD = policy_from(POLICY.replace("timeout: 2d", "timeout: 1d")).journeys[0]
V0 = OLD.version


def moves(version: str, *rows: tuple[str, str, str, str, int]) -> dict[str, int]:
    """Census keys of journey moves: (node, move, detail, group, count)."""
    return {journey_move(version, n, m, d, g): c for n, m, d, g, c in rows}


# 10 entered (8 treatment, 2 control); at the invite, 1 suppressed by a cap (to done) and
# 9 sent; 3 installed (converted and moved on), 2 timed out, 2 returned a product; 3 wait.
CENSUS = {
    at_node(V1, "wait_install"): 3,
    **moves(
        V1,
        ("invite", "entered", "", "treatment", 8),
        ("invite", "entered", "", "control", 2),
        ("invite", "edge", "sent", "treatment", 7),
        ("invite", "edge", "sent", "control", 2),
        ("invite", "suppressed", "channel_cap", "treatment", 1),
        ("invite", "edge", "suppressed", "treatment", 1),
        ("done", "exited", "completed", "treatment", 6),
        ("done", "exited", "completed", "control", 1),
        ("wait_install", "converted", "", "treatment", 2),
        ("wait_install", "converted", "", "control", 1),
        ("wait_install", "edge", "next", "treatment", 2),
        ("wait_install", "edge", "next", "control", 1),
        ("wait_install", "edge", "timeout", "treatment", 2),
        ("wait_install", "exited", "product_return", "treatment", 2),
        ("welcome", "edge", "sent", "treatment", 2),
        ("welcome", "edge", "held", "control", 1),
        ("sms", "edge", "sent", "treatment", 2),
    ),
}
VERSIONS = {V1: ONBOARDING, NURTURE.version: NURTURE}
NO_CONVERSION = {
    "treatment": {"entered": 0, "converted": 0, "rate": None},
    "control": {"entered": 0, "converted": 0, "rate": None},
}
TOTALS = {
    "entered": 10,
    "active": 3,
    "converted": 3,
    "exited": {"completed": 7, "product_return": 2},
    "conversion": {
        "treatment": {"entered": 8, "converted": 2, "rate": 0.25},
        "control": {"entered": 2, "converted": 1, "rate": 0.5},
    },
}


def counts(**given: object) -> dict[str, object]:
    """A node's counts: zero unless given."""
    return {
        "runs_now": 0,
        "entered": 0,
        "suppressed": {},
        "exited": {},
        "converted": 0,
        **given,
    }


def test_every_journey_of_the_policy_is_listed_with_its_totals_in_policy_order() -> None:
    summaries = journey_summaries(CENSUS, P.journeys, VERSIONS)
    assert summaries == [
        {
            "id": "onboarding",
            "description": "invite to the app; welcome if installed, else one SMS",
            "in_policy": True,
            "current_version": V1,
            **TOTALS,
            "versions": [{"version": V1, "current": True, **TOTALS}],
        },
        {
            "id": "nurture",
            "description": "",
            "in_policy": True,
            "current_version": NURTURE.version,
            "entered": 0,
            "active": 0,
            "converted": 0,
            "exited": {},
            "conversion": NO_CONVERSION,
            "versions": [
                {
                    "version": NURTURE.version,
                    "current": True,
                    "entered": 0,
                    "active": 0,
                    "converted": 0,
                    "exited": {},
                    "conversion": NO_CONVERSION,
                }
            ],
        },
    ]


def test_a_journey_shows_each_node_with_what_it_does_and_its_counts_and_each_edge_taken() -> None:
    report = journey_report("onboarding", CENSUS, P.journeys, VERSIONS)
    assert report is not None
    (version,) = report.pop("versions")
    assert report == {
        "id": "onboarding",
        "description": "invite to the app; welcome if installed, else one SMS",
        "in_policy": True,
        "current_version": V1,
    }
    nodes, edges = version.pop("nodes"), version.pop("edges")
    assert version == {
        "version": V1,
        "current": True,
        "known": True,
        "description": "invite to the app; welcome if installed, else one SMS",
        "entry": {"event": "order_completed", "when": "customer.orders.count == 1"},
        "goal": {"event": "app_installed", "when": None, "exits": False},
        "exits": [{"reason": "product_return", "event": "product_return", "when": None}],
        "max_duration": "10d",
        "start": "invite",
        **TOTALS,
    }
    assert nodes == [
        {
            "name": "invite",
            "kind": "send",
            "start": True,
            "does": "send app_invite",
            "actions": ["app_invite"],
            **counts(entered=10, suppressed={"channel_cap": 1}),
        },
        {
            "name": "wait_install",
            "kind": "wait_for",
            "start": False,
            "does": "wait for app_installed, up to 2d",
            "awaits": {"event": "app_installed", "when": None, "match": []},
            "timeout": "2d",
            **counts(runs_now=3, exited={"product_return": 2}, converted=3),
        },
        {
            "name": "welcome",
            "kind": "send",
            "start": False,
            "does": "send getting_started",
            "actions": ["getting_started"],
            **counts(),
        },
        {
            "name": "sms",
            "kind": "send",
            "start": False,
            "does": "send sms_invite",
            "actions": ["sms_invite"],
            **counts(),
        },
        {
            "name": "done",
            "kind": "exit",
            "start": False,
            "does": "exit: completed",
            "reason": "completed",
            **counts(exited={"completed": 7}),
        },
    ]
    assert edges == [
        {"from": "invite", "label": "sent", "to": "wait_install", "count": 9},
        {"from": "invite", "label": "held", "to": "wait_install", "count": 0},
        {"from": "invite", "label": "suppressed", "to": "done", "count": 1},
        {"from": "wait_install", "label": "next", "to": "welcome", "count": 3},
        {"from": "wait_install", "label": "timeout", "to": "sms", "count": 2},
        {"from": "welcome", "label": "sent", "to": "done", "count": 2},
        {"from": "welcome", "label": "held", "to": "done", "count": 1},
        {"from": "welcome", "label": "suppressed", "to": "done", "count": 0},
        {"from": "sms", "label": "sent", "to": "done", "count": 2},
        {"from": "sms", "label": "held", "to": "done", "count": 0},
        {"from": "sms", "label": "suppressed", "to": "done", "count": 0},
    ]


def test_each_kind_of_node_says_what_it_does_as_data() -> None:
    report = journey_report("nurture", {}, P.journeys, VERSIONS)
    assert report is not None
    (version,) = report["versions"]
    shown = [
        {k: v for k, v in node.items() if k not in counts() and k not in ("kind", "start")}
        for node in version["nodes"]
    ]
    assert shown == [
        {"name": "pause", "does": "wait 1d", "wait": {"duration": "1d"}},
        {
            "name": "who",
            "does": "branch: repeat, else",
            "cases": [{"name": "repeat", "when": "customer.orders.count > 1"}],
        },
        {
            "name": "arms",
            "does": "split: a 50 %, b 50 %",
            "arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
        },
        {
            "name": "morning",
            "does": "wait until 09:00 local time",
            "wait": {"until_local": "09:00"},
        },
        {
            "name": "pick",
            "does": "decide among tips, getting_started",
            "actions": ["tips", "getting_started"],
        },
        {
            "name": "opened",
            "does": "wait for the last message to be opened, up to 36h",
            "awaits": {"outcome": "opened"},
            "timeout": "36h",
        },
        {"name": "done", "does": "exit: finished", "reason": "finished"},
    ]
    labels = [(e["from"], e["label"], e["to"]) for e in version["edges"]]
    assert labels[:5] == [
        ("pause", "next", "who"),
        ("who", "repeat", "pick"),
        ("who", "else", "arms"),
        ("arms", "a", "pick"),
        ("arms", "b", "morning"),
    ]
    assert version["entry"] == {"event": "page_view", "when": None}
    assert version["goal"] is None and version["exits"] == []


def test_a_version_left_behind_by_a_reload_is_listed_after_the_current_one() -> None:
    census = {
        **CENSUS,
        at_node(V0, "wait_install"): 1,
        **moves(V0, ("invite", "entered", "", "treatment", 4)),
        **moves(V0, ("done", "exited", "completed", "treatment", 3)),
    }
    versions = {**VERSIONS, V0: OLD}
    (summary, _) = journey_summaries(census, P.journeys, versions)
    assert [(v["version"], v["current"], v["entered"]) for v in summary["versions"]] == [
        (V1, True, 10),
        (V0, False, 4),
    ]
    assert (summary["entered"], summary["active"]) == (14, 4)
    assert summary["exited"] == {"completed": 10, "product_return": 2}
    assert summary["conversion"]["treatment"] == {"entered": 12, "converted": 2, "rate": 0.1667}
    report = journey_report("onboarding", census, P.journeys, versions)
    assert report is not None
    old = report["versions"][1]
    assert (old["version"], old["current"], old["known"]) == (V0, False, True)
    waiting = next(node for node in old["nodes"] if node["name"] == "wait_install")
    assert (waiting["does"], waiting["runs_now"]) == ("wait for app_installed, up to 1d", 1)


def test_a_version_whose_definition_is_gone_is_reported_from_its_counts() -> None:
    census = {
        at_node("onboarding@0123456789", "wait_install"): 2,
        **moves("onboarding@0123456789", ("invite", "edge", "sent", "control", 2)),
    }
    report = journey_report("onboarding", census, P.journeys, VERSIONS)
    assert report is not None
    gone = report["versions"][1]
    assert {k: gone[k] for k in ("version", "current", "known", "start")} == {
        "version": "onboarding@0123456789",
        "current": False,
        "known": False,
        "start": None,
    }
    assert gone["nodes"] == [
        {"name": "invite", "kind": None, **counts()},
        {"name": "wait_install", "kind": None, **counts(runs_now=2)},
    ]
    assert gone["edges"] == [{"from": "invite", "label": "sent", "to": None, "count": 2}]


def test_a_journey_removed_from_the_policy_stays_listed_while_counted() -> None:
    census = {**moves(V1, ("wait_install", "exited", "journey_removed", "treatment", 3))}
    (nurture, removed) = journey_summaries(census, [NURTURE], VERSIONS)
    assert nurture["id"] == "nurture"
    assert {k: removed[k] for k in ("id", "in_policy", "current_version", "exited")} == {
        "id": "onboarding",
        "in_policy": False,
        "current_version": None,
        "exited": {"journey_removed": 3},
    }
    assert removed["description"] == ONBOARDING.description  # from the version still known
    report = journey_report("onboarding", census, [NURTURE], VERSIONS)
    assert report is not None and report["versions"][0]["current"] is False


def test_an_unknown_journey_has_no_report() -> None:
    assert journey_report("nope", CENSUS, P.journeys, VERSIONS) is None
    assert journey_report("onboarding", CENSUS, [], {}) is not None  # it has counts


@pytest.mark.parametrize(
    ("ms", "text"),
    [(2 * 86_400_000, "2d"), (36 * 3_600_000, "36h"), (90 * 60_000, "90m"), (1500, "1500ms")],
)
def test_durations_read_as_the_policy_writes_them(ms: int, text: str) -> None:
    assert duration_text(ms) == text


def test_a_wait_for_an_event_names_the_matched_properties_and_its_condition() -> None:
    node = ONBOARDING.nodes["wait_install"]
    assert node_summary(node) == "wait for app_installed, up to 2d"
    matched = replace(node, match=("order_id",))
    assert node_summary(matched) == "wait for app_installed (same order_id), up to 2d"


def test_a_node_description_reaches_the_report() -> None:
    from stream.core.journeys import report as journey_report
    from tests.unit.core.decide.helpers import policy_from

    policy = policy_from("""
        format: 1
        name: described
        actions:
          - {id: hello, category: marketing, channels: [web]}
        journeys:
          - id: j
            entry: {event: page_view}
            max_duration: 1d
            start: say
            nodes:
              say: {send: hello, next: done, description: the first word}
              done: {exit: completed}
    """)
    shown = journey_report.journey_report("j", {}, policy.journeys, policy.journey_versions)
    assert shown is not None
    nodes = {node["name"]: node for node in shown["versions"][0]["nodes"]}
    assert nodes["say"]["description"] == "the first word"
    assert "description" not in nodes["done"]
