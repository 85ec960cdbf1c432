"""Reachability: steps that never run, conditions decided in advance, fallbacks never needed."""

from __future__ import annotations

from analysis_support import check, codes, compile_ir

from planc.analysis.reachability import CANCELLED, SKIPPED, SUCCESS, analyse

NEVER_TIMES_OUT = """\
plan_id: R
steps:
  - id: probe
    command: "true"
    on_failure: continue
  - id: retry_slow
    command: "true"
    timeout_sec: 10
    depends_on: [probe]
    condition: "steps.probe.status == 'timed_out'"
    on_failure: fallback_step
    fallback: fix
  - id: publish
    command: "true"
    timeout_sec: 10
    depends_on: [retry_slow]
  - id: alert
    command: notify
    timeout_sec: 10
    depends_on: [retry_slow, publish]
    trigger_rule: one_failed
  - id: fix
    command: fix
    timeout_sec: 10
"""


def test_a_step_without_timeout_never_times_out_and_what_follows_never_runs() -> None:
    result, text = check(NEVER_TIMES_OUT, analyses=("reachability",))
    assert [d for d in codes(result) if d != "no-timeout"] == [
        "condition-never-true",
        "never-runs",
        "never-runs",
        "fallback-never-needed",
    ]
    shown = "\n".join(line for line in text.splitlines() if "no-timeout" not in line)
    assert (
        "plan.yaml:10:17: error[condition-never-true]: the condition of `retry_slow` can never be"
        " true, so the step would always be skipped\n"
        " 10 |     condition: \"steps.probe.status == 'timed_out'\"\n"
        "    |                 ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
        "  help: `probe` can only be success or failed here (it has no timeout, so it never times"
        " out)\n"
        "plan.yaml:13:9: warning[never-runs]: step `publish` can never run: under trigger_rule:"
        " all_success it needs `retry_slow` to succeed, and `retry_slow` never runs\n"
        " 13 |   - id: publish\n"
        "    |         ^~~~~~~\n"
        "  help: every run skips it: fix the cause upstream first\n"
        "plan.yaml:21:19: warning[never-runs]: step `alert` can never run: under trigger_rule:"
        " one_failed one of `retry_slow`, `publish` must fail, and none of them ever runs\n"
        " 21 |     trigger_rule: one_failed\n"
        "    |                   ^~~~~~~~~~\n"
        "  help: every run skips it: fix the cause upstream first\n"
        "plan.yaml:22:9: warning[fallback-never-needed]: fallback step `fix` is never needed: no"
        " step that falls back to it ever runs (`retry_slow`)\n"
        " 22 |   - id: fix\n"
        "    |         ^~~\n"
        "  help: fix the step that should fall back to it, or remove the fallback\n"
    ) in shown + "\n"


ALWAYS_TRUE_UPSTREAM = """\
plan_id: R
globals: {default_timeout_sec: 10}
steps:
  - id: a
    command: "true"
    on_failure: continue
  - id: b
    command: "true"
    depends_on: [a]
  - id: c
    command: "true"
    depends_on: [b]
    trigger_rule: all_done
    condition: "steps.a.status in ['success', 'failed', 'timed_out', 'cancelled']"
"""


def test_condition_on_a_step_further_upstream_is_always_true() -> None:
    # `a` has no dependency and no condition: it cannot be skipped. The rule only knows direct
    # dependencies (here `b`), so only the analysis can tell.
    result, _ = check(ALWAYS_TRUE_UPSTREAM)
    assert codes(result) == ["condition-always-true"]
    d = result.diagnostics[0]
    assert (d.line, d.col) == (14, 17)
    assert d.message == "the condition of `c` is always true when `c` gets to run"
    assert d.hint == (
        "`a` can only be success, failed, timed_out or cancelled here; the condition changes"
        " nothing, remove it"
    )


def test_nothing_is_reported_twice_with_the_condition_rule() -> None:
    # The rule proves this one always true from the direct dependency alone: one warning.
    plan = ALWAYS_TRUE_UPSTREAM.replace(
        "condition: \"steps.a.status in ['success', 'failed', 'timed_out', 'cancelled']\"",
        "condition: \"steps.b.status in ['success', 'failed', 'timed_out', 'skipped',"
        " 'upstream_failed', 'cancelled']\"",
    )
    result, _ = check(plan)
    assert codes(result) == ["condition-always-true"]
    assert "under trigger_rule: all_done" in result.diagnostics[0].message


def test_undecided_conditions_are_not_reported() -> None:
    plan = ALWAYS_TRUE_UPSTREAM.replace("'timed_out', 'cancelled'", "'timed_out'")
    assert codes(check(plan)[0]) == []


def test_outcome_sets() -> None:
    ir = compile_ir(
        {
            "plan_id": "R",
            "globals": {"default_timeout_sec": 5},
            "steps": [
                {"id": "a", "command": "x", "on_failure": "continue"},
                {"id": "b", "command": "x", "depends_on": ["a"], "on_failure": "skip_dependents"},
                {"id": "c", "command": "x", "depends_on": ["b"], "trigger_rule": "all_done"},
                {"id": "d", "command": "x", "on_failure": "fallback_step", "fallback": "r"},
                {"id": "r", "command": "x"},
            ],
        }
    )
    flow = analyse(ir).steps
    assert flow["a"].outcomes == {
        SUCCESS, ("failed", True), ("timed_out", True), CANCELLED
    }  # fmt: skip
    # b runs after a whatever a did (tolerated); an untolerated failure of b skips, not cancels.
    assert flow["b"].outcomes == {SUCCESS, ("failed", False), ("timed_out", False), CANCELLED}
    # c is a cleanup step: never cancelled by an interrupt, always runs.
    assert flow["c"].outcomes == {SUCCESS, ("failed", False), ("timed_out", False)}
    assert flow["d"].outcomes >= {("failed", True), ("failed", False)}
    assert flow["r"].can_run
    assert SKIPPED in flow["r"].outcomes


NEW_RULES = """\
plan_id: R
globals: {default_timeout_sec: 10}
steps:
  - {id: validate, command: "true", on_failure: skip_dependents}
  - {id: build, command: "true", depends_on: [validate]}
  - {id: deploy, command: "true", depends_on: [build], trigger_rule: none_failed}
  - {id: alert, command: "true", depends_on: [build], trigger_rule: one_failed}
  - {id: defaults, command: "true", depends_on: [validate], trigger_rule: all_skipped}
"""


def test_upstream_failed_is_an_outcome_of_its_own() -> None:
    flow = analyse(compile_ir(NEW_RULES))
    upstream_failed = ("upstream_failed", False)
    assert upstream_failed in flow.steps["build"].outcomes
    assert SKIPPED not in flow.steps["build"].outcomes  # validate has no condition
    # deploy is blocked, never skipped: none_failed does not run after a blocked build.
    ran = {SUCCESS, ("failed", False), ("timed_out", False)}
    assert flow.steps["deploy"].outcomes == {*ran, upstream_failed, CANCELLED}
    assert flow.steps["alert"].can_run
    assert SKIPPED in flow.steps["alert"].outcomes  # build can succeed


def test_a_rule_no_outcome_of_the_dependencies_meets_never_runs() -> None:
    # validate has no condition: it is never skipped, so all_skipped is never met.
    result, _ = check(NEW_RULES, analyses=("reachability",))
    [d] = [d for d in result.diagnostics if d.code == "never-runs"]
    assert d.message == (
        "step `defaults` can never run: under trigger_rule: all_skipped (every dependency ended"
        " `skipped`) no outcome of `validate` meets it"
    )
