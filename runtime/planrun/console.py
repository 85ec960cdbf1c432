"""Plain terminal output: one timestamped line per state change, and the end-of-run summary.

Reads only events and the store's read model; never imports rich (the live view is optional).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from planrun.events import Event
from planrun.store import StepInfo

SYMBOLS = {
    "step_succeeded": "✓",
    "step_failed": "✗",
    "step_timed_out": "⏱",
    "step_skipped": "⊘",
    "step_cancelled": "⊗",
    "step_retrying": "↻",
    "step_started": "▶",
    "step_recovered": "⤷",
}
_FINAL = frozenset(
    {"step_succeeded", "step_failed", "step_timed_out", "step_skipped", "step_cancelled"}
)


class LineReporter:
    """`12:01:03 [3/10] ✓ lint 4.2s`; a failed step's stderr tail as an indented block."""

    def __init__(self, out: TextIO, total: int, quiet: bool = False) -> None:
        self.out = out
        self.total = total
        self.done = 0
        self.quiet = quiet

    def __call__(self, event: Event) -> None:
        if event.type in _FINAL:
            self.done += 1
        if event.step_id is None or event.type not in SYMBOLS:
            return
        failure = event.type in ("step_failed", "step_timed_out")
        if self.quiet and not failure:
            return
        clock = time.strftime("%H:%M:%S")
        line = f"{clock} [{self.done}/{self.total}] {SYMBOLS[event.type]} {event.step_id}"
        line += _detail(event)
        self.out.write(line + "\n")
        tail = event.payload.get("stderr_tail")
        if failure and tail:
            self.out.write("".join(f"    | {t}\n" for t in str(tail).splitlines()))
        self.out.flush()


def _detail(event: Event) -> str:
    payload = event.payload
    if event.type == "step_started":
        return f" (attempt {event.attempt})" if (event.attempt or 1) > 1 else ""
    if event.type == "step_succeeded":
        return f" {payload.get('duration_sec', 0):.1f}s"
    if event.type == "step_retrying":
        return f" {payload.get('reason')}; retrying in {payload.get('delay_sec', 0):g}s"
    if event.type in ("step_failed", "step_timed_out"):
        return f" {payload.get('reason')} ({payload.get('duration_sec') or 0:.1f}s)"
    if event.type == "step_recovered":
        return f" recovered by {payload.get('fallback')}"
    return f" {payload.get('reason')}" + (f": {payload['detail']}" if payload.get("detail") else "")


def summary_table(steps: Sequence[StepInfo]) -> str:
    """One screen: each step's status, attempts, duration, exit code and reason."""
    header = ("STEP", "STATUS", "ATTEMPTS", "DURATION", "EXIT", "REASON")
    rows = [header]
    for step in steps:
        status = step.status + (f" (recovered by {step.recovered_by})" if step.recovered_by else "")
        duration = "" if step.duration_sec is None else f"{step.duration_sec:.2f}s"
        exit_code = "" if step.exit_code is None else str(step.exit_code)
        reason = " ".join(filter(None, [step.reason, step.detail]))
        rows.append((step.step_id, status, str(step.attempts), duration, exit_code, reason))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
