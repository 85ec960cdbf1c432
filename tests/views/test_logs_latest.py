"""`planrun logs STEP` is the latest run's, like show/status/report; `-f` follows it live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import wait_for
from viewkit import gated_plan, latest_run, start_planrun, step_status


def logs(state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "planrun", "logs", *args, "--state-dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_logs_without_a_run_follows_the_latest_run(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    planrun = start_planrun(tmp_path, gated_plan(gate))
    state = tmp_path / "state"
    try:
        wait_for(lambda: step_status(state, "wait") == "running", what="step `wait` running")
        follow = logs(state, "wait", "-f")
        assert follow.stdout is not None
        assert follow.stdout.readline() == "waiting for gate\n"  # while the step runs
        assert follow.poll() is None
        gate.touch()
        rest, err = follow.communicate(timeout=60)  # ends with the step
        assert (follow.returncode, rest) == (0, "gate open\n"), err
    finally:
        gate.touch()
        planrun.communicate(timeout=60)
    assert planrun.returncode == 0
    printed = logs(state, "wait")
    out, err = printed.communicate(timeout=60)
    assert (printed.returncode, out) == (0, "waiting for gate\ngate open\n"), err
    explicit = logs(state, str(latest_run(state)), "wait")
    assert explicit.communicate(timeout=60)[0] == out


def test_logs_with_three_words_is_a_usage_error(tmp_path: Path) -> None:
    done = logs(tmp_path, "a", "b", "c")
    out, err = done.communicate(timeout=60)
    assert (done.returncode, out) == (2, "")
    assert err.endswith("Error: expected [RUN] STEP\n")
