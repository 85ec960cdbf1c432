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
        " never run cannot fail or succeed.\n\n"
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
        "For each name in `globals.cleanup_required`, the step that provides it must be"
        " followed by a release on every path where a later step fails, times out or the run"
        " is interrupted: a step with `trigger_rule: all_done` that consumes it covers all of"
        " them; a `one_failed` step that consumes it covers its direct dependencies; the"
        " fallback of a step that consumes it covers that step.\n\n"
        "    globals: {cleanup_required: [lock]}\n    steps:\n"
        "      - {id: take_lock, command: lock, provides: [lock]}\n"
        "      - {id: work, command: make, depends_on: [take_lock]}\n"
        "      - {id: unlock, command: unlock, consumes: [lock], depends_on: [work],\n"
        "         trigger_rule: all_done}   # without all_done: not released when work fails",
    ),
    "cleanup-without-timeout": (
        "a step that releases a `cleanup_required` resource has no timeout",
        "Cleanup steps still run after an abort and after a first SIGINT; without a timeout a"
        " hung cleanup keeps planrun waiting forever. Set `timeout_sec` on it.",
    ),
    "cleanup-unknown-resource": (
        "warning: `cleanup_required` names a resource no step provides",
        "Nothing can acquire it, so nothing is checked; usually a typo of a `provides` name.",
    ),
}
