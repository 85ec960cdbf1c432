"""`planrun exec -- COMMAND`: one command supervised as a one-step run, with real processes."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from support import planrun_cli, start_planrun

from planrun.store import StepInfo, open_reader

SECRET = "s3cr3t-value-42"


def exec_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return planrun_cli(
        "exec",
        "--state-dir",
        str(tmp_path / "state"),
        *args,
        cwd=tmp_path,
        env=env,
        timeout=timeout,
    )


def recorded(tmp_path: Path, run_id: str | None = None) -> tuple[str, str, list[str], StepInfo]:
    """The run's status, its one step's status and reason, and its event types."""
    with open_reader(tmp_path / "state") as reader:
        run_id = run_id or reader.latest_run_id()
        assert run_id is not None
        (step,) = reader.steps(run_id)
        events = [e.type for e in reader.events(run_id)]
        return reader.run(run_id).status, step.status, events, step


def dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_output_goes_live_to_the_terminal_and_to_the_logs_and_the_status_is_the_commands(
    tmp_path: Path,
) -> None:
    done = exec_cli(tmp_path, "--id", "first", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert "err\n" in done.stderr
    assert done.stderr.startswith("planrun: run first (plan exec.sh)\n")
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(r"planrun: run first failed: exit code 3 in \d+\.\d\ds \(exit 3\)", last)
    logs = tmp_path / "state" / "runs" / "first" / "logs"
    assert (logs / "sh.1.stdout").read_text() == "out\n"
    assert (logs / "sh.1.stderr").read_text() == "err\n"
    run_status, step_status, events, _ = recorded(tmp_path, "first")
    assert (run_status, step_status) == ("failed", "failed")
    assert events == ["run_started", "step_started", "step_failed", "run_finished"]


def test_a_stalled_command_is_killed_and_recorded_with_the_stall_reason(tmp_path: Path) -> None:
    done = exec_cli(
        tmp_path,
        "--heartbeat",
        "0.5",
        "--kill-grace",
        "0.2",
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 30",
    )
    assert done.returncode == 124, done.stderr
    assert done.stdout == "started\n"
    assert "no output for 0.5s (stalled)" in done.stderr
    run_status, step_status, events, step = recorded(tmp_path)
    assert (run_status, step_status) == ("failed", "timed_out")
    assert step.reason == "stalled"
    assert events[-2:] == ["step_timed_out", "run_finished"]


def test_a_timeout_exits_124_with_the_whole_tree_dead(tmp_path: Path) -> None:
    # The grandchild left the step's session and ignores SIGTERM: the subreaper still finds it.
    script = (
        "echo $$ > main.pid; "
        "setsid sh -c 'trap \"\" TERM; echo $$ > grandchild.pid; exec sleep 60' & "
        "while [ ! -s grandchild.pid ]; do sleep 0.01; done; echo ready; wait"
    )
    done = exec_cli(tmp_path, "--timeout", "3", "--kill-grace", "0.3", "--", "sh", "-c", script)
    assert done.returncode == 124, done.stderr
    assert done.stdout == "ready\n"
    assert "timed out after 3s" in done.stderr
    for name in ("main.pid", "grandchild.pid"):
        pid = int((tmp_path / name).read_text())
        assert dead(pid), f"{name} {pid} survived"
    run_status, step_status, _, step = recorded(tmp_path)
    assert (run_status, step_status, step.reason) == ("failed", "timed_out", "timeout")


def test_a_command_that_succeeds_on_its_second_attempt(tmp_path: Path) -> None:
    script = "if [ -e marker ]; then echo second try; else : > marker; echo first try; exit 1; fi"
    done = exec_cli(tmp_path, "--retries", "2", "--retry-delay", "0.1", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "first try\nsecond try\n"
    assert "exit code 1; retrying in 0.1s" in done.stderr
    run_status, step_status, events, step = recorded(tmp_path)
    assert (run_status, step_status, step.attempts) == ("success", "success", 2)
    assert events == [
        "run_started", "step_started", "step_retrying", "step_started", "step_succeeded", "run_finished",
    ]  # fmt: skip


def test_a_secret_is_masked_on_the_terminal_in_the_logs_and_in_the_events(tmp_path: Path) -> None:
    script = 'echo "token=$TOKEN"; echo "err=$TOKEN" >&2'
    done = exec_cli(
        tmp_path, "--secret", "TOKEN", "--id", "s", "--", "sh", "-c", script, env={"TOKEN": SECRET}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "token=***\n"
    assert "err=***\n" in done.stderr
    assert SECRET not in done.stderr
    run = tmp_path / "state" / "runs" / "s"
    assert (run / "logs" / "sh.1.stdout").read_text() == "token=***\n"
    assert (run / "logs" / "sh.1.stderr").read_text() == "err=***\n"
    assert SECRET not in (run / "events.jsonl").read_text()
    # The secret's value is not recorded in the IR either: only its name.
    assert SECRET not in (run / "ir.json").read_text()
    assert json.loads((run / "ir.json").read_text())["secrets"] == ["TOKEN"]


def test_env_placeholders_are_resolved_secrets_and_other_placeholders_refused(
    tmp_path: Path,
) -> None:
    done = exec_cli(
        tmp_path,
        "--env",
        "GREETING=hi ${{ env.WHO }}",
        "--",
        "sh",
        "-c",
        'echo "$GREETING"',
        env={"WHO": "Ada"},
    )
    assert (done.returncode, done.stdout) == (0, "hi Ada\n")
    for argv in (
        ["echo", "${{ params.x }}"],
        ["echo", "${{ steps.a.outputs.b }}"],
        ["echo", "${{ nonsense"],
    ):
        refused = exec_cli(tmp_path, "--", *argv)
        assert refused.returncode == 125
        assert "only `${{ env.NAME }}` is known here" in refused.stderr
    leak = exec_cli(
        tmp_path, "--secret", "TOKEN", "--", "echo", "${{ env.TOKEN }}", env={"TOKEN": SECRET}
    )
    assert leak.returncode == 125
    assert "secret TOKEN in the command line would be recorded with it" in leak.stderr
    assert SECRET not in leak.stderr + leak.stdout


def test_ctrl_c_stops_the_tree_records_the_cancellation_and_exits_130(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    script = "sleep 60 & echo $! > grandchild.pid; echo $$ > main.pid; echo ready; wait"
    proc = start_planrun(
        ["exec", "--state-dir", "state", "--id", "c", "--", "sh", "-c", script], tmp_path, spawned
    )
    # Live: the line reaches planrun's stdout while the command still runs.
    assert proc.stdout is not None
    assert select.select([proc.stdout], [], [], 60)[0], "no output within 60 s"
    assert proc.stdout.readline() == "ready\n"
    log = tmp_path / "state" / "runs" / "c" / "logs" / "sh.1.stdout"
    assert log.read_text() == "ready\n"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert "planrun: run c cancelled: interrupted" in stderr
    for name in ("main.pid", "grandchild.pid"):
        assert dead(int((tmp_path / name).read_text())), name
    run_status, step_status, events, step = recorded(tmp_path, "c")
    assert (run_status, step_status, step.reason) == ("cancelled", "cancelled", "interrupted")
    assert events[-2:] == ["step_cancelled", "run_finished"]


@pytest.mark.parametrize(
    ("args", "status", "reason"),
    [
        (["--", "sh", "-c", "exit 7"], 7, "exit code 7"),
        (["--", "sh", "-c", "kill -9 $$"], 137, "killed by signal 9 (SIGKILL)"),
        (["--", "no-such-program-here"], 127, "command not found: no-such-program-here"),
        (["--", "./not-executable"], 126, "permission denied: ./not-executable"),
        (["--cwd", "nowhere", "--", "true"], 126, "cwd does not exist: {tmp}/nowhere"),
    ],
)
def test_the_exit_status_follows_the_shells(
    tmp_path: Path, args: list[str], status: int, reason: str
) -> None:
    (tmp_path / "not-executable").write_text("echo hi\n")
    done = exec_cli(tmp_path, *args)
    assert done.returncode == status, done.stderr
    assert recorded(tmp_path)[3].reason == reason.format(tmp=tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "--", "true"], "No such option '--bogus'"),
        (["--timeout", "0", "--", "true"], "Invalid value for '--timeout'"),
        (["--id", "../escape", "--", "true"], "run id '../escape' must be 1 to 128 letters"),
        (["--name", "9 lives", "--", "true"], "--name '9 lives' is not a step id"),
        (["--env", "NOEQUALS", "--", "true"], "--env expects NAME=VALUE, got 'NOEQUALS'"),
        ([], "Missing argument 'COMMAND...'"),
    ],
)
def test_planruns_own_errors_exit_125_and_run_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = exec_cli(tmp_path, *args)
    assert done.returncode == 125, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "state" / "runs").exists() or not any(
        (tmp_path / "state" / "runs").iterdir()
    )


def test_an_existing_run_id_is_refused(tmp_path: Path) -> None:
    assert exec_cli(tmp_path, "--id", "nightly", "--", "true").returncode == 0
    again = exec_cli(tmp_path, "--id", "nightly", "--", "true")
    assert again.returncode == 125
    assert "run nightly already exists" in again.stderr


def test_the_run_is_seen_by_the_views_and_resumable(tmp_path: Path) -> None:
    script = "if [ -e fixed ]; then echo fixed now; else echo broken; exit 2; fi"
    done = exec_cli(
        tmp_path,
        "--id",
        "job",
        "--name",
        "migrate",
        "--env",
        "STAGE=test",
        "--",
        "sh",
        "-c",
        script,
    )
    assert done.returncode == 2
    state = str(tmp_path / "state")
    runs = planrun_cli("runs", "--state-dir", state, "--json", cwd=tmp_path)
    assert [(r["run_id"], r["plan_id"], r["status"]) for r in json.loads(runs.stdout)] == [
        ("job", "exec.migrate", "failed")
    ]
    shown = planrun_cli("show", "job", "--state-dir", state, cwd=tmp_path)
    assert "migrate" in shown.stdout and "exit code 2" in shown.stdout
    logs = planrun_cli("logs", "job", "migrate", "--state-dir", state, cwd=tmp_path)
    assert logs.stdout == "broken\n"
    report = planrun_cli(
        "report", "job", "--state-dir", state, "-o", str(tmp_path / "r.html"), cwd=tmp_path
    )
    assert report.returncode == 0 and (tmp_path / "r.html").is_file()
    # Fix and continue: the recorded IR is the command, wherever planrun is started from.
    (tmp_path / "fixed").write_text("")
    resumed = planrun_cli("--resume", "job", "--state-dir", state, cwd=tmp_path.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert (
        tmp_path / "state" / "runs" / "job" / "logs" / "migrate.2.stdout"
    ).read_text() == "fixed now\n"
    assert recorded(tmp_path, "job")[:2] == ("success", "success")


def test_a_closed_stdout_ends_the_echo_not_the_command(tmp_path: Path) -> None:
    # `planrun exec -- cmd | head -1`: the log keeps everything, the command runs to its end.
    script = "for i in $(seq 1 20000); do echo line $i; done; echo done > finished"
    done = subprocess.run(
        f"planrun exec --state-dir state --id p -- sh -c '{script}' | head -1",
        shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.stdout == "line 1\n"
    assert (tmp_path / "finished").read_text() == "done\n"
    log = (tmp_path / "state" / "runs" / "p" / "logs" / "sh.1.stdout").read_text()
    assert log.count("\n") == 20000
    assert recorded(tmp_path, "p")[:2] == ("success", "success")
