"""Text tables for `planc bound` and `planc simulate` (their JSON is each result's `to_json`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from planc.analysis.bound import BoundResult, format_seconds, plain_number
from planc.analysis.context import typed
from planc.analysis.simulate import Simulation, SingleFailure, StepReport, ignored_choice
from planrun.core.ir_types import IRPlan, IRStep, OnFailure
from planrun.core.printable import printable
from planrun.core.status import FAILURES

MAX_NAMES = 6  # longer lists are cut in text; --format json has them all


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)]) + "\n"


def names(items: Sequence[str], limit: int = MAX_NAMES) -> str:
    if not items:
        return "-"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} (+{len(items) - limit} more)"


def _number(value: float) -> str:
    if math.isinf(value):
        return "∞"
    return plain_number(value)


# --- bound --------------------------------------------------------------------------------------


def bound_text(plan_id: str, result: BoundResult, deadline: float | None) -> str:
    on_path = set(result.critical_path)
    rows = [
        [
            sid,
            str(b.attempts),
            _number(b.attempt_sec),
            _number(b.delays_sec),
            _number(b.total_sec),
            "*" if sid in on_path else "",
        ]
        for sid, b in result.steps.items()
    ]
    headers = ["step", "attempts", "× (timeout + grace) s", "+ retry delays s", "= worst s", "path"]
    out = [
        f"Worst-case duration of {plan_id} (kill grace {_number(result.kill_grace_sec)}s,"
        f" max_concurrency {result.max_concurrency})\n\n",
        table(headers, rows, right=(1, 2, 3, 4)),
        "\n",
    ]
    if not result.bounded:
        for sid in result.unbounded[:MAX_NAMES]:
            out.append(f"unbounded: `{sid}` {result.steps[sid].why_unbounded}\n")
        if len(result.unbounded) > MAX_NAMES:
            out.append(f"unbounded: and {len(result.unbounded) - MAX_NAMES} more steps\n")
        return "".join(out)
    m = result.max_concurrency
    L, W = result.critical_path_sec, result.work_sec
    out.append(f"critical path:       {result.path_text()}\n")
    out.append(f"  unlimited workers  L = {format_seconds(L)}\n")
    out.append(f"  all steps          W = {format_seconds(W)}\n")
    if L > W:
        out.append(_path_over_work(result))
    if m >= len(result.steps):
        formula = f"L (max_concurrency {m} ≥ {len(result.steps)} steps: no step waits)"
    else:
        formula = f"W/m + (1 − 1/m)·L = {_number(W)}/{m} + {_number(1 - 1 / m)}·{_number(L)}"
    out.append(
        f"  max_concurrency {m}  {formula} = {format_seconds(result.concurrency_bound_sec)}\n"
    )
    if deadline is not None:
        out.append(f"deadline_sec {format_seconds(deadline)}: {_verdict(result, deadline)}\n")
    return "".join(out)


def _path_over_work(result: BoundResult) -> str:
    """Why L > W is possible: W counts every step once, the path counts a fallback after each
    step on it that names it, although a fallback runs at most once per run."""
    named = [result.steps[sid].fallback for sid in dict.fromkeys(result.critical_path)]
    counts = {fb: named.count(fb) for fb in named if fb is not None}
    repeated = [f"`{fb}` {n} times" for fb, n in sorted(counts.items()) if n > 1]
    names = ", ".join(repeated) or "a fallback more than once"
    return (
        f"  L > W: L counts {names} (after each step on the path that falls back to it), W"
        " counts every step once; a fallback runs at most once per run, so L over-estimates\n"
    )


def _verdict(result: BoundResult, deadline: float) -> str:
    if result.critical_path_sec > deadline:
        return "exceeded by the critical path"
    if result.concurrency_bound_sec > deadline:
        return f"exceeded with max_concurrency {result.max_concurrency}"
    return "met"


def bound_json(plan_id: str, result: BoundResult, deadline: float | None) -> dict[str, Any]:
    verdict = None if deadline is None or not result.bounded else _verdict(result, deadline)
    return {"plan_id": plan_id, **result.to_json(), "deadline_sec": deadline, "deadline": verdict}


# --- simulate -----------------------------------------------------------------------------------


def simulation_text(sim: Simulation, ir: IRPlan | Mapping[str, Any]) -> str:
    steps = {s.id: s for s in typed(ir).steps}
    what = [f"{s} fails" for s in sim.fail] + [f"{s} times out" for s in sim.timeout]
    head = ", ".join(what) if what else "no failure"
    ordered = [sim.steps[s] for s in sim.order]
    ordered += [r for sid, r in sim.steps.items() if r.started is None]
    rows = [
        [
            "-" if r.started is None else str(r.started),
            r.step_id,
            r.status,
            str(r.attempts) if r.attempts else "-",
            _why(r, steps[r.step_id], sim),
            # read from the state dir, which is untrusted: made printable like planrun's views
            *([printable(r.reuse.text) if r.reuse else "-"] if sim.predicts_reuse else []),
        ]
        for r in ordered
    ]
    headers = ["#", "step", "status", "attempts", "why", *(["reuse"] if sim.predicts_reuse else [])]
    out = [
        f"Simulation of {sim.plan_id}: {head} (planrun -j1 order, nothing is run)\n\n",
        table(headers, rows, right=(0, 3)),
        "\n",
        f"plan outcome: {sim.outcome}; planrun would exit {sim.exit_code}\n",
        _stopped(sim),
        _assumed(sim),
    ]
    return "".join(out)


def _stopped(sim: Simulation) -> str:
    """Which invariants would have stopped which steps (docs/invariants.md)."""
    stopped = [r for r in sim.steps.values() if r.reason == "invariant"]
    if not stopped:
        return ""
    lines = "".join(f"  {r.step_id}: {r.detail}\n" for r in stopped)
    return f"invariants that would stop steps:\n{lines}"


def _assumed(sim: Simulation) -> str:
    """Which outcomes are assumptions: the steps that start, are not given to --fail or
    --timeout, and whose command does not fix their outcome (analysis/fixed.py)."""
    if not sim.assumed:
        return ""
    return f"assumed to succeed (not known before they run): {names(sim.assumed)}\n"


def _why(r: StepReport, step: IRStep, sim: Simulation) -> str:
    if r.stood_in:  # the reuse column says why
        return ignored_choice(r.step_id, sim.fail, sim.timeout)
    if r.status == "success":
        return f"fallback of {', '.join(r.fallback_for)}" if r.fallback_for else ""
    if r.status in FAILURES:
        how = f"exit {r.exit_code}" if r.status == "failed" else "timed out"
        if r.fixed:
            how += " (fixed by its command)"
        tries = "" if r.attempts == 1 else f" on all {r.attempts} attempts"
        return f"{how}{tries}; {_policy(r, step, sim)}"
    if r.status == "skipped":
        detail = r.detail
        if r.reason == "condition" and step.condition is not None:
            detail = f"`{step.condition['source']}` is false"
        return f"{r.reason}: {detail}"
    if r.status == "upstream_failed" and r.reason == "invariant":
        return f"stopped by an invariant: {r.detail}"
    if r.status == "upstream_failed":
        return f"an upstream failure blocked it: {r.detail}"
    if r.status == "cancelled":
        return f"{r.reason}: {r.detail}" if r.detail else str(r.reason)
    return r.status


def _policy(r: StepReport, step: IRStep, sim: Simulation) -> str:
    policy = step.on_failure
    if policy is OnFailure.FALLBACK_STEP:
        fallback = step.fallback
        state = "recovered" if r.recovered_by else "not recovered"
        return f"falls back to {fallback}: {state}"
    if policy is OnFailure.CONTINUE:
        return "continue: tolerated"
    if policy is OnFailure.ABORT and step.critical:
        return "abort: the plan aborts" if sim.aborted_by == r.step_id else "abort"
    return f"{policy}: its dependents are blocked (upstream_failed)"


def single_failures_text(plan_id: str, baseline: Simulation, rows: list[SingleFailure]) -> str:
    never = [sid for sid, r in baseline.steps.items() if r.started is None]
    out = [
        f"Every single-step failure of {plan_id} (planrun -j1 order, nothing is run)\n",
        f"without failures: {baseline.outcome} (exit {baseline.exit_code});"
        f" never start: {names(never)}\n\n",
    ]
    table_rows = [
        [
            row.step_id,
            "yes" if row.started else "no",
            row.outcome,
            str(row.exit_code),
            names(list(row.not_run)),
            names(list(row.also_run)),
        ]
        for row in rows
    ]
    headers = ["failing step", "starts", "plan", "exit", "would not run", "would also run"]
    out.append(table(headers, table_rows, right=(3,)))
    return "".join(out)


def single_failures_json(
    plan_id: str, baseline: Simulation, rows: list[SingleFailure]
) -> dict[str, Any]:
    return {
        "plan_id": plan_id,
        "baseline": {"outcome": baseline.outcome, "exit_code": baseline.exit_code},
        "rows": [row.to_json() for row in rows],
    }
