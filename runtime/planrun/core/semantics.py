"""Pure decisions of docs/semantics.md: eligibility, trigger rules, policies, fallbacks, outcome.

`PlanState` is fed what happened to steps (started, finished with a status) and answers with
actions: which steps may start, which are skipped, cancelled or recovered. It runs no process and
reads no clock, so the executor, `planc simulate` and the tests share the one implementation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from planrun.core import trigger_rules as tr
from planrun.core.actions import (
    Abort,
    Action,
    Cancel,
    NotStarted,
    Recovered,
    Retry,
    Skip,
    Start,
    UpstreamFailed,
)
from planrun.core.byvalue import ByValue
from planrun.core.entry import EXIT_INTERRUPTED
from planrun.core.ir_types import IRStep
from planrun.core.status import FAILURES as FAILURES
from planrun.core.status import TERMINAL as TERMINAL
from planrun.core.status import Status

# The status names, as the plain strings events and state.db hold (planrun/core/status.py).
PENDING = Status.PENDING.value
RUNNING = Status.RUNNING.value
SUCCESS = Status.SUCCESS.value
FAILED = Status.FAILED.value
TIMED_OUT = Status.TIMED_OUT.value
SKIPPED = Status.SKIPPED.value
CANCELLED = Status.CANCELLED.value
UPSTREAM_FAILED = Status.UPSTREAM_FAILED.value
CLEANUP_RULES = tr.CLEANUP_RULES

Mode = Literal["normal", "aborting", "interrupted"]

# planrun's exit code for each plan outcome (semantics.md §7).
EXIT_CODES = {"success": 0, "failed": 1, "cancelled": EXIT_INTERRUPTED}


@dataclass(frozen=True, eq=False, repr=False)
class StepRules(ByValue):
    """The fields of an IR step that the semantics read."""

    id: str
    index: int
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    trigger_rule: str = "all_success"
    on_failure: str = "abort"
    critical: bool = True
    fallback: str | None = None
    is_fallback: bool = False
    has_condition: bool = False
    teardown_for: str | None = None  # the setup step whose work this one undoes (§5b)
    retries: int = 0  # attempts after the first (semantics.md §3), with their delays
    retry_delay_sec: float = 0
    retry_backoff: float = 1
    max_retry_delay_sec: float | None = None

    @property
    def is_cleanup(self) -> bool:
        return (
            self.is_fallback or self.teardown_for is not None or self.trigger_rule in CLEANUP_RULES
        )


# Why a `one_*` rule is not met once every dependency is settled: none of them had the kind.
_NONE_WHY = {
    "one_failed": "no dependency failed",
    "one_success": "no dependency succeeded",
    "one_done": "no dependency succeeded or failed",
}


def retry_delay(retry_delay_sec: float, backoff: float, cap: float | None, attempt: int) -> float:
    """Delay before `attempt` (2, 3, …): delay × backoff^(attempt-2), capped.

    Always finite: an uncapped delay that overflows is the largest float, a wait that never
    ends in practice, and unlike infinity it is valid JSON in the step_retrying event."""
    try:
        delay = retry_delay_sec * backoff ** max(attempt - 2, 0)
    except OverflowError:  # a huge backoff power: past any cap
        delay = math.inf if retry_delay_sec > 0 else 0.0
    if cap is not None:
        delay = min(delay, cap)
    return min(delay, sys.float_info.max)


def should_retry(status: str, attempt: int, retries: int, mode: Mode, is_cleanup: bool) -> bool:
    if status not in FAILURES or attempt > retries:
        return False
    # An interrupt stops ordinary work at once; cleanup keeps its own retry budget.
    return mode != "interrupted" or is_cleanup


@dataclass
class PlanState:
    steps: dict[str, StepRules]
    condition_holds: Callable[[str], bool]
    status: dict[str, str] = field(default_factory=dict)
    recovered_by: dict[str, str] = field(default_factory=dict)
    cancelled_by: dict[str, str] = field(default_factory=dict)  # step -> aborted | interrupted
    mode: Mode = "normal"
    _unfinished_deps: dict[str, int] = field(default_factory=dict)
    _waiting_on_fallback: dict[str, list[str]] = field(default_factory=dict)
    _fallback_requested: set[str] = field(default_factory=set)
    _fired_early: set[str] = field(default_factory=set)  # started before all deps settled

    @classmethod
    def create(
        cls, steps: Sequence[StepRules], condition_holds: Callable[[str], bool]
    ) -> PlanState:
        state = cls({s.id: s for s in steps}, condition_holds)
        state.status = {s.id: PENDING for s in steps}
        state._unfinished_deps = {s.id: len(s.depends_on) for s in steps}
        return state

    # --- queries -------------------------------------------------------------------------

    def is_tolerated(self, step_id: str) -> bool:
        if self.status[step_id] not in FAILURES:
            return False
        return self.steps[step_id].on_failure == "continue" or step_id in self.recovered_by

    def outcome(self) -> Literal["success", "failed", "cancelled"]:
        if self.mode == "interrupted":
            return "cancelled"
        for step_id, status in self.status.items():
            if status in FAILURES and not self.is_tolerated(step_id):
                return "failed"
            if status in (CANCELLED, UPSTREAM_FAILED):
                return "failed"
        return "success"

    def kind(self, step_id: str) -> str:
        """How the trigger rules read a settled dependency (trigger_rules.KINDS)."""
        status = self.status[step_id]
        if status == SUCCESS:
            return tr.OK
        if status in FAILURES:
            return tr.TOLERATED if self.is_tolerated(step_id) else tr.FAILED
        if status == SKIPPED:
            return tr.SKIPPED
        if status == CANCELLED and self.cancelled_by.get(step_id) == "interrupted":
            return tr.INTERRUPTED
        return tr.FAILED  # upstream_failed, or cancelled by an abort (a failure caused it)

    def trigger_verdict(self, step: StepRules) -> tuple[tr.Verdict, str]:
        """What the settled dependencies' outcomes decide for `step` (all of them are settled,
        or enough for a rule that fires early), and why it does not run."""
        settled = [d for d in step.depends_on if self._settled(d)]
        verdict = tr.verdict(step.trigger_rule, frozenset(self.kind(d) for d in settled))
        if verdict == "run":
            return verdict, ""
        return verdict, self._why_not(step.trigger_rule, settled)

    def _why_not(self, rule: str, settled: list[str]) -> str:
        if rule in _NONE_WHY:
            return _NONE_WHY[rule]
        spec = tr.RULES[rule]
        if rule in ("all_success", "none_failed"):  # the dependencies that block it
            settled = [d for d in settled if not spec.met(frozenset({self.kind(d)}))]
        shown = ", ".join(f"{d} {self.status[d]}" for d in settled)
        if rule in ("all_success", "none_failed"):
            return shown
        return f"{rule} not met: {shown}" if shown else "no dependencies"

    def trigger_met(self, step: StepRules) -> tuple[bool, str]:
        verdict, why = self.trigger_verdict(step)
        return verdict == "run", why

    # --- transitions ---------------------------------------------------------------------

    def restore(self, succeeded: set[str]) -> None:
        """Resume: these steps succeeded in an earlier session and never run again."""
        for step_id in succeeded:
            self.status[step_id] = SUCCESS
            for child in self.steps[step_id].dependents:
                self._unfinished_deps[child] -= 1

    def exclude(self, step_ids: set[str]) -> None:
        """`--only`/`--from`: steps outside the selection that nothing selected needs."""
        for step_id in step_ids:
            self.status[step_id] = SKIPPED

    def expand(
        self,
        step_id: str,
        instances: Sequence[StepRules],
        fallbacks: Sequence[StepRules],
        done: frozenset[str] = frozenset(),
    ) -> list[Action]:
        """A for_each step made its instances (docs/composition.md): the step now waits for them
        (and is decided when they all are, whatever their outcome, like an `all_done` step);
        each instance is decided at once, except those in `done` (resume: they succeeded in an
        earlier session). The fallback instances run only as fallbacks."""
        for step in (*instances, *fallbacks):
            self.steps[step.id] = step
            self.status[step.id] = PENDING
            self._unfinished_deps[step.id] = 0
        self.steps[step_id] = replace(
            self.steps[step_id],
            depends_on=tuple(s.id for s in instances),
            trigger_rule="all_done",
            has_condition=False,
        )
        for sid in done:
            self.status[sid] = SUCCESS
        self._unfinished_deps[step_id] = len(instances) - len(done)
        if self._unfinished_deps[step_id] == 0:
            return self._mark_decided(self.steps[step_id])
        actions: list[Action] = []
        for step in instances:
            if step.id not in done:
                actions.extend(self._mark_decided(step))
        return actions

    def begin(self) -> list[Action]:
        """Decisions for the pending steps whose dependencies are all settled already."""
        actions: list[Action] = []
        for step in self.steps.values():
            if self.status[step.id] != PENDING or step.is_fallback:
                continue
            if self._unfinished_deps[step.id] == 0 or self._fires_early(step):
                actions.extend(self._mark_decided(step))
        return actions

    def started(self, step_id: str) -> None:
        self.status[step_id] = RUNNING

    def attempt_ended(self, step_id: str, status: str, tries: int) -> Retry | list[Action]:
        """The `tries`-th attempt of this session failed or timed out: retry it after a delay,
        or the failure is final and this is what follows from it (`finished`)."""
        step = self.steps[step_id]
        if should_retry(status, tries, step.retries, self.mode, step.is_cleanup):
            delay, cap = step.retry_delay_sec, step.max_retry_delay_sec
            return Retry(step_id, retry_delay(delay, step.retry_backoff, cap, tries + 1))
        return self.finished(step_id, status)

    def finished(self, step_id: str, status: str) -> list[Action]:
        """A started step is terminal (after its retries); returns what follows from it."""
        self.status[step_id] = status
        if status == CANCELLED:  # a running step is only ever cancelled by an interrupt
            self.cancelled_by[step_id] = "interrupted"
        step = self.steps[step_id]
        actions: list[Action] = []
        if status in FAILURES and step.on_failure == "fallback_step" and step.fallback:
            actions.extend(self._request_fallback(step_id, step.fallback))
        else:
            if status in FAILURES and step.on_failure == "abort" and step.critical:
                if self.mode == "normal":
                    actions.append(Abort(step_id))
                # Cancel first, so dependents end `cancelled` rather than `skipped`.
                actions.extend(self.stop_ordinary("aborted"))
            actions.extend(self._release(step_id))
        if step.is_fallback:
            actions.extend(self._resolve_fallback(step_id))
        return actions

    def refuse(self, step_id: str, detail: str) -> list[Action]:
        """A step about to start whose invariant does not hold: it never starts and ends
        `upstream_failed` (reason `invariant`), a failure for every rule downstream."""
        self.status[step_id] = UPSTREAM_FAILED
        actions: list[Action] = [UpstreamFailed(step_id, detail, "invariant")]
        actions.extend(self._release(step_id))
        if self.steps[step_id].is_fallback:  # the steps waiting for it are not recovered
            actions.extend(self._resolve_fallback(step_id))
        return actions

    def stop_ordinary(self, reason: Literal["aborted", "interrupted"]) -> list[Action]:
        """Abort or first interrupt: cancel every pending ordinary step (semantics.md §5)."""
        if reason == "interrupted" or self.mode == "normal":
            self.mode = "interrupted" if reason == "interrupted" else "aborting"
        actions: list[Action] = []
        for step in self.steps.values():
            if self.status[step.id] == PENDING and not step.is_cleanup:
                actions.extend(self._mark(step.id, Cancel(step.id, reason)))
        return actions

    def kill_everything(self) -> list[Action]:
        """Second interrupt: everything not terminal is cancelled."""
        self.mode = "interrupted"
        actions: list[Action] = []
        for step_id, status in self.status.items():
            if status not in TERMINAL:
                actions.append(Cancel(step_id, "interrupted"))
                self.status[step_id] = CANCELLED
                self.cancelled_by[step_id] = "interrupted"
        return actions

    def settle(self) -> list[Action]:
        """Nothing runs and nothing is ready: fallbacks nobody needed end skipped."""
        actions: list[Action] = []
        for step in self.steps.values():
            if self.status[step.id] == PENDING and step.is_fallback:
                skip = Skip(step.id, "not_needed", "no step needed this fallback")
                actions.extend(self._mark(step.id, skip))
        return actions

    # --- internals -----------------------------------------------------------------------

    def _request_fallback(self, step_id: str, fallback: str) -> list[Action]:
        if self.status[fallback] in TERMINAL:
            return self._settle_recovery(step_id, fallback)
        self._waiting_on_fallback.setdefault(fallback, []).append(step_id)
        if fallback in self._fallback_requested:
            return []
        self._fallback_requested.add(fallback)
        if self.steps[fallback].has_condition and not self.condition_holds(fallback):
            # semantics.md §6: a fallback's condition decides whether it runs at all.
            self.status[fallback] = SKIPPED
            skip = Skip(fallback, "condition", "condition is false")
            return [skip, *self._resolve_fallback(fallback)]
        return [Start(fallback, urgent=True)]

    def _resolve_fallback(self, fallback: str) -> list[Action]:
        actions: list[Action] = []
        for waiting in self._waiting_on_fallback.pop(fallback, []):
            actions.extend(self._settle_recovery(waiting, fallback))
        return actions

    def _settle_recovery(self, step_id: str, fallback: str) -> list[Action]:
        actions: list[Action] = []
        if self.status[fallback] == SUCCESS:
            self.recovered_by[step_id] = fallback
            actions.append(Recovered(step_id, fallback))
        actions.extend(self._release(step_id))
        return actions

    def _release(self, step_id: str) -> list[Action]:
        """`step_id` is settled: decide each dependent whose dependencies are all settled."""
        actions: list[Action] = []
        worklist = [step_id]
        # One decrement per edge; the dependencies are only read again (trigger_verdict) when
        # the last one settles or the rule can fire early: O(steps + edges) for the whole run.
        unfinished, status, steps, early = (
            self._unfinished_deps,
            self.status,
            self.steps,
            tr.EARLY_RULES,
        )
        while worklist:
            current = worklist.pop()
            for child_id in steps[current].dependents:
                unfinished[child_id] -= 1
                if status[child_id] != PENDING or child_id in self._fired_early:
                    continue
                child = steps[child_id]
                if unfinished[child_id] == 0 or (
                    child.trigger_rule in early and self._fires_early_on(child, current)
                ):
                    decided = self._decide(child)
                    actions.extend(decided)
                    worklist.extend(a.step_id for a in decided if isinstance(a, NotStarted))
        return actions

    def _teardown_verdict(self, setup: str) -> tuple[tr.Verdict, str]:
        """A teardown runs if and only if its setup succeeded (§5b), whatever else happened."""
        if self.status[setup] == SUCCESS:
            return "run", ""
        kind = self.kind(setup)
        why = f"its setup {setup} {self.status[setup]}"
        return ("upstream_failed" if kind == tr.FAILED else "skipped"), why

    def _fires_early(self, step: StepRules) -> bool:
        """one_failed/one_success/one_done: a settled dependency already decides (§1). A step
        with a condition waits for all of them: its condition reads settled steps only."""
        if step.trigger_rule not in tr.EARLY_RULES or step.has_condition or step.teardown_for:
            return False
        settled = [d for d in step.depends_on if self._settled(d)]
        if not tr.fires_early(step.trigger_rule, frozenset(self.kind(d) for d in settled)):
            return False
        self._fired_early.add(step.id)
        return True

    def _fires_early_on(self, step: StepRules, dependency: str) -> bool:
        """`_fires_early`, knowing that `dependency` just settled and that the dependencies
        settled before it did not make `step` fire: a settled dependency's kind never changes,
        and an early rule fires on any one deciding kind, so that one kind is all there is to
        read. Without this, a one_* step with d dependencies costs O(d²) (issue 17)."""
        if step.has_condition or step.teardown_for:
            return False
        if not tr.fires_early(step.trigger_rule, frozenset((self.kind(dependency),))):
            return False
        self._fired_early.add(step.id)
        return True

    def _settled(self, step_id: str) -> bool:
        """Terminal, and a failure that waits for its fallback has it decided."""
        status = self.status[step_id]
        if status not in TERMINAL:
            return False
        step = self.steps[step_id]
        if status in FAILURES and step.on_failure == "fallback_step" and step.fallback:
            return step_id in self.recovered_by or self.status[step.fallback] in TERMINAL
        return True

    def _decide(self, step: StepRules) -> list[Action]:
        """All dependencies of `step` are settled: start, skip or cancel it."""
        if self.mode != "normal" and not step.is_cleanup:
            reason: Literal["aborted", "interrupted"] = (
                "interrupted" if self.mode == "interrupted" else "aborted"
            )
            self.status[step.id] = CANCELLED
            self.cancelled_by[step.id] = reason
            return [Cancel(step.id, reason)]
        verdict, why = self.trigger_verdict(step)
        if step.teardown_for is not None:
            verdict, why = self._teardown_verdict(step.teardown_for)
        if verdict == "upstream_failed":
            self.status[step.id] = UPSTREAM_FAILED
            return [UpstreamFailed(step.id, why)]
        if verdict == "skipped":
            self.status[step.id] = SKIPPED
            return [Skip(step.id, "upstream", why)]
        if step.has_condition and not self.condition_holds(step.id):
            self.status[step.id] = SKIPPED
            return [Skip(step.id, "condition", "condition is false")]
        return [Start(step.id)]

    def _mark_decided(self, step: StepRules) -> list[Action]:
        decided = self._decide(step)
        released = [a.step_id for a in decided if isinstance(a, NotStarted)]
        return decided + [a for sid in released for a in self._release(sid)]

    def _mark(self, step_id: str, action: Skip | Cancel) -> list[Action]:
        self.status[step_id] = SKIPPED if isinstance(action, Skip) else CANCELLED
        if isinstance(action, Cancel):
            self.cancelled_by[step_id] = action.reason
        return [action, *self._release(step_id)]


def rules_from_ir(ir_steps: Iterable[IRStep]) -> list[StepRules]:
    return [
        StepRules(
            id=step.id,
            index=step.index,
            depends_on=step.depends_on,
            dependents=step.dependents,
            trigger_rule=step.trigger_rule,
            on_failure=step.on_failure,
            critical=step.critical,
            fallback=step.fallback,
            is_fallback=step.is_fallback,
            has_condition=step.condition is not None,
            teardown_for=step.teardown_for,
            # An IR number as it is (an int stays an int: delays are recorded in events as given).
            retries=step.retries,
            retry_delay_sec=step.retry_delay_sec,
            retry_backoff=step.retry_backoff,
            max_retry_delay_sec=step.max_retry_delay_sec,
        )
        for step in ir_steps
    ]


def setup_scopes(ir_steps: Iterable[IRStep]) -> dict[str, tuple[str, frozenset[str]]]:
    """teardown -> (its setup, the steps between them: descendants of the setup that are
    ancestors of the teardown). What re-runs the setup and teardown on resume/--only/--from."""
    by_id = {s.id: s for s in ir_steps}
    scopes: dict[str, tuple[str, frozenset[str]]] = {}
    for sid, step in by_id.items():
        setup = step.teardown_for
        if setup is None or setup not in by_id:
            continue
        after = _reach(by_id, setup, lambda s: s.dependents)
        before = _reach(by_id, sid, lambda s: s.depends_on)
        scopes[sid] = (setup, frozenset(after & before))
    return scopes


def _reach(
    by_id: Mapping[str, IRStep], start: str, edges: Callable[[IRStep], tuple[str, ...]]
) -> set[str]:
    seen: set[str] = set()
    stack = list(edges(by_id[start]))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(edges(by_id[current]))
    return seen
