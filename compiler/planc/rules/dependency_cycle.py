"""Cycles in the dependency graph (explicit and implicit `consumes` edges)."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.graph import PlanGraph, strongly_connected
from planc.rules.base import RuleContext

CODES = {
    "dependency-cycle": (
        "steps depend on each other in a cycle",
        "A plan is a directed acyclic graph: no step may (transitively) depend on itself.\n\n"
        "    - id: a\n      depends_on: [b]\n    - id: b\n      depends_on: [a]\n\n"
        "The message lists the cycle; remove one of its edges. Edges added by `consumes` count.",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    graph = ctx.graph
    if graph.topo_order() is not None:
        return
    for cycle in _cycles(graph):
        first = min(cycle, key=lambda sid: graph.steps[sid].index)
        start = cycle.index(first)
        ordered = cycle[start:] + cycle[:start]
        step = graph.steps[first]
        successor = ordered[1] if len(ordered) > 1 else first
        span = next((r.span for r in step.refs("depends_on") if r.name == successor), step.id_span)
        path = " -> ".join([*ordered, first])
        yield error(
            ctx.path,
            span,
            "dependency-cycle",
            f"dependency cycle: {path}",
            "a plan must be acyclic; remove one of these dependencies",
        )


def _cycles(graph: PlanGraph) -> list[list[str]]:
    """One cycle per strongly connected component with more than one step."""
    order = sorted(graph.steps, key=lambda s: graph.steps[s].index)
    components = strongly_connected(order, lambda step: graph.deps[step])
    return [_cycle_within(graph, set(component)) for component in components]


def _cycle_within(graph: PlanGraph, component: set[str]) -> list[str]:
    """A concrete cycle through the component, following depends_on edges."""
    start = min(component, key=lambda s: graph.steps[s].index)
    path = [start]
    position = {start: 0}
    node = start
    while True:
        node = next(d for d in graph.deps[node] if d in component)
        if node in position:
            return path[position[node] :]
        position[node] = len(path)
        path.append(node)
