"""The front page's history grid: for each plan, its recent runs × its steps (docs/views.md).

Like Airflow's grid view: one column per run (oldest on the left), one row per step, each cell
the step's outcome in that run with its duration and reason. Read through the Reader only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.store import Reader, RunInfo
from planrun.views.model import run_dict, run_duration

RUN_STATUSES = ("running", "success", "failed", "cancelled", "interrupted")
SCANNED_RUNS = 2000  # the newest runs the filters look through
DEFAULT_COLUMNS = 30
MAX_COLUMNS = 200
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class FilterError(ValueError):
    """A filter the grid cannot apply (the route answers 400 with this message)."""


@dataclass(frozen=True, eq=False, repr=False)
class Filters(ByValue):
    plan: str | None = None
    status: str | None = None
    since: str | None = None  # YYYY-MM-DD, UTC, inclusive
    until: str | None = None
    columns: int = DEFAULT_COLUMNS  # runs per plan

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        status = query.get("status") or None
        if status is not None and status not in RUN_STATUSES:
            listed = ", ".join(RUN_STATUSES)
            raise FilterError(f"status must be one of {listed}, not {status[:40]!r}")
        columns = query.get("runs", str(DEFAULT_COLUMNS))
        if not columns.isascii() or not columns.isdigit() or not 1 <= int(columns) <= MAX_COLUMNS:
            raise FilterError(
                f"runs must be an integer from 1 to {MAX_COLUMNS}, not {columns[:40]!r}"
            )
        return cls(
            query.get("plan") or None,
            status,
            _date(query, "since"),
            _date(query, "until"),
            int(columns),
        )

    def keeps(self, run: RunInfo) -> bool:
        day = run.started_at[:10]
        return (
            (self.plan is None or run.plan_id == self.plan)
            and (self.status is None or run.status == self.status)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
        )


def _date(query: dict[str, str], name: str) -> str | None:
    text = query.get(name) or None
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{name} must be a date YYYY-MM-DD, not {text[:40]!r}") from None
    return text


def history(reader: Reader, filters: Filters) -> dict[str, Any]:
    """`{"plans": [{"plan_id", "steps", "runs": [run + cells]}], "plan_ids"}`, plans by their
    latest run, newest first. `steps` are the step ids of the plan's latest run, then any
    that only older runs had; a cell is absent where a run did not have the step."""
    runs = reader.runs(SCANNED_RUNS)
    by_plan: dict[str, list[RunInfo]] = {}
    for run in runs:
        if filters.keeps(run):
            kept = by_plan.setdefault(run.plan_id, [])
            if len(kept) < filters.columns:
                kept.append(run)
    plans = [_plan_grid(reader, plan_id, kept) for plan_id, kept in by_plan.items()]
    return {"plans": plans, "plan_ids": sorted({run.plan_id for run in runs})}


def _plan_grid(reader: Reader, plan_id: str, runs: list[RunInfo]) -> dict[str, Any]:
    order: dict[str, None] = {}
    columns = []
    for run in runs:  # newest first: the latest run's step order wins
        cells = {}
        for step in reader.steps(run.run_id):
            order.setdefault(step.step_id, None)
            cells[step.step_id] = {
                "status": step.status,
                "attempts": step.attempts,
                "duration_sec": step.duration_sec,
                "reason": step.reason,
                "detail": step.detail,
            }
        columns.append({**run_dict(run), "elapsed_sec": run_duration(run), "cells": cells})
    columns.reverse()  # oldest on the left, as in Airflow's grid
    return {"plan_id": plan_id, "steps": list(order), "runs": columns}
