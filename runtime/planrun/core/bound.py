"""Worst-case duration bound over an IR: per step, the critical path, and for `max_concurrency`.

Here, in the runtime, so `planc bound`/`planc check` and the run report share one computation.

Derivation and exact formulas: docs/analysis.md ("Worst-case duration"). In short, a step that is
started runs at most `retries + 1` attempts; each attempt ends at its timeout at the latest, plus
the kill grace when the timeout fires (SIGTERM, grace, SIGKILL); between attempts it waits the
retry delays of `planrun.core.semantics.retry_delay`. A fallback runs on the path of the step
naming it (dependents wait for the recovery). With m workers, any greedy list schedule (planrun
starts a ready step whenever a worker is free) ends within W/m + (1 − 1/m)·L (Graham, 1966).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planrun.core import semantics
from planrun.core.byvalue import ByValue
from planrun.core.ir_types import IRPlan, IRStep, OnFailure


@dataclass(frozen=True, eq=False, repr=False)
class StepBound(ByValue):
    """One step's worst case on its own, in seconds (`math.inf` without a timeout)."""

    step_id: str
    attempts: int
    attempt_sec: float  # timeout + kill grace: the longest one attempt can take
    delays_sec: float  # every retry delay, capped as the runtime caps it
    fallback: str | None  # run after this step on its path when it fails

    @property
    def total_sec(self) -> float:
        return self.attempts * self.attempt_sec + self.delays_sec

    @property
    def why_unbounded(self) -> str:
        if math.isinf(self.attempt_sec):
            return "has no timeout"
        return "has retry delays too large for a float (set max_retry_delay_sec)"


@dataclass(frozen=True, eq=False, repr=False)
class BoundResult(ByValue):
    steps: dict[str, StepBound]
    work_sec: float  # W: every step once (a fallback runs at most once per run)
    critical_path: tuple[str, ...]  # fallbacks follow the step that names them
    critical_path_sec: float  # L: the bound with unlimited workers
    max_concurrency: int
    concurrency_bound_sec: float  # the bound with `max_concurrency` workers
    unbounded: tuple[str, ...]  # steps without any timeout, in IR order
    kill_grace_sec: float

    @property
    def bounded(self) -> bool:
        return not self.unbounded

    def path_text(self) -> str:
        """`a -> b -> r (fallback of b) -> c`: a fallback is not a dependency, say so."""
        shown: list[str] = []
        previous: str | None = None
        for sid in self.critical_path:
            is_fallback = previous is not None and self.steps[previous].fallback == sid
            shown.append(f"{sid} (fallback of {previous})" if is_fallback else sid)
            previous = sid
        return " -> ".join(shown)

    def to_json(self) -> dict[str, Any]:
        def number(value: float) -> float | None:
            return None if math.isinf(value) else value

        return {
            "critical_path": list(self.critical_path),
            "critical_path_sec": number(self.critical_path_sec),
            "work_sec": number(self.work_sec),
            "max_concurrency": self.max_concurrency,
            "concurrency_bound_sec": number(self.concurrency_bound_sec),
            "kill_grace_sec": self.kill_grace_sec,
            "unbounded_steps": list(self.unbounded),
            "steps": {
                sid: {
                    "attempts": b.attempts,
                    "attempt_sec": number(b.attempt_sec),
                    "retry_delays_sec": number(b.delays_sec),
                    "total_sec": number(b.total_sec),
                    "fallback": b.fallback,
                }
                for sid, b in self.steps.items()
            },
        }


def capped_retry_delay(step: IRStep, attempt: int) -> float:
    """The runtime's own delay before attempt n ≥ 2 (an overflowing backoff is the cap)."""
    cap = step.max_retry_delay_sec
    return semantics.retry_delay(step.retry_delay_sec, step.retry_backoff, cap, attempt)


def step_bound(step: IRStep, kill_grace_sec: float) -> StepBound:
    attempts = step.retries + 1
    timeout = step.timeout_sec
    # A heartbeat timeout does not bound an attempt: a step that keeps printing never stalls.
    attempt_sec = math.inf if timeout is None else float(timeout) + kill_grace_sec
    delays = sum(capped_retry_delay(step, n) for n in range(2, attempts + 1))
    fallback = step.fallback if step.on_failure is OnFailure.FALLBACK_STEP else None
    return StepBound(step.id, attempts, attempt_sec, float(delays), fallback)


def bound_for_ir(
    ir: IRPlan | Mapping[str, Any],
    max_concurrency: int | None = None,
    kill_grace_sec: float | None = None,
) -> BoundResult:
    """The worst-case bounds of an IR (as `planc compile` writes it, digest or not).

    `max_concurrency` and `kill_grace_sec` default to the IR's globals, like `planrun -j` and
    `planrun --kill-grace` do. Linear in steps + edges.
    """
    plan = ir if isinstance(ir, IRPlan) else IRPlan.from_json(ir)
    grace = float(plan.globals.kill_grace_sec if kill_grace_sec is None else kill_grace_sec)
    workers = int(max_concurrency or plan.globals.max_concurrency)
    steps = plan.steps
    bounds = {step.id: step_bound(step, grace) for step in steps}

    with_fallbacks = _with_fallbacks(bounds)
    work = sum(b.total_sec for b in bounds.values())
    count = len(steps)
    for sid, group in (plan.groups or {}).items():
        if group["kind"] != "for_each":
            continue
        # A fan-out (docs/composition.md) runs up to max_items instances, each with its own
        # fallback instance, at most `parallel` at a time: rounds of the one instance's bound.
        items = int(group["max_items"])
        parallel = min(int(group["max_parallel"] or items), workers, items)
        one = with_fallbacks[sid]
        with_fallbacks[sid] = math.ceil(items / parallel) * one
        work += (items - 1) * one
        count += items - 1
    rounds = _matrix_rounds(plan, with_fallbacks)
    # Longest path in a DAG, steps in topological order: finish(s) = E(s) + max finish(dep).
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for step in steps:
        best: str | None = None
        for dep in step.depends_on:
            if best is None or finish[dep] > finish[best]:
                best = dep
        start = 0.0 if best is None else finish[best]
        finish[step.id] = start + rounds.get(step.id, with_fallbacks[step.id])
        via[step.id] = best
    last = max(finish, key=finish.__getitem__, default=None)
    path = _expand(_walk_back(last, via), bounds)
    length = 0.0 if last is None else finish[last]
    return BoundResult(
        steps=bounds,
        work_sec=work,
        critical_path=path,
        critical_path_sec=length,
        max_concurrency=workers,
        concurrency_bound_sec=list_scheduling_bound(work, length, workers, count),
        unbounded=tuple(sid for sid, b in bounds.items() if math.isinf(b.total_sec)),
        kill_grace_sec=grace,
    )


def _matrix_rounds(plan: IRPlan, own: dict[str, float]) -> dict[str, float]:
    """A matrix instance under `max_parallel` p < n instances may wait for slots: with the same
    dependencies all n are ready together and finish within ceil(n/p) rounds of the longest
    instance; otherwise an instance waits at most ceil((n-1)/p) rounds, then runs one."""
    out: dict[str, float] = {}
    steps = {step.id: step for step in plan.steps}
    for group in (plan.groups or {}).values():
        members, limit = group["members"], group["max_parallel"]
        if group["kind"] != "matrix" or limit is None or limit >= len(members):
            continue
        longest = max(own[m] for m in members)
        same = len({steps[m].depends_on for m in members}) == 1
        n = len(members)
        count = math.ceil(n / limit) if same else math.ceil((n - 1) / limit) + 1
        out.update(dict.fromkeys(members, count * longest))
    return out


def list_scheduling_bound(work: float, path: float, workers: int, steps: int) -> float:
    """Graham's bound W/m + (1 − 1/m)·L. With at least as many workers as steps no step ever
    waits for a worker, so the critical path alone bounds the run."""
    if workers >= steps or math.isinf(path):
        return path
    return work / workers + (1 - 1 / workers) * path


def _with_fallbacks(bounds: dict[str, StepBound]) -> dict[str, float]:
    """E(s) = own(s) + E(fallback of s): a failing step's dependents wait for its fallback, which
    may itself fall back. Fallback chains are acyclic (the `fallback-cycle` rule)."""
    memo: dict[str, float] = {}
    for sid in bounds:
        chain: list[str] = []
        current: str | None = sid
        while current is not None and current not in memo and current in bounds:
            chain.append(current)
            current = bounds[current].fallback
        tail = memo.get(current, 0.0) if current is not None else 0.0
        for member in reversed(chain):
            tail += bounds[member].total_sec
            memo[member] = tail
    return memo


def _walk_back(last: str | None, via: dict[str, str | None]) -> list[str]:
    path: list[str] = []
    while last is not None:
        path.append(last)
        last = via[last]
    return path[::-1]


def _expand(path: list[str], bounds: dict[str, StepBound]) -> tuple[str, ...]:
    """Each step followed by its fallback chain, the way the bound counts it."""
    out: list[str] = []
    seen: set[str] = set()
    for sid in path:
        current: str | None = sid
        while current is not None and current not in seen:
            out.append(current)
            seen.add(current)
            current = bounds[current].fallback if current in bounds else None
    return tuple(out)
