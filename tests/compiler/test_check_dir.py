"""`planc check DIRECTORY` checks the plan files under it, recognised as the pre-commit hook
recognises them; params files are not plans."""

from __future__ import annotations

from pathlib import Path

import yaml
from support import REPO, planc_cli

from planc.plan_files import NOT_PLANS, PLAN_FILES, is_plan_file

GOOD = "plan_id: GOOD\nglobals: {default_timeout_sec: 60}\nsteps:\n  - id: a\n    command: 'true'\n"
BAD = "plan_id: BAD\nsteps:\n  - id: a\n    command: 'true'\n    depend_on: [b]\n"


def test_the_hook_and_planc_check_share_the_patterns() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert (hook["files"], hook["exclude"]) == (PLAN_FILES, NOT_PLANS)


def test_which_files_are_plans() -> None:
    assert is_plan_file("plans/a.yaml") and is_plan_file("x/plans/deep/b.json")
    assert is_plan_file("ci.plan.yml") and is_plan_file("tools/release.plan.json")
    assert not is_plan_file("plans/release.params.json")
    assert not is_plan_file("README.md") and not is_plan_file("plans/scripts/x.py")
    assert not is_plan_file("myplans/a.yaml")
    # fragments are checked through the plans that include them
    assert not is_plan_file("plans/fragments/phase.yaml")
    assert not is_plan_file("plans/build.fragment.yml")


def test_planc_check_plans_of_this_repository() -> None:
    """Every plan in plans/ checks without errors; its fragments are not taken for plans."""
    done = planc_cli("check", "plans/", cwd=REPO)
    assert done.returncode == 0, done.stdout
    assert "fragments/" not in done.stdout


def test_planc_check_a_directory(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    (plans / "sub").mkdir(parents=True)
    (plans / "good.yaml").write_text(GOOD)
    (plans / "sub" / "bad.yaml").write_text(BAD)
    (plans / "good.params.json").write_text('{"name": "x"}')  # not a plan: not checked
    (plans / "notes.md").write_text("not a plan\n")
    (tmp_path / "ci.plan.yaml").write_text(GOOD)
    done = planc_cli("check", "plans/", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        "plans/sub/bad.yaml:5:5: error[unknown-key]: unknown key `depend_on` in step `a`"
    )
    assert "params.json" not in done.stdout and done.stdout.endswith("1 error, 0 warnings\n")
    (plans / "sub" / "bad.yaml").write_text(GOOD)
    assert planc_cli("check", ".", cwd=tmp_path).returncode == 0


def test_planc_check_a_directory_without_plans(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = planc_cli("check", "empty", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("planc: no plan files under empty (plans are files under a")
