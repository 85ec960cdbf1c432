"""docs/semantics.md, row by row, against the pure PlanState (no processes).

`drive` runs the executor's loop over the instant replay launcher (planrun.core.replay): every
attempt of a step ends with the outcome the test scripted, until nothing is left; the end-to-end versions of these rows, with
real processes, are in test_semantics_e2e.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace

import pytest

from planrun.core import actions as act
from planrun.core import semantics as sem
from planrun.core.ir_types import IRStep
from planrun.core.replay import Replay


def step(
    step_id: str,
    deps: tuple[str, ...] = (),
    *,
    rule: str = "all_success",
    on_failure: str = "abort",
    critical: bool = True,
    fallback: str | None = None,
    condition: bool = False,
) -> dict[str, object]:
    return {
        "id": step_id,
        "deps": deps,
        "rule": rule,
        "on_failure": on_failure,
        "critical": critical,
        "fallback": fallback,
        "condition": condition,
    }


def build(specs: list[dict[str, object]]) -> list[sem.StepRules]:
    dependents: dict[str, list[str]] = {str(s["id"]): [] for s in specs}
    for s in specs:
        for dep in s["deps"]:  # type: ignore[attr-defined]
            dependents[dep].append(str(s["id"]))
    fallbacks = {s["fallback"] for s in specs if s["fallback"]}
    return [
        sem.StepRules(
            id=str(s["id"]),
            index=i,
            depends_on=tuple(s["deps"]),  # type: ignore[arg-type]
            dependents=tuple(dependents[str(s["id"])]),
            trigger_rule=str(s["rule"]),
            on_failure=str(s["on_failure"]),
            critical=bool(s["critical"]),
            fallback=s["fallback"],  # type: ignore[arg-type]
            is_fallback=s["id"] in fallbacks,
            has_condition=bool(s["condition"]),
        )
        for i, s in enumerate(specs)
    ]


def ir_step(fields: dict[str, object]) -> IRStep:
    """An IR step with the given fields; what the loop and resume do not read left None."""
    base: dict[str, object] = {key: None for key in IRStep.__slots__}
    base.update(is_fallback=False, trigger_rule="all_success", on_failure="abort", env={})
    return IRStep(**{**base, **fields})  # type: ignore[arg-type]


# The scripted status of every attempt of a step, as the replay launcher's exit code.
EXIT_CODE_OF = {sem.SUCCESS: 0, sem.FAILED: 1, sem.TIMED_OUT: None}


class Driver(Replay):
    """The executor's loop over instant attempts (planrun.core.replay), conditions as scripted."""

    def __init__(
        self,
        specs: list[dict[str, object]],
        outcomes: Mapping[str, str],
        conditions: Mapping[str, bool],
    ) -> None:
        self.conditions = conditions
        self.reasons: dict[str, str] = {}
        rules = build(specs)
        steps = {r.id: ir_step({"id": r.id}) for r in rules}
        code = {sid: EXIT_CODE_OF[outcome] for sid, outcome in outcomes.items()}
        super().__init__(steps, rules, lambda sid: code.get(sid, 0), {}, {}, {})

    def _condition_holds(self, step_id: str) -> bool:
        return self.conditions.get(step_id, True)

    def _record(self, action: act.Action) -> None:
        if isinstance(action, act.Skip | act.Cancel):
            self.reasons[action.step_id] = action.reason
        elif isinstance(action, act.UpstreamFailed):
            self.reasons[action.step_id] = sem.UPSTREAM_FAILED


def drive(
    specs: list[dict[str, object]],
    outcomes: Mapping[str, str],
    conditions: Mapping[str, bool] | None = None,
) -> tuple[dict[str, str], str, dict[str, str]]:
    """Run to completion; returns final statuses, the plan outcome and skip/cancel reasons."""
    driver = Driver(specs, outcomes, conditions or {})
    outcome = driver.replay()
    return dict(driver.plan.status), outcome, driver.reasons


def test_abort_critical_cancels_dependents_and_pending_steps() -> None:
    specs = [step("a"), step("b", ("a",)), step("c", ("a",)), step("d")]
    # `d` is independent but still pending when `a` aborts (the driver finishes `a` first).
    statuses, outcome, reasons = drive(specs, {"a": "failed"})
    assert statuses == {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "cancelled"}
    assert reasons == {"b": "aborted", "c": "aborted", "d": "aborted"}
    assert outcome == "failed"


def test_abort_not_critical_blocks_dependents_other_branches_go_on() -> None:
    specs = [step("a", critical=False), step("b", ("a",)), step("c", ("b",)), step("d")]
    statuses, outcome, reasons = drive(specs, {"a": "failed"})
    assert statuses == {
        "a": "failed", "b": "upstream_failed", "c": "upstream_failed", "d": "success"
    }  # fmt: skip
    assert reasons == {"b": "upstream_failed", "c": "upstream_failed"}
    assert outcome == "failed"


def test_skip_dependents() -> None:
    specs = [step("a", on_failure="skip_dependents"), step("b", ("a",)), step("c", ("b",))]
    specs.append(step("d"))
    statuses, outcome, _ = drive(specs, {"a": "timed_out"})
    assert statuses == {
        "a": "timed_out", "b": "upstream_failed", "c": "upstream_failed", "d": "success"
    }  # fmt: skip
    assert outcome == "failed"


def test_continue_lets_dependents_run_and_plan_succeeds() -> None:
    statuses, outcome, _ = drive(
        [step("a", on_failure="continue"), step("b", ("a",))], {"a": "failed"}
    )
    assert statuses == {"a": "failed", "b": "success"}
    assert outcome == "success"


def test_fallback_success_recovers() -> None:
    specs = [step("a", on_failure="fallback_step", fallback="r"), step("b", ("a",)), step("r")]
    plan_statuses, outcome, _ = drive(specs, {"a": "failed"})
    assert plan_statuses == {"a": "failed", "b": "success", "r": "success"}
    assert outcome == "success"


def test_fallback_failure_aborts_with_its_own_policy() -> None:
    specs = [step("a", on_failure="fallback_step", fallback="r"), step("b", ("a",)), step("r")]
    statuses, outcome, reasons = drive(specs, {"a": "failed", "r": "failed"})
    assert statuses == {"a": "failed", "b": "cancelled", "r": "failed"}
    assert reasons == {"b": "aborted"}
    assert outcome == "failed"


def test_fallback_failure_with_continue_blocks_dependents() -> None:
    specs = [
        step("a", on_failure="fallback_step", fallback="r"),
        step("b", ("a",)),
        step("r", on_failure="continue"),
    ]
    statuses, outcome, _ = drive(specs, {"a": "failed", "r": "failed"})
    assert statuses == {"a": "failed", "b": "upstream_failed", "r": "failed"}
    assert outcome == "failed"


def test_unneeded_fallback_is_skipped_not_needed() -> None:
    specs = [step("a", on_failure="fallback_step", fallback="r"), step("r")]
    statuses, outcome, reasons = drive(specs, {})
    assert statuses == {"a": "success", "r": "skipped"}
    assert reasons == {"r": "not_needed"}
    assert outcome == "success"


def test_shared_fallback_runs_once() -> None:
    specs = [
        step("a", on_failure="fallback_step", fallback="r"),
        step("b", on_failure="fallback_step", fallback="r"),
        step("r"),
    ]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    starts = [a.step_id for a in plan.begin() if isinstance(a, sem.Start)]
    assert starts == ["a", "b"]
    plan.started("a")
    plan.started("b")
    first = plan.finished("a", "failed")
    assert first == [sem.Start("r", urgent=True)]
    assert plan.finished("b", "failed") == []
    plan.started("r")
    after = plan.finished("r", "success")
    assert sem.Recovered("a", "r") in after and sem.Recovered("b", "r") in after
    assert plan.outcome() == "success"


def test_cleanup_runs_after_abort() -> None:
    specs = [step("a"), step("b", ("a",)), step("cleanup", ("b",), rule="all_done")]
    statuses, outcome, _ = drive(specs, {"a": "failed"})
    assert statuses == {"a": "failed", "b": "cancelled", "cleanup": "success"}
    assert outcome == "failed"


def test_one_failed_skipped_when_all_succeed() -> None:
    statuses, outcome, reasons = drive([step("a"), step("alert", ("a",), rule="one_failed")], {})
    assert statuses == {"a": "success", "alert": "skipped"}
    assert reasons == {"alert": "upstream"}
    assert outcome == "success"


def test_one_failed_runs_on_tolerated_failure() -> None:
    specs = [step("a", on_failure="continue"), step("alert", ("a",), rule="one_failed")]
    statuses, _, _ = drive(specs, {"a": "failed"})
    assert statuses["alert"] == "success"


def test_condition_false_skips_and_propagates_under_all_success_only() -> None:
    specs = [step("a", condition=True), step("b", ("a",)), step("c", ("a",), rule="none_failed")]
    statuses, outcome, reasons = drive(specs, {}, {"a": False})
    assert statuses == {"a": "skipped", "b": "skipped", "c": "success"}
    assert reasons == {"a": "condition", "b": "upstream"}
    assert outcome == "success"


def test_validate_timeout_never_pushes() -> None:
    specs = [
        step("validate", on_failure="skip_dependents"),
        step("push", ("validate",)),
        step("notify", ("push",), rule="none_failed"),
    ]
    statuses, outcome, _ = drive(specs, {"validate": "timed_out"})
    assert statuses["push"] == "upstream_failed"
    # The failure stays visible one hop further down: none_failed does not run after it.
    assert statuses["notify"] == "upstream_failed"
    assert outcome == "failed"


@pytest.mark.parametrize(
    ("rule", "dep_outcomes", "met"),
    [
        ("all_success", ["success", "success"], True),
        ("all_success", ["success", "skipped"], False),
        ("none_failed", ["success", "skipped"], True),
        ("none_failed", ["success", "cancelled:aborted"], False),
        ("none_failed", ["success", "upstream_failed"], False),
        ("all_done", ["failed", "cancelled:interrupted"], True),
        ("one_failed", ["success", "timed_out"], True),
        ("one_failed", ["success", "cancelled:interrupted"], False),
        ("one_failed", ["success", "cancelled:aborted"], True),
        ("one_failed", ["skipped", "upstream_failed"], True),
        ("one_success", ["failed", "success"], True),
        ("one_success", ["skipped", "failed"], False),
    ],
)
def test_trigger_rules(rule: str, dep_outcomes: list[str], met: bool) -> None:
    specs = [
        step("x", critical=False, on_failure="skip_dependents"),
        step("y", critical=False, on_failure="skip_dependents"),
        step("z", ("x", "y"), rule=rule),
    ]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    for dep, outcome in zip(("x", "y"), dep_outcomes, strict=True):
        plan.status[dep], _, reason = outcome.partition(":")
        if reason:
            plan.cancelled_by[dep] = reason
    assert plan.trigger_met(plan.steps["z"])[0] is met


def test_interrupt_cancels_pending_ordinary_but_runs_cleanup() -> None:
    specs = [step("a"), step("b", ("a",)), step("cleanup", ("a",), rule="all_done")]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    assert plan.begin() == [sem.Start("a")]
    plan.started("a")
    cancels = plan.stop_ordinary("interrupted")
    assert cancels == [sem.Cancel("b", "interrupted")]
    after = plan.finished("a", "cancelled")
    assert after == [sem.Start("cleanup")]
    plan.started("cleanup")
    plan.finished("cleanup", "success")
    assert plan.outcome() == "cancelled"


def test_second_interrupt_cancels_everything() -> None:
    plan = sem.PlanState.create(build([step("a"), step("b", ("a",))]), lambda _s: True)
    plan.begin()
    plan.started("a")
    actions = plan.kill_everything()
    assert set(actions) == {sem.Cancel("a", "interrupted"), sem.Cancel("b", "interrupted")}
    assert plan.outcome() == "cancelled"


def test_resume_restores_successes() -> None:
    specs = [step("a"), step("b", ("a",)), step("c", ("b",))]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    plan.restore({"a"})
    assert plan.begin() == [sem.Start("b")]


@pytest.mark.parametrize(
    ("delay", "backoff", "cap", "attempt", "expected"),
    [
        (2, 1, None, 2, 2),
        (2, 2, None, 3, 4),
        (2, 2, None, 4, 8),
        (2, 3, 10, 4, 10),
        (0, 2, None, 5, 0),
    ],
)
def test_retry_delay(
    delay: float, backoff: float, cap: float | None, attempt: int, expected: float
) -> None:
    assert sem.retry_delay(delay, backoff, cap, attempt) == expected


@pytest.mark.parametrize(("backoff", "attempt"), [(1e6, 200), (10.0, 400), (1e308, 4)])
def test_an_overflowing_uncapped_retry_delay_stays_finite(backoff: float, attempt: int) -> None:
    """Infinity would be invalid JSON in the step_retrying event (json.dumps writes `Infinity`)."""
    delay = sem.retry_delay(1.0, backoff, None, attempt)
    assert delay == sys.float_info.max
    assert json.loads(json.dumps({"delay_sec": delay}, allow_nan=False))["delay_sec"] == delay
    assert sem.retry_delay(1.0, backoff, 30.0, attempt) == 30.0


def test_no_retry_after_interrupt_for_ordinary_steps() -> None:
    assert sem.should_retry("failed", 1, 2, "normal", False)
    assert not sem.should_retry("failed", 3, 2, "normal", False)
    assert not sem.should_retry("failed", 1, 2, "interrupted", False)
    assert sem.should_retry("timed_out", 1, 2, "interrupted", True)
    assert not sem.should_retry("cancelled", 1, 2, "normal", False)


def test_attempt_ended_retries_within_the_budget_then_finishes() -> None:
    (rules,) = build([step("a")])
    rules = replace(rules, retries=2, retry_delay_sec=1.5, retry_backoff=2, max_retry_delay_sec=2)
    plan = sem.PlanState.create([rules], lambda _sid: True)
    plan.begin()
    plan.started("a")
    assert plan.attempt_ended("a", sem.FAILED, 1) == act.Retry("a", 1.5)
    assert plan.attempt_ended("a", sem.TIMED_OUT, 2) == act.Retry("a", 2)  # 3.0, capped
    assert plan.status["a"] == sem.RUNNING  # waiting for its retry
    assert plan.attempt_ended("a", sem.FAILED, 3) == [act.Abort("a")]
    assert plan.status["a"] == sem.FAILED and plan.outcome() == "failed"


def test_an_interrupt_leaves_only_cleanup_with_its_retries() -> None:
    specs = [step("a"), step("z", rule="all_done")]
    plan = sem.PlanState.create([replace(r, retries=1) for r in build(specs)], lambda _sid: True)
    plan.begin()
    plan.started("a")
    plan.started("z")
    plan.stop_ordinary("interrupted")
    assert plan.attempt_ended("z", sem.FAILED, 1) == act.Retry("z", 0)
    assert plan.attempt_ended("a", sem.FAILED, 1) == []


def test_the_replay_retries_a_step_back_to_back_and_counts_its_attempts() -> None:
    specs = [step("a", on_failure="continue"), step("b"), step("c", ("a",))]
    rules = [replace(r, retries=2) if r.id == "a" else r for r in build(specs)]
    steps = {r.id: ir_step({"id": r.id}) for r in rules}
    replay = Replay(steps, rules, lambda sid: 1 if sid == "a" else 0, {}, {}, {})
    assert replay.replay() == "success"
    assert replay.order == ["a", "b", "c"]  # a's retries start before b, as -j1 with no delay
    assert {sid: r.attempts for sid, r in replay.records.items()} == {"a": 3, "b": 1, "c": 1}
    assert replay.records["a"].exit_code == 1


def test_fallback_condition_false_skips_it_and_leaves_the_failure() -> None:
    specs = [
        step("a", on_failure="fallback_step", fallback="r"),
        step("b", ("a",)),
        step("r", condition=True),
    ]
    statuses, outcome, reasons = drive(specs, {"a": "failed"}, {"r": False})
    assert statuses == {"a": "failed", "b": "upstream_failed", "r": "skipped"}
    assert reasons == {"r": "condition", "b": "upstream_failed"}
    assert outcome == "failed"


def test_retry_delay_overflow_is_capped() -> None:
    assert sem.retry_delay(1.0, 1e10, 60.0, 50) == 60.0
    assert sem.retry_delay(1.0, 1e10, None, 50) == sys.float_info.max  # finite: valid JSON
    assert sem.retry_delay(0.0, 1e10, None, 50) == 0.0


def test_one_failed_fires_as_soon_as_a_dependency_fails() -> None:
    specs = [
        step("quick", on_failure="continue"),
        step("slow"),
        step("alert", ("quick", "slow"), rule="one_failed"),
    ]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    assert plan.begin() == [sem.Start("quick"), sem.Start("slow")]
    plan.started("quick")
    plan.started("slow")
    assert plan.finished("quick", "failed") == [sem.Start("alert")]  # slow still runs
    plan.started("alert")
    assert plan.finished("slow", "success") == []  # decided already: not started twice
    assert plan.finished("alert", "success") == []


def test_one_failed_with_a_condition_waits_for_every_dependency() -> None:
    specs = [
        step("quick", on_failure="continue"),
        step("slow"),
        step("alert", ("quick", "slow"), rule="one_failed", condition=True),
    ]
    plan = sem.PlanState.create(build(specs), lambda _s: True)
    plan.begin()
    plan.started("quick")
    plan.started("slow")
    assert plan.finished("quick", "failed") == []
    assert plan.finished("slow", "success") == [sem.Start("alert")]


def teardown_plan() -> list[sem.StepRules]:
    rules = build([step("take"), step("work", ("take",)), step("release", ("take", "work"))])
    return [*rules[:2], replace(rules[2], trigger_rule="all_done", teardown_for="take")]


def test_a_teardown_does_not_run_when_its_setup_failed() -> None:
    plan = sem.PlanState.create(teardown_plan(), lambda _s: True)
    plan.begin()
    plan.started("take")
    actions = plan.finished("take", "failed")
    assert sem.UpstreamFailed("release", "its setup take failed") in actions
    assert plan.status == {"take": "failed", "work": "cancelled", "release": "upstream_failed"}


def test_a_teardown_runs_when_its_setup_succeeded_whatever_else_failed() -> None:
    plan = sem.PlanState.create(teardown_plan(), lambda _s: True)
    plan.begin()
    plan.started("take")
    assert plan.finished("take", "success") == [sem.Start("work")]
    plan.started("work")
    actions = plan.finished("work", "failed")  # a critical abort
    assert sem.Abort("work") in actions and sem.Start("release") in actions


def test_resume_reruns_the_setup_and_teardown_around_work_to_redo() -> None:
    from planrun.core.loop import StepRecord
    from planrun.resume import kept_on_resume

    ir = [
        ir_step({"id": "take", "depends_on": (), "dependents": ("work", "rel")}),
        ir_step({"id": "work", "depends_on": ("take",), "dependents": ("rel",)}),
        ir_step({"id": "rel", "depends_on": ("take", "work"), "dependents": (),
                 "teardown_for": "take"}),
        ir_step({"id": "other", "depends_on": (), "dependents": ()}),
    ]  # fmt: skip
    done = {"take": "success", "work": "failed", "rel": "success", "other": "success"}
    previous = {sid: StepRecord(status=status) for sid, status in done.items()}
    assert kept_on_resume(previous, ir) == {"other"}
    previous["work"] = StepRecord(status="success")
    previous["rel"] = StepRecord(status="failed")
    assert kept_on_resume(previous, ir) == {"take", "work", "other"}  # only the release again
