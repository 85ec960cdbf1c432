"""`planc simulate`: the safe-merge scenario end to end, the semantics table, usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analysis_support import SAFE_MERGE, big_plan, compile_ir
from support import REPO, planc_cli

from planc.analysis.fixed import fixed_exit_code
from planc.analysis.simulate import all_single_failures, simulate


def test_safe_merge_merge_fails_and_the_snapshot_is_restored() -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), "--fail", "merge")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "Simulation of SAFE-MERGE: merge fails (planrun -j1 order, nothing is run)\n"
        "\n"
        "#  step              status   attempts  why\n"
        "1  snapshot          success         1\n"
        "2  pull              success         1\n"
        "3  merge             failed          1  exit 1; falls back to restore_snapshot: recovered\n"
        "4  restore_snapshot  success         1  fallback of merge\n"
        "5  validate          success         1\n"
        "6  push              success         1\n"
        "7  drop_snapshot     success         1\n"
        "-  alert             skipped         -  upstream: no dependency failed\n"
        "\n"
        "plan outcome: success; planrun would exit 0\n"
        "assumed to succeed (not known before they run): snapshot, pull, restore_snapshot,"
        " validate, push, drop_snapshot\n"
    )


def test_safe_merge_restore_fails_too_and_the_plan_aborts() -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), "--fail", "merge,restore_snapshot")
    assert done.returncode == 0  # the simulation itself went fine; the plan would exit 1
    assert done.stdout == (
        "Simulation of SAFE-MERGE: merge fails, restore_snapshot fails"
        " (planrun -j1 order, nothing is run)\n"
        "\n"
        "#  step              status     attempts  why\n"
        "1  snapshot          success           1\n"
        "2  pull              success           1\n"
        "3  merge             failed            1  exit 1; falls back to restore_snapshot:"
        " not recovered\n"
        "4  restore_snapshot  failed            1  exit 1; abort: the plan aborts\n"
        "5  drop_snapshot     success           1\n"
        # An abort caused by a failure counts as a failure for one_failed (semantics.md §1).
        "6  alert             success           1\n"
        "-  validate          cancelled         -  aborted: restore_snapshot failed\n"
        "-  push              cancelled         -  aborted: restore_snapshot failed\n"
        "\n"
        "plan outcome: failed; planrun would exit 1\n"
        "assumed to succeed (not known before they run): snapshot, pull, drop_snapshot,"
        " alert\n"
    )


def test_safe_merge_pull_times_out_on_every_attempt() -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), "--timeout", "pull")
    lines = done.stdout.splitlines()
    assert lines[4] == (
        "2  pull              timed_out         3  timed out on all 3 attempts;"
        " abort: the plan aborts"
    )
    assert lines[-2] == "plan outcome: failed; planrun would exit 1"
    assert lines[-1].startswith("assumed to succeed (not known before they run): snapshot")


def test_safe_merge_dry_run_env_skips_push() -> None:
    ir = compile_ir(SAFE_MERGE.read_text(), str(SAFE_MERGE))
    sim = simulate(ir, env={"DRY_RUN": "yes"})
    push = sim.steps["push"]
    assert (push.status, push.reason, push.detail) == ("skipped", "condition", "condition is false")
    assert sim.outcome == "success"
    assert simulate(ir).steps["push"].status == "success"


def test_safe_merge_every_single_failure() -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), "--all-single-failures")
    assert done.returncode == 0
    assert done.stdout == (
        "Every single-step failure of SAFE-MERGE (planrun -j1 order, nothing is run)\n"
        "without failures: success (exit 0); never start: restore_snapshot, alert\n"
        "\n"
        "failing step      starts  plan     exit  would not run                               would also run\n"
        "snapshot          yes     failed      1  pull, merge, validate, push, drop_snapshot  alert\n"
        "pull              yes     failed      1  merge, validate, push                       alert\n"
        "merge             yes     success     0  -                                           restore_snapshot\n"
        "validate          yes     failed      1  push                                        alert\n"
        "push              yes     failed      1  -                                           alert\n"
        "restore_snapshot  no      success     0  -                                           -\n"
        "drop_snapshot     yes     failed      1  -                                           -\n"
        "alert             no      success     0  -                                           -\n"
    )


def test_json_output() -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), "--fail", "validate", "--format", "json")
    data = json.loads(done.stdout)
    assert data["start_order"] == [
        "snapshot",
        "pull",
        "merge",
        "validate",
        "drop_snapshot",
        "alert",
    ]
    assert data["aborted_by"] == "validate"
    assert (data["outcome"], data["exit_code"]) == ("failed", 1)
    assert data["steps"]["push"]["status"] == "cancelled"
    assert data["steps"]["push"]["reason"] == "aborted"
    assert data["steps"]["validate"]["exit_code"] == 1
    rows = json.loads(
        planc_cli("simulate", str(SAFE_MERGE), "--all-single-failures", "--format", "json").stdout
    )["rows"]
    assert rows[2] == {
        "step": "merge",
        "starts": True,
        "outcome": "success",
        "exit_code": 0,
        "would_not_run": [],
        "would_also_run": ["restore_snapshot"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail", "valdate"], "`valdate` is not a step of"),
        (["--timeout", "nope"], "`nope` is not a step of"),
        (["--env", "DRY_RUN"], "--env expects NAME=VALUE, got `DRY_RUN`"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = planc_cli("simulate", str(SAFE_MERGE), *args)
    assert done.returncode == 2
    assert message in done.stderr
    if "valdate" in args:
        assert "did you mean `validate`?" in done.stderr


# docs/semantics.md §8, row by row, replayed instead of run.
def _plan(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"plan_id": "T", "globals": {"default_timeout_sec": 10}, "steps": list(steps)}


def _s(sid: str, **fields: Any) -> dict[str, Any]:
    return {"id": sid, "command": "true", **fields}


@pytest.mark.parametrize(
    ("steps", "fail", "statuses", "exit_code"),
    [
        ((_s("a"), _s("b", depends_on=["a"]), _s("c")), ["a"],
         {"a": "failed", "b": "cancelled", "c": "cancelled"}, 1),
        ((_s("a", on_failure="skip_dependents"), _s("b", depends_on=["a"]),
          _s("c", depends_on=["b"]), _s("d")), ["a"],
         {"a": "failed", "b": "upstream_failed", "c": "upstream_failed", "d": "success"}, 1),
        ((_s("a", on_failure="continue"), _s("b", depends_on=["a"])), ["a"],
         {"a": "failed", "b": "success"}, 0),
        ((_s("a", on_failure="fallback_step", fallback="r"), _s("b", depends_on=["a"]), _s("r")),
         ["a"], {"a": "failed", "b": "success", "r": "success"}, 0),
        ((_s("a", on_failure="fallback_step", fallback="r"), _s("b", depends_on=["a"]), _s("r")),
         ["a", "r"], {"a": "failed", "b": "cancelled", "r": "failed"}, 1),
        ((_s("a"), _s("cleanup", depends_on=["a"], trigger_rule="all_done")), ["a"],
         {"a": "failed", "cleanup": "success"}, 1),
        ((_s("a"), _s("alert", depends_on=["a"], trigger_rule="one_failed")), [],
         {"a": "success", "alert": "skipped"}, 0),
        ((_s("a", condition="env.NEVER == 'set'"), _s("b", depends_on=["a"]),
          _s("c", depends_on=["a"], trigger_rule="none_failed")), [],
         {"a": "skipped", "b": "skipped", "c": "success"}, 0),
    ],
)  # fmt: skip
def test_semantics_table(
    steps: tuple[dict[str, Any], ...], fail: list[str], statuses: dict[str, str], exit_code: int
) -> None:
    sim = simulate(compile_ir(_plan(*steps)), fail=fail)
    assert {sid: r.status for sid, r in sim.steps.items()} == statuses
    assert sim.exit_code == exit_code


def test_validate_times_out_push_never_runs() -> None:
    steps = (_s("validate"), _s("push", depends_on=["validate"]))
    sim = simulate(compile_ir(_plan(*steps)), timeout=["validate"])
    assert sim.steps["push"].status == "cancelled"
    assert "push" not in sim.order


def test_condition_reads_simulated_exit_codes_and_attempts() -> None:
    steps = (
        _s("probe", on_failure="continue", retries=2),
        _s("after_three", depends_on=["probe"], condition="steps.probe.attempts == 3"),
        _s("on_one", depends_on=["probe"], condition="steps.probe.exit_code == 1"),
    )
    sim = simulate(compile_ir(_plan(*steps)), fail=["probe"])
    assert sim.steps["probe"].attempts == 3
    assert sim.steps["after_three"].status == "success"
    assert sim.steps["on_one"].status == "success"


def test_all_single_failures_on_a_thousand_steps() -> None:
    ir = compile_ir(big_plan(300))
    baseline, rows = all_single_failures(ir)
    assert baseline.outcome == "success"
    assert len(rows) == len(ir["steps"])
    take_lock = rows[0]
    assert take_lock.step_id == "take_lock"
    assert take_lock.outcome == "failed"
    # the lock's release is its teardown: it does not run when taking the lock failed
    assert "release_lock" in take_lock.not_run


PARAMS = {
    "plan_id": "P",
    "params": {"push": {"type": "bool", "default": False}, "repo": {"type": "string"}},
    "globals": {"default_timeout_sec": 10},
    "steps": [
        {"id": "build", "command": "true"},
        {
            "id": "push",
            "command": "true",
            "depends_on": ["build"],
            "condition": "params.push == true",
        },
    ],
}


def test_params_are_bound_like_planrun_binds_them(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(PARAMS), encoding="utf-8")
    done = planc_cli("simulate", str(path), "--format", "json")
    assert done.returncode == 2
    assert "missing required param(s): repo (string)" in done.stderr
    off = json.loads(planc_cli("simulate", str(path), "-p", "repo=x", "--format", "json").stdout)
    assert off["steps"]["push"]["status"] == "skipped"
    on = planc_cli("simulate", str(path), "-p", "repo=x", "-p", "push=yes", "--format", "json")
    assert json.loads(on.stdout)["steps"]["push"]["status"] == "success"


def test_a_step_fixed_by_its_command_is_not_assumed_to_succeed() -> None:
    # Issue 13 part 4: require_push is written to `exit 1`; planrun would exit 1, not 0.
    plan = REPO / "plans" / "safe-merge.yaml"
    done = planc_cli(
        "simulate", str(plan), "--fail", "validate", "-p", "repo=x", "-p", "source_branch=y"
    )
    rows = {line.split()[1]: line for line in done.stdout.splitlines()[3:] if line[:1].isdigit()}
    assert "exit 1 (fixed by its command)" in rows["require_push"]
    assert "plan outcome: failed; planrun would exit 1" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "assumed to succeed (not known before they run): snapshot, fetch, update_target, merge,"
        " restore"
    )


@pytest.mark.parametrize(
    ("command", "args", "shell", "code"),
    [
        ("true", [], False, 0),
        ("false", [], False, 1),
        ("sh", ["-c", "exit 4"], False, 4),
        ("sh", ["-c", "echo 'no; push' >&2; exit 1"], False, 1),
        ("exit 2", [], True, 2),
        ("sh", ["-c", "exit $CODE"], False, None),
        ("sh", ["-c", "make && exit 0"], False, None),
        ("sh", ["-c", "make; exit 1"], False, None),
        ("git", ["push"], False, None),
    ],
)
def test_fixed_exit_codes(command: str, args: list[str], shell: bool, code: int | None) -> None:
    assert fixed_exit_code({"command": command, "args": args, "shell": shell}) == code
