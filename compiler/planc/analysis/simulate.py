"""Failure simulation: replay planrun's own decisions over the IR, with chosen steps failing.

Nothing here decides anything: `planrun.semantics.PlanState` (trigger rules, policies, fallbacks,
abort, outcome), `planrun.scheduler.ReadyQueue` (which ready step starts next) and
`planrun.conditions.evaluate` are the runtime's own code. This module only plays the executor's
loop (`planrun.executor.Executor._loop`) with one worker and instant attempts, so the replay is
deterministic. What that leaves out is in docs/analysis.md ("Failure simulation").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planc.analysis.fixed import fixed_exit_code
from planrun import semantics as sem
from planrun.conditions import StepFacts, Value, evaluate
from planrun.invariants import by_step, refusal, why
from planrun.ir_types import IRStep
from planrun.scheduler import ReadyQueue

# planrun's exit code for each plan outcome (docs/semantics.md §7).
EXIT_CODES = {"success": 0, "failed": 1, "cancelled": 130}


@dataclass
class StepReport:
    """What would happen to one step."""

    step_id: str
    status: str = sem.PENDING
    reason: str | None = None  # skip reason, cancel reason, or `failed` / `timeout`
    detail: str = ""
    attempts: int = 0
    exit_code: int | None = None
    started: int | None = None  # 1-based position in the start order
    recovered_by: str | None = None
    fallback_for: list[str] = field(default_factory=list)
    fixed: bool = False  # its command fixes its outcome (analysis/fixed.py): not assumed

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "start_order": self.started,
            "recovered_by": self.recovered_by,
            "fallback_for": self.fallback_for,
            "fixed_by_command": self.fixed,
        }


@dataclass(frozen=True)
class Simulation:
    plan_id: str
    fail: tuple[str, ...]
    timeout: tuple[str, ...]
    steps: dict[str, StepReport]  # IR (topological) order
    order: tuple[str, ...]  # the order steps would start in
    aborted_by: str | None
    outcome: str
    exit_code: int

    @property
    def assumed(self) -> list[str]:
        """Steps that start and whose success is an assumption (not --fail, not fixed)."""
        chosen = {*self.fail, *self.timeout}
        return [
            s for s in self.order if s not in chosen and not self.steps[s].fixed
        ] if self.steps else []  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "fail": list(self.fail),
            "timeout": list(self.timeout),
            "start_order": list(self.order),
            "aborted_by": self.aborted_by,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "assumed_to_succeed": self.assumed,
            "steps": {sid: report.to_json() for sid, report in self.steps.items()},
        }


class _Facts(Mapping[str, StepFacts]):
    """What a condition reads, built on access: the executor passes every step's facts, and
    building them all for each condition would make the replay quadratic."""

    def __init__(self, state: sem.PlanState, reports: dict[str, StepReport]) -> None:
        self._state = state
        self._reports = reports  # only the steps something happened to

    def __getitem__(self, step_id: str) -> StepFacts:
        status = self._state.status[step_id]
        report = self._reports.get(step_id)
        if report is None:
            return StepFacts(status)
        # duration_sec: a replay has no clock; the runtime's value is a measured float.
        return StepFacts(status, report.exit_code, report.attempts, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.status)

    def __len__(self) -> int:
        return len(self._state.status)


class _Replay:
    def __init__(
        self,
        ir: dict[str, Any],
        fail: Iterable[str],
        timeout: Iterable[str],
        env: Mapping[str, str],
        rules: Sequence[sem.StepRules],
        params: Mapping[str, Value],
    ) -> None:
        self.ir = ir
        self.fail = tuple(dict.fromkeys(fail))
        self.timeout = tuple(dict.fromkeys(timeout))
        self.env = dict(env)
        self.params = dict(params)
        self.steps: dict[str, dict[str, Any]] = {s["id"]: s for s in ir["steps"]}
        # Created on first use: --all-single-failures replays big plans once per step.
        self.reports: dict[str, StepReport] = {}
        self.state = sem.PlanState.create(rules, self._condition_holds)
        self.facts = _Facts(self.state, self.reports)
        self.queue = ReadyQueue(rules)
        self.order: list[str] = []
        self.aborted_by: str | None = None
        self.invariants = by_step(ir.get("invariants") or [])

    def _refusal(self, step_id: str) -> list[sem.Action]:
        """planrun's check before a step starts (Executor._refusal), on the replay's statuses."""
        invariant = refusal(self.invariants[step_id], self.state.status)
        if invariant is None:
            return []
        return self.state.refuse(step_id, why(invariant, self.state.status))

    def report(self, step_id: str) -> StepReport:
        report = self.reports.get(step_id)
        if report is None:
            report = self.reports[step_id] = StepReport(step_id)
        return report

    def run(self, details: bool = True) -> Simulation:
        """The replay; without `details` only the outcome and the start order are kept."""
        self._apply(self.state.begin())
        while True:
            step_id = self.queue.pop()
            if step_id is None:
                # Executor._loop: nothing running, nothing ready → fallbacks nobody needed end.
                settled = self.state.settle()
                if not settled:
                    break
                self._apply(settled)
                continue
            if self.state.status[step_id] == sem.PENDING and step_id in self.invariants:
                refused = self._refusal(step_id)
                if refused:
                    self._apply(refused)
                    continue
            if self.state.status[step_id] in (sem.PENDING, sem.RUNNING):
                self._run_step(step_id)
        reports: dict[str, StepReport] = {}
        if details:
            for step_id, status in self.state.status.items():
                reports[step_id] = self.report(step_id)
                reports[step_id].status = status
        outcome = self.state.outcome()
        plan_id = str(self.ir.get("plan", {}).get("id", ""))
        return Simulation(
            plan_id,
            self.fail,
            self.timeout,
            reports,
            tuple(self.order),
            self.aborted_by,
            outcome,
            EXIT_CODES[outcome],
        )

    def _run_step(self, step_id: str) -> None:
        """Every attempt of the step, back to back: with one worker and a zero retry delay this
        is the executor's order (a due retry is pushed urgent before the next pop)."""
        step = self.steps[step_id]
        report = self.report(step_id)
        self.order.append(step_id)
        report.started = len(self.order)
        outcome, exit_code = self._outcome(step_id)
        report.fixed = step_id not in self.fail and step_id not in self.timeout
        report.fixed = report.fixed and exit_code is not None
        tries = 0
        while True:
            tries += 1
            report.attempts += 1
            self.state.started(step_id)
            report.exit_code = exit_code if exit_code is not None else 1
            if outcome == sem.SUCCESS:
                report.exit_code = 0
            elif outcome == sem.TIMED_OUT:
                report.exit_code = None
            if outcome == sem.SUCCESS:
                self._apply(self.state.finished(step_id, sem.SUCCESS))
                return
            cleanup = self.state.steps[step_id].is_cleanup
            if sem.should_retry(outcome, tries, step["retries"], self.state.mode, cleanup):
                continue
            report.reason = "timeout" if outcome == sem.TIMED_OUT else "failed"
            if step["on_failure"] == "fallback_step" and step["fallback"] is not None:
                self.report(step["fallback"]).fallback_for.append(step_id)
            self._apply(self.state.finished(step_id, outcome))
            return

    def _outcome(self, step_id: str) -> tuple[str, int | None]:
        """The attempts' outcome: --timeout, --fail, what the command fixes (with its exit
        code), or else success, assumed."""
        if step_id in self.timeout:
            return sem.TIMED_OUT, None
        if step_id in self.fail:
            return sem.FAILED, None
        code = fixed_exit_code(self.steps[step_id])
        if code is None:
            return sem.SUCCESS, None
        return (sem.SUCCESS if code == 0 else sem.FAILED), code

    def _apply(self, actions: list[sem.Action]) -> None:
        for action in actions:
            if isinstance(action, sem.Start):
                self.queue.push(action.step_id, action.urgent)
            elif isinstance(action, (sem.Skip, sem.UpstreamFailed)):
                report = self.report(action.step_id)
                report.reason, report.detail = action.reason, action.detail
            elif isinstance(action, sem.Cancel):
                report = self.report(action.step_id)
                report.reason = action.reason
                culprit = self.aborted_by
                report.detail = "" if culprit is None else f"{culprit} {self.state.status[culprit]}"
            elif isinstance(action, sem.Recovered):
                self.report(action.step_id).recovered_by = action.fallback
            elif self.aborted_by is None:
                self.aborted_by = action.step_id

    def _condition_holds(self, step_id: str) -> bool:
        condition = self.steps[step_id]["condition"]
        if condition is None:
            return True
        # planrun reads its own environment under the step's env; a replay reads --env instead.
        env = {**self.env, **self.steps[step_id]["env"]}
        return evaluate(condition["ast"], self.facts, env, self.params)


def simulate(
    ir: dict[str, Any],
    fail: Iterable[str] = (),
    timeout: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    rules: Sequence[sem.StepRules] | None = None,
    params: Mapping[str, Value] | None = None,
) -> Simulation:
    """What `planrun -j1` would decide if every attempt of `fail` exited 1 and every attempt of
    `timeout` timed out (every other attempt exits 0). O((steps + edges) · log steps).

    `params` are the bound params (`planrun.params.bind`; each declared param's default when
    None). `rules` (`planrun.semantics.rules_from_ir` of its steps) may be passed in by a caller
    that replays the same IR many times; they are immutable."""
    if rules is None:
        rules = sem.rules_from_ir(map(IRStep.from_json, ir["steps"]))
    if params is None:
        params = default_params(ir)
    return _Replay(ir, fail, timeout, env or {}, rules, params).run()


def default_params(ir: dict[str, Any]) -> dict[str, Value]:
    """What planrun binds without -p: every param's default (required ones read as null)."""
    return {name: spec.get("default") for name, spec in ir.get("params", {}).items()}


@dataclass(frozen=True)
class SingleFailure:
    step_id: str
    started: bool  # False: the step does not start unless something else fails too
    outcome: str
    exit_code: int
    not_run: tuple[str, ...]  # steps that start without failures but not with this one
    also_run: tuple[str, ...]  # steps that start only because of this failure

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "starts": self.started,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "would_not_run": list(self.not_run),
            "would_also_run": list(self.also_run),
        }


def all_single_failures(
    ir: dict[str, Any],
    env: Mapping[str, str] | None = None,
    params: Mapping[str, Value] | None = None,
) -> tuple[Simulation, list[SingleFailure]]:
    """The run without failures, and one row per step failing alone: steps × (steps + edges)."""
    rules = sem.rules_from_ir(map(IRStep.from_json, ir["steps"]))
    params = default_params(ir) if params is None else params
    baseline = simulate(ir, env=env, rules=rules, params=params)
    ran = set(baseline.order)
    ids = [step["id"] for step in ir["steps"]]
    rows: list[SingleFailure] = []
    for sid in ids:
        # A step that never starts cannot fail: its replay would be the baseline itself.
        sim = baseline
        if sid in ran:
            sim = _Replay(ir, [sid], (), env or {}, rules, params).run(details=False)
        now = set(sim.order)
        rows.append(
            SingleFailure(
                sid,
                sid in ran,
                sim.outcome,
                sim.exit_code,
                tuple(s for s in ids if s in ran and s not in now),
                tuple(s for s in sim.order if s not in ran),
            )
        )
    return baseline, rows
