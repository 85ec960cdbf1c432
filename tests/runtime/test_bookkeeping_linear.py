"""The dependency bookkeeping of a whole run is O(steps + edges) (issue 17, W3).

The pure PlanState is driven like the executor drives it; a subclass counts how often a
dependency's outcome is read (`kind`), the unit of the bookkeeping's work per edge.
"""

from __future__ import annotations

import pytest

from planrun.core import semantics as sem


class CountingState(sem.PlanState):
    reads = 0

    def kind(self, step_id: str) -> str:
        type(self).reads += 1
        return super().kind(step_id)


def _fan_in(width: int, rule: str) -> list[sem.StepRules]:
    deps = tuple(f"d{i}" for i in range(width))
    steps = [sem.StepRules(d, i, (), ("join",), on_failure="continue") for i, d in enumerate(deps)]
    steps.append(sem.StepRules("join", width, deps, (), trigger_rule=rule))
    return steps


def _drive(steps: list[sem.StepRules], outcome: str) -> sem.PlanState:
    CountingState.reads = 0
    state = CountingState.create(steps, lambda _step: True)
    pending = [a.step_id for a in state.begin() if isinstance(a, sem.Start)]
    while pending:
        step_id = pending.pop()
        state.started(step_id)
        status = outcome if step_id != "join" else sem.SUCCESS
        pending += [a.step_id for a in state.finished(step_id, status) if isinstance(a, sem.Start)]
    return state


@pytest.mark.parametrize("rule", ["all_success", "none_failed", "one_success", "one_failed"])
def test_a_wide_fan_in_reads_each_dependency_a_bounded_number_of_times(rule: str) -> None:
    width = 3000
    # Every dependency fails (tolerated): no early rule fires before the last one settles, the
    # case where re-reading all settled dependencies at each one cost O(width²).
    state = _drive(_fan_in(width, rule), sem.FAILED)
    assert state.status["join"] in sem.TERMINAL
    assert CountingState.reads <= 4 * width


def test_an_early_rule_still_fires_on_the_first_deciding_dependency() -> None:
    steps = _fan_in(50, "one_failed")
    state = sem.PlanState.create(steps, lambda _step: True)
    started = [a.step_id for a in state.begin() if isinstance(a, sem.Start)]
    state.started(started[0])
    assert state.finished(started[0], sem.SUCCESS) == []
    state.started(started[1])
    assert state.finished(started[1], sem.FAILED) == [sem.Start("join")]
