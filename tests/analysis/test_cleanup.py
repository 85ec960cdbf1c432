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
        "  help: add a step with `trigger_rule: all_done` that consumes `lock` and releases it\n"
        "1 error, 0 warnings\n"
    )


def test_an_all_done_release_covers_everything() -> None:
    plan = LOCK + "    trigger_rule: all_done\n"
    assert codes(check(plan)[0]) == []


def test_one_failed_release_covers_only_its_direct_dependencies() -> None:
    plan = LOCK.replace("    depends_on: [test]\n", "    depends_on: [build, test]\n")
    plan += "    trigger_rule: one_failed\n"
    plan += "    on_failure: continue\n"
    result, _ = check(plan, analyses=("cleanup",))
    # build and test are covered; what is left is an interrupt (one_failed sees `cancelled`).
    assert codes(result) == ["cleanup-missing"]
    assert result.diagnostics[0].message == (
        "`lock` (cleanup_required) provided by `take_lock` is not released if the run is"
        " interrupted: after a SIGINT only all_done/one_failed steps and fallbacks start, and"
        " only an all_done step runs whatever the other steps' statuses"
    )


def test_a_failure_on_another_branch_leaks_too() -> None:
    plan = LOCK.replace("    depends_on: [test]\n", "    depends_on: [build, test]\n")
    plan += "    trigger_rule: one_failed\n  - id: docs\n    command: mkdocs\n"
    result, _ = check(plan, analyses=("cleanup",))
    assert result.diagnostics[0].message == (
        "`lock` (cleanup_required) provided by `take_lock` is never released if `docs` fails:"
        " `docs` (on_failure: abort) runs on another branch, alongside or after `take_lock`"
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
    plan += "    trigger_rule: all_done\n"
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
