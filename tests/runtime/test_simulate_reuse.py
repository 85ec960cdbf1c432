"""`planc simulate --state-dir DIR` (docs/fingerprints.md): each step's reuse verdict as
`planrun --dry-run` gives it, from state dirs made by real planrun runs; a step a recorded
success stands in for does not run in the replay."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.runtime.test_fingerprints import COPY
from tests.support import REPO, collect, planc_cli, planrun_cli

READINGS = """\
plan_id: readings
globals: {default_timeout_sec: 30}
params:
  threshold: {type: int, default: 10}
steps:
  - id: filter
    command: sh
    args: ["-c", "awk -v t=$T '$1 >= t' readings.txt > kept.txt"]
    env: {T: "${{ params.threshold }}"}
    sources: [readings.txt]
    generates: [kept.txt]
  - id: report
    command: sh
    args: ["-c", "wc -l < kept.txt > report.txt"]
    sources: [kept.txt]
    generates: [report.txt]
    depends_on: [filter]
  - id: notify
    command: "true"
    depends_on: [report]
"""


def copy_project(tmp_path: Path, state_dir: str = "s") -> str:
    """COPY run once in tmp_path; the run's id."""
    (tmp_path / "plan.yaml").write_text(COPY.format())
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    run = planrun_cli("plan.yaml", "--state-dir", state_dir, "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return collect(tmp_path / state_dir, 0).run_id


def simulate(tmp_path: Path, *args: str) -> str:
    done = planc_cli("simulate", "plan.yaml", *args, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def dry_verdicts(tmp_path: Path, *args: str) -> list[str]:
    done = planrun_cli("--dry-run", "plan.yaml", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [line.rsplit(")  ", 1)[1] for line in done.stdout.splitlines()]


def test_up_to_date_steps_stand_in_and_say_so(tmp_path: Path) -> None:
    run_id = copy_project(tmp_path)
    before = (tmp_path / "s" / "state.db").read_bytes()
    matches = f"up to date (fingerprint matches run {run_id})"
    assert simulate(tmp_path, "--state-dir", "s") == (
        "Simulation of copy: no failure (planrun -j1 order, nothing is run)\n\n"
        "#  step     status   attempts  why  reuse\n"
        f"1  build    skipped         -       {matches}\n"
        f"2  package  skipped         -       {matches}\n"
        "3  notify   success         1       run\n\n"
        "plan outcome: success; planrun would exit 0\n"
        "assumed to succeed (not known before they run): notify\n"
    )
    assert dry_verdicts(tmp_path, "--state-dir", "s") == [matches, matches, "run"]

    data = json.loads(simulate(tmp_path, "--state-dir", "s", "--format", "json"))
    assert data["steps"]["build"] == {
        "status": "skipped",
        "reason": "up_to_date",
        "detail": f"fingerprint matches run {run_id}",
        "attempts": 0,
        "exit_code": None,
        "start_order": 1,
        "recovered_by": None,
        "fallback_for": [],
        "fixed_by_command": False,
        "reuse": {"verdict": "up_to_date", "text": matches},
    }
    assert data["steps"]["notify"]["reuse"] == {"verdict": "run", "text": "run"}
    assert data["assumed_to_succeed"] == ["notify"]
    # Without a state dir: the plain simulation, no `reuse` key.
    plain = json.loads(simulate(tmp_path, "--format", "json"))
    assert all("reuse" not in step for step in plain["steps"].values())
    assert plain["steps"]["build"]["status"] == "success"
    # Read only: nothing recorded, no key file made.
    assert (tmp_path / "s" / "state.db").read_bytes() == before
    assert not (tmp_path / "s" / "fingerprint.key").exists()


def test_fail_or_timeout_of_a_step_that_stands_in_changes_nothing(tmp_path: Path) -> None:
    run_id = copy_project(tmp_path)
    matches = f"up to date (fingerprint matches run {run_id})"
    text = simulate(tmp_path, "--state-dir", "s", "--fail", "build", "--timeout", "package")
    assert text.splitlines()[2:8] == [
        "#  step     status   attempts  why                                  reuse",
        f"1  build    skipped         -  not run, so --fail has no effect     {matches}",
        f"2  package  skipped         -  not run, so --timeout has no effect  {matches}",
        "3  notify   success         1                                       run",
        "",
        "plan outcome: success; planrun would exit 0",
    ]
    data = json.loads(simulate(tmp_path, "--state-dir", "s", "--fail", "build", "--format", "json"))
    assert (data["outcome"], data["exit_code"]) == ("success", 0)
    assert data["steps"]["build"]["detail"] == (
        f"fingerprint matches run {run_id}; not run, so --fail has no effect"
    )
    # Once its input changed, build runs, so --fail fails it and package never starts.
    (tmp_path / "src" / "a.txt").write_text("a, edited\n")
    data = json.loads(simulate(tmp_path, "--state-dir", "s", "--fail", "build", "--format", "json"))
    assert data["steps"]["build"]["status"] == "failed"
    assert data["steps"]["build"]["reuse"] == {
        "verdict": "run",
        "text": "run (why: input src/a.txt changed)",
    }
    assert data["steps"]["package"]["reuse"] is None  # it does not start
    assert data["start_order"] == ["build"]


def test_the_verdicts_are_the_dry_runs_params_included(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(READINGS)
    (tmp_path / "readings.txt").write_text("".join(f"{n}\n" for n in range(1, 101)))
    run = ("plan.yaml", "--state-dir", "s", "-q", "-p", "threshold=10")
    assert planrun_cli(*run, cwd=tmp_path).returncode == 0
    run_id = collect(tmp_path / "s", 0).run_id
    matches = f"up to date (fingerprint matches run {run_id})"

    for threshold, expected in [
        ("10", [matches, matches, "run"]),
        ("34", ["run (why: param threshold 10→34)", "run (why: upstream filter re-runs)", "run"]),
    ]:
        args = ("--state-dir", "s", "-p", f"threshold={threshold}")
        data = json.loads(simulate(tmp_path, *args, "--format", "json"))
        assert [data["steps"][s]["reuse"]["text"] for s in data["start_order"]] == expected
        assert dry_verdicts(tmp_path, *args) == expected
    text = simulate(tmp_path, "--state-dir", "s", "-p", "threshold=34")
    assert "1  filter  success         1       run (why: param threshold 10→34)\n" in text


def test_no_state_yet_runs_every_step(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(COPY.format())
    never = "run (why: never succeeded in this state dir)"
    (tmp_path / "empty").mkdir(mode=0o700)
    for state_dir in ("missing", "empty"):
        data = json.loads(simulate(tmp_path, "--state-dir", state_dir, "--format", "json"))
        texts = [data["steps"][s]["reuse"]["text"] for s in data["start_order"]]
        assert texts == [never, never, "run"]
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_state_dir_planrun_cannot_read_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(COPY.format())
    bad = tmp_path / "bad"
    bad.mkdir(mode=0o700)
    (bad / "state.db").write_text("not a database\n")
    (bad / "state.db").chmod(0o600)
    for state_dir, message in [
        ("plan.yaml", "cannot use plan.yaml as the state directory: it is not a directory"),
        ("bad", "bad/state.db is damaged or not planrun's (DatabaseError: file is not a"
         " database); move it away or use another --state-dir"),
    ]:  # fmt: skip
        done = planc_cli("simulate", "plan.yaml", "--state-dir", state_dir, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"planc: --state-dir: {message}\n",
        )
    both = planc_cli(
        "simulate", "plan.yaml", "--state-dir", "s", "--all-single-failures", cwd=tmp_path
    )
    assert (both.returncode, both.stdout, both.stderr) == (
        2,
        "",
        "planc: --all-single-failures replays without a state dir; drop --state-dir\n",
    )


def test_the_example_of_the_docs_prints_as_shown(tmp_path: Path) -> None:
    """docs/fingerprints.md shows `planc simulate` over COPY after one run; its run id stands
    for this run's."""
    doc = (REPO / "docs" / "fingerprints.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```console\n(\$ planc simulate [^\n]*\n.*?)```", doc, re.S)
    command, shown = block.split("\n", 1)
    args = command.removeprefix("$ planc simulate plan.yaml ").split()
    run_id = copy_project(tmp_path, ".planrun")
    shown = re.sub(r"\b20\d{6}T\d{6}Z-[0-9a-f]{6}\b", run_id, shown)
    assert simulate(tmp_path, *args) == shown


def test_text_read_from_a_forged_state_dir_is_printed_escaped(tmp_path: Path) -> None:
    """The state dir is untrusted: a run id forged into its fingerprints reaches the reuse
    column as text, never as terminal control sequences (as in planrun --dry-run)."""
    copy_project(tmp_path)
    with sqlite3.connect(tmp_path / "s" / "state.db") as db:
        db.execute("UPDATE fingerprints SET run_id = 'X\x1b[2J\x1b]0;title\x07Y'")
    out = simulate(tmp_path, "--state-dir", "s")
    assert "\x1b" not in out and "\x07" not in out
    assert "up to date (fingerprint matches run X\\x1b[2J\\x1b]0;title\\x07Y)" in out
    shown = json.loads(simulate(tmp_path, "--state-dir", "s", "--format", "json"))
    assert shown["steps"]["build"]["detail"] == "fingerprint matches run X\x1b[2J\x1b]0;title\x07Y"
