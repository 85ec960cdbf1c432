"""`planc bound` and the deadline check over planrun.core.bound's worst-case computation.

Derivation and exact formulas: docs/analysis.md ("Worst-case duration").
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from planc.analysis.context import AnalysisContext
from planc.diagnostics import Diagnostic, error
from planrun.core.bound import (
    BoundResult,
    StepBound,
    bound_for_ir,
    capped_retry_delay,
    list_scheduling_bound,
    step_bound,
)

__all__ = [
    "BoundResult",
    "StepBound",
    "bound_for_ir",
    "capped_retry_delay",
    "check",
    "format_seconds",
    "list_scheduling_bound",
    "plain_number",
    "step_bound",
]


# --- the `planc check` analysis ------------------------------------------------------------------


def check(ctx: AnalysisContext) -> Iterator[Diagnostic]:
    """`deadline-exceeded` / `unbounded-step`, only when the plan declares `deadline_sec`."""
    if not ctx.applies("bound"):
        return  # without a deadline there is nothing to break; `no-timeout` warns already
    deadline = ctx.plan_global("deadline_sec")
    result = bound_for_ir(ctx.ir)
    span = ctx.globals_span("deadline_sec")
    if result.unbounded:
        first = result.unbounded[0]
        more = len(result.unbounded) - 1
        others = f" (and {more} other step{'s' if more > 1 else ''})" if more else ""
        yield error(
            ctx.path,
            ctx.step_span(first),
            "unbounded-step",
            f"step `{first}`{others} {result.steps[first].why_unbounded}, so no run can be"
            f" promised to end within deadline_sec {format_seconds(float(deadline))}",
            f"set `timeout_sec` on `{first}` or `globals.default_timeout_sec`",
        )
        return
    limit = float(deadline)
    path = result.path_text()
    if result.critical_path_sec > limit:
        yield error(
            ctx.path,
            span,
            "deadline-exceeded",
            f"the critical path {path} can take {format_seconds(result.critical_path_sec)},"
            f" more than deadline_sec {format_seconds(limit)}",
            _largest_hint(result),
        )
    elif result.concurrency_bound_sec > limit:
        m = result.max_concurrency
        yield error(
            ctx.path,
            span,
            "deadline-exceeded",
            f"with max_concurrency {m} the plan can take"
            f" {format_seconds(result.concurrency_bound_sec)}, more than deadline_sec"
            f" {format_seconds(limit)} (critical path {path}:"
            f" {format_seconds(result.critical_path_sec)}; all steps:"
            f" {format_seconds(result.work_sec)} of work)",
            "raise max_concurrency, shorten timeouts or retries, or raise deadline_sec"
            " (`planc bound` shows the derivation)",
        )


def _largest_hint(result: BoundResult) -> str:
    biggest = max(result.critical_path, key=lambda sid: result.steps[sid].total_sec)
    b = result.steps[biggest]
    return (
        f"the largest share is `{biggest}`: {b.attempts} attempt(s) ×"
        f" {format_seconds(b.attempt_sec)} + {format_seconds(b.delays_sec)} of retry delays"
        " (`planc bound` shows every step)"
    )


def format_seconds(value: float) -> str:
    """`4230s (1h 10m 30s)`, `2222.5s (37m 2.5s)`, `3600s (1h)`; fractions to the millisecond."""
    if math.isinf(value):
        return "unbounded"
    rounded = round(value, 3)
    text = f"{plain_number(rounded)}s"
    if rounded < 60:
        return text
    hours, rest = divmod(int(rounded), 3600)
    minutes = rest // 60
    seconds = round(rounded - hours * 3600 - minutes * 60, 3)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s")]
    while parts[0][0] == 0:
        parts.pop(0)
    while parts[-1][0] == 0:
        parts.pop()
    return f"{text} ({' '.join(f'{plain_number(n)}{unit}' for n, unit in parts)})"


def plain_number(number: float) -> str:
    """At most three decimals, no trailing zeros: 2222.5, 12345.678, 65."""
    return f"{number:.3f}".rstrip("0").rstrip(".")
