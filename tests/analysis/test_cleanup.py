"""Cleanup coverage: `cleanup_required` resources released on every failure and interrupt path."""

from __future__ import annotations

from analysis_support import SAFE_MERGE, check, codes

LOCK = """\
plan_id: LOCK
globals:
  default_timeout_sec: 60
  cleanup_required: [lock]
steps:
  - id: take_lock
    command: lock
    provides: [lock]
  - id: build
    command: make
    depends_on: [take_lock]
  - id: test
    command: make
    depends_on: [build]
  - id: unlock
    command: unlock
    consumes: [lock]
    depends_on: [test]
"""


def test_release_only_on_success_is_reported_with_the_failing_path() -> None:
    _, text = check(LOCK, analyses=("cleanup",))
    assert text == (
        "plan.yaml:8:16: error[cleanup-missing]: `lock` (cleanup_required) provided by"
        " `take_lock` is never released if `build` fails: take_lock -> build (on_failure: abort)"
        " (nor if any of 2 other steps fails: `test`, `unlock`)\n"
        " 8 |     provides: [lock]\n"
        "   |                ^~~~\n"
        "  help: add a step with `teardown_for: take_lock` that releases `lock`\n"
        "1 error, 0 warnings\n"
    )


def test_a_teardown_covers_everything() -> None:
    plan = LOCK + "    teardown_for: take_lock\n"
    assert codes(check(plan)[0]) == []


def test_an_all_done_release_is_unguarded() -> None:
    # Issue 13: it would remove a lock someone else holds when take_lock fails.
    result, text = check(LOCK + "    trigger_rule: all_done\n", analyses=("cleanup",))
    assert codes(result) == ["cleanup-unguarded"]
    assert result.diagnostics[0].message == (
        "`unlock` releases `lock` (cleanup_required) even when `take_lock` did not acquire it"
        " (trigger_rule: all_done runs whatever `take_lock` ended with), and a resume that"
        " re-runs work after it does not acquire `lock` again"
    )
    assert "help: make it the teardown: `teardown_for: take_lock` instead of" in text


def test_a_one_failed_release_is_unguarded_too() -> None:
    plan = LOCK.replace("    depends_on: [test]\n", "    depends_on: [build, test]\n")
    plan += "    trigger_rule: one_failed\n"
    assert codes(check(plan, analyses=("cleanup",))[0]) == ["cleanup-unguarded"]


def test_a_consumer_after_the_teardown_is_outside_the_scope() -> None:
    plan = LOCK + "    teardown_for: take_lock\n"
    plan += "  - id: late\n    command: x\n    consumes: [lock]\n    depends_on: [unlock]\n"
    result, _ = check(plan, analyses=("cleanup",))
    assert codes(result) == ["cleanup-outside-scope"]
    assert result.diagnostics[0].message.startswith(
        "`late` consumes `lock` but does not run before the teardown of `take_lock` (`unlock`)"
    )


def test_a_failure_on_another_branch_leaks_too() -> None:
    plan = LOCK.replace(
        "  - id: unlock\n    command: unlock\n    consumes: [lock]\n    depends_on: [test]\n",
        "  - id: docs\n    command: mkdocs\n",
    )
    result, _ = check(plan, analyses=("cleanup",))
    assert result.diagnostics[0].message == (
        "`lock` (cleanup_required) provided by `take_lock` is never released if `build` fails:"
        " take_lock -> build (on_failure: abort) (nor if any of 2 other steps fails: `test`,"
        " `docs`)"
    )


def test_fallback_of_a_consumer_covers_its_failure() -> None:
    plan = """\
plan_id: STASH
globals: {default_timeout_sec: 60, cleanup_required: [stash]}
steps:
  - id: stash
    command: git
    provides: [stash]
  - id: rebase
    command: git
    consumes: [stash]
    on_failure: fallback_step
    fallback: unstash
  - id: unstash
    command: git
"""
    result, _ = check(plan, analyses=("cleanup",))
    assert codes(result) == ["cleanup-missing"]  # the rebase failure is covered; SIGINT is not
    assert "interrupted" in result.diagnostics[0].message


def test_cleanup_without_timeout_and_unknown_resource() -> None:
    plan = LOCK.replace("  default_timeout_sec: 60\n", "").replace(
        "cleanup_required: [lock]", "cleanup_required: [lock, lokc]"
    )
    plan += "    teardown_for: take_lock\n"
    result, text = check(plan, analyses=("cleanup",))
    found = [d for d in result.diagnostics if d.code != "no-timeout"]
    assert [d.code for d in found] == ["cleanup-unknown-resource", "cleanup-without-timeout"]
    assert text.splitlines()[0] == (
        "plan.yaml:3:28: warning[cleanup-unknown-resource]: `lokc` is listed in"
        " cleanup_required, but no step provides it"
    )
    assert found[1].message == (
        "cleanup step `unlock` releases `lock` but has no timeout; after an interrupt planrun"
        " waits for it without limit"
    )
    assert (found[1].line, found[1].col) == (14, 9)


def test_safe_merge_is_covered() -> None:
    result, _ = check(SAFE_MERGE.read_text(), path=str(SAFE_MERGE))
    assert codes(result) == []
