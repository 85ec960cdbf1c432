"""The Python API (docs/api.md): planc.api and planrun.api, used as a program would use them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from support import wait_for

from planc.api import compile_plan
from planrun import api

PLAN = """\
plan_id: API-DEMO
params:
  name: {type: string}
steps:
  - id: greet
    command: sh
    args: ["-c", "echo greeting=hello-${{ params.name }} >> \\"$PLAN_OUTPUT\\""]
    provides: [greeting]
    timeout_sec: 30
  - id: wait
    command: sh
    args: ["-c", "while [ ! -e go ]; do sleep 0.02; done"]
    depends_on: [greet]
    timeout_sec: 30
  - id: use
    command: sh
    args: ["-c", "echo got ${{ steps.greet.outputs.greeting }}"]
    depends_on: [wait]
    timeout_sec: 30
"""

# The test program: compile, follow the run's events from a thread while the main thread runs
# it; the `wait` step only ends once the follower has seen it start.
PROGRAM = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from planc.api import compile_plan
    from planrun import api

    work = Path(sys.argv[1])
    compiled = compile_plan(work / "plan.yaml")
    assert compiled.ok, compiled.render()
    run_id = api.new_run_id()
    seen = []

    def watch():
        for event in api.follow(run_id, work / "state", poll=0.02, timeout=60):
            seen.append(f"{event.type} {event.step_id or ''}".strip())
            if event.type == "step_started" and event.step_id == "wait":
                (work / "go").write_text("")

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = api.run_plan(
        compiled.ir, params={"name": "Ada"}, state_dir=work / "state", run_id=run_id, workdir=work
    )
    watcher.join(60)
    print(json.dumps({
        "same_id": result.run_id == run_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "outputs": result.outputs,
        "steps": {sid: step.status for sid, step in result.steps.items()},
        "seen": seen,
        "recorded": [e.type for e in api.events(run_id, work / "state")],
        "log": (work / "state" / "runs" / run_id / "logs" / "use.1.stdout").read_text(),
    }))
    """
)


def test_a_program_runs_a_plan_follows_its_events_while_it_runs_and_gets_its_outputs(
    tmp_path: Path,
) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the API prints nothing of a run
    result = json.loads(done.stdout)
    assert result["same_id"] is True
    assert (result["status"], result["exit_code"]) == ("success", 0)
    assert result["outputs"] == {"greet": {"greeting": "hello-Ada"}}
    assert result["steps"] == {"greet": "success", "wait": "success", "use": "success"}
    assert result["log"] == "got hello-Ada\n"
    assert result["seen"] == [
        "run_started",
        "step_started greet",
        "step_succeeded greet",
        "step_started wait",
        "step_succeeded wait",
        "step_started use",
        "step_succeeded use",
        "run_finished",
    ]
    assert result["recorded"] == [s.split()[0] for s in result["seen"]]


INTERRUPTED = textwrap.dedent(
    """
    import json, sys
    from planrun import api

    work = sys.argv[1]
    try:
        api.run_command(
            ["sh", "-c", "sleep 60 & echo $! > child.pid; echo ready > ready; wait"],
            cwd=work, state_dir=work + "/state", run_id="c",
        )
    except api.Interrupted as exc:
        print(json.dumps({"status": exc.result.status, "exit_code": exc.result.exit_code,
                          "step": exc.result.steps["sh"].status}))
    """
)


def test_ctrl_c_in_a_program_cancels_the_run_and_raises_interrupted_with_the_result(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    spawned.append(proc)
    wait_for(lambda: (tmp_path / "ready").is_file(), what="the command to start")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout) == {"status": "cancelled", "exit_code": 130, "step": "cancelled"}
    child = int((tmp_path / "child.pid").read_text())
    assert (
        not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
    )


def test_diagnostics_are_objects_with_code_position_and_hint(tmp_path: Path) -> None:
    source = (
        "plan_id: BAD\nsteps:\n  - id: build\n    command: 'true'\n    timeout_sec: 5\n"
        "  - id: test\n    command: 'true'\n    timeout_sec: 5\n    depends_on: [biuld]\n"
    )
    result = compile_plan("plan.yaml", source=source)
    assert not result.ok and result.ir is None and result.ir_json is None
    (error,) = result.errors
    assert (error.code, error.path, error.line, error.col) == (
        "unknown-dependency",
        "plan.yaml",
        9,
        18,
    )
    assert error.severity is api_severity("error")
    assert error.hint is not None and "build" in error.hint
    assert "plan.yaml:9:18: error[unknown-dependency]" in result.render()
    missing = compile_plan(tmp_path / "absent.yaml")
    assert [d.code for d in missing.diagnostics] == ["io-error"]


def api_severity(value: str) -> object:
    from planc.api import Severity

    return Severity(value)


def test_a_compiled_plan_runs_from_its_ir_bytes_and_a_tampered_ir_is_refused(
    tmp_path: Path,
) -> None:
    compiled = compile_plan(
        tmp_path / "p.yaml",
        source="plan_id: P\nsteps:\n  - id: a\n    command: 'true'\n    timeout_sec: 5\n",
    )
    assert compiled.ir_json is not None and compiled.ir is not None
    result = api.run_plan(compiled.ir_json, state_dir=tmp_path / "state")
    assert (result.status, result.exit_code, result.ok) == ("success", 0, True)
    tampered = {**compiled.ir, "globals": {**compiled.ir["globals"], "max_concurrency": 9}}
    with pytest.raises(api.PlanrunError, match="digest mismatch"):
        api.run_plan(tampered, state_dir=tmp_path / "state")
    with pytest.raises(api.PlanrunError, match="has errors; nothing was run"):
        (tmp_path / "bad.yaml").write_text("plan_id: B\nsteps: []\n")
        api.run_plan(tmp_path / "bad.yaml", state_dir=tmp_path / "state")
    assert len(api.runs(tmp_path / "state")) == 1


def test_bad_params_are_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    with pytest.raises(api.PlanrunError, match="name"):
        api.run_plan(tmp_path / "plan.yaml", state_dir=tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_run_command_times_out_with_124_and_masks_a_secret_on_our_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "api-secret-9876")
    state = tmp_path / "state"
    timed = api.run_command(["sleep", "30"], timeout=0.5, kill_grace=0.2, state_dir=state)
    assert (timed.status, timed.exit_code, timed.steps["sleep"].status) == (
        "failed",
        124,
        "timed_out",
    )
    shown = api.run_command(
        ["sh", "-c", "echo token $API_TOKEN"], secrets=["API_TOKEN"], echo=True, state_dir=state,
        name="show", run_id="shown",
    )  # fmt: skip
    assert (shown.run_id, shown.exit_code) == ("shown", 0)
    assert capfd.readouterr().out == "token ***\n"
    assert [r.run_id for r in api.runs(state)] == ["shown", timed.run_id]
    assert api.load_result("shown", state).steps["show"].status == "success"
    assert api.load_result(None, state).run_id == "shown"  # the latest run
    assert [e.type for e in api.follow("shown", state)][-1] == "run_finished"


def test_reading_a_state_dir_without_runs_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(api.PlanrunError, match="no planrun state in"):
        api.runs(tmp_path)
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.2s"):
        list(api.follow("nothing", tmp_path, poll=0.05, timeout=0.2))


def test_a_run_must_start_on_the_main_thread(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            api.run_command(["true"], state_dir=tmp_path / "state")
        except api.PlanrunError as exc:
            errors.append(exc)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(30)
    assert [str(e) for e in errors] == [
        "planrun runs must be started from the main thread (signals, reaping)"
    ]


def test_importing_the_api_loads_nothing_of_the_runtime() -> None:
    probe = (
        "import sys, planrun.api, planc.api; "
        "print(sorted(m for m in sys.modules if m.startswith(('planrun', 'planc', 'sqlite3', 'click'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['planc', 'planc.api', 'planrun', 'planrun.api']"
