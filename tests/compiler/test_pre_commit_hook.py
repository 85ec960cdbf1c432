"""The planc-check pre-commit hook: a valid manifest, and a real `pre-commit try-repo` run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

GOOD = "plan_id: GOOD\nglobals: {default_timeout_sec: 60}\nsteps:\n  - id: a\n    command: 'true'\n"
BAD = "plan_id: BAD\nsteps:\n  - id: a\n    command: 'true'\n    depend_on: [b]\n"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_manifest_is_valid() -> None:
    result = subprocess.run(
        [*PRE_COMMIT, "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required")
def test_try_repo_flags_the_bad_plan_only(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "plans").mkdir(parents=True)
    (project / "plans" / "good.yaml").write_text(GOOD)
    (project / "plans" / "bad.yaml").write_text(BAD)
    (project / "README.md").write_text("not a plan\n")
    (project / "plans" / "good.params.json").write_text('{"name": "x"}')  # a params file
    _git(project, "init", "-q")
    _git(project, "add", ".")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def try_repo(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PRE_COMMIT, "try-repo", str(REPO), "planc-check", "--files", *files],
            cwd=project, capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip

    both = try_repo("plans/good.yaml", "plans/bad.yaml", "README.md", "plans/good.params.json")
    assert both.returncode == 1, both.stdout
    report = both.stdout.split("- exit code: 1\n")[-1]
    assert report.strip().splitlines() == [
        "plans/bad.yaml:5:5: error[unknown-key]: unknown key `depend_on` in step `a`",
        " 5 |     depend_on: [b]",
        "   |     ^~~~~~~~~",
        "  help: did you mean `depends_on`?",
        "1 error, 0 warnings",
    ]
    good = try_repo("plans/good.yaml")
    assert good.returncode == 0, good.stdout
