"""Test support: run real plans through the real compiler and runtime in temp dirs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from planrun import plan_loader, runner
from planrun.events import Event
from planrun.executor import RunOptions
from planrun.store import open_reader

T = TypeVar("T")


@dataclass
class RunResult:
    exit_code: int
    run_id: str
    state_dir: Path
    statuses: dict[str, str]
    reasons: dict[str, str | None]
    events: list[Event]
    summary: dict[str, Any]
    output: str

    def types(self, step_id: str | None = None) -> list[str]:
        return [e.type for e in self.events if step_id is None or e.step_id == step_id]


def write_plan(directory: Path, plan: dict[str, Any], name: str = "plan.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    return path


def run_plan(
    tmp_path: Path,
    plan: dict[str, Any],
    *,
    max_concurrency: int | None = None,
    kill_grace: float | None = None,
    resume: str | None = None,
    params: tuple[str, ...] = (),
) -> RunResult:
    """Compile and run `plan` in this process, as `planrun plan.json` would."""
    plan_path = write_plan(tmp_path, plan)
    state_dir = tmp_path / "state"
    err = io.StringIO()
    ir = plan_loader.load_runnable(str(plan_path), err)
    options = RunOptions(
        workdir=str(tmp_path), max_concurrency=max_concurrency, kill_grace_sec=kill_grace
    )
    output = runner.Output(out=io.StringIO(), err=err)
    if resume is None:
        options.params = runner.bind_params(ir, params, None)
        code = runner.run(ir, str(state_dir), options, "normal", output)
    else:
        code = runner.resume(resume, ir, str(state_dir), options, "normal", output)
    return collect(state_dir, code, err.getvalue())


def collect(
    state_dir: Path, exit_code: int, output: str = "", run_id: str | None = None
) -> RunResult:
    with open_reader(state_dir) as reader:
        run_id = run_id or reader.latest_run_id()
        assert run_id is not None
        steps = reader.steps(run_id)
        events = reader.events(run_id)
        summary = reader.summary(run_id)
    return RunResult(
        exit_code,
        run_id,
        state_dir,
        {s.step_id: s.status for s in steps},
        {s.step_id: s.reason for s in steps},
        events,
        summary,
        output,
    )


def planrun_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real `planrun` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "planrun", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def planc_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


REPO = Path(__file__).resolve().parent.parent


def wait_for(probe: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy, and return that: an observable condition,
    not time passing. A probe that raises (a state dir not written yet) counts as not yet; if it
    never holds, the last exception is in the failure."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except Exception as error:
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from last_error
        time.sleep(0.02)


def start_planrun(
    args: list[str],
    cwd: Path,
    procs: list[subprocess.Popen[str]],
    *,
    ignoring: str | None = None,
) -> subprocess.Popen[str]:
    """The real planrun in a child process (stdout and stderr piped), added to `procs` (the
    `spawned` fixture kills what is left). `ignoring`: a signal planrun starts with ignored, as
    in a script's background job (`INT`) or under nohup (`HUP`)."""
    argv = [sys.executable, "-m", "planrun", *args]
    if ignoring is not None:
        argv = ["sh", "-c", f'trap "" {ignoring}; exec "$0" -m planrun "$@"', sys.executable, *args]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    procs.append(proc)
    return proc
