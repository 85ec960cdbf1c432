"""What a run shows when it ends: the step table, the one-line outcome, the CI step summary."""

from __future__ import annotations

from typing import Any, TextIO

from planrun.console import summary_rows, summary_table
from planrun.store import open_reader


def print_summary(
    state_dir: str, run_id: str, stream: TextIO, ir_steps: list[dict[str, Any]], resumes: int
) -> None:
    """The end table and line on `stream`, and the CI step summary."""
    from planrun.ci import append_step_summary, summary_markdown, tolerated

    with open_reader(state_dir) as reader:
        run_info = reader.run(run_id)
        steps = reader.steps(run_id)
    why = tolerated(ir_steps, steps)
    stream.write(summary_table(steps, tolerated=why))
    line = f"run {run_id} {run_info.status} in {run_info.duration_sec or 0:.2f}s"
    if resumes:
        line += _timeline(run_info.started_at, run_info.finished_at, resumes)
    stream.write(f"planrun: {line} (exit {run_info.exit_code})\n")
    rows, footer = summary_rows(steps, tolerated=why)
    title = f"planrun: {run_info.plan_id}: {line}"
    error = append_step_summary(lambda: summary_markdown(title, rows, footer))
    if error is not None:
        stream.write(f"planrun: warning: {error}\n")


def _timeline(started_at: str, finished_at: str | None, resumes: int) -> str:
    """After a resume the duration counts the last session only; say what the whole took."""
    from planrun.views.style import format_duration, local_time, parse_ts

    if finished_at is None:
        return ""
    whole = (parse_ts(finished_at) - parse_ts(started_at)).total_seconds()
    times = "once" if resumes == 1 else f"{resumes} times"
    return (
        f" since its last resume (resumed {times}; {format_duration(whole)} from its start at"
        f" {local_time(started_at)})"
    )
