"""`planrun runs`, `show` and `logs`: text, --json, clear errors, and --follow on a live run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from support import RunResult, wait_for
from viewkit import gated_plan, latest_run, start_planrun, step_status

from planrun.cli import main


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_runs_lists_recent_runs(sample_run: RunResult) -> None:
    code, out, _ = cli("runs", "--state-dir", str(sample_run.state_dir), "--color=never")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["RUN", "PLAN", "STATUS", "STARTED", "DURATION", "STEPS"]
    assert row.startswith(sample_run.run_id) and "SAMPLE" in row and "✓ success" in row
    assert "6/6" in row and "✗1" in row and "⊘1" in row


def test_runs_as_json(sample_run: RunResult) -> None:
    code, out, _ = cli("runs", "--json", "--state-dir", str(sample_run.state_dir))
    (run,) = json.loads(out)
    assert code == 0
    assert run["run_id"] == sample_run.run_id and run["status"] == "success"
    assert run["done"] == run["total"] == 6 and run["elapsed_sec"] > 0


def test_show_prints_the_step_table(sample_run: RunResult) -> None:
    code, out, _ = cli("show", sample_run.run_id[:12], "--state-dir", str(sample_run.state_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"run {sample_run.run_id}  plan SAMPLE  success")
    assert lines[1].split() == ["STEP", "STATUS", "ATTEMPTS", "DURATION", "EXIT", "REASON"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["lint", "flaky", "build", "test", "package", "docs"]
    assert "✗ failed" in rows["test"] and "exit code 3" in rows["test"]
    assert rows["flaky"].split()[1:4] == ["✓", "success", "2"]
    assert "⊘ skipped" in rows["docs"] and "condition" in rows["docs"]


def test_show_as_json_has_run_steps_and_attempts(sample_run: RunResult) -> None:
    code, out, _ = cli("show", "--json", "--state-dir", str(sample_run.state_dir))
    data = json.loads(out)
    assert code == 0 and data["run"]["run_id"] == sample_run.run_id
    assert [s["step_id"] for s in data["steps"]][:2] == ["lint", "flaky"]
    assert [(a["step_id"], a["attempt"], a["status"]) for a in data["attempts"][1:3]] == [
        ("flaky", 1, "failed"),
        ("flaky", 2, "success"),
    ]


def test_logs_prints_stdout_stderr_and_a_chosen_attempt(sample_run: RunResult) -> None:
    state = str(sample_run.state_dir)
    run = sample_run.run_id
    assert cli("logs", run, "lint", "--state-dir", state)[1] == "linting\nlint ok\n"
    assert cli("logs", run, "test", "--stderr", "--state-dir", state)[1] == (
        "FAIL: test_parse\nAssertionError: 1 != 2\n"
    )
    assert cli("logs", run, "flaky", "--state-dir", state)[1] == "try 2\n"
    assert cli("logs", run, "flaky", "--attempt", "1", "--state-dir", state)[1] == "try 1\n"
    _, out, _ = cli("logs", run, "flaky", "--attempt", "1", "--json", "--state-dir", state)
    assert json.loads(out) == {
        "run_id": run, "step_id": "flaky", "attempt": 1, "stream": "stdout", "line": "try 1",
    }  # fmt: skip


def test_unknown_run_step_or_attempt_is_a_clear_error(sample_run: RunResult) -> None:
    state = str(sample_run.state_dir)
    run = sample_run.run_id
    code, _, err = cli("show", "nope", "--state-dir", state)
    assert code == 2 and err.startswith("planrun: unknown run 'nope' in ")
    code, _, err = cli("logs", "nope", "lint", "--state-dir", state)
    assert code == 2 and "unknown run 'nope'" in err
    code, _, err = cli("logs", run, "lnit", "--state-dir", state)
    assert code == 2 and err == f"planrun: run {run} has no step 'lnit'; did you mean lint?\n"
    code, _, err = cli("logs", run, "flaky", "--attempt", "7", "--state-dir", state)
    assert code == 2 and "has no attempt 7 (it has 1..2)" in err
    code, _, err = cli("logs", run, "docs", "--state-dir", state)
    assert code == 2 and "'docs' never started (skipped: condition)" in err


def test_no_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    for command in (["runs"], ["show"], ["logs", "r", "s"], ["report"]):
        code, _, err = cli(*command, "--state-dir", str(tmp_path / "none"))
        assert code == 2 and "no planrun state in" in err, command


def test_commands_work_while_a_run_is_going_and_follow_ends_with_it(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    planrun = start_planrun(tmp_path, gated_plan(gate))
    state = tmp_path / "state"
    try:
        wait_for(lambda: step_status(state, "wait") == "running", what="step `wait` running")
        run_id = latest_run(state)
        assert run_id is not None
        code, out, _ = cli("runs", "--state-dir", str(state))
        assert code == 0 and "running" in out and "so far" in out
        code, out, _ = cli("show", run_id, "--state-dir", str(state))
        assert code == 0 and "▶ running" in out
        follow = subprocess.Popen(
            [sys.executable, "-m", "planrun", "logs", run_id, "wait", "--follow", "--state-dir", str(state)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert follow.stdout is not None
        assert follow.stdout.readline() == "waiting for gate\n"  # printed while the step runs
        assert follow.poll() is None
        gate.touch()
        rest, err = follow.communicate(timeout=60)  # returns because the step (and run) ended
        assert follow.returncode == 0, err
        assert rest == "gate open\n"
    finally:
        gate.touch()
        planrun.communicate(timeout=60)
    assert planrun.returncode == 0


def test_follow_waits_for_a_step_that_has_not_started(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    planrun = start_planrun(tmp_path, gated_plan(gate))
    state = tmp_path / "state"
    try:
        run_id = wait_for(lambda: latest_run(state), what="the run")
        follow = subprocess.Popen(
            [sys.executable, "-m", "planrun", "logs", run_id, "after", "-f", "--json", "--state-dir", str(state)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        gate.touch()
        out, err = follow.communicate(timeout=60)
        assert follow.returncode == 0, err
        assert out == ""  # `after` is `true`: it ran, printed nothing, and follow ended
    finally:
        gate.touch()
        planrun.communicate(timeout=60)
