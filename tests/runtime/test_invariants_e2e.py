"""docs/invariants.md, "At run time": planrun checks a step's invariants before it starts, against
what the run has recorded, whatever brought the step there (a tolerated failure, --only, --from,
--resume). Real processes, the real CLI, the real store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import collect, planrun_cli, write_plan


def plan(invariants: list[str], *steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_id": "INVARIANTS",
        "globals": {"default_timeout_sec": 30, "kill_grace_sec": 1},
        "invariants": invariants,
        "steps": list(steps),
    }


def sh(step_id: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "command": "sh", "args": ["-c", script], **fields}


def run(tmp_path: Path, the_plan: dict[str, Any], *args: str) -> Any:
    path = write_plan(tmp_path, the_plan)
    state = tmp_path / "state"
    done = planrun_cli("run", str(path), "--state-dir", str(state), *args, cwd=tmp_path)
    result = collect(state, done.returncode, done.stdout + done.stderr)
    return result


def upstream_failed_event(result: Any, step_id: str) -> dict[str, Any]:
    found = [e for e in result.events if e.type == "step_upstream_failed" and e.step_id == step_id]
    assert len(found) == 1
    return dict(found[0].payload)


def test_a_tolerated_failure_does_not_let_push_start(tmp_path: Path) -> None:
    pushed = tmp_path / "pushed"
    result = run(
        tmp_path,
        plan(
            ["push requires validate.success"],
            sh("validate", "exit 1", on_failure="continue"),
            sh("push", f"touch {pushed}", depends_on=["validate"]),
            sh("notify", "true", depends_on=["push"], trigger_rule="none_failed"),
        ),
    )
    assert result.exit_code == 1
    assert not pushed.exists()
    assert result.statuses == {
        "validate": "failed",
        "push": "upstream_failed",
        "notify": "upstream_failed",
    }
    assert result.reasons["push"] == "invariant"
    payload = upstream_failed_event(result, "push")
    assert payload["reason"] == "invariant"
    assert payload["detail"] == "`push requires validate.success` does not hold (validate failed)"
    assert not any(e.type == "step_started" and e.step_id == "push" for e in result.events)


def test_never_when_and_a_guard_that_holds(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        plan(
            ["never push when tests.failed", "push after lint.success or lint.skipped"],
            sh("tests", "exit 0"),
            sh("lint", "exit 0"),
            sh("push", "true", depends_on=["tests", "lint"]),
        ),
    )
    assert result.exit_code == 0
    assert result.statuses["push"] == "success"


def test_only_cannot_start_a_step_whose_required_step_was_left_out(tmp_path: Path) -> None:
    # `tests` is not upstream of `push`: --only push leaves it out (skipped, not_selected).
    the_plan = plan(
        ["push requires tests.success"],
        sh("tests", "true"),
        sh("build", "true"),
        sh("push", "true", depends_on=["build"]),
    )
    # One step at a time, in plan order: `tests` has succeeded when push starts (with two at
    # once, push could start first and be refused, as the invariant says: CI saw it).
    first = run(tmp_path, the_plan, "-j", "1")
    assert first.exit_code == 0 and first.statuses["push"] == "success"
    only = run(tmp_path, the_plan, "--only", "push")
    assert only.statuses["build"] == "skipped" and only.reasons["build"] == "reused"
    assert only.statuses["tests"] == "skipped" and only.reasons["tests"] == "not_selected"
    assert only.statuses["push"] == "upstream_failed"
    assert only.reasons["push"] == "invariant"
    assert only.exit_code == 1


def test_only_counts_a_reused_success(tmp_path: Path) -> None:
    the_plan = plan(
        ["push requires validate.success"],
        sh("validate", "true"),
        sh("push", "true", depends_on=["validate"]),
    )
    assert run(tmp_path, the_plan).exit_code == 0
    only = run(tmp_path, the_plan, "--only", "push")
    assert only.reasons["validate"] == "reused"
    assert only.statuses["push"] == "success"
    assert only.exit_code == 0


def test_resume_checks_again_against_what_was_recorded(tmp_path: Path) -> None:
    ok = tmp_path / "validated"
    pushed = tmp_path / "pushed"
    the_plan = plan(
        ["push requires validate.success"],
        sh("validate", f"test -e {ok}", on_failure="continue"),
        sh("push", f"touch {pushed}", depends_on=["validate"]),
    )
    first = run(tmp_path, the_plan)
    assert first.statuses["push"] == "upstream_failed" and not pushed.exists()
    ok.touch()
    resumed = run(tmp_path, the_plan, "--resume", first.run_id)
    assert resumed.statuses == {"validate": "success", "push": "success"}
    assert pushed.exists()
    summary = json.loads((tmp_path / "state" / "runs" / first.run_id / "summary.json").read_text())
    assert summary["steps"]["push"]["status"] == "success"


FALLS_BACK: dict[str, Any] = {"on_failure": "fallback_step", "fallback": "restore"}


def test_a_refused_fallback_leaves_the_failure_unrecovered(tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    result = run(
        tmp_path,
        plan(
            ["restore requires snapshot.success"],
            sh("snapshot", "exit 1", on_failure="continue"),
            sh("merge", "exit 1", depends_on=["snapshot"], **FALLS_BACK),
            sh("restore", f"touch {restored}"),
            sh("push", "true", depends_on=["merge"]),
        ),
    )
    assert not restored.exists()
    assert result.statuses == {
        "snapshot": "failed",
        "merge": "failed",
        "restore": "upstream_failed",
        "push": "upstream_failed",
    }
    assert result.reasons["restore"] == "invariant"
    assert result.exit_code == 1
