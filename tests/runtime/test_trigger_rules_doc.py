"""docs/semantics.md's decision table is what planrun decides, cell by cell (its source is the
one table in runtime/planrun/core/trigger_rules.py), and the rules keep Airflow's meaning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import REPO, planc_cli

from planrun.core import trigger_rules as tr

# The columns: one dependency's outcome, and the kind the rules read it as (None: the plan is
# stopping, so an ordinary step is cancelled whatever its rule).
COLUMNS = (
    ("success", tr.OK, False),
    ("failed", tr.FAILED, False),
    ("timed_out", tr.FAILED, False),
    ("tolerated", tr.TOLERATED, False),
    ("skipped (condition)", tr.SKIPPED, False),
    ("upstream_failed", tr.FAILED, False),
    ("cancelled (abort)", tr.FAILED, True),
    ("cancelled (interrupt)", tr.INTERRUPTED, True),
)
CELL = {"run": "runs", "skipped": "skipped", "upstream_failed": "**upstream_failed**"}


def decision_table() -> str:
    head = "| trigger_rule | " + " | ".join(name for name, _, _ in COLUMNS) + " |\n"
    rule_line = "|---" * (len(COLUMNS) + 1) + "|\n"
    rows = []
    for name, rule in tr.RULES.items():
        cells = [
            "cancelled" if stopping and not rule.cleanup else CELL[tr.verdict(name, frozenset({k}))]
            for _, k, stopping in COLUMNS
        ]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |\n")
    return head + rule_line + "".join(rows)


def test_the_docs_show_the_decision_table_of_the_code() -> None:
    doc = (REPO / "docs" / "semantics.md").read_text(encoding="utf-8")
    assert decision_table() in doc


def test_the_docs_list_every_rule_with_its_meaning() -> None:
    doc = (REPO / "docs" / "semantics.md").read_text(encoding="utf-8")
    for name, rule in tr.RULES.items():
        assert f"| `{name}` | {rule.meaning} |" in doc


def test_every_place_that_names_the_rules_agrees_with_the_table() -> None:
    plan_schema = json.loads((REPO / "compiler/planc/plan.schema.json").read_text("utf-8"))
    ir_schema = json.loads((REPO / "runtime/planrun/core/ir.schema.json").read_text("utf-8"))
    step = plan_schema["definitions"]["step"]["properties"]["trigger_rule"]
    assert step["enum"] == list(tr.NAMES)
    found = [
        node["enum"]
        for node in _walk(ir_schema)
        if isinstance(node, dict) and node.get("enum", [None])[0] == "all_success"
    ]
    assert found == [list(tr.NAMES)]


def _walk(node: object) -> list[object]:
    out = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        out.extend(_walk(child))
    return out


# Airflow's TriggerRuleDep with `flag_upstream_failed`, for upstream states it shares with us
# (S success, F failed, U upstream_failed, K skipped): the state it sets or "run".
AIRFLOW = [
    ("all_success", "SF", "upstream_failed"),
    ("all_success", "SK", "skipped"),
    ("none_failed", "SK", "run"),
    ("none_failed", "SU", "upstream_failed"),
    ("none_failed_min_one_success", "KK", "skipped"),
    ("none_failed_min_one_success", "SK", "run"),
    ("none_failed_min_one_success", "SF", "upstream_failed"),
    ("one_failed", "SU", "run"),
    ("one_failed", "SK", "skipped"),
    ("one_success", "FU", "upstream_failed"),
    ("one_success", "KK", "skipped"),
    ("one_done", "KF", "run"),
    ("one_done", "KK", "skipped"),
    ("all_failed", "FU", "run"),
    ("all_failed", "SF", "upstream_failed"),  # Airflow: skipped (see "Differences")
    ("all_skipped", "KK", "run"),
    ("all_skipped", "KS", "skipped"),
    ("none_skipped", "SF", "run"),
    ("none_skipped", "SK", "skipped"),
    ("all_done_min_one_success", "SF", "run"),
    ("all_done_min_one_success", "FF", "upstream_failed"),
    ("all_done", "FK", "run"),
]
_KIND = {"S": tr.OK, "F": tr.FAILED, "U": tr.FAILED, "K": tr.SKIPPED}


@pytest.mark.parametrize(("rule", "upstream", "expected"), AIRFLOW)
def test_airflow_meaning(rule: str, upstream: str, expected: str) -> None:
    assert tr.verdict(rule, frozenset(_KIND[c] for c in upstream)) == expected


def test_which_rules_fire_early_and_which_are_cleanup() -> None:
    assert {"one_failed", "one_success", "one_done"} == tr.EARLY_RULES
    assert {
        "all_done", "one_failed", "one_done", "all_failed", "none_skipped",
        "all_done_min_one_success",
    } == tr.CLEANUP_RULES  # fmt: skip
    assert tr.fires_early("one_failed", frozenset({tr.TOLERATED}))
    assert not tr.fires_early("one_success", frozenset({tr.FAILED, tr.SKIPPED}))


@pytest.mark.parametrize("rule", sorted(tr.NEEDS_DEPENDENCIES))
def test_rules_that_read_dependencies_are_refused_without_any(tmp_path: Path, rule: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"plan_id: P\nsteps:\n  - {{id: a, command: x, trigger_rule: {rule}}}\n")
    done = planc_cli("check", str(plan))
    assert done.returncode == 1
    assert "error[trigger-without-dependencies]" in done.stdout
    never = rule.startswith("one_") or rule.endswith("min_one_success")
    assert ("so it could never run" in done.stdout) is never
