"""Small things a new user trips over: DOT line breaks, the bound's L > W, plurals."""

from __future__ import annotations

from pathlib import Path

from support import REPO, planc_cli

RULES = """\
plan_id: DRAW
globals: {default_timeout_sec: 60}
steps:
  - {id: a, command: "true"}
  - {id: b, command: "true", depends_on: [a], trigger_rule: all_done}
"""


def test_dot_labels_break_lines_the_graphviz_way(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(RULES)
    dot = planc_cli("graph", "p.yaml", cwd=tmp_path).stdout
    assert '"b" [label="b\\n[all_done]"];' in dot  # \n, which Graphviz draws as a new line
    assert "\\\\n" not in dot  # not an escaped backslash, drawn as a literal `\n`
    mermaid = planc_cli("graph", "p.yaml", "--format", "mermaid", cwd=tmp_path).stdout
    assert 's1["b<br/>[all_done]"]' in mermaid


def test_bound_says_why_the_path_can_exceed_the_work() -> None:
    done = planc_cli("bound", str(REPO / "plans" / "safe-merge.yaml"))
    assert done.returncode == 0
    assert (
        "  L > W: L counts `restore` 4 times (after each step on the path that falls back to it),"
        " W counts every step once; a fallback runs at most once per run, so L over-estimates\n"
    ) in done.stdout
    plain = planc_cli("bound", str(REPO / "plans" / "quickstart.yaml"))
    assert "L > W" not in plain.stdout
