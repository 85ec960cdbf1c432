"""docs/semantics.md §1: a failure stays visible downstream (`upstream_failed`), with real
processes, the real compiler and the real views (issue 13, part 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import REPO, planc_cli, planrun_cli, run_plan, write_plan

from planrun.core.trigger_rules import CLEANUP_RULES, NAMES

ORDINARY_RULES = [rule for rule in NAMES if rule not in CLEANUP_RULES]


def plan(*steps: dict[str, Any], **globals_: Any) -> dict[str, Any]:
    return {
        "plan_id": "UPSTREAM",
        "globals": {"default_timeout_sec": 30, "kill_grace_sec": 1, **globals_},
        "steps": list(steps),
    }


def touch(step_id: str, path: Path, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "touch", "args": [str(path)], **fields}


def fail(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", "exit 1"], **fields}


def safe_merge(tmp_path: Path, build_rule: str, deploy_rule: str) -> dict[str, Any]:
    return plan(
        fail("validate", on_failure="skip_dependents"),
        touch("build", tmp_path / "built", depends_on=["validate"], trigger_rule=build_rule),
        touch("deploy", tmp_path / "pushed", depends_on=["build"], trigger_rule=deploy_rule),
        touch("alert", tmp_path / "alerted", depends_on=["build"], trigger_rule="one_failed"),
    )


def test_a_failed_validation_blocks_deploy_and_runs_the_alert(tmp_path: Path) -> None:
    result = run_plan(tmp_path, safe_merge(tmp_path, "all_success", "none_failed"))
    assert result.statuses == {
        "validate": "failed",
        "build": "upstream_failed",
        "deploy": "upstream_failed",
        "alert": "success",
    }
    assert not (tmp_path / "pushed").exists()
    assert (tmp_path / "alerted").exists()
    assert result.exit_code == 1
    assert result.summary["steps"]["deploy"]["status"] == "upstream_failed"
    assert result.types("deploy") == ["step_upstream_failed"]
    [event] = [e for e in result.events if e.step_id == "deploy"]
    assert event.payload == {"reason": "upstream", "detail": "build upstream_failed"}


@pytest.mark.parametrize("deploy_rule", ORDINARY_RULES)
@pytest.mark.parametrize("build_rule", ORDINARY_RULES)
def test_no_push_after_a_failed_validation_through_any_ordinary_rules(
    tmp_path: Path, build_rule: str, deploy_rule: str
) -> None:
    result = run_plan(tmp_path, safe_merge(tmp_path, build_rule, deploy_rule))
    assert not (tmp_path / "built").exists()
    assert not (tmp_path / "pushed").exists()
    assert result.statuses["deploy"] in ("upstream_failed", "skipped")
    # Even all_skipped, which a success would leave unmet too: a failure never becomes a skip
    # (Airflow says `skipped` there, and a none_failed deploy below it would run).
    assert result.statuses["build"] == "upstream_failed"
    assert result.statuses["alert"] == "success"
    assert result.exit_code == 1


def test_a_condition_skip_is_not_a_failure(tmp_path: Path) -> None:
    steps = (
        touch("optional", tmp_path / "opt", condition="env.PLAN_E2E_NEVER_SET == 'yes'"),
        touch("join", tmp_path / "joined", depends_on=["optional"], trigger_rule="none_failed"),
        touch("alert", tmp_path / "alerted", depends_on=["optional"], trigger_rule="one_failed"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"optional": "skipped", "join": "success", "alert": "skipped"}
    assert result.exit_code == 0


def test_cancelled_by_an_abort_counts_as_a_failure_for_cleanup_rules(tmp_path: Path) -> None:
    # semantics.md §1: `b` never ran because `a` failed and aborted the plan.
    steps = (
        fail("a"),
        touch("b", tmp_path / "b", depends_on=["a"]),
        touch("alert", tmp_path / "alerted", depends_on=["b"], trigger_rule="one_failed"),
        touch("all", tmp_path / "all", depends_on=["b"], trigger_rule="all_failed"),
        touch("partial", tmp_path / "partial", depends_on=["b"], trigger_rule="none_skipped"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {
        "a": "failed",
        "b": "cancelled",
        "alert": "success",
        "all": "success",
        "partial": "success",
    }
    assert result.reasons["b"] == "aborted"
    assert (tmp_path / "alerted").exists()
    assert result.exit_code == 1


def test_one_failed_fires_while_a_sibling_still_runs(tmp_path: Path) -> None:
    # `slow` ends only once the alert has run: without early firing it would time out.
    alerted = tmp_path / "alerted"
    steps = (
        fail("quick", on_failure="continue"),
        {
            "id": "slow",
            "command": "sh",
            "args": ["-c", f"while [ ! -e '{alerted}' ]; do sleep 0.01; done"],
            "timeout_sec": 20,
        },
        touch("alert", alerted, depends_on=["quick", "slow"], trigger_rule="one_failed"),
    )
    result = run_plan(tmp_path, plan(*steps), max_concurrency=2)
    assert result.statuses == {"quick": "failed", "slow": "success", "alert": "success"}
    order = [(e.type, e.step_id) for e in result.events if e.type.startswith("step_")]
    # alert started while slow ran (slow cannot end before alert touched the file); their ends
    # may be reaped in one wake-up, in either order.
    assert order.index(("step_started", "alert")) < order.index(("step_succeeded", "slow"))


def test_one_success_fires_early_and_none_failed_min_one_success_joins(tmp_path: Path) -> None:
    first = tmp_path / "first"
    steps = (
        touch("mirror_a", tmp_path / "a"),
        {
            "id": "mirror_b",
            "command": "sh",
            "args": ["-c", f"while [ ! -e '{first}' ]; do sleep 0.01; done"],
            "timeout_sec": 20,
        },
        touch("first", first, depends_on=["mirror_a", "mirror_b"], trigger_rule="one_success"),
        touch(
            "join",
            tmp_path / "joined",
            depends_on=["mirror_a", "mirror_b"],
            trigger_rule="none_failed_min_one_success",
        ),
    )
    result = run_plan(tmp_path, plan(*steps), max_concurrency=2)
    assert set(result.statuses.values()) == {"success"}


def test_views_show_upstream_failed_apart_from_a_skip(tmp_path: Path) -> None:
    path = write_plan(tmp_path, safe_merge(tmp_path, "all_success", "none_failed"))
    state = tmp_path / "state"
    done = planrun_cli(str(path), "--state-dir", str(state), cwd=tmp_path)
    assert done.returncode == 1
    assert "↯ build upstream: all_success not met: validate failed" not in done.stdout
    assert "↯ build upstream: validate failed" in done.stderr + done.stdout
    shown = planrun_cli("show", "--state-dir", str(state), cwd=tmp_path)
    rows = {line.split()[0]: line for line in shown.stdout.splitlines()[2:]}
    assert "↯ upstream_failed" in rows["deploy"]
    assert "✗1" in shown.stdout.splitlines()[0] and "↯2" in shown.stdout.splitlines()[0]
    report = tmp_path / "report.html"
    made = planrun_cli("report", "--state-dir", str(state), "-o", str(report), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "upstream_failed" in report.read_text(encoding="utf-8")


def test_simulate_shows_upstream_failed(tmp_path: Path) -> None:
    path = write_plan(tmp_path, safe_merge(tmp_path, "all_success", "none_failed"))
    done = planc_cli("simulate", str(path), "--fail", "validate", cwd=REPO)
    lines = {line.split()[1]: line for line in done.stdout.splitlines()[3:] if line.strip()[:1]}
    assert "upstream_failed" in lines["build"] and "validate failed" in lines["build"]
    assert "upstream_failed" in lines["deploy"]
    assert "success" in lines["alert"]
