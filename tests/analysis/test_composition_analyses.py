"""The analyses over matrices and fan-outs (docs/composition.md, "What the analyses see"):
graph clusters, bounds that count instances, simulate patterns."""

from __future__ import annotations

import json
from pathlib import Path

from support import REPO, planc_cli

GOLDEN = REPO / "tests" / "golden" / "valid"


def test_graph_draws_a_matrix_as_one_cluster_and_a_fan_out_with_its_bound() -> None:
    done = planc_cli("graph", "composition.yaml", cwd=GOLDEN)
    assert done.returncode == 0, done.stderr
    assert (
        '  subgraph "cluster_test" { label="test (matrix)"; "test-linux-3.11"; "test-linux-3.12";'
        ' "test-mac-3.12"; }'
    ) in done.stdout.splitlines()
    assert '  "each" [label="each\\n[for_each, at most 8]"];' in done.stdout.splitlines()
    mermaid = planc_cli("graph", "--format", "mermaid", "composition.yaml", cwd=GOLDEN).stdout
    assert '  subgraph g0 ["test (matrix)"]\n    s0\n    s1\n    s2\n  end\n' in mermaid


def _bound(path: Path, *extra: str) -> dict[str, object]:
    done = planc_cli("bound", "--format", "json", *extra, str(path))
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_bound_counts_matrix_rounds_and_fan_out_items(tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "plan_id: B\nglobals: {default_timeout_sec: 10, kill_grace_sec: 0, max_concurrency: 8}\n"
        "steps:\n"
        "  - id: m\n    matrix: {n: [1, 2, 3, 4, 5]}\n    max_parallel: 2\n    command: 'true'\n"
        "  - id: list\n    command: 'true'\n    provides: [xs]\n    depends_on: [m]\n"
        "  - id: f\n    for_each: '${{ steps.list.outputs.xs }}'\n    max_items: 7\n"
        "    max_parallel: 3\n    depends_on: [list]\n    command: echo\n"
        "    args: ['${{ item }}']\n",
        encoding="utf-8",
    )
    data = _bound(plan)
    # matrix: ceil(5/2) = 3 rounds of 10 s; list 10 s; fan-out: ceil(7/3) = 3 rounds of 10 s
    assert data["critical_path_sec"] == 30 + 10 + 30
    # W: 5 instances + list + 7 fan-out instances, 10 s each
    assert data["work_sec"] == (5 + 1 + 7) * 10


def test_simulate_takes_group_patterns_and_globs() -> None:
    def failing(*patterns: str) -> str:
        args = [arg for p in patterns for arg in ("--fail", p)]
        done = planc_cli("simulate", "--format", "json", *args, "composition.yaml", cwd=GOLDEN)
        assert done.returncode == 0, done.stderr
        return ",".join(json.loads(done.stdout)["fail"])

    assert failing("test[*]") == "test-linux-3.11,test-linux-3.12,test-mac-3.12"
    assert failing("test-linux-*") == "test-linux-3.11,test-linux-3.12"
    assert failing("*.check", "each[*]") == "api.check,web.check,each"
    done = planc_cli("simulate", "--fail", "tset[*]", "composition.yaml", cwd=GOLDEN)
    assert done.returncode == 2
    assert "`tset[*]` is not a step of composition.yaml" in done.stderr
