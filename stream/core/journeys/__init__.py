"""Multi-step journeys (issue 22): so far the checks of a journey's node graph."""

from stream.core.journeys.graph import (
    Edge,
    GraphProblem,
    NodeKind,
    NodeSpec,
    check_graph,
    check_split_weights,
)

__all__ = ["Edge", "GraphProblem", "NodeKind", "NodeSpec", "check_graph", "check_split_weights"]
