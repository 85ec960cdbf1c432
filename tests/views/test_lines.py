"""The plain terminal output (CI, pipes): exact lines with a fixed clock, GitHub groups, -q, -v,
the heartbeat, colour, and which view `reporter()` picks."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import run_plan, wait_for, write_plan
from viewkit import sample_plan

from planrun.console import LineReporter, reporter, summary_table
from planrun.events import Event
from planrun.store import StepInfo
from planrun.views.style import format_duration, use_color

T0 = datetime(2026, 11, 30, 12, 1, 3, tzinfo=UTC).timestamp()


def ev(type_: str, step: str | None = None, attempt: int | None = None, **payload: Any) -> Event:
    return Event(1, "2026-11-30T12:01:03.000000Z", "R", type_, step, attempt, payload)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def lines(**options: Any) -> tuple[LineReporter, io.StringIO, Clock]:
    out = io.StringIO()
    clock = Clock()
    options.setdefault("github", False)
    report = LineReporter(out, 4, clock=clock, tz=UTC, background=False, **options)
    return report, out, clock


FAILED = ev(
    "step_failed", "test", 2, reason="exit code 3", duration_sec=1.25, exit_code=3,
    stderr_tail="FAIL: test_parse\nAssertionError: 1 != 2\n",
)  # fmt: skip


def feed_a_run(report: LineReporter) -> None:
    report(ev("run_started"))
    report(ev("step_started", "lint", 1))
    report(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=4.2))
    report(ev("step_started", "test", 1))
    report(
        ev("step_retrying", "test", 1, reason="exit code 3", delay_sec=2, previous_status="failed")
    )
    report(ev("step_started", "test", 2))
    report(FAILED)
    report(ev("step_skipped", "deploy", None, reason="upstream", detail="test failed"))
    report(ev("step_started", "slow", 1))
    report(ev("step_succeeded", "slow", 1, exit_code=0, duration_sec=187.0))
    report(ev("run_finished", status="failed", exit_code=1, duration_sec=200.0))


def test_one_timestamped_line_per_state_change() -> None:
    report, out, _ = lines()
    feed_a_run(report)
    assert out.getvalue() == (
        "12:01:03 [0/4] ▶ lint\n"
        "12:01:03 [1/4] ✓ lint 4.2s\n"
        "12:01:03 [1/4] ▶ test\n"
        "12:01:03 [1/4] ↻ test exit code 3; retrying in 2s\n"
        "12:01:03 [1/4] ▶ test (attempt 2)\n"
        "12:01:03 [2/4] ✗ test exit code 3 (1.2s)\n"
        "    | FAIL: test_parse\n"
        "    | AssertionError: 1 != 2\n"
        "12:01:03 [3/4] ⊘ deploy upstream: test failed\n"
        "12:01:03 [3/4] ▶ slow\n"
        "12:01:03 [4/4] ✓ slow 3m07s\n"
    )


def test_github_actions_folds_the_stderr_tail_in_a_group() -> None:
    report, out, _ = lines(github=None, env={"GITHUB_ACTIONS": "true"})
    report(FAILED)
    assert out.getvalue().splitlines() == [
        "12:01:03 [1/4] ✗ test exit code 3 (1.2s)",
        "::group::test stderr (last lines)",
        "    | FAIL: test_parse",  # prefixed: a log line can never be a workflow command
        "    | AssertionError: 1 != 2",
        "::endgroup::",
        "::error title=step test failed::exit code 3 (1.2s)%0A| FAIL: test_parse%0A"
        "| AssertionError: 1 != 2",
    ]


def test_no_groups_outside_github_actions() -> None:
    report, out, _ = lines(github=None, env={"GITHUB_ACTIONS": "false"})
    report(FAILED)
    assert "::group::" not in out.getvalue()


def test_quiet_prints_failures_only() -> None:
    report, out, _ = lines(quiet=True)
    feed_a_run(report)
    assert out.getvalue() == (
        "12:01:03 [2/4] ✗ test exit code 3 (1.2s)\n"
        "    | FAIL: test_parse\n"
        "    | AssertionError: 1 != 2\n"
    )


def test_still_running_line_every_heartbeat_per_running_step() -> None:
    report, out, clock = lines(heartbeat_sec=60.0)
    report(ev("step_started", "lint", 1))
    clock.now = T0 + 59
    report.tick()
    assert "still running" not in out.getvalue()
    clock.now = T0 + 60
    report.tick()
    report.tick()  # once per period, however often the thread wakes
    clock.now = T0 + 120.5
    report.tick()
    assert out.getvalue().splitlines()[1:] == [
        "12:02:03 [0/4] … lint still running (1m00s, attempt 1)",
        "12:03:03 [0/4] … lint still running (2m00s, attempt 1)",
    ]
    report(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=130.0))
    clock.now = T0 + 300
    report.tick()
    assert "still running (5m" not in out.getvalue()


def test_the_heartbeat_thread_speaks_on_its_own_and_stops_with_the_run() -> None:
    out = io.StringIO()
    report = LineReporter(out, 1, heartbeat_sec=0.1)
    report(ev("step_started", "lint", 1))
    wait_for(lambda: "lint still running" in out.getvalue(), 10, "a heartbeat line")
    report(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=0.3))
    report(ev("run_finished", status="success", exit_code=0, duration_sec=0.3))
    assert report._thread is not None and not report._thread.is_alive()


def test_verbose_prints_the_command_and_copies_output_lines(tmp_path: Path) -> None:
    stdout, stderr = tmp_path / "lint.1.stdout", tmp_path / "lint.1.stderr"
    stdout.write_text("first line\nsecond li")
    stderr.write_text("")
    report, out, _ = lines(verbose=True, heartbeat_sec=None)
    report(
        ev("step_started", "lint", 1, argv=["ruff", "check", "my dir"], stdout_log=str(stdout),
           stderr_log=str(stderr))
    )  # fmt: skip
    report.tick()
    with stderr.open("a") as handle:
        handle.write("warning: x\n")
    with stdout.open("a") as handle:
        handle.write("ne\nno newline at the end")
    report(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=0.5))
    assert out.getvalue().splitlines() == [
        "12:01:03 [0/4] ▶ lint",
        "    $ ruff check 'my dir'",
        "lint | first line",
        "lint | second line",  # a partial line waits for its end
        "lint | no newline at the end",
        "lint ! warning: x",
        "12:01:03 [1/4] ✓ lint 0.5s",
    ]


def test_colour_marks_status_and_dims_the_clock() -> None:
    report, out, _ = lines(color=True)
    report(ev("step_succeeded", "lint", 1, exit_code=0, duration_sec=4.2))
    assert out.getvalue() == "\x1b[2m12:01:03\x1b[0m [1/4] \x1b[32m✓ lint\x1b[0m 4.2s\n"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("mode", "env", "tty", "expected"),
    [
        ("auto", {}, True, True),
        ("auto", {}, False, False),
        ("auto", {"NO_COLOR": "1"}, True, False),
        ("auto", {"FORCE_COLOR": "1"}, False, True),
        ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
        ("auto", {"FORCE_COLOR": "0"}, False, False),
        ("auto", {"TERM": "dumb"}, True, False),
        ("always", {"NO_COLOR": "1"}, False, True),
        ("never", {"FORCE_COLOR": "1"}, True, False),
    ],
)
def test_colour_policy(mode: Any, env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = FakeTty() if tty else io.StringIO()
    assert use_color(stream, mode, env) is expected


def test_reporter_picks_plain_lines_off_a_terminal_and_the_live_view_on_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert isinstance(reporter(io.StringIO(), 3), LineReporter)
    assert isinstance(reporter(FakeTty(), 3, quiet=True), LineReporter)  # -q: failures only
    live = reporter(FakeTty(), 3)
    assert type(live).__name__ == "LiveView"
    live(ev("run_finished", status="success", exit_code=0, duration_sec=0.0))  # stops it
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(reporter(FakeTty(), 3), LineReporter)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.04, 4.25, 59.9, 60, 187, 3599, 3600, 7325)] == [
        "0.0s", "4.2s", "59.9s", "1m00s", "3m07s", "59m59s", "1h00m", "2h02m",
    ]  # fmt: skip


def test_a_real_run_in_ci_prints_lines_and_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_plan(tmp_path, sample_plan())
    text = result.output
    assert "] ✓ lint " in text
    assert "] ↻ flaky exit code 1; retrying in " in text
    assert "] ▶ flaky (attempt 2)" in text
    assert "] ✗ test exit code 3 (" in text
    assert (
        "::group::test output (3 lines, stdout, then stderr; | stdout, ! stderr)\n"
        "    | collected 3 items\n"
        "    ! FAIL: test_parse\n"
        "    ! AssertionError: 1 != 2\n"
        "    full log: "
    ) in text
    # on_failure: continue: a warning annotation, positioned at the step in the plan file
    assert re.search(
        r"^::warning file=[^,]*plan[^,]*,line=\d+,title=step test failed::exit code 3", text, re.M
    )
    assert "] ⊘ docs condition" in text
    assert "\x1b[" not in text  # not a terminal: no colour


def test_json_streams_events_on_stdout_and_human_lines_on_stderr(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, sample_plan())
    result = subprocess.run(
        [sys.executable, "-m", "planrun", str(plan), "--json", "--state-dir", str(tmp_path / "s")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    events = [json.loads(line) for line in result.stdout.splitlines()]
    jsonl = (tmp_path / "s" / "runs" / events[0]["run_id"] / "events.jsonl").read_text()
    # Every event, run_started included, byte for byte as in events.jsonl.
    assert result.stdout.splitlines() == jsonl.splitlines()
    assert events[0]["seq"] == 1 and events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_finished"
    assert "] ✗ test exit code 3" in result.stderr
    assert "STEP" in result.stderr and "run_finished" not in result.stderr


def test_the_cli_accepts_verbose_and_colour(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, sample_plan())
    result = subprocess.run(
        [sys.executable, "-m", "planrun", str(plan), "-v", "--color=always", "--state-dir", "s"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "\x1b[32m✓ lint\x1b[0m" in result.stderr
    assert "lint |\x1b[0m linting" in result.stderr  # -v: the step's own output
    assert "echo linting; sleep 0.3; echo lint ok" in result.stderr  # -v: its command


def step(step_id: str, status: str) -> StepInfo:
    return StepInfo(step_id, 0, status, 1, 0, None, None, 1.0, None, None, None)


def test_the_summary_table_of_a_big_plan_lists_what_did_not_succeed() -> None:
    steps = [step(f"s{i:03d}", "failed" if i in (7, 500) else "success") for i in range(1000)]
    table = summary_table(steps).splitlines()
    assert [line.split()[0] for line in table[1:3]] == ["s007", "s500"]
    assert (
        table[3]
        == "… 998 more steps not listed (998 succeeded); `planrun show RUN` lists every step"
    )
    small = summary_table(steps[:5]).splitlines()
    assert len(small) == 6 and "more steps" not in small[-1]
