"""The shape checks of a journey's node graph, before anything runs (issue 22).

A journey is a graph of named nodes: each names the nodes that come next (its edges,
labelled: ``next``, ``sent``, ``timeout``, a branch case, a split arm). ``check_graph``
finds what would strand or spin a customer, with the path of the offending value so the
policy loader can name the file and line:

- an edge to a node that does not exist (with the nearest name);
- an entry node that does not exist;
- a node no path from the entry reaches;
- a cycle with no wait in it (a customer would go round it at once, for ever);
- a wait longer than the journey's maximum duration (the run would end first);
- split weights that do not add up to 100.

Pure: no CEL, no clock, no state. The journey model (parsing, the run state) builds on it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

Path = tuple[str | int, ...]  # where a value sits in the policy document
SPLIT_TOTAL = 100  # split weights are percentages


class NodeKind(Enum):
    """What a node does; ``WAIT`` and ``WAIT_FOR`` are the ones that let time pass."""

    SEND = "send"
    WAIT = "wait"
    WAIT_FOR = "wait_for"
    BRANCH = "branch"
    SPLIT = "split"
    DECIDE = "decide"
    EXIT = "exit"

    @property
    def waits(self) -> bool:
        """True if a customer stays at the node until some time has passed."""
        return self in (NodeKind.WAIT, NodeKind.WAIT_FOR)


@dataclass(frozen=True, slots=True)
class Edge:
    """One way out of a node: its label, the node it leads to, where it is written."""

    label: str
    target: str
    path: Path


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node as the checks see it.

    ``longest_wait_ms``: for a wait, the longest it can hold a customer (a duration or a
    ``wait_for`` timeout; None where only the run can tell, as for a time taken from the
    event).
    """

    name: str
    kind: NodeKind
    edges: tuple[Edge, ...]
    path: Path
    longest_wait_ms: int | None = None


@dataclass(frozen=True, slots=True)
class GraphProblem:
    """Something wrong with the graph, at a path of the policy document."""

    path: Path
    message: str


def check_graph(
    entry: str, nodes: Mapping[str, NodeSpec], max_duration_ms: int, entry_path: Path
) -> list[GraphProblem]:
    """Every problem of the graph; none means every node is reachable and can end."""
    problems = _dangling(nodes)
    if entry not in nodes:
        problems.append(GraphProblem(entry_path, _unknown("entry", entry, nodes)))
        return problems
    reached = _reachable(entry, nodes)
    problems += [
        GraphProblem(node.path, f"node '{name}' is never reached from the entry '{entry}'")
        for name, node in nodes.items()
        if name not in reached
    ]
    problems += [_spinning(cycle, nodes) for cycle in _cycles_without_wait(nodes)]
    problems += [
        GraphProblem(
            node.path,
            f"waits up to {_duration(node.longest_wait_ms)}, longer than the journey's "
            f"max_duration of {_duration(max_duration_ms)}: the run would end first",
        )
        for node in nodes.values()
        if node.longest_wait_ms is not None and node.longest_wait_ms > max_duration_ms
    ]
    return problems


def check_split_weights(weights: Sequence[int], path: Path) -> list[GraphProblem]:
    """A split's arm weights: each positive, adding up to 100."""
    problems = [
        GraphProblem((*path, index), f"a weight must be a positive percentage, got {weight}")
        for index, weight in enumerate(weights)
        if weight <= 0
    ]
    if sum(weights) != SPLIT_TOTAL:
        total = " + ".join(str(w) for w in weights) or "nothing"
        problems.append(GraphProblem(path, f"weights add up to {sum(weights)} ({total}), not 100"))
    return problems


def _dangling(nodes: Mapping[str, NodeSpec]) -> list[GraphProblem]:
    return [
        GraphProblem(edge.path, _unknown(edge.label, edge.target, nodes))
        for node in nodes.values()
        for edge in node.edges
        if edge.target not in nodes
    ]


def _unknown(label: str, target: str, nodes: Iterable[str]) -> str:
    names = sorted(nodes)
    close = difflib.get_close_matches(target, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (nodes: {', '.join(names)})"
    return f"{label} '{target}' is not a node of this journey{hint}"


def _reachable(entry: str, nodes: Mapping[str, NodeSpec]) -> set[str]:
    seen = {entry}
    todo = [entry]
    while todo:
        for edge in nodes[todo.pop()].edges:
            if edge.target in nodes and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def _cycles_without_wait(nodes: Mapping[str, NodeSpec]) -> list[list[str]]:
    """The cycles among nodes that do not wait (strongly connected components, Tarjan),
    each in the order of the policy: one problem per cycle, not per node."""
    instant = {name for name, node in nodes.items() if not node.kind.waits}
    successors = {
        name: [e.target for e in nodes[name].edges if e.target in instant] for name in instant
    }
    order = {name: index for index, name in enumerate(nodes)}
    cycles = []
    for component in _components(successors):
        looped = len(component) > 1 or component[0] in successors[component[0]]
        if looped:
            cycles.append(sorted(component, key=order.__getitem__))
    return sorted(cycles, key=lambda cycle: order[cycle[0]])


def _components(successors: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in successors:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            name, position = work.pop()
            if position == 0:
                index[name] = low[name] = len(index)
                stack.append(name)
                on_stack.add(name)
            children = successors[name]
            if position < len(children):
                work.append((name, position + 1))
                child = children[position]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[name] = min(low[name], index[child])
                continue
            if low[name] == index[name]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == name:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[name])
    return components


def _spinning(cycle: list[str], nodes: Mapping[str, NodeSpec]) -> GraphProblem:
    loop = " -> ".join([*cycle, cycle[0]])
    return GraphProblem(
        nodes[cycle[0]].path,
        f"the cycle {loop} has no wait in it: a customer would go round it at once; "
        "put a wait or a wait_for on it",
    )


def _duration(ms: int | None) -> str:
    if ms is None:
        return "an unknown time"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
