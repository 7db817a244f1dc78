"""`policy check` on the journeys section: each problem named at its file:line, in words.

Each test breaks one thing of a valid policy (``VALID``) and expects the problem at the
line of the text it changed.
"""

from __future__ import annotations

import pytest

from stream.core.decide import Policy, PolicyError
from stream.core.decide.policy import Problem
from tests.unit.core.decide.helpers import policy_from

VALID = """\
format: 1
name: checks
actions:
  - {id: invite, category: marketing, channels: [email]}
  - {id: reminder, category: marketing, channels: [sms]}
  - {id: banner, category: marketing, channels: [web], triggers: [{event: page_view}]}
journeys:
  - id: onboarding
    entry: {event: order_completed}
    max_duration: 10d
    exit: [{event: product_return}]
    goal: {event: app_installed}
    start: mail
    nodes:
      mail: {send: invite, next: watch}
      watch:
        wait_for: {event: store_purchase, match: [order_id]}
        timeout: 2d
        next: route
        on_timeout: route
      route:
        branch:
          - {name: big, when: "event.properties.value >= 100.0", next: text}
        else: arms
      arms:
        split:
          - {arm: a, weight: 50, next: text}
          - {arm: b, weight: 50, next: done}
      text: {send: reminder, next: done}
      done: {exit: completed}
"""


def broken(old: str, new: str, text: str = VALID) -> tuple[list[Problem], int]:
    """The problems of ``text`` with ``old`` replaced by ``new``, and the line of the
    first line ``new`` adds or changes."""
    assert text.count(old) == 1, old
    changed = text.replace(old, new)
    with pytest.raises(PolicyError) as refused:
        policy_from(changed)
    added = next(line for line in new.splitlines() if line not in old.splitlines())
    start = text.index(old)
    return refused.value.problems, changed[: start + new.index(added)].count("\n") + 1


def only_problem(old: str, new: str, text: str = VALID) -> Problem:
    """The one problem of the changed policy, checked to be at the changed line."""
    problems, line = broken(old, new, text)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert (problem.source, problem.line) == ("test.yaml", line), str(problem)
    return problem


def test_the_valid_policy_loads():
    policy = policy_from(VALID)
    (journey,) = policy.journeys
    assert list(journey.nodes) == ["mail", "watch", "route", "arms", "text", "done"]


def test_an_unknown_action_is_refused_with_the_closest_name():
    problems, line = broken("mail: {send: invite,", "mail: {send: invte,")
    assert [(p.line, p.path, p.message) for p in problems] == [
        (4, "actions/0/id", "action 'invite' has no triggers and no journey sends it"),
        (line, "journeys/0/nodes/mail/send", "unknown action 'invte'; did you mean 'invite'?"),
    ]


def test_an_unknown_action_in_a_decide_is_refused():
    problem = only_problem("text: {send: reminder,", "text: {decide: [reminder, remnder],")
    assert problem.path == "journeys/0/nodes/text/decide/1"
    assert "unknown action 'remnder'; did you mean 'reminder'?" in problem.message


def test_an_unknown_event_type_is_refused_wherever_it_is_named():
    cases = {
        "entry: {event: order_completed}": "entry: {event: order_complete}",
        "exit: [{event: product_return}]": "exit: [{event: product_retrun}]",
        "goal: {event: app_installed}": "goal: {event: app_instaled}",
    }
    for old, new in cases.items():
        problems, line = broken(old, new)
        assert [p.line for p in problems] == [line], [str(p) for p in problems]
        assert "unknown event type" in problems[0].message
        assert "did you mean" in problems[0].message


def test_an_unknown_awaited_event_is_refused():
    problems, line = broken("wait_for: {event: store_purchase,", "wait_for: {event: store_purchse,")
    assert line in {p.line for p in problems}
    (unknown,) = [p for p in problems if "unknown event type" in p.message]
    assert unknown.path == "journeys/0/nodes/watch/wait_for/event"
    assert "did you mean 'store_purchase'?" in unknown.message


@pytest.mark.parametrize(
    ("old", "new", "path", "label"),
    [
        (
            "text: {send: reminder, next: done}",
            "text: {send: reminder, next: dne}",
            "text/next",
            "next 'dne'",
        ),
        ("on_timeout: route", "on_timeout: rout", "watch/on_timeout", "on_timeout 'rout'"),
        ("else: arms", "else: armz", "route/else", "else 'armz'"),
        ("weight: 50, next: done}", "weight: 50, next: don}", "arms/split/1/next", "b 'don'"),
        ('>= 100.0", next: text}', '>= 100.0", next: txt}', "route/branch/0/next", "big 'txt'"),
    ],
)
def test_an_edge_to_no_node_is_refused_with_the_closest_name(old, new, path, label):
    problems, line = broken(old, new)
    dangling = [p for p in problems if "is not a node of this journey" in p.message]
    assert len(dangling) == 1, [str(p) for p in problems]
    assert dangling[0].line == line
    assert dangling[0].path == f"journeys/0/nodes/{path}"
    assert dangling[0].message.startswith(f"{label} is not a node of this journey; did you mean")


def test_an_unknown_start_node_is_refused():
    problem = only_problem("start: mail", "start: mial")
    assert problem.path == "journeys/0/start"
    assert problem.message == "entry 'mial' is not a node of this journey; did you mean 'mail'?"


def test_a_node_never_reached_is_refused():
    problem = only_problem(
        "      done: {exit: completed}\n",
        "      done: {exit: completed}\n      lost: {exit: lost}\n",
    )
    assert problem.path == "journeys/0/nodes/lost"
    assert problem.message == "node 'lost' is never reached from the entry 'mail'"


def test_a_cycle_without_a_wait_is_refused():
    problems, _ = broken("weight: 50, next: done}", "weight: 50, next: route}")
    (cycle,) = problems
    assert cycle.path == "journeys/0/nodes/route"
    assert cycle.line == VALID.splitlines().index("      route:") + 1
    assert "the cycle route -> arms -> route has no wait in it" in cycle.message


def test_a_cycle_through_a_wait_is_allowed():
    policy_from(VALID.replace("next: route\n", "next: mail\n"))


def test_a_wait_longer_than_the_max_duration_is_refused():
    problems, _ = broken("timeout: 2d", "timeout: 12d")
    (problem,) = problems
    assert problem.path == "journeys/0/nodes/watch"
    assert problem.line == VALID.splitlines().index("      watch:") + 1
    assert problem.message == (
        "waits up to 12d, longer than the journey's max_duration of 10d: the run would end first"
    )


def test_a_wait_for_a_local_time_needs_a_day_of_max_duration():
    text = VALID.replace("timeout: 2d", "timeout: 12h").replace(
        "      text: {send: reminder, next: done}",
        "      text: {send: reminder, next: night}\n"
        "      night: {wait: {until_local: '08:00'}, next: done}",
    )
    policy_from(text)
    problems, _ = broken("max_duration: 10d", "max_duration: 23h", text)
    assert [p.path for p in problems] == ["journeys/0/nodes/night"]
    assert "waits up to 1d" in problems[0].message


def test_split_weights_that_do_not_add_up_to_100_are_refused():
    problems, _ = broken("{arm: b, weight: 50,", "{arm: b, weight: 40,")
    (problem,) = problems
    assert problem.path == "journeys/0/nodes/arms/split"
    assert problem.line == VALID.splitlines().index("        split:") + 1
    assert problem.message == "weights add up to 90 (50 + 40), not 100"


def test_a_split_weight_must_be_positive():
    problems, line = broken("{arm: b, weight: 50,", "{arm: b, weight: 0,")
    assert ("journeys/0/nodes/arms/split/1", line) in {(p.path, p.line) for p in problems}


def test_a_match_property_the_entry_event_lacks_is_refused():
    problem = only_problem("match: [order_id]", "match: [store_id]")
    assert problem.path == "journeys/0/nodes/watch/wait_for/match/0"
    assert problem.message.startswith("order_completed has no property 'store_id'; it has: ")


def test_a_match_property_the_awaited_event_lacks_is_refused():
    problem = only_problem(
        "{event: store_purchase, match: [order_id]}", "{event: product_return, match: [currency]}"
    )
    assert problem.path == "journeys/0/nodes/watch/wait_for/match/0"
    assert problem.message.startswith("product_return has no property 'currency'; it has: ")


def test_a_branch_reading_an_unknown_field_is_refused_with_a_suggestion():
    problem = only_problem(
        'when: "event.properties.value >= 100.0"', 'when: "event.properties.vlaue >= 100.0"'
    )
    assert problem.path == "journeys/0/nodes/route/branch/0/when"
    assert "event.properties.vlaue: unknown property of order_completed" in problem.message
    assert "did you mean event.properties.value?" in problem.message
    customer = only_problem(
        'when: "event.properties.value >= 100.0"', 'when: "customer.orders.cnt > 1"'
    )
    assert (
        "customer.orders.cnt: unknown field; did you mean customer.orders.count?"
        in customer.message
    )


def test_an_action_without_triggers_that_no_journey_sends_is_refused():
    problem = only_problem(
        "  - {id: reminder, category: marketing, channels: [sms]}\n",
        "  - {id: reminder, category: marketing, channels: [sms]}\n"
        "  - {id: forgotten, category: marketing, channels: [sms]}\n",
    )
    assert problem.path == "actions/2/id"
    assert problem.message == "action 'forgotten' has no triggers and no journey sends it"


SECOND = """\
  - id: winback
    entry: {event: login}
    max_duration: 1d
    start: mail
    nodes:
      mail: {send: invite, next: done}
      done: {exit: completed}
"""


def test_a_duplicate_journey_id_is_refused():
    policy_from(VALID + SECOND)
    problem = only_problem("  - id: winback\n", "  - id: onboarding\n", VALID + SECOND)
    assert problem.path == "journeys/1/id"
    assert problem.message == "duplicate journey id 'onboarding'"


def test_every_problem_is_reported_at_once_in_the_order_of_the_file():
    text = (
        VALID.replace("send: invite,", "send: invte,")
        .replace("timeout: 2d", "timeout: 12d")
        .replace("{arm: b, weight: 50,", "{arm: b, weight: 40,")
    )
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    problems = refused.value.problems
    assert [p.line for p in problems] == [4, 15, 16, 26]
    assert [p.path for p in problems] == [
        "actions/0/id",  # no journey sends invite now
        "journeys/0/nodes/mail/send",
        "journeys/0/nodes/watch",
        "journeys/0/nodes/arms/split",
    ]


# --- versions ---------------------------------------------------------------------------


def version(policy: Policy, journey: str = "onboarding") -> str:
    return next(j.version for j in policy.journeys if j.id == journey)


def test_a_journeys_version_is_stable_for_the_same_definition():
    assert version(policy_from(VALID)) == version(policy_from(VALID))
    assert version(policy_from(VALID)).startswith("onboarding@")
    # the same definition written another way is the same version
    reflowed = VALID.replace(
        "      mail: {send: invite, next: watch}\n",
        "      mail:\n        send: invite   # the QR code\n        next: watch\n",
    )
    assert version(policy_from(reflowed)) == version(policy_from(VALID))


def test_a_journeys_version_changes_with_its_definition():
    before = version(policy_from(VALID))
    for old, new in [
        ("timeout: 2d", "timeout: 3d"),
        ("{arm: a, weight: 50, next: text}", "{arm: a, weight: 50, next: done}"),
        ("max_duration: 10d", "max_duration: 11d"),
        (">= 100.0", ">= 200.0"),
    ]:
        assert version(policy_from(VALID.replace(old, new))) != before, new


def test_a_journeys_version_does_not_change_when_the_rest_of_the_policy_does():
    policy = policy_from(VALID)
    other = policy_from(
        VALID.replace("name: checks", "name: checks_v2").replace(
            "channels: [web]", "channels: [web], value: 3.0"
        )
        + SECOND
    )
    assert other.version != policy.version
    assert version(other) == version(policy)


def test_a_journey_after_one_the_schema_refused_is_reported_at_its_own_line():
    refused_by_schema = (
        "  - id: unstarted\n"
        "    entry: {event: login}\n"
        "    max_duration: 1d\n"
        "    nodes: {done: {exit: completed}}\n"
    )
    text = VALID.replace("journeys:\n", "journeys:\n" + refused_by_schema)
    problems, line = broken("mail: {send: invite,", "mail: {send: invte,", text)
    (unknown,) = [p for p in problems if "unknown action" in p.message]
    assert (unknown.path, unknown.line) == ("journeys/1/nodes/mail/send", line)
    assert [p.path for p in problems if "required" in p.message] == ["journeys/0"]
