"""Running the shipped pipelines (plans/*.yaml) with the real planrun against real git repos.

Every run is `python -m planrun PLAN --state-dir TMP/state -p …` in a child process, started in
the repository root (the plans name their scripts as `plans/scripts/…`, relative to planrun's
working directory), with an environment that finds this interpreter's `python3`, `pytest` and
`ruff` first and gives git a fixed identity and no user or system configuration. No network:
the "remote" is a bare repository in the test's temp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from ruamel.yaml import YAML
from support import REPO, RunResult, collect, planrun_cli

PLANS = REPO / "plans"
BIN = str(Path(sys.executable).parent)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Plan Tests",
    "GIT_AUTHOR_EMAIL": "tests@plan.invalid",
    "GIT_COMMITTER_NAME": "Plan Tests",
    "GIT_COMMITTER_EMAIL": "tests@plan.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


def environment() -> dict[str, str]:
    """What planrun (and so every step) runs with."""
    return {
        **os.environ,
        **GIT_ENV,
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # the projects' pytest needs none of ours
        "NO_COLOR": "1",
    }


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`; its stdout, stripped. Fails the test on a non-zero exit."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def commit_all(cwd: Path, message: str, files: dict[str, str]) -> str:
    """Write `files` (path -> text) under `cwd`, commit them; the new commit's sha."""
    for name, text in files.items():
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


def init_repo(path: Path, files: dict[str, str], message: str = "initial") -> str:
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    return commit_all(path, message, files)


@dataclass
class Remote:
    """A bare "remote" and two clones: `work` (where the plan runs) and `other` (a colleague)."""

    bare: Path
    work: Path
    other: Path

    def head(self, branch: str = "main") -> str:
        return git(self.bare, "rev-parse", f"refs/heads/{branch}")


def make_remote(tmp_path: Path, files: dict[str, str]) -> Remote:
    seed = tmp_path / "seed"
    init_repo(seed, files)
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(seed), str(bare))
    work, other = tmp_path / "work", tmp_path / "other"
    for clone in (work, other):
        git(tmp_path, "clone", "--quiet", str(bare), str(clone))
    return Remote(bare, work, other)


def status_porcelain(cwd: Path) -> str:
    return git(cwd, "status", "--porcelain")


def load_plan(name: str) -> dict[str, Any]:
    """plans/NAME as a dict (YAML 1.2, like planc reads it)."""
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(
        (PLANS / name).read_text(encoding="utf-8")
    )
    return data


def variant(tmp_path: Path, name: str, **step_fields: dict[str, Any]) -> Path:
    """plans/NAME with some fields of some steps changed, written as JSON under tmp_path.

    Used only to shorten the plans' production timings (a 60 s heartbeat, a 30-minute
    validation timeout) so a test can reach them in a second; nothing else changes.
    """
    plan = load_plan(name)
    steps = {step["id"]: step for step in plan["steps"]}
    for step_id, fields in step_fields.items():
        steps[step_id].update(fields)
    path = tmp_path / (Path(name).stem + ".variant.json")
    path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    return path


def run_pipeline(
    tmp_path: Path, plan: str | Path, params: dict[str, str], *extra: str
) -> RunResult:
    """Run a plan (a name under plans/, or a path) with planrun; the recorded run.

    Afterwards no process of the run may be left: planrun kills every attempt's tree, and this
    checks it (a leftover is killed and fails the test).
    """
    state = tmp_path / "state"
    plan_path = PLANS / plan if isinstance(plan, str) else plan
    args = [str(plan_path), "--state-dir", str(state), "--kill-grace", "1", *extra]
    for name, value in params.items():
        args += ["-p", f"{name}={value}"]
    done = planrun_cli(*args, cwd=REPO, env=environment(), timeout=120)
    assert done.returncode in (0, 1), (
        f"planrun exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    result = collect(state, done.returncode, done.stderr)
    assert_no_leftovers(result.run_id)
    return result


def assert_no_leftovers(run_id: str) -> None:
    """No live process carries this run's PLAN_RUN_ID (planrun sets it in every step)."""
    marker = f"PLAN_RUN_ID={run_id}"
    leftovers = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            environ = proc.environ()
        except (psutil.Error, OSError):
            continue
        if environ.get("PLAN_RUN_ID") == run_id:
            leftovers.append(proc)
    for proc in leftovers:
        proc.kill()
    assert leftovers == [], f"processes left by run {run_id} ({marker}): {leftovers}"


def outputs(result: RunResult, step_id: str) -> dict[str, str]:
    """The outputs the store recorded for a step (the payload of its final event)."""
    finals = [
        e
        for e in result.events
        if e.step_id == step_id and e.type in ("step_succeeded", "step_failed", "step_timed_out")
    ]
    assert finals, f"step {step_id} never finished: {result.types(step_id)}"
    found: dict[str, str] = finals[-1].payload.get("outputs") or {}
    return found


def events_of(result: RunResult, event_type: str, step_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in result.events if e.type == event_type and e.step_id == step_id]
