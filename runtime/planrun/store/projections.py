"""Projections: how each event type updates runs/steps/attempts, inside the event's transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from planrun.core.semantics import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCESS,
    TIMED_OUT,
    UPSTREAM_FAILED,
)
from planrun.events import (
    RUN_FINISHED,
    RUN_RESUMED,
    STEP_CANCELLED,
    STEP_EVENTS,
    STEP_EXPANDED,
    STEP_FAILED,
    STEP_PLACED,
    STEP_RECOVERED,
    STEP_RETRYING,
    STEP_SKIPPED,
    STEP_STARTED,
    STEP_SUCCEEDED,
    STEP_TIMED_OUT,
    STEP_UPSTREAM_FAILED,
    UI_ACTION,
)

Projection = Callable[[sqlite3.Cursor, str, str | None, int | None, str, dict[str, Any]], None]


def _project_run_resumed(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    cur.execute(
        "UPDATE runs SET status = ?, finished_at = NULL, duration_sec = NULL, exit_code = NULL"
        " WHERE run_id = ?",
        (RUNNING, run_id),
    )
    # Attempts still open belong to the dead previous owner; the executor has killed leftovers.
    cur.execute(
        "UPDATE attempts SET status = ?, reason = 'interrupted', finished_at = ?"
        " WHERE run_id = ? AND finished_at IS NULL",
        (CANCELLED, ts, run_id),
    )


def _project_run_finished(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    cur.execute(
        "UPDATE runs SET status = ?, exit_code = ?, duration_sec = ?, finished_at = ?"
        " WHERE run_id = ?",
        (p["status"], p.get("exit_code"), p.get("duration_sec"), ts, run_id),
    )


def _project_step_started(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    started = (
        "UPDATE steps SET status = ?, attempts = ?, exit_code = NULL, started_at = ?,"
        " finished_at = NULL, duration_sec = NULL, reason = NULL, detail = NULL"
    )
    if "fingerprint" in p:  # a first attempt: the step's row and its latest success, in one go
        parts = json.dumps(p.get("fingerprint_parts"), sort_keys=True)
        cur.execute(
            started + ", fingerprint = ?, fingerprint_parts = ? WHERE run_id = ? AND step_id = ?",
            (RUNNING, n, ts, p["fingerprint"], parts, run_id, step_id),
        )
        _forget_success(cur, run_id, step_id)
    else:
        cur.execute(
            started + " WHERE run_id = ? AND step_id = ?", (RUNNING, n, ts, run_id, step_id)
        )
    cur.execute(
        "INSERT INTO attempts (run_id, step_id, attempt, pid, pgid, proc_start_time, started_at,"
        " status, stdout_log, stderr_log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            step_id,
            n,
            p.get("pid"),
            p.get("pgid"),
            p.get("proc_start_time"),
            ts,
            RUNNING,
            p.get("stdout_log"),
            p.get("stderr_log"),
        ),
    )


def _close_attempt(
    cur: sqlite3.Cursor,
    run_id: str,
    step_id: str | None,
    n: int | None,
    ts: str,
    status: str,
    p: dict[str, Any],
) -> None:
    # `finished_at IS NULL`: a step cancelled during its retry delay must not rewrite the
    # outcome of the attempt that already ended.
    cur.execute(
        "UPDATE attempts SET status = ?, exit_code = ?, signal = ?, reason = ?, finished_at = ?,"
        " duration_sec = ?"
        " WHERE run_id = ? AND step_id = ? AND attempt = ? AND finished_at IS NULL",
        (
            status,
            p.get("exit_code"),
            p.get("signal"),
            p.get("reason"),
            ts,
            p.get("duration_sec"),
            run_id,
            step_id,
            n,
        ),
    )


def _project_step_retrying(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    _close_attempt(cur, run_id, step_id, n, ts, p["previous_status"], p)
    cur.execute(
        "UPDATE steps SET exit_code = ?, reason = ? WHERE run_id = ? AND step_id = ?",
        (p.get("exit_code"), p.get("reason"), run_id, step_id),
    )
    _record_outputs(cur, run_id, step_id, p)


def _record_outputs(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, p: dict[str, Any]
) -> None:
    """An attempt that ended with `outputs` in its event: they are the step's outputs now."""
    if "outputs" in p:
        cur.execute(
            "UPDATE steps SET outputs = ? WHERE run_id = ? AND step_id = ?",
            (json.dumps(p["outputs"], sort_keys=True), run_id, step_id),
        )


def _forget_success(cur: sqlite3.Cursor, run_id: str, step_id: str | None) -> None:
    """A step starts with a fingerprint: its latest success no longer describes what is on disk
    (the step may change its files), so it is forgotten until the step succeeds again."""
    cur.execute(
        "DELETE FROM fingerprints WHERE step_id = ?"
        " AND plan_id = (SELECT plan_id FROM runs WHERE run_id = ?)",
        (step_id, run_id),
    )


def _remember_success(cur: sqlite3.Cursor, run_id: str, step_id: str | None) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO fingerprints"
        " (plan_id, step_id, fingerprint, parts, run_id, outputs)"
        " SELECT r.plan_id, s.step_id, s.fingerprint, s.fingerprint_parts, s.run_id, s.outputs"
        " FROM steps s JOIN runs r USING (run_id)"
        " WHERE s.run_id = ? AND s.step_id = ? AND s.fingerprint IS NOT NULL",
        (run_id, step_id),
    )


def _finishing(status: str) -> Projection:
    """Projection of an event that ends a step's latest attempt and the step with `status`."""

    def project(
        cur: sqlite3.Cursor,
        run_id: str,
        step_id: str | None,
        n: int | None,
        ts: str,
        p: dict[str, Any],
    ) -> None:
        if n is not None:
            _close_attempt(cur, run_id, step_id, n, ts, status, p)
        cur.execute(
            "UPDATE steps SET status = ?, exit_code = coalesce(?, exit_code), reason = ?,"
            " detail = ?, finished_at = ?, duration_sec = ? WHERE run_id = ? AND step_id = ?",
            (
                status,
                p.get("exit_code"),
                p.get("reason"),
                p.get("detail"),
                ts,
                p.get("duration_sec"),
                run_id,
                step_id,
            ),
        )
        _record_outputs(cur, run_id, step_id, p)
        if status == SUCCESS:
            _remember_success(cur, run_id, step_id)
        elif "fingerprint" in p:  # reused or up to date: the success it stands for
            cur.execute(
                "UPDATE steps SET fingerprint = ? WHERE run_id = ? AND step_id = ?",
                (p["fingerprint"], run_id, step_id),
            )

    return project


def _project_step_recovered(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    cur.execute(
        "UPDATE steps SET recovered_by = ? WHERE run_id = ? AND step_id = ?",
        (p["fallback"], run_id, step_id),
    )


def _project_nothing(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    """Events only the log keeps: who did something (ui_action), where a remote attempt ran
    (step_placed); no state changes."""


def _project_step_expanded(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, n: int | None, ts: str, p: dict[str, Any]
) -> None:
    """A for_each step's instances become steps of the run, listed right after it (the steps
    after it move down); on resume the rows are there already."""
    new = [sid for sid in p["instances"] if _step_row_missing(cur, run_id, sid)]
    if not new:
        return
    (at,) = cur.execute(
        "SELECT ordinal FROM steps WHERE run_id = ? AND step_id = ?", (run_id, step_id)
    ).fetchone()
    cur.execute(
        "UPDATE steps SET ordinal = ordinal + ? WHERE run_id = ? AND ordinal > ?",
        (len(new), run_id, at),
    )
    cur.executemany(
        "INSERT INTO steps (run_id, step_id, ordinal, status) VALUES (?, ?, ?, ?)",
        [(run_id, sid, at + 1 + i, PENDING) for i, sid in enumerate(new)],
    )


def _step_row_missing(cur: sqlite3.Cursor, run_id: str, step_id: str) -> bool:
    row = cur.execute(
        "SELECT 1 FROM steps WHERE run_id = ? AND step_id = ?", (run_id, step_id)
    ).fetchone()
    return row is None


PROJECTIONS: dict[str, Projection] = {
    RUN_RESUMED: _project_run_resumed,
    RUN_FINISHED: _project_run_finished,
    STEP_STARTED: _project_step_started,
    STEP_RETRYING: _project_step_retrying,
    STEP_SUCCEEDED: _finishing(SUCCESS),
    STEP_FAILED: _finishing(FAILED),
    STEP_TIMED_OUT: _finishing(TIMED_OUT),
    STEP_SKIPPED: _finishing(SKIPPED),
    STEP_UPSTREAM_FAILED: _finishing(UPSTREAM_FAILED),
    STEP_CANCELLED: _finishing(CANCELLED),
    STEP_RECOVERED: _project_step_recovered,
    UI_ACTION: _project_nothing,
    STEP_EXPANDED: _project_step_expanded,
    STEP_PLACED: _project_nothing,
}

# The payload fields a projection cannot do without (the others default to NULL).
REQUIRED_PAYLOAD = {
    RUN_FINISHED: "status",
    STEP_RETRYING: "previous_status",
    STEP_RECOVERED: "fallback",
    UI_ACTION: "action",
    STEP_EXPANDED: "instances",
}

INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, ts, type, step_id, attempt, payload)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def check_step(
    attempts: dict[str, int], type: str, step_id: str | None, attempt: int | None
) -> int | None:
    """Validate an event's step/attempt against the run and resolve the default attempt."""
    if type not in STEP_EVENTS:
        if step_id is not None or attempt is not None:
            raise ValueError(f"{type} is a run event: it takes no step_id or attempt")
        return None
    latest = attempts.get(step_id) if step_id is not None else None
    if latest is None:
        raise ValueError(f"{type} needs the id of a step of this run, got {step_id!r}")
    if type == STEP_STARTED:
        if attempt is not None and attempt != latest + 1:
            raise ValueError(f"step {step_id} starts attempt {latest + 1}, not {attempt}")
        return latest + 1
    if attempt is None:
        return latest or None
    if not 1 <= attempt <= latest:
        raise ValueError(f"step {step_id} has no attempt {attempt} (latest is {latest})")
    return attempt
