"""Failure simulation: replay planrun's own decisions over the IR, with chosen steps failing.

Nothing here decides anything: the replay is the executor's own loop (`planrun.core.loop.Loop`,
over `planrun.core.semantics.PlanState`, `planrun.core.scheduler.ReadyQueue` and the conditions)
driven by `planrun.core.replay` with one worker and instant attempts, so it is deterministic. This
module only says which attempts fail and keeps a report per step. What that leaves out is in
docs/analysis.md ("Failure simulation").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planc.analysis.context import typed
from planc.analysis.fixed import fixed_exit_code
from planrun.core import actions as act
from planrun.core import semantics as sem
from planrun.core.byvalue import ByValue
from planrun.core.conditions import Value
from planrun.core.invariants import by_step
from planrun.core.ir_types import IRPlan, OnFailure
from planrun.core.replay import Replay

if TYPE_CHECKING:
    from planrun.reuse import Verdict

# A step's reuse verdict, asked when it would first start (planrun.dry_run.replay_verdicts).
Verdicts = Callable[[str], "Verdict"]


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
    reuse: Verdict | None = None  # with a state dir: what planrun would decide at its start

    @property
    def stood_in(self) -> bool:
        """A recorded success stands in for it: it does not run."""
        return self.reuse is not None and self.reuse.stands_in

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


@dataclass(frozen=True, eq=False, repr=False)
class Simulation(ByValue):
    plan_id: str
    fail: tuple[str, ...]
    timeout: tuple[str, ...]
    steps: dict[str, StepReport]  # IR (topological) order
    order: tuple[str, ...]  # the order steps would start in
    aborted_by: str | None
    outcome: str
    exit_code: int
    predicts_reuse: bool = False  # replayed with a state dir's reuse verdicts

    @property
    def assumed(self) -> list[str]:
        """Steps that start and whose success is an assumption (not --fail, not fixed, not
        stood in for by a recorded success)."""
        chosen = {*self.fail, *self.timeout}
        return [
            s for s in self.order
            if s not in chosen and not self.steps[s].fixed and not self.steps[s].stood_in
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
            "steps": {sid: self._step_json(report) for sid, report in self.steps.items()},
        }

    def _step_json(self, report: StepReport) -> dict[str, Any]:
        data = report.to_json()
        if self.predicts_reuse:  # else the key is absent: the JSON of a plain simulation
            data["reuse"] = None if report.reuse is None else report.reuse.to_json()
        return data


class _Replay(Replay):
    """The executor's loop over instant attempts (`planrun.core.replay`), with a report per step."""

    def __init__(
        self,
        ir: IRPlan,
        fail: Iterable[str],
        timeout: Iterable[str],
        env: Mapping[str, str],
        rules: Sequence[sem.StepRules],
        params: Mapping[str, Value],
        verdicts: Verdicts | None = None,
    ) -> None:
        self.ir = ir
        self.verdicts = verdicts
        self.fail = tuple(dict.fromkeys(fail))
        self.timeout = tuple(dict.fromkeys(timeout))
        steps = {s.id: s for s in ir.steps}
        invariants = by_step(ir.invariants or [])
        # planrun reads its own environment under the step's env; a replay reads --env instead.
        super().__init__(steps, rules, self._exit_code, dict(env), dict(params), invariants)
        # Created on first use: --all-single-failures replays big plans once per step.
        self.reports: dict[str, StepReport] = {}
        self.fixed: dict[str, int | None] = {}
        self.aborted_by: str | None = None

    def report(self, step_id: str) -> StepReport:
        report = self.reports.get(step_id)
        if report is None:
            report = self.reports[step_id] = StepReport(step_id)
        return report

    def run(self, details: bool = True) -> Simulation:
        """The replay; without `details` only the outcome and the start order are kept."""
        outcome = self.replay()
        reports: dict[str, StepReport] = {}
        if details:
            for step_id, status in self.plan.status.items():
                report = reports[step_id] = self.report(step_id)
                record = self.records[step_id]
                report.status, report.attempts = status, record.attempts
                report.exit_code = record.exit_code
                if report.stood_in:  # as planrun records it: skipped, reason reused/up_to_date
                    report.status = sem.SKIPPED
        plan_id = str(self.ir.plan.get("id", ""))
        return Simulation(
            plan_id,
            self.fail,
            self.timeout,
            reports,
            tuple(self.order),
            self.aborted_by,
            outcome,
            sem.EXIT_CODES[outcome],
            self.verdicts is not None,
        )

    def _exit_code(self, step_id: str) -> int | None:
        """The attempts' exit code (None: they time out): --timeout, --fail, what the command
        fixes, or else 0, assumed."""
        if step_id in self.timeout:
            return None
        if step_id in self.fail:
            return 1
        if step_id not in self.fixed:
            self.fixed[step_id] = fixed_exit_code(self.steps[step_id])
        code = self.fixed[step_id]
        return 0 if code is None else code

    def _start_step(self, step_id: str) -> None:
        first = not self.records[step_id].tries
        verdict = self.verdicts(step_id) if first and self.verdicts is not None else None
        if verdict is not None and verdict.stands_in:
            self._stand_in(step_id, verdict)
            return
        super()._start_step(step_id)
        if first:
            report = self.report(step_id)
            report.started = len(self.order)
            report.reuse = verdict
            chosen = step_id in self.fail or step_id in self.timeout
            report.fixed = not chosen and self.fixed[step_id] is not None

    def _stand_in(self, step_id: str, verdict: Verdict) -> None:
        """As the executor's: a recorded success counts as the step's, for its dependents; no
        attempt starts, so --fail and --timeout naming it change nothing."""
        self.order.append(step_id)
        report = self.report(step_id)
        report.started, report.reuse, report.reason = len(self.order), verdict, verdict.kind
        report.detail = verdict.detail
        ignored = ignored_choice(step_id, self.fail, self.timeout)
        if ignored:
            report.detail += f"; {ignored}"
        self._apply(self.plan.finished(step_id, sem.SUCCESS))

    def _failed(self, step_id: str, status: str, reason: str, details: dict[str, Any]) -> None:
        self.report(step_id).reason = reason
        step = self.steps[step_id]
        if step.on_failure is OnFailure.FALLBACK_STEP and step.fallback is not None:
            self.report(step.fallback).fallback_for.append(step_id)

    def _record(self, action: act.Action) -> None:
        if isinstance(action, (act.Skip, act.UpstreamFailed)):
            report = self.report(action.step_id)
            report.reason, report.detail = action.reason, action.detail
        elif isinstance(action, act.Cancel):
            report = self.report(action.step_id)
            report.reason = action.reason
            culprit = self.aborted_by
            report.detail = "" if culprit is None else f"{culprit} {self.plan.status[culprit]}"
        elif isinstance(action, act.Recovered):
            self.report(action.step_id).recovered_by = action.fallback
        elif isinstance(action, act.Abort) and self.aborted_by is None:
            self.aborted_by = action.step_id


def ignored_choice(step_id: str, fail: Sequence[str], timeout: Sequence[str]) -> str:
    """What a step stood in for says of the --fail or --timeout naming it ("" if none does)."""
    option = "--fail" if step_id in fail else "--timeout" if step_id in timeout else None
    return "" if option is None else f"not run, so {option} has no effect"


def simulate(
    ir: IRPlan | Mapping[str, Any],
    fail: Iterable[str] = (),
    timeout: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    rules: Sequence[sem.StepRules] | None = None,
    params: Mapping[str, Value] | None = None,
    verdicts: Verdicts | None = None,
) -> Simulation:
    """What `planrun -j1` would decide if every attempt of `fail` exited 1 and every attempt of
    `timeout` timed out (every other attempt exits 0). O((steps + edges) · log steps).

    `params` are the bound params (`planrun.core.params.bind`; each declared param's default
    when None). `rules` (`planrun.core.semantics.rules_from_ir` of its steps) may be passed in by a
    caller that replays the same IR many times; they are immutable. `verdicts` (a state dir's,
    planrun.dry_run.replay_verdicts): a step they say a recorded success stands in for does not
    run."""
    plan = typed(ir)
    if rules is None:
        rules = sem.rules_from_ir(plan.steps)
    if params is None:
        params = default_params(plan)
    return _Replay(plan, fail, timeout, env or {}, rules, params, verdicts).run()


def default_params(plan: IRPlan) -> dict[str, Value]:
    """What planrun binds without -p: every param's default (required ones read as null)."""
    return {name: spec.get("default") for name, spec in plan.params.items()}


@dataclass(frozen=True, eq=False, repr=False)
class SingleFailure(ByValue):
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
    ir: IRPlan | Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    params: Mapping[str, Value] | None = None,
) -> tuple[Simulation, list[SingleFailure]]:
    """The run without failures, and one row per step failing alone: steps × (steps + edges)."""
    plan = typed(ir)
    rules = sem.rules_from_ir(plan.steps)
    params = default_params(plan) if params is None else params
    baseline = simulate(plan, env=env, rules=rules, params=params)
    ran = set(baseline.order)
    ids = [step.id for step in plan.steps]
    rows: list[SingleFailure] = []
    for sid in ids:
        # A step that never starts cannot fail: its replay would be the baseline itself.
        sim = baseline
        if sid in ran:
            sim = _Replay(plan, [sid], (), env or {}, rules, params).run(details=False)
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
