"""plans/safe-merge.yaml end to end: a bare remote, a working clone, a colleague's clone.

The colleague pushes a feature branch and (in most tests) a newer main, so the run has to
fetch, fast-forward, merge, validate and push for real. Every failure path checks that the
remote did not move and that the working copy is exactly the snapshot again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pipelines_support import (
    Remote,
    commit_all,
    git,
    make_remote,
    outputs,
    run_pipeline,
    status_porcelain,
    variant,
)

CHECK_SH = """\
# The repository's own check: no text file may say BROKEN.
if grep -rn BROKEN --include='*.txt' --exclude-dir=.git .; then
    echo "check: BROKEN found" >&2
    exit 1
fi
echo "check: ok"
"""

FILES = {
    "app.txt": "line one\nline two\n",
    "check.sh": CHECK_SH,
    "Makefile": "check:\n\tsh check.sh\n",
}

STEPS = ["snapshot", "fetch", "update_target", "merge", "validate", "push"]


def remote_with_feature(
    tmp_path: Path, feature: dict[str, str], upstream: dict[str, str] | None = None
) -> tuple[Remote, str, str, str]:
    """The remote, the snapshot sha (the work clone's HEAD), the feature sha, the main sha.

    The colleague pushes `feature` (files on a branch from the initial commit) and, when
    given, `upstream` (a newer main), both after the work clone was made.
    """
    remote = make_remote(tmp_path, FILES)
    initial = git(remote.work, "rev-parse", "HEAD")
    git(remote.other, "checkout", "--quiet", "-b", "feature")
    feature_sha = commit_all(remote.other, "feature work", feature)
    git(remote.other, "push", "--quiet", "origin", "feature")
    git(remote.other, "checkout", "--quiet", "main")
    if upstream is not None:
        commit_all(remote.other, "upstream work", upstream)
        git(remote.other, "push", "--quiet", "origin", "main")
    return remote, initial, feature_sha, remote.head()


def assert_restored(remote: Remote, snapshot: str, branch: str = "main") -> None:
    assert git(remote.work, "rev-parse", "HEAD") == snapshot
    assert git(remote.work, "symbolic-ref", "--short", "HEAD") == branch
    assert status_porcelain(remote.work) == ""
    assert not (remote.work / ".git" / "MERGE_HEAD").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="the default validate_cmd is make check")
def test_happy_path_merges_validates_and_pushes(tmp_path: Path) -> None:
    remote, initial, feature_sha, upstream_sha = remote_with_feature(
        tmp_path, {"feature.txt": "a feature\n"}, {"upstream.txt": "someone else's work\n"}
    )
    result = run_pipeline(
        tmp_path, "safe-merge.yaml", {"repo": str(remote.work), "source_branch": "feature"}
    )

    assert result.exit_code == 0, result.output
    assert result.statuses == {
        **dict.fromkeys(STEPS, "success"),
        "restore": "skipped",
        "require_push": "skipped",
    }
    assert result.reasons["restore"] == "not_needed"
    assert result.reasons["require_push"] == "condition"
    assert outputs(result, "snapshot") == {
        "snapshot_ref": initial,
        "snapshot_branch": "main",
        "target_ref": initial,
    }
    head = git(remote.work, "rev-parse", "HEAD")
    assert remote.head() == head  # pushed
    assert git(remote.work, "rev-parse", "HEAD^1", "HEAD^2").split() == [upstream_sha, feature_sha]
    assert git(remote.work, "ls-tree", "--name-only", "HEAD").split() == [
        "Makefile",
        "app.txt",
        "check.sh",
        "feature.txt",
        "upstream.txt",
    ]
    assert status_porcelain(remote.work) == ""
    assert git(remote.work, "rev-parse", "refs/safe-merge/snapshot") == initial
    assert result.summary["status"] == "success"


def test_merge_conflict_restores_the_snapshot_and_pushes_nothing(tmp_path: Path) -> None:
    remote, initial, feature_sha, upstream_sha = remote_with_feature(
        tmp_path, {"app.txt": "feature's line one\nline two\n"}, {"app.txt": "main's line one\n"}
    )
    result = run_pipeline(
        tmp_path,
        "safe-merge.yaml",
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sh check.sh"},
    )

    assert result.exit_code == 1
    assert result.statuses == {
        "snapshot": "success",
        "fetch": "success",
        "update_target": "success",  # main was fast-forwarded to upstream_sha ...
        "merge": "failed",
        "restore": "success",  # ... and put back to the snapshot
        "validate": "skipped",
        "push": "skipped",
        "require_push": "failed",
    }
    assert result.reasons["validate"] == "condition"
    assert result.reasons["push"] == "upstream"  # a skipped validation blocks the push
    assert result.types("push") == ["step_skipped"]
    assert result.types("merge")[-1] == "step_recovered"
    assert_restored(remote, initial)
    assert remote.head() == upstream_sha
    assert remote.head("feature") == feature_sha
    assert result.summary["status"] == "failed"


def test_failed_validation_pushes_nothing_and_restores(tmp_path: Path) -> None:
    remote, initial, _, upstream_sha = remote_with_feature(
        tmp_path, {"feature.txt": "BROKEN feature\n"}, {"upstream.txt": "fine\n"}
    )
    result = run_pipeline(
        tmp_path,
        "safe-merge.yaml",
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sh check.sh"},
    )

    assert result.exit_code == 1
    assert result.statuses == {
        "snapshot": "success",
        "fetch": "success",
        "update_target": "success",
        "merge": "success",
        "validate": "failed",
        "restore": "success",
        "push": "skipped",
        "require_push": "failed",
    }
    # validate is recovered by the restore, so only the condition stands between it and push
    assert result.reasons["push"] == "condition"
    assert result.types("push") == ["step_skipped"]
    assert_restored(remote, initial)
    assert remote.head() == upstream_sha
    assert not (remote.work / "feature.txt").exists()


def test_validation_timeout_pushes_nothing_and_restores(tmp_path: Path) -> None:
    remote, initial, _, _ = remote_with_feature(tmp_path, {"feature.txt": "a feature\n"})
    before = remote.head()
    # The plan's validation timeout is 30 minutes; one second shows the same path.
    plan = variant(tmp_path, "safe-merge.yaml", validate={"timeout_sec": 1})
    result = run_pipeline(
        tmp_path,
        plan,
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sleep 60"},
    )

    assert result.exit_code == 1
    assert result.statuses["validate"] == "timed_out"
    assert result.reasons["validate"] == "timeout"
    assert result.statuses["restore"] == "success"
    assert result.statuses["push"] == "skipped"
    assert result.statuses["require_push"] == "failed"
    assert result.types("push") == ["step_skipped"]
    assert_restored(remote, initial)
    assert remote.head() == before
    assert float(result.summary["duration_sec"]) < 30


def test_restore_puts_back_another_checked_out_branch_and_the_target(tmp_path: Path) -> None:
    # The working copy is on `wip`, one commit ahead of main. The run checks out main,
    # fast-forwards it, hits a conflict; the restore must return to wip at its commit and
    # move main back to where it was, not just reset HEAD.
    remote, initial, _, upstream_sha = remote_with_feature(
        tmp_path, {"app.txt": "feature's line one\nline two\n"}, {"app.txt": "main's line one\n"}
    )
    git(remote.work, "checkout", "--quiet", "-b", "wip")
    wip = commit_all(remote.work, "local work", {"notes.txt": "wip\n"})
    result = run_pipeline(
        tmp_path,
        "safe-merge.yaml",
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sh check.sh"},
    )

    assert result.exit_code == 1
    assert result.statuses["merge"] == "failed"
    assert result.statuses["restore"] == "success"
    assert result.statuses["push"] == "skipped"
    assert outputs(result, "snapshot") == {
        "snapshot_ref": wip,
        "snapshot_branch": "wip",
        "target_ref": initial,
    }
    assert_restored(remote, wip, branch="wip")
    assert git(remote.work, "rev-parse", "refs/heads/main") == initial
    assert remote.head() == upstream_sha


def test_dirty_working_copy_is_refused_before_anything_changes(tmp_path: Path) -> None:
    remote, initial, _, upstream_sha = remote_with_feature(
        tmp_path, {"feature.txt": "a feature\n"}, {"upstream.txt": "more\n"}
    )
    (remote.work / "app.txt").write_text("uncommitted edit\n", encoding="utf-8")
    result = run_pipeline(
        tmp_path,
        "safe-merge.yaml",
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sh check.sh"},
    )

    assert result.exit_code == 1
    assert result.statuses == {
        "snapshot": "failed",
        "fetch": "cancelled",
        "update_target": "cancelled",
        "merge": "cancelled",
        "validate": "cancelled",
        "push": "cancelled",
        "restore": "skipped",
        "require_push": "failed",
    }
    assert git(remote.work, "rev-parse", "HEAD") == initial
    assert status_porcelain(remote.work) == "M app.txt"
    assert (remote.work / "app.txt").read_text(encoding="utf-8") == "uncommitted edit\n"
    assert remote.head() == upstream_sha


def test_target_that_cannot_fast_forward_is_restored(tmp_path: Path) -> None:
    # Local main has a commit the remote lacks and the remote has one local main lacks:
    # `update_target` (checkout + fast-forward only) fails and the restore undoes the checkout.
    remote, _, _, upstream_sha = remote_with_feature(
        tmp_path, {"feature.txt": "a feature\n"}, {"upstream.txt": "theirs\n"}
    )
    local = commit_all(remote.work, "local only", {"local.txt": "mine\n"})
    result = run_pipeline(
        tmp_path,
        "safe-merge.yaml",
        {"repo": str(remote.work), "source_branch": "feature", "validate_cmd": "sh check.sh"},
    )

    assert result.exit_code == 1
    assert result.statuses == {
        "snapshot": "success",
        "fetch": "success",
        "update_target": "failed",
        "restore": "success",
        "merge": "skipped",
        "validate": "skipped",
        "push": "skipped",
        "require_push": "failed",
    }
    assert [result.reasons[s] for s in ("merge", "validate", "push")] == [
        "condition",
        "upstream",
        "upstream",
    ]
    assert_restored(remote, local)
    assert remote.head() == upstream_sha
