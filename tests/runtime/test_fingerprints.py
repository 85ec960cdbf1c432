"""Fingerprints (docs/fingerprints.md), end to end with the real planrun: a recorded success
stands in for a step exactly when its fingerprint matches; fix-and-continue through an edited
plan; up-to-date steps skipped across runs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.support import collect, planrun_cli

PIPELINE = """\
plan_id: readings
globals: {{default_timeout_sec: 30}}
params:
  threshold: {{type: int, default: 10}}
steps:
  - id: generate
    command: sh
    args: ["-c", "seq 1 100 > readings.txt"]
  - id: filter
    command: sh
    args: ["-c", "awk -v t=$T '$1 >= t' readings.txt > kept.txt; echo filter >> effects"]
    env: {{T: "${{{{ params.threshold }}}}"}}
    depends_on: [generate]
  - id: report
    command: sh
    args: ["-c", "echo $(wc -l < kept.txt) readings at least $T > report.txt; echo report >> effects"]
    env: {{T: "${{{{ params.threshold }}}}"}}
    depends_on: [filter]
"""


def started(state: Path, run_id: str | None = None) -> dict[str, str | None]:
    """Each step started in the run -> the `why` of its first step_started."""
    run = collect(state, 0, run_id=run_id)
    found: dict[str, str | None] = {}
    for event in run.events:
        if event.type == "step_started" and event.step_id not in found:
            found[str(event.step_id)] = event.payload.get("why")
    return found


def test_only_with_another_param_reruns_the_upstream_step_that_reads_it(tmp_path: Path) -> None:
    """The wrong-threshold report of issue 14: `filter` was reused from the threshold=10 run."""
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.format())
    run = ("pipeline.yaml", "--state-dir", "s", "-q")
    assert planrun_cli(*run, "-p", "threshold=10", cwd=tmp_path).returncode == 0
    assert (tmp_path / "report.txt").read_text() == "91 readings at least 10\n"
    (tmp_path / "effects").unlink()

    only = planrun_cli(*run, "--only", "report", "-p", "threshold=34", cwd=tmp_path)
    assert only.returncode == 0, only.stderr
    assert (tmp_path / "report.txt").read_text() == "67 readings at least 34\n"
    assert (tmp_path / "effects").read_text().split() == ["filter", "report"]
    assert started(tmp_path / "s") == {"filter": "param threshold 10→34", "report": None}
    run_info = collect(tmp_path / "s", 0)
    assert run_info.reasons["generate"] == "reused"
    (skipped,) = [e for e in run_info.events if e.type == "step_skipped"]
    assert skipped.payload["detail"].startswith("fingerprint matches run ")
    explained = planrun_cli("explain", "filter", "--state-dir", "s", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith(
        f"filter in run {run_info.run_id}: ran (why: param threshold 10→34)\n  fingerprint "
    )
    explained = planrun_cli("explain", "generate", "--state-dir", "s", cwd=tmp_path)
    assert explained.stdout.startswith(
        f"generate in run {run_info.run_id}: reused (fingerprint matches run"
        f" {skipped.payload['from_run']})\n"
    )
    unknown = planrun_cli("explain", "nope", "--state-dir", "s", cwd=tmp_path)
    assert (unknown.returncode, unknown.stderr) == (
        2,
        f"planrun: run {run_info.run_id} has no step `nope`\n",
    )

    # The same params again: filter's success (threshold 34) stands in now.
    (tmp_path / "effects").unlink()
    again = planrun_cli(*run, "--only", "report", "-p", "threshold=34", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "effects").read_text().split() == ["report"]


TYPO = """\
plan_id: typo
globals: {{default_timeout_sec: 30}}
steps:
  - id: prepare
    command: sh
    args: ["-c", "echo prepare >> effects"]
  - id: other
    command: sh
    args: ["-c", "echo other >> effects"]
  - id: typo
    command: {command}{comment}
    args: [fixed]
    depends_on: [prepare]
  - id: after
    command: sh
    args: ["-c", "echo after >> effects"]
    depends_on: [typo]
"""


def test_fix_and_continue_through_an_edited_plan(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(TYPO.format(command="ech", comment=""))
    first = planrun_cli(str(plan), "--state-dir", "s", "-q", cwd=tmp_path)
    assert first.returncode == 1
    run_id = collect(tmp_path / "s", 1).run_id
    # Both ran once; they run side by side, so in either order.
    assert sorted((tmp_path / "effects").read_text().split()) == ["other", "prepare"]
    (tmp_path / "effects").unlink()

    plan.write_text(TYPO.format(command="echo", comment="  # fixed"))
    resumed = planrun_cli("--resume", run_id, str(plan), "--state-dir", "s", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "the plan changed: steps whose fingerprint changed run again" in resumed.stderr
    assert (tmp_path / "effects").read_text().split() == ["after"]  # prepare, other: kept
    run = collect(tmp_path / "s", 0, run_id=run_id)
    assert run.statuses == dict.fromkeys(("prepare", "other", "typo", "after"), "success")
    resumed_event = [e for e in run.events if e.type == "run_resumed"][-1]
    assert (
        resumed_event.payload["ir_digest"]
        == json.loads((tmp_path / "s" / "runs" / run.run_id / "ir.json").read_text())["digest"]
    )
    kept = planrun_cli("explain", "prepare", run_id, "--state-dir", "s", cwd=tmp_path)
    assert kept.stdout.startswith(
        f"prepare in run {run_id}: kept: its success in this run still had the same fingerprint"
    )
    fixed = planrun_cli("explain", "typo", run_id, "--state-dir", "s", cwd=tmp_path)
    assert fixed.stdout.startswith(
        f"typo in run {run_id}: ran (why: no success in this run yet (failed))\n"
    )
    # A later `--resume RUN` without PLAN continues with the fixed IR.
    assert planrun_cli("--resume", run_id, "--state-dir", "s", cwd=tmp_path).returncode == 0


def test_from_the_fixed_step_after_the_fix(tmp_path: Path) -> None:
    """`--from typo` used to be refused: `prepare` had not succeeded "in a run of the same IR"."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(TYPO.format(command="ech", comment=""))
    assert planrun_cli(str(plan), "--state-dir", "s", "-q", cwd=tmp_path).returncode == 1
    (tmp_path / "effects").unlink()
    plan.write_text(TYPO.format(command="echo", comment=""))
    from_typo = planrun_cli(str(plan), "--from", "typo", "--state-dir", "s", "-q", cwd=tmp_path)
    assert from_typo.returncode == 0, from_typo.stderr
    assert (tmp_path / "effects").read_text().split() == ["after"]
    run = collect(tmp_path / "s", 0)
    assert run.reasons == {
        "prepare": "reused",
        "other": "not_selected",
        "typo": None,
        "after": None,
    }


def test_a_comment_changes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ok"
    plan = tmp_path / "plan.yaml"
    text = TYPO.format(command="sh", comment="").replace(
        "args: [fixed]", f'args: ["-c", "test -e {marker}"]'
    )
    plan.write_text(text)
    assert planrun_cli(str(plan), "--state-dir", "s", "-q", cwd=tmp_path).returncode == 1
    run_id = collect(tmp_path / "s", 1).run_id
    (tmp_path / "effects").unlink()
    plan.write_text("# a comment moves every line\n" + text)
    marker.touch()  # the fix, outside the plan
    resumed = planrun_cli("--resume", run_id, str(plan), "--state-dir", "s", "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "effects").read_text().split() == ["after"]
    assert set(started(tmp_path / "s", run_id)) == {"prepare", "other", "typo", "after"}
    # typo failed before: no success of its own to stand in; the others kept theirs
    run = collect(tmp_path / "s", 0, run_id=run_id)
    resumed_at = [e.seq for e in run.events if e.type == "run_resumed"][-1]
    after_resume = [e for e in run.events if e.seq > resumed_at and e.type == "step_started"]
    assert [e.step_id for e in after_resume] == ["typo", "after"]


COPY = """\
plan_id: copy
globals: {{default_timeout_sec: 30}}
steps:
  - id: build
    command: sh
    args: ["-c", "cat src/*.txt > out/all.txt; echo build >> effects"]
    sources: ["src/**/*.txt"]
    generates: [out/all.txt]
  - id: package
    command: sh
    args: ["-c", "cp out/all.txt out/pkg.txt; echo package >> effects"]
    sources: [out/all.txt]
    generates: [out/pkg.txt]
    depends_on: [build]
  - id: notify
    command: sh
    args: ["-c", "echo notify >> effects"]
    depends_on: [package]
"""


def copy_project(tmp_path: Path) -> None:
    """COPY's plan, its src/a.txt and an empty out/ in `tmp_path`."""
    (tmp_path / "plan.yaml").write_text(COPY.format())
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")


def effects_of(tmp_path: Path, *args: str) -> list[str]:
    effects = tmp_path / "effects"
    effects.unlink(missing_ok=True)
    result = planrun_cli("plan.yaml", "--state-dir", "s", "-q", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return effects.read_text().split() if effects.exists() else []


def test_up_to_date_steps_are_skipped_across_runs(tmp_path: Path) -> None:
    copy_project(tmp_path)
    (tmp_path / "src" / "b.txt").write_text("b\n")
    assert effects_of(tmp_path) == ["build", "package", "notify"]

    # Nothing changed: the steps with sources and generates are up to date; notify declares
    # no sources, so it is never up to date.
    assert effects_of(tmp_path) == ["notify"]
    run = collect(tmp_path / "s", 0)
    assert run.statuses == {"build": "skipped", "package": "skipped", "notify": "success"}
    assert run.reasons == {"build": "up_to_date", "package": "up_to_date", "notify": None}
    shown = planrun_cli("show", "--state-dir", "s", cwd=tmp_path)
    assert "up_to_date" in shown.stdout

    (tmp_path / "src" / "b.txt").write_text("b, edited\n")
    assert effects_of(tmp_path) == ["build", "package", "notify"]
    assert started(tmp_path / "s")["build"] == "input src/b.txt changed"
    assert started(tmp_path / "s")["package"] == "input out/all.txt changed"

    (tmp_path / "out" / "pkg.txt").unlink()
    assert effects_of(tmp_path) == ["package", "notify"]
    assert started(tmp_path / "s")["package"] == "output out/pkg.txt is missing"

    assert effects_of(tmp_path, "--force", "package") == ["package", "notify"]
    assert effects_of(tmp_path, "--force") == ["build", "package", "notify"]
    unknown = planrun_cli("plan.yaml", "--state-dir", "s", "--force", "pkg", cwd=tmp_path)
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "planrun: no step `pkg` in this plan; did you mean `package`?\n",
    )


def test_force_with_or_without_a_step_wherever_plan_is(tmp_path: Path) -> None:
    """`--force [STEP]`: click takes the word after `--force` as its value unless it starts with
    `-`, so `planrun --force plan.yaml` gives the plan as --force's value: a value naming an
    existing file, when PLAN is missing, is PLAN (and --force forces every step)."""
    copy_project(tmp_path)
    assert effects_of(tmp_path) == ["build", "package", "notify"]
    build_ran_in = collect(tmp_path / "s", 0).run_id
    everything = ["build", "package", "notify"]
    # build writes the same out/all.txt: package stays up to date (the dry run cannot know)
    only_build = ["build", "notify"]
    build_verdicts = ["run", "run (why: upstream build re-runs)", "run"]
    cases: list[tuple[tuple[str, ...], list[str], list[str]]] = [
        (("--force", "plan.yaml"), everything, ["run"] * 3),
        (("plan.yaml", "--force"), everything, ["run"] * 3),
        (("plan.yaml", "--force", "build"), only_build, build_verdicts),
        (("--force", "build", "plan.yaml"), only_build, build_verdicts),
        (("plan.yaml", "--force=package", "--force=notify"), ["package", "notify"], [
            "up to date (fingerprint matches run BUILD_RUN)", "run", "run"
        ]),
        (("--force", "-j", "2", "plan.yaml"), everything, ["run"] * 3),
    ]  # fmt: skip
    for args, effects, verdicts in cases:
        dry = planrun_cli("--dry-run", "--state-dir", "s", *args, cwd=tmp_path)
        assert dry.returncode == 0, (args, dry.stderr)
        expected = [v.replace("BUILD_RUN", build_ran_in) for v in verdicts]
        assert [line.rsplit(")  ", 1)[1] for line in dry.stdout.splitlines()] == expected, args
        effects_file = tmp_path / "effects"
        effects_file.unlink(missing_ok=True)
        done = planrun_cli("--state-dir", "s", "-q", *args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        assert effects_file.read_text().split() == effects, args
        if "build" in effects:
            build_ran_in = collect(tmp_path / "s", 0).run_id
        # The forced steps ran, and the next plain run finds everything up to date again.
        assert effects_of(tmp_path) == ["notify"], args
    for args in [("plan.yaml", "--force", "pkg"), ("--force", "pkg", "plan.yaml")]:
        for dry_run in [(), ("--dry-run",)]:
            unknown = planrun_cli(*dry_run, "--state-dir", "s", *args, cwd=tmp_path)
            assert (unknown.returncode, unknown.stdout, unknown.stderr) == (
                2,
                "",
                "planrun: no step `pkg` in this plan; did you mean `package`?\n",
            ), args
    removed = planrun_cli("plan.yaml", "--force-step", "build", cwd=tmp_path)
    assert removed.returncode == 2 and "No such option '--force-step'" in removed.stderr


def test_an_edit_of_the_command_is_not_up_to_date(tmp_path: Path) -> None:
    copy_project(tmp_path)
    assert effects_of(tmp_path) == ["build", "package", "notify"]
    edited = COPY.format().replace("cat src/*.txt", "cat src/*.txt src/*.txt")
    (tmp_path / "plan.yaml").write_text(edited)
    assert effects_of(tmp_path) == ["build", "package", "notify"]
    assert started(tmp_path / "s")["build"] == "command changed"


def test_secret_values_enter_only_as_a_keyed_hash(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(
        "plan_id: keyed\nglobals: {default_timeout_sec: 30}\nsecrets: [TOKEN]\nsteps:\n"
        "  - id: use\n    command: sh\n    args: ['-c', 'test -n \"$TOKEN\"']\n"
    )
    secret = "s3cr3t-value-for-the-fingerprint"
    env = {"TOKEN": secret}
    assert planrun_cli("plan.yaml", "--state-dir", "s", cwd=tmp_path, env=env).returncode == 0
    key = tmp_path / "s" / "fingerprint.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    for path in (tmp_path / "s").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    (event,) = [e for e in collect(tmp_path / "s", 0).events if e.type == "step_started"]
    assert event.payload["fingerprint_parts"]["secrets"]["TOKEN"].startswith("k:")
    # Another value of the secret is another fingerprint: a resume would run the step again.
    assert planrun_cli("plan.yaml", "--state-dir", "s", cwd=tmp_path, env=env).returncode == 0
    second = next(e for e in collect(tmp_path / "s", 0).events if e.type == "step_started")
    assert second.payload["fingerprint"] == event.payload["fingerprint"]
    changed = planrun_cli(
        "plan.yaml", "--state-dir", "s", cwd=tmp_path, env={"TOKEN": secret + "x"}
    )
    assert changed.returncode == 0
    third = next(e for e in collect(tmp_path / "s", 0).events if e.type == "step_started")
    assert third.payload["fingerprint"] != event.payload["fingerprint"]
    assert os.stat(key).st_size == 32


def test_dry_run_says_what_each_step_would_do_and_why(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.format())
    run = ("pipeline.yaml", "--state-dir", "s")
    fresh = planrun_cli("--dry-run", *run, cwd=tmp_path)
    assert fresh.returncode == 0
    assert "reuse" not in fresh.stdout and " run" not in fresh.stdout  # no state dir yet
    assert planrun_cli(*run, "-q", cwd=tmp_path).returncode == 0
    run_id = collect(tmp_path / "s", 0).run_id
    dry = planrun_cli("--dry-run", *run, "--only", "report", "-p", "threshold=34", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    verdicts = [line.rsplit(")  ", 1)[1] for line in dry.stdout.splitlines()]
    assert verdicts == [
        f"reuse (fingerprint matches run {run_id})",
        "run (why: param threshold 10→34)",
        "run",
    ]
    assert collect(tmp_path / "s", 0).run_id == run_id  # the dry run recorded nothing


def test_dry_run_of_up_to_date_steps(tmp_path: Path) -> None:
    copy_project(tmp_path)
    assert effects_of(tmp_path) == ["build", "package", "notify"]
    run_id = collect(tmp_path / "s", 0).run_id
    (tmp_path / "src" / "a.txt").write_text("a, edited\n")
    dry = planrun_cli("--dry-run", "plan.yaml", "--state-dir", "s", cwd=tmp_path)
    verdicts = [line.rsplit(")  ", 1)[1] for line in dry.stdout.splitlines()]
    assert verdicts == [
        "run (why: input src/a.txt changed)",
        "run (why: upstream build re-runs)",
        "run",
    ]
    (tmp_path / "src" / "a.txt").write_text("a\n")
    dry = planrun_cli("--dry-run", "plan.yaml", "--state-dir", "s", cwd=tmp_path)
    verdicts = [line.rsplit(")  ", 1)[1] for line in dry.stdout.splitlines()]
    assert verdicts == [f"up to date (fingerprint matches run {run_id})"] * 2 + ["run"]
    forced = planrun_cli("--dry-run", "plan.yaml", "--state-dir", "s", "--force", cwd=tmp_path)
    assert [line.rsplit(")  ", 1)[1] for line in forced.stdout.splitlines()] == ["run"] * 3


def test_a_plan_without_sources_or_secrets_hashes_no_file(tmp_path: Path) -> None:
    """The cost of fingerprints for plans that do not use them: one hash per step, no file
    read, no key, nothing in the stat cache."""
    (tmp_path / "plan.yaml").write_text(
        "plan_id: plain\nglobals: {default_timeout_sec: 30}\nsteps:\n"
        "  - id: a\n    command: 'true'\n  - id: b\n    command: 'true'\n    depends_on: [a]\n"
    )
    assert planrun_cli("plan.yaml", "--state-dir", "s", "-q", cwd=tmp_path).returncode == 0
    assert planrun_cli("plan.yaml", "--state-dir", "s", "-q", cwd=tmp_path).returncode == 0
    run = collect(tmp_path / "s", 0)
    starts = [e for e in run.events if e.type == "step_started"]
    assert [e.step_id for e in starts] == ["a", "b"]  # no sources: never up to date
    assert all(len(e.payload["fingerprint"]) == 32 and "why" not in e.payload for e in starts)
    assert not (tmp_path / "s" / "fingerprint.key").exists()
    import sqlite3

    with sqlite3.connect(tmp_path / "s" / "state.db") as db:
        assert db.execute("SELECT count(*) FROM stat_cache").fetchone() == (0,)
        rows = db.execute("SELECT step_id FROM fingerprints ORDER BY step_id").fetchall()
    assert rows == [("a",), ("b",)]
