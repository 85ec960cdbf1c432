"""Diagnostic codes of the analyses (docs/analysis.md), for `planc explain`.

The reachability analysis also reports `condition-never-true` and `condition-always-true`, which
planc.codes_conditions documents: same meaning, found with finer knowledge of the outcomes.
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "deadline-exceeded": (
        "the worst-case duration can exceed `globals.deadline_sec`",
        "`planc bound` adds up, per step, (retries + 1) × (timeout + kill grace) and the capped"
        " retry delays, then takes the longest dependency path (a fallback counts after the"
        " step naming it) and, for max_concurrency m, W/m + (1 − 1/m)·L. When that exceeds the"
        " deadline the run is not guaranteed to finish in time.\n\n"
        "    globals:\n      deadline_sec: 600\n      default_timeout_sec: 300\n"
        "    steps:\n      - {id: build, command: make}\n"
        "      - {id: test, command: make, args: [test], depends_on: [build]}"
        "   # 2 × 305s > 600s",
    ),
    "unbounded-step": (
        "a plan with `deadline_sec` has a step without any timeout",
        "A step with no `timeout_sec` and no `globals.default_timeout_sec` can run forever, so"
        " no deadline can be promised. Give it a timeout.\n\n"
        "    globals:\n      deadline_sec: 600\n    steps:\n"
        "      - {id: build, command: make}        # add timeout_sec: 300",
    ),
    "never-runs": (
        "warning: a step can never run, whatever happens upstream",
        "Its trigger rule needs an outcome that no dependency can have: under all_success a"
        " dependency that never runs blocks it, under one_failed/one_success dependencies that"
        " never run cannot fail or succeed, under all_skipped a dependency that cannot be skipped"
        " never lets it run (docs/semantics.md §1, docs/analysis.md §3).\n\n"
        "    - id: lint\n      command: ruff\n      condition: \"env.CI == 'yes' and env.CI =="
        " 'no'\"\n    - id: commit\n      depends_on: [lint]   # never runs: lint never does",
    ),
    "fallback-never-needed": (
        "warning: a fallback step no running step can need",
        "A fallback runs only when a step naming it runs and fails; when none of those steps"
        " can ever run, the fallback is dead code.",
    ),
    "cleanup-missing": (
        "a resource in `cleanup_required` is not released on some failure path",
        "For each name in `globals.cleanup_required`, the step that provides it (the setup) must"
        " have a teardown: a step with `teardown_for: <setup>` that releases it. A teardown runs"
        " once the setup and its other dependencies are settled, if and only if the setup"
        " succeeded (so it never releases a lock someone else holds), also after an abort or an"
        " interrupt; a resume, `--only` or `--from` that re-runs a step between the two re-runs"
        " the setup first and the teardown after (docs/semantics.md §5b). Without one, only the"
        " fallback of a step that consumes it covers that step's failure.\n\n"
        "    globals: {cleanup_required: [lock]}\n    steps:\n"
        "      - {id: take_lock, command: mkdir, args: [lock], provides: [lock]}\n"
        "      - {id: copy, command: rsync, args: [-a, src/, dst/], consumes: [lock]}\n"
        "      - {id: release_lock, command: rmdir, args: [lock], consumes: [lock],\n"
        "         depends_on: [copy], teardown_for: take_lock}",
    ),
    "cleanup-unguarded": (
        "a `cleanup_required` resource is released by a cleanup rule instead of a teardown",
        "A release with `trigger_rule: all_done` (or `one_failed`…) runs whatever its"
        " acquirer ended with: when `take_lock` fails because someone else holds the lock, it"
        " removes their lock. And a resume that re-runs the work after it re-runs neither the"
        " acquirer nor the release. Declare the release as the acquirer's teardown instead.\n\n"
        "    - id: release_lock\n      command: rmdir\n      args: [lock]\n"
        "      consumes: [lock]\n      depends_on: [copy]\n"
        "      teardown_for: take_lock   # instead of trigger_rule: all_done",
    ),
    "cleanup-outside-scope": (
        "a step consumes a `cleanup_required` resource but does not run before its teardown",
        "The scope of a setup is the steps between it and its teardown (descendants of the setup"
        " that the teardown depends on). A consumer outside it may use the resource after the"
        " release, and a resume re-running it does not acquire the resource again. Add it to"
        " the teardown's `depends_on`.",
    ),
    "cleanup-without-timeout": (
        "a step that releases a `cleanup_required` resource has no timeout",
        "Teardowns and cleanup steps still run after an abort and after a first SIGINT; without"
        " a timeout a hung one keeps planrun waiting forever. Set `timeout_sec` on it.",
    ),
    "cleanup-unknown-resource": (
        "warning: `cleanup_required` names a resource no step provides",
        "Nothing can acquire it, so nothing is checked; usually a typo of a `provides` name.",
    ),
    "invariant-violable": (
        "some combination of step outcomes lets a step start against an invariant",
        "`planc check` searches every run the plan allows (each step succeeding, failing or"
        " timing out, shared fallbacks recovering or not, conditions the statuses do not decide,"
        " an abort or a first interrupt at any moment) for one in which the guarded step starts"
        " while the invariant's guard is false, and prints the one with the fewest choices"
        " (docs/invariants.md). Typical causes: `on_failure: continue` or a recovered fallback"
        " on the required step, a rule that runs after failures (`none_failed` after a skip,"
        " `all_done`), a dependency that is missing.\n\n"
        "    invariants: [push requires validate.success]\n    steps:\n"
        "      - {id: validate, command: make, args: [check], on_failure: continue}\n"
        "      - {id: push, command: git, args: [push], depends_on: [validate]}",
    ),
    "invariant-undecided": (
        "warning: an invariant could not be decided within planc's bound",
        "The proof keeps one world per combination of outcomes that later steps still read; when"
        " the steps between the guarded step and the steps its guard reads are so intertwined"
        " that more than 4000 combinations stay relevant at once, planc stops and says so"
        " instead of guessing. planrun still checks the invariant before the step starts"
        " (docs/invariants.md).",
    ),
}
