"""plans/checkin.yaml end to end: ruff and pytest on a real repository, then a real commit."""

from __future__ import annotations

from pathlib import Path

from pipelines_support import git, init_repo, outputs, run_pipeline, status_porcelain

CALC = 'def add(a: int, b: int) -> int:\n    """The sum."""\n    return a + b\n'
TEST = "from calc import add\n\n\ndef test_add() -> None:\n    assert add(2, 3) == 5\n"


def project(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "project"
    head = init_repo(repo, {"calc.py": CALC, "test_calc.py": TEST})
    return repo, head


def test_checkin_commits_when_lint_and_tests_pass(tmp_path: Path) -> None:
    repo, before = project(tmp_path)
    (repo / "calc.py").write_text(CALC + "\n\ndef sub(a: int, b: int) -> int:\n    return a - b\n")
    (repo / "test_sub.py").write_text(
        "from calc import sub\n\n\ndef test_sub() -> None:\n    assert sub(5, 3) == 2\n"
    )
    result = run_pipeline(
        tmp_path, "checkin.yaml", {"repo": str(repo), "message": "Add sub; it's tested"}
    )

    assert result.exit_code == 0, result.output
    assert result.statuses == dict.fromkeys(
        ["lint_python", "run_tests", "safe_commit", "show_commit"], "success"
    )
    head = git(repo, "rev-parse", "HEAD")
    assert head != before
    assert git(repo, "rev-parse", "HEAD^") == before
    assert git(repo, "log", "-1", "--format=%s") == "Add sub; it's tested"
    assert git(repo, "show", "--name-status", "--format=", "HEAD").splitlines() == [
        "M\tcalc.py",
        "A\ttest_sub.py",
    ]
    assert status_porcelain(repo) == ""
    assert outputs(result, "safe_commit") == {"commit_sha": head}


def test_checkin_does_not_commit_when_tests_fail(tmp_path: Path) -> None:
    repo, before = project(tmp_path)
    (repo / "calc.py").write_text(CALC.replace("a + b", "a - b"))
    result = run_pipeline(tmp_path, "checkin.yaml", {"repo": str(repo)})

    assert result.exit_code == 1
    assert result.statuses == {
        "lint_python": "success",
        "run_tests": "failed",
        "safe_commit": "cancelled",
        "show_commit": "cancelled",
    }
    assert result.reasons["safe_commit"] == "aborted"
    assert result.types("safe_commit") == ["step_cancelled"]
    assert git(repo, "rev-parse", "HEAD") == before
    assert status_porcelain(repo) == "M calc.py"


def test_checkin_does_not_test_or_commit_when_lint_fails(tmp_path: Path) -> None:
    repo, before = project(tmp_path)
    (repo / "calc.py").write_text("import os\n" + CALC)  # F401: unused import
    result = run_pipeline(tmp_path, "checkin.yaml", {"repo": str(repo)})

    assert result.exit_code == 1
    assert result.statuses == {
        "lint_python": "failed",
        "run_tests": "cancelled",
        "safe_commit": "cancelled",
        "show_commit": "cancelled",
    }
    assert git(repo, "rev-parse", "HEAD") == before
    assert status_porcelain(repo) == "M calc.py"
