"""The read model the views use: state.db opened read-only, so it works while a planrun process
is writing."""

from __future__ import annotations

import json
import sqlite3
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from planrun.core.ir import conforms as conforms_to_ir_schema
from planrun.events import Event
from planrun.store.errors import DAMAGE, NoStateError, damaged, reading, shown
from planrun.store.files import Closing, StateFiles, connect
from planrun.store.queries import (
    RUN_COLUMNS,
    TABLE_COLUMNS,
    read_attempts,
    read_fingerprints,
    read_run,
    read_steps,
    read_summary,
    resolve_run_id,
    run_info,
)
from planrun.store.records import AttemptInfo, FingerprintRecord, RunInfo, StepInfo
from planrun.store.schema import SCHEMA_VERSION, schema_version


def open_reader(state_dir: str | Path) -> Reader:
    """A read-only view of DIR/state.db; safe while planrun processes write to it."""
    root = Path(state_dir)
    db = root / "state.db"

    def setup(conn: sqlite3.Connection, files: StateFiles) -> None:
        with reading(db):
            files.verify(root)
            if schema_version(conn) < SCHEMA_VERSION:
                raise NoStateError(f"{shown(db)} holds no runs yet (schema not initialised)")
            for table, columns in TABLE_COLUMNS:
                conn.execute(f"SELECT {columns} FROM {table} LIMIT 0")

    conn, files = connect(root, create=False, setup=setup)
    return Reader(root, conn, files)


class Reader(Closing):
    """The read model. Every method accepts a full run id or a unique prefix of one; whatever
    a damaged database makes a query raise comes out as one DamagedStateError."""

    def __init__(self, state_dir: Path, conn: sqlite3.Connection, files: StateFiles) -> None:
        self.state_dir = state_dir
        self._conn = conn
        self._files = files  # closed after the connection (StateFiles.close)
        self._db = state_dir / "state.db"

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._files.close()

    def runs(self, limit: int = 20) -> list[RunInfo]:
        """Newest first."""
        with self._snapshot():
            rows = self._conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [run_info(self._conn, row) for row in rows]

    def latest_run_id(self) -> str | None:
        with reading(self._db):
            row = self._conn.execute(
                "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
        return str(row[0]) if row else None

    def resolve(self, ref: str) -> str:
        with reading(self._db):
            return resolve_run_id(self._conn, ref, self.state_dir)

    def run(self, run_id: str) -> RunInfo:
        with self._snapshot():
            return read_run(self._conn, self.resolve(run_id))

    def steps(self, run_id: str) -> list[StepInfo]:
        """In IR order."""
        with self._snapshot():
            return read_steps(self._conn, self.resolve(run_id))

    def attempts(self, run_id: str, step_id: str | None = None) -> list[AttemptInfo]:
        """In IR order of their steps, then by attempt number."""
        with self._snapshot():
            return read_attempts(self._conn, self.resolve(run_id), step_id)

    def events(self, run_id: str, after_seq: int = 0) -> list[Event]:
        with self._snapshot():
            full_id = self.resolve(run_id)
            rows = self._conn.execute(
                "SELECT seq, ts, type, step_id, attempt, payload FROM events"
                " WHERE run_id = ? AND seq > ? ORDER BY seq",
                (full_id, after_seq),
            ).fetchall()
            return [Event(s, ts, full_id, t, st, a, json.loads(p)) for s, ts, t, st, a, p in rows]

    def watch_info(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The `watch` of each run's run_started (`planrun watch`: session, trigger, paths), for
        the runs that have one."""
        found: dict[str, dict[str, Any]] = {}
        with self._snapshot():
            for start in range(0, len(run_ids), 500):  # SQLite's bound-parameter limit
                chunk = run_ids[start : start + 500]
                rows = self._conn.execute(
                    "SELECT run_id, payload FROM events WHERE seq = 1 AND run_id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for run_id, payload in rows:
                    watch = json.loads(payload).get("watch")
                    if isinstance(watch, dict) and isinstance(watch.get("session"), str):
                        found[run_id] = watch
        return found

    def summary(self, run_id: str) -> dict[str, Any]:
        """The same dict as summary.json (which only exists once the run has ended)."""
        with self._snapshot():
            return read_summary(self._conn, self.resolve(run_id))

    def ir(self, run_id: str) -> bytes:
        with self._snapshot():
            row = self._conn.execute(
                "SELECT ir FROM runs WHERE run_id = ?", (self.resolve(run_id),)
            ).fetchone()
        return bytes(row[0])

    def ir_document(self, run_id: str) -> dict[str, Any]:
        """The run's IR, parsed and of the IR's shape (the views use it without further
        checks); DamagedStateError when what state.db holds is not one."""
        data = self.ir(run_id)
        with reading(self._db):
            document = json.loads(data)
            if not conforms_to_ir_schema(document):
                raise ValueError(f"the IR of run {self.resolve(run_id)} is not a valid IR")
        return dict(document)

    def fingerprints(self, plan_id: str) -> dict[str, FingerprintRecord]:
        """Each step's latest success in this state dir among runs of plan `plan_id`."""
        return read_fingerprints(self._conn, plan_id)

    def fingerprint_parts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The fingerprint parts each step of a run was last started with."""
        rows = self._conn.execute(
            "SELECT step_id, fingerprint_parts FROM steps WHERE run_id = ?"
            " AND fingerprint_parts IS NOT NULL",
            (self.resolve(run_id),),
        )
        return {step: json.loads(parts) for step, parts in rows if parts != "null"}

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(self._conn, self._db)


class _Snapshot:
    """One read transaction, so a multi-query answer is consistent while a writer commits."""

    def __init__(self, conn: sqlite3.Connection, db: Path) -> None:
        self._conn = conn
        self._db = db

    def __enter__(self) -> None:
        with reading(self._db):
            self._conn.execute("BEGIN")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        with suppress(sqlite3.Error):
            self._conn.execute("COMMIT")
        if isinstance(ev, DAMAGE):
            raise damaged(self._db, ev) from None
