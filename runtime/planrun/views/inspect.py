"""`planrun runs` and `planrun show`: runs and steps as text tables or JSON, from the Reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from planrun.ci import recorded_tolerance
from planrun.core.printable import printable
from planrun.store import Reader, RunInfo, StepInfo, open_reader
from planrun.views.model import elapsed, pick_run, record_dict, run_dict, run_duration
from planrun.views.style import (
    FINAL_STATUSES,
    ColorMode,
    format_duration,
    local_time,
    paint,
    symbol,
    use_color,
)


def open_state(state_dir: str | Path) -> Reader:
    """A read-only Reader; NoStateError (a StoreError, exit 2) when nothing was ever run there."""
    return open_reader(state_dir)


def runs(state_dir: str, limit: int, as_json: bool, out: TextIO, color: ColorMode = "auto") -> int:
    with open_state(state_dir) as reader:
        infos = reader.runs(limit)
        watched = reader.watch_info([r.run_id for r in infos])
    if as_json:
        rows = [{**run_dict(r), "elapsed_sec": run_duration(r)} for r in infos]
        for row in rows:
            if row["run_id"] in watched:
                row["watch"] = watched[row["run_id"]]
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not infos:
        out.write(f"no runs in {state_dir}\n")
        return 0
    painted = use_color(out, color)
    header = ("RUN", "PLAN", "STATUS", "STARTED", "DURATION", "STEPS")
    body = (
        _grouped(infos, watched, state_dir) if watched else [(_run_row(r), r.status) for r in infos]
    )
    table = [header, *(row for row, _ in body)]
    statuses = ["", *(status for _, status in body)]
    out.write(_table(table, status_column=2, statuses=statuses, color=painted))
    return 0


def _grouped(
    infos: list[RunInfo], watched: dict[str, dict[str, Any]], state_dir: str
) -> list[tuple[tuple[str, ...], str]]:
    """The runs of each `planrun watch` session under one line for the session (where its
    newest run is), indented; other runs as usual. Rows with the status that colours them."""
    from planrun.watch_state import read_watchers

    live = {w["session"]: w["state"] for w in read_watchers(state_dir, live_only=False)}
    sessions: dict[str, list[RunInfo]] = {}
    for run in infos:
        if run.run_id in watched:
            sessions.setdefault(str(watched[run.run_id]["session"]), []).append(run)
    rows: list[tuple[tuple[str, ...], str]] = []
    for run in infos:
        session = watched.get(run.run_id, {}).get("session")
        if session is None:
            rows.append((_run_row(run), run.status))
            continue
        members = sessions.pop(session, None)
        if members is None:
            continue  # listed under its session already
        state = live.get(session, "ended")
        outcomes: dict[str, int] = {}
        for member in members:
            outcomes[member.status] = outcomes.get(member.status, 0) + 1
        counts = " ".join(f"{symbol(s)}{n}" for s, n in sorted(outcomes.items()))
        started = local_time(members[-1].started_at)
        header = (f"watch {session}", run.plan_id, f"watch: {state}", started, "", counts)
        rows.append((header, state))
        for member in members:
            row = _run_row(member)
            rows.append((("  " + row[0], *row[1:]), member.status))
    return rows


def _run_row(run: RunInfo) -> tuple[str, ...]:
    duration = format_duration(run_duration(run))
    if run.status == "running":
        duration += " so far"
    return (
        run.run_id,
        run.plan_id,
        f"{symbol(run.status)} {run.status}",
        local_time(run.started_at),
        duration,
        _counts(run.step_counts),
    )


def _counts(counts: dict[str, int]) -> str:
    """`7/10 ✓7 ✗1 ▶2`: done out of total, then each status present."""
    total = sum(counts.values())
    done = sum(n for s, n in counts.items() if s not in ("pending", "running"))
    order = (*FINAL_STATUSES, "running", "pending")
    parts = [f"{symbol(s)}{counts[s]}" for s in order if counts.get(s)]
    return " ".join([f"{done}/{total}", *parts])


def show(
    state_dir: str, run_ref: str | None, as_json: bool, out: TextIO, color: ColorMode = "auto"
) -> int:
    with open_state(state_dir) as reader:
        run = reader.run(pick_run(reader, run_ref))
        steps = reader.steps(run.run_id)
        attempts = reader.attempts(run.run_id) if as_json else []
        why = recorded_tolerance(reader, run.run_id, steps)
    if as_json:
        data: dict[str, Any] = {
            "run": run_dict(run),
            "steps": [record_dict(s) for s in steps],
            "attempts": [record_dict(a) for a in attempts],
        }
        out.write(json.dumps(data, indent=2) + "\n")
        return 0
    painted = use_color(out, color)
    duration = format_duration(run_duration(run))
    out.write(
        f"run {printable(run.run_id)}  plan {printable(run.plan_id)}"
        f"  {paint(printable(run.status), run.status, painted)}"
        f"  started {local_time(run.started_at)}  {duration}  {_counts(run.step_counts)}\n"
    )
    header = ("STEP", "STATUS", "ATTEMPTS", "DURATION", "EXIT", "REASON")
    rows = [header, *(_step_row(s, why.get(s.step_id)) for s in steps)]
    statuses = ["", *(s.status for s in steps)]
    out.write(_table(rows, status_column=1, statuses=statuses, color=painted))
    out.write(_outputs(steps))
    return 0


def _outputs(steps: list[StepInfo]) -> str:
    """Each step output on a line (`step.name = value`); long or multi-line values shortened."""
    lines = []
    for step in steps:
        for name, value in sorted(step.outputs.items()):
            first, *rest = value.splitlines() or [""]
            shown = first if len(first) <= 80 else first[:79] + "…"
            more = f"  (+{len(rest)} more lines)" if rest else ""
            lines.append(printable(f"  {step.step_id}.{name} = {shown}{more}") + "\n")
    return "outputs:\n" + "".join(lines) if lines else ""


def _step_row(step: StepInfo, tolerated: str | None = None) -> tuple[str, ...]:
    status = f"{symbol(step.status)} {step.status}"
    if tolerated:
        status += f", tolerated ({tolerated})"
    elif step.recovered_by:
        status += f" (recovered by {step.recovered_by})"
    duration = format_duration(step.duration_sec)
    if step.status == "running" and step.started_at:
        duration = format_duration(elapsed(step.started_at, None)) + " so far"
    exit_code = "" if step.exit_code is None else str(step.exit_code)
    reason = ": ".join(filter(None, [step.reason, step.detail]))
    return (step.step_id, status, str(step.attempts), duration, exit_code, reason)


def _table(
    rows: list[tuple[str, ...]], *, status_column: int, statuses: list[str], color: bool
) -> str:
    """Left-aligned columns, the last one unpadded; the status cell coloured by its status."""
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row, status in zip(rows, statuses, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        cells.append(row[-1])
        if status:
            cells[status_column] = paint(cells[status_column], status, color)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
