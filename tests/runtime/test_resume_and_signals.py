"""Durability and control: kill -9 then resume, fix-and-continue, the run lock, SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import collect, planc_cli, planrun_cli, run_plan, start_planrun, wait_for

from planrun.store import open_reader


def compile_plan(tmp_path: Path, plan: dict[str, Any]) -> Path:
    source = tmp_path / "plan.json"
    source.write_text(json.dumps(plan))
    ir = tmp_path / "plan.ir.json"
    result = planc_cli("compile", str(source), "-o", str(ir))
    assert result.returncode == 0, result.stderr
    return ir


def effect_step(step_id: str, effects: Path, seconds: float, **fields: Any) -> dict[str, Any]:
    script = f'echo "$PLAN_STEP_ID" >> {effects}; sleep {seconds}'
    return {"id": step_id, "command": "sh", "args": ["-c", script], "timeout_sec": 60, **fields}


def test_kill_9_mid_run_then_resume(
    tmp_path: Path, spawned: list[subprocess.Popen[str]], request: pytest.FixtureRequest
) -> None:
    effects = tmp_path / "effects"
    steps = [effect_step(f"s{i:02}", effects, 0.1) for i in range(50)]
    # One step hangs the first time only: it is what the dead planrun leaves running.
    marker, hung_pid = tmp_path / "hung-once", tmp_path / "hung.pid"
    daemon_pid = tmp_path / "daemon.pid"
    daemon = f"(setsid sh -c 'echo $$ > {daemon_pid}; exec sleep 300' &)"
    hang = f"if [ ! -e {marker} ]; then touch {marker}; {daemon}; echo $$ > {hung_pid}; exec sleep 300; fi"
    steps[1] = {
        "id": "s01",
        "command": "sh",
        "args": ["-c", f"echo s01 >> {effects}; {hang}"],
        "timeout_sec": 600,
    }
    ir = compile_plan(
        tmp_path, {"plan_id": "KILL9", "globals": {"max_concurrency": 2}, "steps": steps}
    )
    state = tmp_path / "state"
    proc = start_planrun([str(ir), "--state-dir", str(state), "-q"], tmp_path, spawned)

    def lines() -> list[str]:
        return effects.read_text().split() if effects.exists() else []

    wait_for(lambda: len(lines()) >= 20, what="20 steps to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    orphan = _pid_from(hung_pid)
    assert orphan is not None and psutil.pid_exists(orphan), "the hung step outlives planrun"
    request.addfinalizer(lambda: _kill_if_alive(orphan))
    wait_for(lambda: _pid_from(daemon_pid) is not None, what="the daemon to write its pid")
    escaped = _pid_from(daemon_pid)
    assert escaped is not None and psutil.pid_exists(escaped)
    request.addfinalizer(lambda: _kill_if_alive(escaped))

    with open_reader(state) as reader:
        run_id = reader.latest_run_id()
        assert run_id is not None
        assert reader.run(run_id).status == "interrupted"
        before = {s.step_id: s.status for s in reader.steps(run_id)}
        leftovers = [a for a in reader.attempts(run_id) if a.finished_at is None]
    succeeded_before = {sid for sid, status in before.items() if status == "success"}
    assert 10 <= len(succeeded_before) < 50
    assert leftovers, "a step was running when planrun died"

    resumed = planrun_cli(
        "--resume", run_id, str(ir), "--state-dir", str(state), "-q", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    result = collect(state, resumed.returncode, run_id=run_id)
    assert set(result.statuses.values()) == {"success"}
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
    # The daemon left the session; resume finds it by the attempt tag in its environment.
    assert (
        not psutil.pid_exists(escaped) or psutil.Process(escaped).status() == psutil.STATUS_ZOMBIE
    )
    counts = Counter(lines())
    assert set(counts) == {f"s{i:02}" for i in range(50)}
    assert all(counts[sid] == 1 for sid in succeeded_before), "a recorded success ran again"
    for attempt in leftovers:  # what the dead planrun left behind was killed by the resume
        assert attempt.pid is not None
        assert not _alive(attempt.pid, attempt.proc_start_time)
    types = [e.type for e in result.events]
    assert types.count("run_resumed") == 1
    jsonl = (state / "runs" / run_id / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in jsonl] == [e.seq for e in result.events]


def _kill_if_alive(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int, start: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and (
            start is None or abs(proc.create_time() - start) < 1
        )
    except psutil.NoSuchProcess:
        return False


def test_fix_and_continue(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    gate = tmp_path / "fixed"
    plan = {
        "plan_id": "FIX",
        "globals": {"default_timeout_sec": 30},
        "steps": [
            effect_step("prepare", effects, 0),
            {
                "id": "check",
                "command": "test",
                "args": ["-e", str(gate)],
                "depends_on": ["prepare"],
            },
            effect_step("publish", effects, 0, depends_on=["check"]),
        ],
    }
    first = run_plan(tmp_path, plan)
    assert first.exit_code == 1
    assert first.statuses == {"prepare": "success", "check": "failed", "publish": "cancelled"}
    gate.touch()
    second = run_plan(tmp_path, plan, resume=first.run_id)
    assert second.exit_code == 0
    assert second.run_id == first.run_id
    assert second.statuses == {"prepare": "success", "check": "success", "publish": "success"}
    assert effects.read_text().split() == ["prepare", "publish"]
    assert second.summary["steps"]["check"]["attempts"] == 2
    assert second.types().count("run_resumed") == 1


def test_a_full_disk_stops_the_run_cleanly_and_resume_finishes_it(tmp_path: Path) -> None:
    """When the state can no longer be written (here RLIMIT_FSIZE: writes past 700 kB fail, as
    on a full disk), planrun stops: the running steps' trees are killed, exit 3 with one line
    saying how to resume, and what was recorded stays consistent for that resume."""
    fixed = tmp_path / "fixed"
    long_steps = [
        {
            "id": f"long{i}",
            "command": "sh",
            "args": [
                "-c",
                f"[ -e {fixed} ] && exit 0; echo $$ > {tmp_path}/long{i}.pid; exec sleep 300",
            ],
        }
        for i in range(2)
    ]
    quick = [{"id": f"q{i:03d}", "command": "true"} for i in range(400)]
    plan = {
        "plan_id": "FULL",
        "globals": {"default_timeout_sec": 600, "max_concurrency": 3},
        "steps": long_steps + quick,
    }
    ir = compile_plan(tmp_path, plan)
    state = tmp_path / "state"
    limit = 700_000
    assert ir.stat().st_size < limit

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    first = subprocess.run(
        [sys.executable, "-m", "planrun", str(ir), "--state-dir", str(state), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=small_files,
    )
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    last = first.stderr.splitlines()[-1]
    run_id = first.stderr.split()[2]
    assert last.startswith(f"planrun: cannot record the run in {state}: ")
    assert last.endswith(
        f"run {run_id} was stopped (its running steps were killed). Everything recorded so far"
        f" is kept: once the cause is fixed, `planrun --resume {run_id} PLAN` continues it"
    )
    for i in range(2):
        pid = _pid_from(tmp_path / f"long{i}.pid")
        assert pid is not None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with open_reader(state) as reader:
        stopped = reader.run(run_id)
        statuses = {s.step_id: s.status for s in reader.steps(run_id)}
    assert stopped.status == "interrupted"
    assert 0 < list(statuses.values()).count("success") < len(statuses)

    fixed.touch()
    second = planrun_cli("--resume", run_id, str(ir), "--state-dir", str(state), "-q", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    result = collect(state, 0, run_id=run_id)
    assert set(result.statuses.values()) == {"success"}
    assert result.types().count("run_resumed") == 1
    lines = (state / "runs" / run_id / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [e.seq for e in result.events]


def test_resume_refuses_a_plan_with_other_steps(tmp_path: Path) -> None:
    """An edited plan continues a run (docs/fingerprints.md) only when it has the same steps."""
    plan = {
        "plan_id": "CHANGED",
        "globals": {"default_timeout_sec": 30},
        "steps": [{"id": "a", "command": "false"}],
    }
    first = run_plan(tmp_path, plan)
    plan["steps"][0]["command"] = "true"
    plan["steps"].append({"id": "b", "command": "true"})
    source = tmp_path / "plan.json"
    source.write_text(json.dumps(plan))
    result = planrun_cli(
        "--resume", first.run_id, str(source), "--state-dir", str(tmp_path / "state"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.endswith(
        " and has other steps; a run can only be resumed with a plan of the same steps (start a"
        " new run instead: `planrun PLAN --from STEP` reuses every success whose fingerprint"
        " still matches)\n"
    )
    assert "Traceback" not in result.stderr


def test_resume_without_a_plan_uses_the_ir_the_run_started_with(tmp_path: Path) -> None:
    """Fix and continue when the plan file has changed since (a comment is enough to change
    the IR's digest) or is gone: the IR is in state.db."""
    marker = tmp_path / "fixed"
    plan = {
        "plan_id": "RECORDED",
        "globals": {"default_timeout_sec": 30},
        "steps": [
            {"id": "a", "command": "sh", "args": ["-c", f"test -e {marker}"]},
            {"id": "b", "command": "true", "depends_on": ["a"]},
        ],
    }
    first = run_plan(tmp_path, plan)
    assert first.statuses == {"a": "failed", "b": "cancelled"}
    (tmp_path / "plan.json").unlink()
    marker.touch()  # the fix, outside the plan
    state = str(tmp_path / "state")
    resumed = planrun_cli("--resume", first.run_id[:17], "--state-dir", state, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = collect(tmp_path / "state", 0, run_id=first.run_id)
    assert result.statuses == {"a": "success", "b": "success"}
    assert [e.type for e in result.events].count("run_resumed") == 1
    missing = planrun_cli("--state-dir", state, "--resume", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("planrun: unknown run 'nope'")
    no_plan = planrun_cli("run", "--state-dir", state, cwd=tmp_path)
    assert (no_plan.returncode, no_plan.stderr) == (
        2,
        "planrun: missing PLAN (an IR file or a plan file) to run\n",
    )


def test_a_running_run_cannot_be_resumed_twice(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    release = tmp_path / "release"
    step = {
        "id": "wait",
        "command": "sh",
        "args": ["-c", f"while [ ! -e {release} ]; do sleep 0.05; done"],
        "timeout_sec": 60,
    }
    ir = compile_plan(tmp_path, {"plan_id": "LOCK", "steps": [step]})
    state = tmp_path / "state"
    proc = start_planrun([str(ir), "--state-dir", str(state)], tmp_path, spawned)
    wait_for(lambda: _run_started(state), what="the run to start")
    with open_reader(state) as reader:
        run_id = reader.latest_run_id()
    assert run_id is not None
    second = planrun_cli("--resume", run_id, str(ir), "--state-dir", str(state), cwd=tmp_path)
    assert second.returncode == 2
    assert f"is in use by planrun process {proc.pid}" in second.stderr
    release.touch()
    assert proc.wait(timeout=60) == 0


def _run_started(state: Path) -> bool:
    try:
        with open_reader(state) as reader:
            run_id = reader.latest_run_id()
            return run_id is not None and any(s.status == "running" for s in reader.steps(run_id))
    except Exception:
        return False


def _pid_from(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def test_sigint_cancels_runs_cleanup_and_exits_130(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    pidfile = tmp_path / "long.pid"
    cleaned = tmp_path / "cleaned"
    plan = {
        "plan_id": "SIGINT",
        "globals": {"max_concurrency": 2, "kill_grace_sec": 2},
        "steps": [
            {
                "id": "long",
                "command": "sh",
                "args": ["-c", f"echo $$ > {pidfile}; exec sleep 300"],
                "timeout_sec": 600,
            },
            {"id": "after", "command": "true", "depends_on": ["long"], "timeout_sec": 10},
            {
                "id": "cleanup",
                "command": "touch",
                "args": [str(cleaned)],
                "depends_on": ["after"],
                "trigger_rule": "all_done",
                "timeout_sec": 10,
            },
        ],
    }
    ir = compile_plan(tmp_path, plan)
    state = tmp_path / "state"
    proc = start_planrun([str(ir), "--state-dir", str(state)], tmp_path, spawned)
    wait_for(lambda: _pid_from(pidfile) is not None, what="the long step to start")
    long_pid = _pid_from(pidfile)
    assert long_pid is not None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert (
        not psutil.pid_exists(long_pid) or psutil.Process(long_pid).status() == psutil.STATUS_ZOMBIE
    )
    assert cleaned.exists()
    result = collect(state, 130)
    assert result.statuses == {"long": "cancelled", "after": "cancelled", "cleanup": "success"}
    assert result.reasons["long"] == "interrupted"
    assert result.summary["status"] == "cancelled"
    assert result.events[-1].type == "run_finished"


def test_huge_timeouts_and_retry_delays_are_waited_for_not_a_crash(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    """Any positive number is a valid timeout or delay; epoll's own timeout overflows past
    ~25 days, so planrun waits in bounded slices (it used to die with OverflowError)."""
    plan = {
        "plan_id": "HUGE",
        "steps": [
            {"id": "quick", "command": "true", "timeout_sec": 1e10},
            {
                "id": "flaky",
                "command": "sh",
                "args": ["-c", "exit 3"],
                "timeout_sec": 1e10,
                "retries": 3,
                "retry_delay_sec": 1e10,
                "retry_backoff": 1e300,
            },
        ],
    }
    ir = compile_plan(tmp_path, plan)
    state = tmp_path / "state"
    proc = start_planrun([str(ir), "--state-dir", str(state), "-j", "2"], tmp_path, spawned)

    def retrying() -> bool:
        try:
            with open_reader(state) as reader:
                run_id = reader.latest_run_id()
                return run_id is not None and any(
                    e.type == "step_retrying" for e in reader.events(run_id)
                )
        except Exception:
            return False

    wait_for(retrying, what="the first retry to be scheduled")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, proc.stderr.read() if proc.stderr else ""
    result = collect(state, 130)
    assert result.statuses == {"quick": "success", "flaky": "cancelled"}
    retries = [e for e in result.events if e.type == "step_retrying"]
    assert [e.payload["delay_sec"] for e in retries] == [1e10]
    lines = (state / "runs" / result.run_id / "events.jsonl").read_text().splitlines()

    def refuse(constant: str) -> None:
        raise AssertionError(f"events.jsonl holds {constant}, which is not JSON")

    assert len([json.loads(line, parse_constant=refuse) for line in lines]) == len(result.events)


def test_second_sigint_kills_cleanup_at_once(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    first_pid = tmp_path / "first.pid"
    cleanup_pid = tmp_path / "cleanup.pid"
    plan = {
        "plan_id": "SIGINT2",
        "globals": {"kill_grace_sec": 30},
        "steps": [
            {
                "id": "work",
                "command": "sh",
                "args": ["-c", f"echo $$ > {first_pid}; exec sleep 300"],
                "timeout_sec": 600,
            },
            {
                "id": "slow_cleanup",
                "command": "sh",
                "args": ["-c", f"echo $$ > {cleanup_pid}; exec sleep 300"],
                "depends_on": ["work"],
                "trigger_rule": "all_done",
                "timeout_sec": 600,
            },
        ],
    }
    ir = compile_plan(tmp_path, plan)
    state = tmp_path / "state"
    # A grace of 30 s would make the first interrupt slow; `work` ignores nothing, so SIGTERM ends it.
    proc = start_planrun([str(ir), "--state-dir", str(state)], tmp_path, spawned)
    wait_for(lambda: _pid_from(first_pid) is not None, what="work to start")
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: _pid_from(cleanup_pid) is not None, what="the cleanup step to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    pid = _pid_from(cleanup_pid)
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    result = collect(state, 130)
    assert result.statuses == {"work": "cancelled", "slow_cleanup": "cancelled"}
    assert result.summary["status"] == "cancelled"


def test_sigterm_behaves_like_sigint(tmp_path: Path, spawned: list[subprocess.Popen[str]]) -> None:
    pidfile = tmp_path / "p.pid"
    plan = {
        "plan_id": "TERM",
        "steps": [
            {
                "id": "long",
                "command": "sh",
                "args": ["-c", f"echo $$ > {pidfile}; exec sleep 300"],
                "timeout_sec": 600,
            }
        ],
    }
    ir = compile_plan(tmp_path, plan)
    proc = start_planrun([str(ir), "--state-dir", str(tmp_path / "state")], tmp_path, spawned)
    wait_for(lambda: _pid_from(pidfile) is not None, what="the step to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert collect(tmp_path / "state", 130).statuses == {"long": "cancelled"}


def test_seed_plans_run_end_to_end(tmp_path: Path) -> None:
    """powershell.exe is absent here: the Windows-only steps fail cleanly with their policy."""
    repo = Path(__file__).resolve().parents[2]
    for name, expected in [
        ("safe-merge.json", {"snapshot_repo": "failed"}),
        ("checkin.json", None),
    ]:
        state = tmp_path / name
        result = planrun_cli(
            str(repo / "plans" / "seed" / name), "--state-dir", str(state), cwd=tmp_path
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        run = collect(state, result.returncode)
        if expected is not None:
            assert run.statuses == expected
        else:
            # lint runs `python -m ruff .` in an empty directory, tests run pytest there; the
            # outcome depends on the tools, but the commit step (powershell.exe) can never succeed.
            assert run.statuses["safe_commit"] in ("failed", "skipped", "cancelled")
        failed = [e for e in run.events if e.type == "step_failed"]
        assert failed, "some step failed"
        assert os.path.exists(state / "runs" / run.run_id / "summary.json")


def test_resume_reruns_fallbacks_with_the_failures_they_answer(tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    gate = tmp_path / "fixed"
    plan = {
        "plan_id": "FALLBACK-RESUME",
        "globals": {"default_timeout_sec": 30},
        "steps": [
            {
                "id": "merge",
                "command": "test",
                "args": ["-e", str(gate)],
                "on_failure": "fallback_step",
                "fallback": "restore",
            },
            effect_step("restore", effects, 0),
            {"id": "gate", "command": "test", "args": ["-e", str(gate)], "depends_on": ["merge"]},
        ],
    }
    first = run_plan(tmp_path, plan)
    assert first.statuses == {"merge": "failed", "restore": "success", "gate": "failed"}
    second = run_plan(tmp_path, plan, resume=first.run_id)
    assert second.statuses == {"merge": "failed", "restore": "success", "gate": "failed"}
    assert effects.read_text().split() == ["restore", "restore"]
    gate.touch()
    third = run_plan(tmp_path, plan, resume=first.run_id)
    assert third.statuses == {"merge": "success", "restore": "skipped", "gate": "success"}
    assert third.reasons["restore"] == "not_needed"


def test_sigint_cancels_a_retry_waiting_for_a_free_slot(tmp_path: Path) -> None:
    """With -j1, `flaky` fails and its retry (10 ms later) finds the one slot taken by `hold`:
    the retry is queued, its step `running` with no process. An interrupt then ended planrun
    with KeyError (it asked the process set to stop a process that did not exist). `hold`
    itself sends the SIGINT to planrun, its parent, well after the 10 ms."""
    plan = {
        "plan_id": "QUEUED-RETRY",
        "globals": {"max_concurrency": 1, "kill_grace_sec": 1},
        "steps": [
            {
                "id": "flaky",
                "command": "sh",
                "args": ["-c", "exit 3"],
                "retries": 2,
                "retry_delay_sec": 0.01,
                "timeout_sec": 30,
            },
            {
                "id": "hold",
                "command": "sh",
                "args": ["-c", "sleep 0.3; kill -INT $PPID; exec sleep 30"],
                "timeout_sec": 60,
            },
        ],
    }
    ir = compile_plan(tmp_path, plan)
    state = tmp_path / "state"
    done = planrun_cli(str(ir), "--state-dir", str(state), "-q", cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    result = collect(state, 130)
    assert result.statuses == {"flaky": "cancelled", "hold": "cancelled"}
    assert result.reasons == {"flaky": "interrupted", "hold": "interrupted"}
    flaky = [e.type for e in result.events if e.step_id == "flaky"]
    assert flaky == ["step_started", "step_retrying", "step_cancelled"]


def test_sighup_cancels_the_run_unless_ignored(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    """The terminal or SSH session going away (SIGHUP) used to kill planrun outright and leave
    its running steps behind; it now cancels the run like SIGTERM. Under `nohup` (SIGHUP
    ignored) the run goes on."""
    pidfile, gate = tmp_path / "p.pid", tmp_path / "gate"
    wait_gate = f"echo $$ > {pidfile}; while [ ! -e {gate} ]; do sleep 0.01; done"
    plan = {
        "plan_id": "HUP",
        "steps": [{"id": "long", "command": "sh", "args": ["-c", wait_gate], "timeout_sec": 60}],
    }
    ir = compile_plan(tmp_path, plan)
    proc = start_planrun([str(ir), "--state-dir", "hup", "-q"], tmp_path, spawned)
    wait_for(lambda: _pid_from(pidfile) is not None, what="the step to start")
    step = _pid_from(pidfile)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 130
    assert step is not None and not _alive(step, None)
    assert collect(tmp_path / "hup", 130).statuses == {"long": "cancelled"}

    pidfile.unlink()
    proc = start_planrun([str(ir), "--state-dir", "nohup", "-q"], tmp_path, spawned, ignoring="HUP")
    wait_for(lambda: _pid_from(pidfile) is not None, what="the step to start")
    proc.send_signal(signal.SIGHUP)
    gate.touch()
    assert proc.wait(timeout=60) == 0
    assert collect(tmp_path / "nohup", 0).statuses == {"long": "success"}
