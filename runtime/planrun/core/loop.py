"""The one executor loop: start ready steps while there is capacity, wait for one to end, decide.

Decisions come from `semantics.PlanState` (retries included), the order from
`scheduler.ReadyQueue`, attempts from a `launcher.Launcher`: local processes
(`process.ProcessSet`), a Dask cluster, or the instant replay of `planc simulate` and
`planrun --dry-run` (`replay.ReplayLauncher`). The loop does not know which. What a driver does
with each decision is its own: `executor.Executor` records events, `replay.Replay` keeps the
order (ninja's Builder over a CommandRunner, real or dry; Dagster's ActiveExecution).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planrun.core import actions as act
from planrun.core import semantics as sem
from planrun.core.ir_types import IRStep
from planrun.core.scheduler import ReadyQueue

if TYPE_CHECKING:  # conditions are imported where a plan has one
    from planrun.core.conditions import StepFacts
    from planrun.core.launcher import Finished, Launcher

Clock = Callable[[], float]


def instant() -> float:
    """A replay's clock: attempts take no time and every retry delay is already over."""
    return math.inf


@dataclass
class StepRecord:
    """What conditions may read about a step (semantics.md §2)."""

    status: str = sem.PENDING  # only read on resume; PlanState owns the live status
    attempts: int = 0  # numbered across resumes, like the store's attempt rows
    tries: int = 0  # attempts in this session: what the retry budget counts
    exit_code: int | None = None
    duration_sec: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # only read on resume: `reused`/`not_selected` keep a selection
    # Names of outputs holding a secret. Their raw values live in `outputs` only in the process
    # that read them; restored from the store they are masked, so no consumer may get them.
    secret_outputs: set[str] = field(default_factory=set)
    fingerprint: str | None = None  # only read on resume: what a kept success was started with
    fingerprint_parts: dict[str, Any] = field(default_factory=dict)


class Loop:
    """The loop and what every driver shares: statuses, records, the ready queue, retry timers
    and the conditions' view of the steps. Drivers implement `_start_step`,
    `_attempt_finished` and `_record`; the other hooks do nothing by default."""

    def __init__(
        self,
        steps: dict[str, IRStep],
        rules: Sequence[sem.StepRules],
        launcher: Launcher,
        capacity: int,
        environ: dict[str, str],
        params: Mapping[str, Any],
        invariants: Mapping[str, list[Mapping[str, Any]]],
        clock: Clock = time.monotonic,
    ) -> None:
        self.steps = steps  # a fan-out adds its instances (fanout.py)
        self.plan = sem.PlanState.create(rules, self._condition_holds)
        self.ready = ReadyQueue(rules)
        self.procs = launcher
        self.capacity = capacity
        # What `env.X` reads under each step's `env`, and what `params.X` reads.
        self.environ = environ
        self.params = params
        self.invariants = invariants
        self.clock = clock
        self.records = {sid: StepRecord() for sid in steps}
        self._facts = _Facts(self.plan.status, self.records)
        self.retry_timers: list[tuple[float, int, str]] = []

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._react_to_interrupts()
            self._fire_due_retries()
            self._start_ready()
            if not self.procs.running and not self.retry_timers and not len(self.ready):
                settled = self.plan.settle()
                if not settled:
                    return
                self._apply(settled)
                continue
            self._commit()  # before blocking: every step_started is on disk while its step runs
            ended = self.procs.wait(self._next_timer_delay())
            self._after_wait()
            for finished in ended:
                self._attempt_finished(finished)

    def _start_ready(self) -> None:
        held: list[str] = []  # a group's max_parallel reached: they wait for a sibling to end
        while self.procs.running < self.capacity:
            step_id = self.ready.pop()
            if step_id is None:
                break
            if self.plan.status[step_id] not in (sem.PENDING, sem.RUNNING):
                continue
            if self.plan.status[step_id] == sem.PENDING and step_id in self.invariants:
                refused = self._refusal(step_id)
                if refused:
                    self._apply(refused)
                    continue
            if self._held(step_id):
                held.append(step_id)
            else:
                self._start_step(step_id)
        for step_id in held:
            self.ready.push(step_id)

    def _refusal(self, step_id: str) -> list[act.Action]:
        """The one runtime check of the plan's invariants (docs/invariants.md): before a step's
        first attempt, against the statuses recorded so far: this run's, a resume's restored
        successes and an --only/--from selection's reused ones (both recorded as success)."""
        from planrun.core.invariants import refusal, why

        invariant = refusal(self.invariants[step_id], self.plan.status)
        if invariant is None:
            return []
        return self.plan.refuse(step_id, why(invariant, self.plan.status))

    def _next_timer_delay(self) -> float | None:
        if not self.retry_timers:
            return None
        return max(0.0, self.retry_timers[0][0] - self.clock())

    def _fire_due_retries(self) -> None:
        now = self.clock()
        while self.retry_timers and self.retry_timers[0][0] <= now:
            _, _, step_id = heapq.heappop(self.retry_timers)
            if self.plan.status[step_id] == sem.RUNNING:
                self.ready.push(step_id, urgent=True)

    def _attempt_ended(
        self, step_id: str, status: str, reason: str, details: dict[str, Any]
    ) -> None:
        """A failed or timed-out attempt: retry it, or make the failure final."""
        tries = self.records[step_id].tries
        decided = self.plan.attempt_ended(step_id, status, tries)
        if isinstance(decided, act.Retry):
            self._retrying(step_id, decided.delay, status, reason, details)
            heapq.heappush(self.retry_timers, (self.clock() + decided.delay, tries, step_id))
            return
        self._failed(step_id, status, reason, details)
        self._apply(decided)
        self._after_failure(step_id)

    def _apply(self, actions: list[act.Action]) -> None:
        for action in actions:
            if isinstance(action, act.Start):
                self.ready.push(action.step_id, action.urgent)
            else:
                self._record(action)

    def _condition_holds(self, step_id: str) -> bool:
        condition = self.steps[step_id].condition
        if condition is None:
            return True
        from planrun.core.conditions import evaluate

        env = ChainMap(dict(self.steps[step_id].env), self.environ)
        return evaluate(condition["ast"], self._facts, env, self.params)

    # --- what drivers do --------------------------------------------------------------------

    def _start_step(self, step_id: str) -> None:
        """A ready step's turn: start its next attempt (or decide it another way)."""
        raise NotImplementedError

    def _attempt_finished(self, finished: Finished) -> None:
        raise NotImplementedError

    def _record(self, action: act.Action) -> None:
        """A decision other than Start: a step skipped, cancelled, recovered; an abort."""
        raise NotImplementedError

    def _held(self, step_id: str) -> bool:
        return False

    def _retrying(
        self, step_id: str, delay: float, status: str, reason: str, details: dict[str, Any]
    ) -> None:
        """The attempt is tried again after `delay`."""

    def _failed(self, step_id: str, status: str, reason: str, details: dict[str, Any]) -> None:
        """The step's failure is final (its dependents are decided next)."""

    def _after_failure(self, step_id: str) -> None:
        """What follows a final failure outside the plan's semantics (a group's fail_fast)."""

    def _react_to_interrupts(self) -> None:
        """Act on interrupts counted since the last iteration."""

    def _commit(self) -> None:
        """Make what was recorded durable before the loop blocks."""

    def _after_wait(self) -> None:
        """Record what the launcher reported besides ended attempts (placements)."""


class _Facts(Mapping[str, "StepFacts"]):
    """What conditions read about the steps, made on access: a condition reads a few steps, and
    building facts for every step at each evaluation was quadratic in the plan size."""

    def __init__(self, status: Mapping[str, str], records: Mapping[str, StepRecord]) -> None:
        self._status = status
        self._records = records

    def __getitem__(self, step_id: str) -> StepFacts:
        from planrun.core.conditions import StepFacts

        status = self._status[step_id]
        record = self._records[step_id]
        return StepFacts(
            status=status,
            exit_code=record.exit_code,
            attempts=record.attempts,
            duration_sec=record.duration_sec,
            outputs=record.outputs,
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._status)

    def __len__(self) -> int:
        return len(self._status)
