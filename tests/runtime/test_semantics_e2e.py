"""docs/semantics.md row by row, through the real compiler and planrun with real processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import run_plan


def plan(*steps: dict[str, Any], **globals_: Any) -> dict[str, Any]:
    return {
        "plan_id": "E2E",
        "globals": {"default_timeout_sec": 30, "kill_grace_sec": 1, **globals_},
        "steps": list(steps),
    }


def ok(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "true", **fields}


def fail(step_id: str, code: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", f"exit {code}"], **fields}


def test_abort_critical_cancels_dependents_and_fails_the_plan(tmp_path: Path) -> None:
    result = run_plan(
        tmp_path, plan(fail("a"), ok("b", depends_on=["a"]), ok("c", depends_on=["b"]))
    )
    assert result.exit_code == 1
    assert result.statuses == {"a": "failed", "b": "cancelled", "c": "cancelled"}
    assert result.reasons["b"] == "aborted"
    assert result.summary["status"] == "failed"
    assert result.types("a") == ["step_started", "step_failed"]


def test_abort_lets_running_steps_finish_and_cancels_pending(tmp_path: Path) -> None:
    # `slow` runs alongside `a`; when `a` aborts, `slow` finishes, `later` never starts.
    steps = (
        fail("a"),
        {"id": "slow", "command": "sh", "args": ["-c", "sleep 0.5"]},
        ok("later", depends_on=["slow"]),
    )
    result = run_plan(tmp_path, plan(*steps, max_concurrency=2))
    assert result.statuses == {"a": "failed", "slow": "success", "later": "cancelled"}


def test_abort_not_critical_skips_only_its_branch(tmp_path: Path) -> None:
    steps = (fail("a", critical=False), ok("b", depends_on=["a"]), ok("other"))
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 1
    assert result.statuses == {"a": "failed", "b": "upstream_failed", "other": "success"}
    assert result.reasons["b"] == "upstream"


def test_skip_dependents_propagates(tmp_path: Path) -> None:
    steps = (
        fail("a", on_failure="skip_dependents"),
        ok("b", depends_on=["a"]),
        ok("c", depends_on=["b"]),
        ok("d"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 1
    assert result.statuses == {
        "a": "failed", "b": "upstream_failed", "c": "upstream_failed", "d": "success"
    }  # fmt: skip


def test_continue_runs_dependents_and_succeeds(tmp_path: Path) -> None:
    result = run_plan(
        tmp_path, plan(fail("a", 3, on_failure="continue"), ok("b", depends_on=["a"]))
    )
    assert result.exit_code == 0
    assert result.statuses == {"a": "failed", "b": "success"}
    assert result.summary["steps"]["a"]["exit_code"] == 3
    assert result.summary["status"] == "success"


def test_fallback_success_recovers_the_step(tmp_path: Path) -> None:
    steps = (
        fail("merge", on_failure="fallback_step", fallback="restore"),
        ok("push", depends_on=["merge"]),
        ok("restore"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 0
    assert result.statuses == {"merge": "failed", "push": "success", "restore": "success"}
    assert result.summary["steps"]["merge"]["recovered_by"] == "restore"
    order = [(e.type, e.step_id) for e in result.events if e.step_id]
    assert order.index(("step_failed", "merge")) < order.index(("step_started", "restore"))
    assert order.index(("step_recovered", "merge")) < order.index(("step_started", "push"))


def test_fallback_failure_aborts(tmp_path: Path) -> None:
    steps = (
        fail("merge", on_failure="fallback_step", fallback="restore"),
        ok("push", depends_on=["merge"]),
        fail("restore"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 1
    assert result.statuses == {"merge": "failed", "push": "cancelled", "restore": "failed"}


def test_unneeded_fallback_is_skipped(tmp_path: Path) -> None:
    result = run_plan(tmp_path, plan(ok("a", on_failure="fallback_step", fallback="r"), ok("r")))
    assert result.exit_code == 0
    assert result.statuses == {"a": "success", "r": "skipped"}
    assert result.reasons["r"] == "not_needed"


def test_cleanup_runs_after_abort(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    steps = (
        fail("a"),
        ok("b", depends_on=["a"]),
        {
            "id": "cleanup",
            "command": "touch",
            "args": [str(marker)],
            "depends_on": ["b"],
            "trigger_rule": "all_done",
        },
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.exit_code == 1
    assert result.statuses == {"a": "failed", "b": "cancelled", "cleanup": "success"}
    assert marker.exists()


def test_one_failed_alert(tmp_path: Path) -> None:
    steps = (ok("a"), ok("alert", depends_on=["a"], trigger_rule="one_failed"))
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"a": "success", "alert": "skipped"}
    assert result.exit_code == 0


def test_condition_false_skips_and_propagates(tmp_path: Path) -> None:
    steps = (
        ok("a", condition="env.PLAN_E2E_NEVER_SET == 'yes'"),
        ok("b", depends_on=["a"]),
        ok("c", depends_on=["a"], trigger_rule="none_failed"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"a": "skipped", "b": "skipped", "c": "success"}
    assert result.reasons == {"a": "condition", "b": "upstream", "c": None}
    assert result.exit_code == 0


def test_condition_reads_upstream_exit_code(tmp_path: Path) -> None:
    steps = (
        fail("probe", 3, on_failure="continue"),
        ok("on_three", depends_on=["probe"], condition="steps.probe.exit_code == 3"),
        ok("on_four", depends_on=["probe"], condition="steps.probe.exit_code == 4"),
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"probe": "failed", "on_three": "success", "on_four": "skipped"}


def test_validate_timeout_never_pushes(tmp_path: Path) -> None:
    pushed = tmp_path / "pushed"
    steps = (
        {
            "id": "validate",
            "command": "sleep",
            "args": ["30"],
            "timeout_sec": 0.5,
            "on_failure": "skip_dependents",
        },
        {"id": "push", "command": "touch", "args": [str(pushed)], "depends_on": ["validate"]},
    )
    result = run_plan(tmp_path, plan(*steps))
    assert result.statuses == {"validate": "timed_out", "push": "upstream_failed"}
    assert result.reasons["validate"] == "timeout"
    assert not pushed.exists()
    assert result.exit_code == 1


def test_retries_then_success(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    )
    step = {
        "id": "flaky",
        "command": "sh",
        "args": ["-c", script],
        "retries": 3,
        "retry_delay_sec": 0.05,
        "retry_backoff": 2,
    }
    result = run_plan(tmp_path, plan(step))
    assert result.exit_code == 0
    assert result.types("flaky") == [
        "step_started",
        "step_retrying",
        "step_started",
        "step_retrying",
        "step_started",
        "step_succeeded",
    ]
    delays = [e.payload["delay_sec"] for e in result.events if e.type == "step_retrying"]
    assert delays == [0.05, 0.1]
    assert result.summary["steps"]["flaky"]["attempts"] == 3


def test_missing_command_fails_cleanly(tmp_path: Path) -> None:
    result = run_plan(tmp_path, plan({"id": "ghost", "command": "no-such-command-planrun-test"}))
    assert result.exit_code == 1
    assert result.statuses == {"ghost": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert "command not found" in failed.payload["reason"]


def test_missing_cwd_fails_cleanly(tmp_path: Path) -> None:
    result = run_plan(tmp_path, plan(ok("a", cwd="does/not/exist")))
    assert result.statuses == {"a": "failed"}
    failed = next(e for e in result.events if e.type == "step_failed")
    assert "cwd" in failed.payload["reason"]


def test_environment_of_a_step(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    step = {
        "id": "show",
        "command": "sh",
        "args": ["-c", f'echo "$PLAN_RUN_ID $PLAN_STEP_ID $PLAN_ATTEMPT $GLOBAL $LOCAL" > {out}'],
        "env": {"LOCAL": "step"},
    }
    result = run_plan(tmp_path, plan(step, env={"GLOBAL": "plan", "LOCAL": "plan"}))
    assert out.read_text().split() == [result.run_id, "show", "1", "plan", "step"]


def test_jsonl_and_sqlite_hold_the_same_events(tmp_path: Path) -> None:
    import json

    result = run_plan(
        tmp_path, plan(ok("a"), fail("b", on_failure="continue"), ok("c", depends_on=["a", "b"]))
    )
    lines = (result.state_dir / "runs" / result.run_id / "events.jsonl").read_text().splitlines()
    from_file = [json.loads(line) for line in lines]
    assert [e["seq"] for e in from_file] == list(range(1, len(from_file) + 1))
    assert [(e["seq"], e["type"], e["step_id"]) for e in from_file] == [
        (e.seq, e.type, e.step_id) for e in result.events
    ]
    assert from_file[0]["type"] == "run_started" and from_file[-1]["type"] == "run_finished"
    summary = json.loads((result.state_dir / "runs" / result.run_id / "summary.json").read_text())
    assert summary["status"] == "success"
    assert set(summary["steps"]) == {"a", "b", "c"}
