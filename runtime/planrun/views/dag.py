"""A simple layered layout of the plan's DAG (left to right), drawn as SVG by the report and UI.

Layering is longest path from the roots (a step sits one column right of its deepest
dependency), which is exact and O(V + E) because the IR lists steps in topological order.
Rows within a column come from a few barycenter sweeps (the mean row of a node's neighbours in
the previous column, then the next), the classic cheap way to reduce edge crossings; each
sweep is O(V + E) too, plus the sorting. No
dummy nodes: an edge that spans several columns is drawn as one curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planrun.core.byvalue import ByValue

SWEEPS = 4


@dataclass(frozen=True, eq=False, repr=False)
class Layout(ByValue):
    positions: dict[str, tuple[int, int]]  # step id -> (column, row within the column)
    layer_sizes: list[int]

    @property
    def layers(self) -> int:
        return len(self.layer_sizes)

    @property
    def rows(self) -> int:
        return max(self.layer_sizes, default=0)


def layered_layout(steps: Sequence[tuple[str, Sequence[str]]]) -> Layout:
    """`steps` are (id, depends_on) in topological order (as in the IR)."""
    parents = {step_id: [d for d in deps] for step_id, deps in steps}
    children: dict[str, list[str]] = {step_id: [] for step_id, _ in steps}
    for step_id, deps in steps:
        for dep in deps:
            children[dep].append(step_id)
    layer_of: dict[str, int] = {}
    for step_id, deps in steps:
        layer_of[step_id] = 1 + max((layer_of[d] for d in deps), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for step_id, _ in steps:
        columns[layer_of[step_id]].append(step_id)
    rows = _rows(columns)
    tallest = max((len(c) for c in columns), default=0)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        neighbours = parents if downward else children
        order = range(1, len(columns)) if downward else range(len(columns) - 2, -1, -1)
        for index in order:
            members = columns[index]
            _sort_by_barycenter(members, neighbours, rows)
            # Only this column moved: update its rows, not every node's (that made a sweep
            # O(columns x steps): 11 s for a 10k-step plan's report).
            offset = (tallest - len(members)) / 2
            for row, step_id in enumerate(members):
                rows[step_id] = row + offset
    positions = {
        step_id: (column, row)
        for column, members in enumerate(columns)
        for row, step_id in enumerate(members)
    }
    return Layout(positions, [len(c) for c in columns])


def _rows(columns: list[list[str]]) -> dict[str, float]:
    """Each node's row, centred, so columns of different heights compare fairly."""
    tallest = max((len(c) for c in columns), default=0)
    return {
        step_id: row + (tallest - len(members)) / 2
        for members in columns
        for row, step_id in enumerate(members)
    }


def _sort_by_barycenter(
    members: list[str], neighbours: dict[str, list[str]], rows: dict[str, float]
) -> None:
    def key(item: tuple[int, str]) -> tuple[float, int]:
        index, step_id = item
        near = [rows[n] for n in neighbours[step_id]]
        # A node with no neighbour on that side keeps its place relative to the others.
        return (sum(near) / len(near) if near else rows[step_id], index)

    members[:] = [step_id for _, step_id in sorted(enumerate(members), key=key)]
