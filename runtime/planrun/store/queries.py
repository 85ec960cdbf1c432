"""Read side: queries as functions of a connection, shared by Reader and RunStore."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from planrun.core.semantics import RUNNING
from planrun.store.errors import AmbiguousRunError, UnknownRunError
from planrun.store.records import (
    INTERRUPTED,
    AttemptInfo,
    FingerprintRecord,
    RunInfo,
    StepInfo,
    process_alive,
)

RUN_COLUMNS = (
    "run_id, plan_id, ir_digest, status, started_at, finished_at, duration_sec, exit_code,"
    " max_concurrency, argv, host, owner_pid, owner_start_time"
)
STEP_COLUMNS = (
    "step_id, ordinal, status, attempts, exit_code, started_at, finished_at, duration_sec,"
    " reason, detail, recovered_by, outputs, fingerprint"
)
ATTEMPT_COLUMNS = (
    "a.step_id, a.attempt, a.pid, a.pgid, a.proc_start_time, a.started_at, a.finished_at,"
    " a.duration_sec, a.status, a.exit_code, a.signal, a.reason, a.stdout_log, a.stderr_log"
)


def resolve_run_id(conn: sqlite3.Connection, ref: str, state_dir: Path) -> str:
    """A full run id, or a unique prefix of one (like git); otherwise a helpful error."""
    exact = conn.execute("SELECT run_id FROM runs WHERE run_id = ?", (ref,)).fetchone()
    if exact:
        return str(exact[0])
    matches = _ids_with_prefix(conn, ref, 6) if ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        raise AmbiguousRunError(f"run id prefix {ref!r} is ambiguous: {shown}")
    raise UnknownRunError(f"unknown run {ref!r} in {state_dir}{_suggestions(conn, ref)}")


def _ids_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id DESC LIMIT ?",
        (len(prefix), prefix, limit),
    )
    return [r[0] for r in rows]


def _suggestions(conn: sqlite3.Connection, ref: str) -> str:
    """The runs sharing the longest prefix with `ref`, else the latest ones."""
    for length in range(len(ref) - 1, 0, -1):
        close = _ids_with_prefix(conn, ref[:length], 5)
        if close:
            return "; did you mean " + ", ".join(close) + "?"
    latest = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id DESC LIMIT 5")]
    return "; latest runs: " + ", ".join(latest) if latest else "; no runs recorded yet"


def run_info(conn: sqlite3.Connection, row: tuple[Any, ...]) -> RunInfo:
    (
        run_id,
        plan_id,
        digest,
        status,
        started,
        finished,
        duration,
        exit_code,
        max_conc,
        argv,
        host,
        owner_pid,
        owner_start,
    ) = row
    if status == RUNNING and not process_alive(owner_pid, owner_start):
        status = INTERRUPTED
    counts = conn.execute(
        "SELECT status, count(*) FROM steps WHERE run_id = ? GROUP BY status", (run_id,)
    )
    return RunInfo(
        run_id, plan_id, digest, status, started, finished, duration, exit_code, max_conc,
        json.loads(argv), host, owner_pid, dict(counts.fetchall()),
    )  # fmt: skip


def read_run(conn: sqlite3.Connection, run_id: str) -> RunInfo:
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return run_info(conn, row)


def read_steps(conn: sqlite3.Connection, run_id: str) -> list[StepInfo]:
    rows = conn.execute(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY ordinal", (run_id,)
    )
    return [_step_info(*row) for row in rows]


def _step_info(
    step_id: str,
    ordinal: int,
    status: str,
    attempts: int,
    exit_code: int | None,
    started_at: str | None,
    finished_at: str | None,
    duration_sec: float | None,
    reason: str | None,
    detail: str | None,
    recovered_by: str | None,
    outputs: str | None,
    fingerprint: str | None = None,
) -> StepInfo:
    # The outputs column is NULL or "{}" for most steps: parse only the others.
    return StepInfo(
        step_id, ordinal, status, attempts, exit_code, started_at, finished_at, duration_sec,
        reason, detail, recovered_by, json.loads(outputs) if outputs and outputs != "{}" else {},
        fingerprint,
    )  # fmt: skip


def read_attempts(conn: sqlite3.Connection, run_id: str, step_id: str | None) -> list[AttemptInfo]:
    rows = conn.execute(
        f"SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN steps s USING (run_id, step_id)"
        " WHERE a.run_id = ?1 AND (?2 IS NULL OR a.step_id = ?2) ORDER BY s.ordinal, a.attempt",
        (run_id, step_id),
    )
    return [AttemptInfo(*row) for row in rows]


def read_summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    run = read_run(conn, run_id)
    steps = {
        s.step_id: {
            "status": s.status,
            "attempts": s.attempts,
            "exit_code": s.exit_code,
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "duration_sec": s.duration_sec,
            "reason": s.reason,
            "recovered_by": s.recovered_by,
            "outputs": s.outputs,
        }
        for s in read_steps(conn, run_id)
    }
    return {
        "run_id": run.run_id,
        "plan_id": run.plan_id,
        "ir_digest": run.ir_digest,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_sec": run.duration_sec,
        "exit_code": run.exit_code,
        "steps": steps,
    }


def read_fingerprints(conn: sqlite3.Connection, plan_id: str) -> dict[str, FingerprintRecord]:
    rows = conn.execute(
        "SELECT step_id, fingerprint, parts, run_id, outputs FROM fingerprints WHERE plan_id = ?",
        (plan_id,),
    )
    return {
        step: FingerprintRecord(fp, json.loads(parts) or {}, run, json.loads(outs or "{}") or {})
        for step, fp, parts, run, outs in rows
    }


# What the read side selects from each table: all of it must exist (a damaged or foreign
# database fails at open with one line, not in the middle of a view).
TABLE_COLUMNS = (
    ("runs", f"{RUN_COLUMNS}, ir"),
    ("steps", STEP_COLUMNS),
    ("attempts a", ATTEMPT_COLUMNS),
    ("events", "seq, ts, type, step_id, attempt, payload"),
)
