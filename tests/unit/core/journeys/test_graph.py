"""The shape checks of a journey's node graph: what would strand or spin a customer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.journeys import Edge, NodeKind, NodeSpec, check_graph, check_split_weights

DAY_MS = 86_400_000
ENTRY_PATH = ("journeys", 0, "entry", "node")


def node(name: str, kind: NodeKind, *targets: str, wait_ms: int | None = None) -> NodeSpec:
    """A node whose edges are labelled next, next2, ...; paths under journeys/0/nodes."""
    path = ("journeys", 0, "nodes", name)
    edges = tuple(
        Edge("next" if i == 0 else f"next{i + 1}", t, (*path, f"next{i}"))
        for i, t in enumerate(targets)
    )
    return NodeSpec(name, kind, edges, path, wait_ms)


def graph(*nodes: NodeSpec) -> dict[str, NodeSpec]:
    return {n.name: n for n in nodes}


def messages(entry: str, nodes: dict[str, NodeSpec], max_ms: int = 7 * DAY_MS) -> list[str]:
    return [p.message for p in check_graph(entry, nodes, max_ms, ENTRY_PATH)]


ONBOARDING = graph(
    node("invite", NodeKind.SEND, "wait_install"),
    node("wait_install", NodeKind.WAIT_FOR, "series", "sms", wait_ms=2 * DAY_MS),
    node("series", NodeKind.SEND, "done"),
    node("sms", NodeKind.SEND, "done"),
    node("done", NodeKind.EXIT),
)


def test_a_sound_journey_has_no_problems() -> None:
    assert messages("invite", ONBOARDING) == []


def test_an_edge_to_a_missing_node_names_the_nearest_one_at_its_path() -> None:
    nodes = {**ONBOARDING, "sms": node("sms", NodeKind.SEND, "dnoe")}
    [problem] = check_graph("invite", nodes, 7 * DAY_MS, ENTRY_PATH)
    assert problem.path == ("journeys", 0, "nodes", "sms", "next0")
    assert problem.message == "next 'dnoe' is not a node of this journey; did you mean 'done'?"


def test_a_missing_node_with_no_near_name_lists_the_nodes() -> None:
    nodes = graph(node("a", NodeKind.SEND, "zzz"), node("b", NodeKind.EXIT))
    assert messages("a", nodes)[0] == "next 'zzz' is not a node of this journey (nodes: a, b)"


def test_an_unknown_entry_is_reported_at_the_entry() -> None:
    [problem] = check_graph("start", ONBOARDING, 7 * DAY_MS, ENTRY_PATH)
    assert problem.path == ENTRY_PATH
    assert "entry 'start' is not a node" in problem.message


def test_a_node_no_path_reaches_is_reported() -> None:
    nodes = {**ONBOARDING, "orphan": node("orphan", NodeKind.SEND, "done")}
    assert messages("invite", nodes) == ["node 'orphan' is never reached from the entry 'invite'"]


def test_a_cycle_without_a_wait_is_one_problem_naming_the_loop() -> None:
    nodes = graph(
        node("check", NodeKind.BRANCH, "nudge", "done"),
        node("nudge", NodeKind.SEND, "check"),
        node("done", NodeKind.EXIT),
    )
    assert messages("check", nodes) == [
        "the cycle check -> nudge -> check has no wait in it: a customer would go round it "
        "at once; put a wait or a wait_for on it"
    ]


def test_a_node_looping_to_itself_is_a_cycle() -> None:
    nodes = graph(node("again", NodeKind.DECIDE, "again", "done"), node("done", NodeKind.EXIT))
    assert messages("again", nodes)[0].startswith("the cycle again -> again has no wait")


def test_a_cycle_through_a_wait_is_fine() -> None:
    nodes = graph(
        node("remind", NodeKind.SEND, "pause"),
        node("pause", NodeKind.WAIT, "check", wait_ms=DAY_MS),
        node("check", NodeKind.BRANCH, "remind", "done"),
        node("done", NodeKind.EXIT),
    )
    assert messages("remind", nodes) == []


def test_a_wait_longer_than_the_max_duration_is_reported_in_plain_units() -> None:
    nodes = {
        **ONBOARDING,
        "wait_install": node(
            "wait_install", NodeKind.WAIT_FOR, "series", "sms", wait_ms=10 * DAY_MS
        ),
    }
    assert messages("invite", nodes) == [
        "waits up to 10d, longer than the journey's max_duration of 7d: the run would end first"
    ]


def test_a_wait_whose_length_only_the_run_knows_is_not_reported() -> None:
    nodes = {**ONBOARDING, "wait_install": node("wait_install", NodeKind.WAIT, "series")}
    nodes["sms"] = node("sms", NodeKind.SEND, "done")
    assert "waits up to" not in " ".join(messages("invite", nodes))


def test_split_weights_must_be_positive_and_add_up_to_100() -> None:
    path = ("journeys", 0, "nodes", "ab", "weights")
    assert check_split_weights([50, 50], path) == []
    problems = check_split_weights([70, 20, 0], path)
    assert [(p.path, p.message) for p in problems] == [
        ((*path, 2), "a weight must be a positive percentage, got 0"),
        (path, "weights add up to 90 (70 + 20 + 0), not 100"),
    ]


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[dict[str, NodeSpec], dict[str, list[str]]]:
    names = [f"n{i}" for i in range(draw(st.integers(1, 8)))]
    kinds = [NodeKind.SEND, NodeKind.WAIT, NodeKind.BRANCH]
    nodes, successors = {}, {}
    for name in names:
        targets = draw(st.lists(st.sampled_from(names), max_size=3))
        kind = draw(st.sampled_from(kinds))
        nodes[name] = node(name, kind, *targets, wait_ms=DAY_MS if kind.waits else None)
        successors[name] = targets if not kind.waits else []
    return nodes, successors


def _has_instant_cycle(successors: dict[str, list[str]]) -> bool:
    """Brute force: a node that can reach itself through nodes that do not wait."""
    for start in successors:
        frontier, seen = list(successors[start]), set()
        while frontier:
            current = frontier.pop()
            if current == start:
                return True
            if current not in seen:
                seen.add(current)
                frontier.extend(successors[current])
    return False


@settings(max_examples=300, derandomize=True, database=None)
@given(random_graphs())
def test_a_cycle_without_a_wait_is_reported_exactly_when_one_exists(
    generated: tuple[dict[str, NodeSpec], dict[str, list[str]]],
) -> None:
    nodes, successors = generated
    spinning = [m for m in messages("n0", nodes) if m.startswith("the cycle")]
    assert bool(spinning) == _has_instant_cycle(successors)
