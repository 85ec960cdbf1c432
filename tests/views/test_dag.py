"""The DAG layout: longest-path columns, crossing-reducing rows."""

from __future__ import annotations

from collections.abc import Sequence

from bigplan import big_plan

from planrun.views.dag import Layout, layered_layout


def crossings(steps: Sequence[tuple[str, Sequence[str]]], layout: Layout) -> int:
    """Pairs of edges between the same two adjacent columns that cross."""
    pos = layout.positions
    edges = [(pos[d], pos[s]) for s, deps in steps for d in deps if pos[s][0] - pos[d][0] == 1]
    count = 0
    for i, (a1, a2) in enumerate(edges):
        for b1, b2 in edges[i + 1 :]:
            if a1[0] == b1[0] and (a1[1] - b1[1]) * (a2[1] - b2[1]) < 0:
                count += 1
    return count


def test_a_step_sits_one_column_right_of_its_deepest_dependency() -> None:
    steps = [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["a", "c"]), ("e", [])]
    layout = layered_layout(steps)
    columns = {step: col for step, (col, _) in layout.positions.items()}
    assert columns == {"a": 0, "e": 0, "b": 1, "c": 2, "d": 3}
    assert layout.layer_sizes == [2, 1, 1, 1] and layout.layers == 4 and layout.rows == 2


def test_rows_are_a_permutation_within_each_column() -> None:
    steps = [(s["id"], s.get("depends_on", [])) for s in big_plan()["steps"]]
    layout = layered_layout(steps)
    assert layout.layers == 20 and layout.rows == 50
    for column in range(layout.layers):
        rows = sorted(r for c, r in layout.positions.values() if c == column)
        assert rows == list(range(layout.layer_sizes[column]))


def test_barycenter_sweeps_untangle_a_crossed_pair() -> None:
    # Source order would draw x1->y2 and x2->y1 crossing; the layout swaps y1 and y2.
    steps = [("x1", []), ("x2", []), ("y1", ["x2"]), ("y2", ["x1"])]
    layout = layered_layout(steps)
    assert crossings(steps, layout) == 0


def test_sweeps_reduce_crossings_on_a_big_plan() -> None:
    steps = [(s["id"], s.get("depends_on", [])) for s in big_plan()["steps"]]
    source_order = Layout({s: (int(s[1:3]), int(s[4:])) for s, _ in steps}, [50] * 20)
    assert crossings(steps, layered_layout(steps)) < crossings(steps, source_order) * 0.6


def test_empty_plan() -> None:
    layout = layered_layout([])
    assert layout.positions == {} and layout.layers == 0 and layout.rows == 0
