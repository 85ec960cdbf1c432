"""PlanGraph: the step dependency graph (explicit depends_on + implicit consumes edges)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from planc.model import SourcePlan, SourceStep


@dataclass(eq=False, repr=False)
class PlanGraph:
    """Built from any schema-valid plan: unknown ids are left out, cycles are tolerated.

    Rules that report unknown ids and cycles run on the plan; every other rule reads this graph.
    """

    steps: dict[str, SourceStep]
    deps: dict[str, list[str]]
    dependents: dict[str, list[str]]
    provider_of: dict[str, str]
    fallback_steps: set[str]

    def is_upstream(self, ancestor: str, step_id: str) -> bool:
        """Whether `step_id` transitively depends on `ancestor`: a search that stops as soon as
        it finds it, so the common case (a direct dependency) costs one lookup and no plan
        pays for the ancestor set of every step."""
        direct = self.deps.get(step_id, ())
        if ancestor in direct:
            return True
        seen: set[str] = {step_id}
        stack = list(direct)
        while stack:
            current = stack.pop()
            if current == ancestor:
                return True
            if current not in seen:
                seen.add(current)
                stack.extend(self.deps.get(current, ()))
        return False

    def topo_order(self) -> list[str] | None:
        """Kahn's algorithm, ties broken by source order; None when the graph has a cycle.

        Computed once: the cycle rule and lowering both ask (do not change the list)."""
        return self._topo_order

    @cached_property
    def _topo_order(self) -> list[str] | None:
        indegree = {sid: len(self.deps[sid]) for sid in self.steps}
        ready = [(self.steps[sid].index, sid) for sid, n in indegree.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, sid = heapq.heappop(ready)
            order.append(sid)
            for child in self.dependents[sid]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, (self.steps[child].index, child))
        return order if len(order) == len(self.steps) else None


def build_graph(plan: SourcePlan) -> PlanGraph:
    steps: dict[str, SourceStep] = {}
    for step in plan.steps:
        steps.setdefault(step.id, step)
    provider_of: dict[str, str] = {}
    for step in steps.values():
        for name in step.names("provides"):
            provider_of.setdefault(name, step.id)
    deps: dict[str, list[str]] = {}
    dependents: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        wanted = list(step.names("depends_on"))
        wanted += [provider_of[name] for name in step.names("consumes") if name in provider_of]
        setup = step.get("teardown_for")
        if isinstance(setup, str):  # a teardown waits for its setup (semantics.md §5b)
            wanted.append(setup)
        unique = [d for d in dict.fromkeys(wanted) if d in steps and d != sid]
        deps[sid] = unique
        for dep in unique:
            dependents[dep].append(sid)
    fallback_steps = {
        str(step.get("fallback")) for step in steps.values() if step.get("fallback") in steps
    }
    return PlanGraph(steps, deps, dependents, provider_of, fallback_steps)


def strongly_connected(
    nodes: Iterable[str], successors: Callable[[str], Sequence[str]]
) -> list[list[str]]:
    """The strongly connected components with more than one node, in the order Tarjan's
    algorithm closes them (iterative: a long chain cannot hit the recursion limit). Roots are
    tried in the order of `nodes`; each component lists its members as they leave the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = successors(node)
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
