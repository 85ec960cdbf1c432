"""Write side: `RunStore`, one per planrun process; it holds the run lock of the runs it writes."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import planrun.store.queries as queries
import planrun.store.schema as schema
from planrun.core.semantics import PENDING, RUNNING
from planrun.core.writes import replace_whole, write_all
from planrun.events import (
    ABSENT,
    RUN_STARTED,
    STEP_EXPANDED,
    STEP_STARTED,
    Event,
    RunStarted,
    dump_payload,
    render_line,
    utc_now,
)
from planrun.procinfo import create_time
from planrun.safefs import PRIVATE_FILE, open_dirs
from planrun.store.errors import (
    DigestMismatchError,
    RunExistsError,
    RunLockedError,
    StoreError,
    StoreWriteError,
    UnknownRunError,
    reading,
    unusable,
)
from planrun.store.files import Closing, StateFiles, connect, open_run_files
from planrun.store.projections import (
    INSERT_EVENT,
    PROJECTIONS,
    REQUIRED_PAYLOAD,
    Projection,
    check_step,
)
from planrun.store.records import (
    INTERRUPTED,
    SQLITE_MAX_INT,
    FingerprintRecord,
    ResumeInfo,
    process_alive,
    run_dir,
)
from planrun.store.schema import transaction


@dataclass
class _HeldRun:
    """A run this store holds the lock of: the in-memory counters that keep `emit` SELECT-free."""

    fd: int  # events.jsonl
    run_fd: int  # DIR/runs/RUN_ID and its logs/, reached without following links
    logs_fd: int
    seq: int
    attempts: dict[str, int]  # step id -> latest attempt number
    reemitted: int


class _Pending(NamedTuple):
    """An event numbered by `emit` and not committed yet (batch mode)."""

    held: _HeldRun
    event: Event
    payload_json: str
    project: Projection
    advanced: bool  # a step_started: it advanced the step's attempt counter from attempt - 1


class RunStore(Closing):
    """Writes runs under a state directory. Thread-safe; one instance per planrun process."""

    def __init__(self, state_dir: Path, conn: sqlite3.Connection, files: StateFiles) -> None:
        self.state_dir = state_dir
        self._conn = conn
        self._cur = conn.cursor()
        self._files = files
        # Absolute: the paths handed to steps ($PLAN_OUTPUT) must hold in any step's cwd.
        self._absolute_dir = Path(os.path.abspath(state_dir))
        self._lock = threading.RLock()
        self._held: dict[str, _HeldRun] = {}
        self._batching = 0  # depth of nested batch() blocks
        self._pending: list[_Pending] = []
        self._pid = os.getpid()
        self._start_time = create_time(self._pid)

    @classmethod
    def open(cls, state_dir: str | Path, sync: Literal["normal", "full"] = "normal") -> RunStore:
        """Open (creating if needed) DIR/state.db. `full` fsyncs every event; `normal` fsyncs
        at checkpoints only, so a power loss may lose the last events but never corrupts."""
        root = Path(state_dir)

        def setup(conn: sqlite3.Connection, files: StateFiles) -> None:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}")
                schema.migrate(conn)
                files.verify(root)
            except (OSError, sqlite3.Error) as exc:
                raise unusable(root, exc) from None

        conn, files = connect(root, create=True, setup=setup, check_same_thread=False)
        return cls(root, conn, files)

    def log_dir(self, run_id: str) -> Path:
        """The directory of a run's attempt logs and output files (docs/state.md layout), as an
        absolute path."""
        return run_dir(self._absolute_dir, run_id) / "logs"

    def log_dir_fd(self, run_id: str) -> int:
        """A descriptor on the log directory of a run this store holds: files are created
        relative to it (openat), so a directory swapped for a link cannot redirect them."""
        return self._held[run_id].logs_fd

    def log_paths(self, run_id: str, step_id: str, attempt: int) -> tuple[Path, Path]:
        """Where an attempt's stdout and stderr go (docs/state.md layout)."""
        logs = self.log_dir(run_id)
        return logs / f"{step_id}.{attempt}.stdout", logs / f"{step_id}.{attempt}.stderr"

    def create_run(
        self,
        run_id: str,
        plan_id: str,
        ir_digest: str,
        ir_bytes: bytes,
        step_ids: list[str],
        argv: list[str],
        max_concurrency: int,
        params: dict[str, Any] | None = None,
        watch: dict[str, Any] | None = None,
    ) -> Event:
        """Record a new run, owned (locked) by this process, and emit its run_started (seq 1);
        `watch`: the session and trigger of a run started by `planrun watch`."""
        host = os.uname().nodename  # socket.gethostname(), without importing socket
        # Any int >= 1 is a valid limit; SQLite's INTEGER stops at 2**63 - 1, which is no limit
        # either (docs/state.md).
        max_concurrency = min(max_concurrency, SQLITE_MAX_INT)
        payload = RunStarted(
            plan_id=plan_id,
            ir_digest=ir_digest,
            max_concurrency=max_concurrency,
            pid=self._pid,
            host=host,
            argv=argv,
            params=params or {},
            watch=ABSENT if watch is None else watch,
        ).payload()
        ts = utc_now()
        with self._lock, self._writing():
            with transaction(self._conn):
                self._insert_run(
                    run_id, plan_id, ir_digest, ir_bytes, ts, argv, host, max_concurrency
                )
                self._cur.executemany(
                    "INSERT INTO steps (run_id, step_id, ordinal, status) VALUES (?, ?, ?, ?)",
                    [(run_id, step_id, i, PENDING) for i, step_id in enumerate(step_ids)],
                )
                self._cur.execute(
                    INSERT_EVENT, (run_id, 1, ts, RUN_STARTED, None, None, dump_payload(payload))
                )
            self._hold(run_id)
        return Event(1, ts, run_id, RUN_STARTED, None, None, payload)

    def acquire(self, run_id: str) -> None:
        """Take the run lock (taking over from a dead owner), repair events.jsonl, load counters.

        Raises RunLockedError when another live process holds the run.
        """
        with self._lock, self._writing():
            if run_id in self._held:
                return
            with transaction(self._conn):
                row = self._cur.execute(
                    "SELECT owner_pid, owner_start_time FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if row is None:
                    raise UnknownRunError(f"unknown run {run_id!r} in {self.state_dir}")
                owner_pid, owner_start = row
                if owner_pid != self._pid and process_alive(owner_pid, owner_start):
                    raise RunLockedError(
                        f"run {run_id} is in use by planrun process {owner_pid} (still running);"
                        f" wait for it to finish or stop it (kill {owner_pid}) first"
                    )
                self._cur.execute(
                    "UPDATE runs SET owner_pid = ?, owner_start_time = ? WHERE run_id = ?",
                    (self._pid, self._start_time, run_id),
                )
            self._hold(run_id)

    def begin_resume(
        self, run_id: str, ir_digest: str, ir_bytes: bytes | None = None,
        step_ids: list[str] | None = None,
    ) -> ResumeInfo:  # fmt: skip
        """Lock a previous run (full id or unique prefix) for resuming; the executor then kills
        the leftovers in `running_attempts` and emits run_resumed. With `ir_bytes` (an edited
        plan with the same steps, `step_ids`) the run goes on with that IR from now on; without,
        another IR than the recorded one is refused."""
        with self._lock, reading(self.state_dir / "state.db"):
            run_id = queries.resolve_run_id(self._conn, run_id, self.state_dir)
            recorded = queries.read_run(self._conn, run_id).ir_digest
            recorded_ids = [s.step_id for s in queries.read_steps(self._conn, run_id)]
        if recorded != ir_digest and (ir_bytes is None or recorded_ids != step_ids):
            raise DigestMismatchError(
                f"run {run_id} was started with IR {recorded} but this IR is {ir_digest}"
                + (
                    " and has other steps; a run can only be resumed with a plan of the same"
                    " steps (start a new run instead: `planrun PLAN --from STEP` reuses every"
                    " success whose fingerprint still matches)"
                    if ir_bytes is not None
                    else "; a run can only be resumed with the IR it started with (leave out"
                    f" PLAN: `planrun --resume {run_id}` uses it)"
                )
            )
        self.acquire(run_id)
        with self._lock, reading(self.state_dir / "state.db"):
            run = queries.read_run(self._conn, run_id)  # as recorded: with the IR it had until now
            if recorded != ir_digest and ir_bytes is not None:
                self._replace_ir(run_id, ir_digest, ir_bytes)
            # We own the run now, so a `running` status can only be a crashed previous owner's.
            previous = INTERRUPTED if run.status == RUNNING else run.status
            attempts = queries.read_attempts(self._conn, run_id, None)
            return ResumeInfo(
                run=replace(run, status=previous),
                previous_status=previous,
                steps=queries.read_steps(self._conn, run_id),
                running_attempts=[a for a in attempts if a.finished_at is None],
                reemitted_events=self._held[run_id].reemitted,
            )

    def emit(
        self,
        run_id: str,
        type: str,
        step_id: str | None = None,
        attempt: int | None = None,
        **payload: Any,
    ) -> Event:
        """Record one event: its SQLite transaction (event + projections), then its JSONL line.

        `attempt` defaults to the step's latest attempt (the next one for step_started); attempt
        numbers run 1, 2, 3… per step across resumes. Inside `batch()` the event is numbered and
        returned at once but committed by the next `flush()`, together with the others.
        """
        project = PROJECTIONS.get(type)
        if project is None:
            raise ValueError(f"cannot emit event type {type!r} (run_started comes from create_run)")
        required = REQUIRED_PAYLOAD.get(type)
        if required is not None and required not in payload:
            raise ValueError(f"{type} needs a {required!r} payload field")
        payload_json = dump_payload(payload)
        with self._lock:
            held = self._held.get(run_id)
            if held is None:
                raise StoreError(f"run {run_id} is not held by this store (create or resume it)")
            attempt = check_step(held.attempts, type, step_id, attempt)
            held.seq += 1
            started = type == STEP_STARTED and step_id is not None and attempt is not None
            if started:
                held.attempts[str(step_id)] = int(attempt or 0)
            elif type == STEP_EXPANDED:  # later events may name the new steps
                for instance in payload["instances"]:
                    held.attempts.setdefault(str(instance), 0)
            event = Event(held.seq, utc_now(), run_id, type, step_id, attempt, payload)
            self._pending.append(_Pending(held, event, payload_json, project, started))
            if not self._batching:
                self.flush()
        return event

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the events emitted in the block into as few transactions as `flush()` calls
        (one at the end of the block). A crash loses at most the events not flushed yet; the
        caller flushes before anything that must be durable first (docs/state.md)."""
        with self._lock:
            self._batching += 1
        try:
            yield
        finally:
            with self._lock:
                self._batching -= 1
                if not self._batching:
                    self.flush()

    def flush(self) -> list[Event]:
        """Commit the pending events in one transaction, then append their JSONL lines (one
        write per run); return them in order. On failure nothing is recorded: the counters are
        rolled back and the error propagates, as for a single event."""
        with self._lock, self._writing():
            pending, self._pending = self._pending, []
            if not pending:
                return []
            try:
                self._files.check_alive(self.state_dir)
                with transaction(self._conn):
                    self._cur.executemany(
                        INSERT_EVENT,
                        [
                            (e.run_id, e.seq, e.ts, e.type, e.step_id, e.attempt, p.payload_json)
                            for p in pending
                            for e in (p.event,)
                        ],
                    )
                    for p in pending:
                        e = p.event
                        p.project(self._cur, e.run_id, e.step_id, e.attempt, e.ts, e.payload)
            except BaseException:
                for p in reversed(pending):  # as if these events had never been emitted
                    p.held.seq = p.event.seq - 1
                    if p.advanced and p.event.step_id is not None:
                        p.held.attempts[p.event.step_id] = int(p.event.attempt or 1) - 1
                raise
            lines: dict[int, list[bytes]] = {}
            for p in pending:
                e = p.event
                line = render_line(e.seq, e.ts, e.run_id, e.type, e.step_id, e.attempt,
                                   p.payload_json)  # fmt: skip
                lines.setdefault(p.held.fd, []).append(line.encode())
            for fd, chunks in lines.items():
                write_all(fd, b"".join(chunks))
            return [p.event for p in pending]

    def write_summary(self, run_id: str) -> Path:
        """Write DIR/runs/RUN_ID/summary.json from SQLite (normally once run_finished is in)."""
        path = run_dir(self.state_dir, run_id) / "summary.json"
        with self._lock, self._writing():
            summary = queries.read_summary(self._conn, run_id)
            text = json.dumps(summary, sort_keys=True, indent=2) + "\n"
            held = self._held.get(run_id)
            run_fd = held.run_fd if held else open_dirs(self._files.root_fd, ("runs", run_id))
            try:
                replace_whole("summary.json", text.encode(), PRIVATE_FILE, run_fd)
            finally:
                if held is None:
                    os.close(run_fd)
        return path

    def close(self) -> None:
        """Release the locks this store holds and close everything; safe to call twice."""
        with self._lock:
            try:
                if self._held and self._files.lost is None:
                    self.flush()  # events still pending from an unfinished batch
            finally:
                for run_id, held in self._held.items():
                    for fd in (held.fd, held.run_fd, held.logs_fd):
                        os.close(fd)
                    # Best effort: a lock left behind expires with its owner (this process).
                    with suppress(sqlite3.Error):
                        if self._files.lost is not None:
                            continue  # nothing more goes into a database that is gone
                        self._cur.execute(
                            "UPDATE runs SET owner_pid = NULL, owner_start_time = NULL"
                            " WHERE run_id = ? AND owner_pid = ?",
                            (run_id, self._pid),
                        )
                self._held.clear()
                self._conn.close()
                self._files.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failure to write the state (sqlite3 or the OS) into a StoreWriteError."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreWriteError(f"cannot record the run in {self.state_dir}: {reason}") from exc

    def _insert_run(
        self,
        run_id: str,
        plan_id: str,
        ir_digest: str,
        ir_bytes: bytes,
        ts: str,
        argv: list[str],
        host: str,
        max_concurrency: int,
    ) -> None:
        exists = self._cur.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if exists:
            raise RunExistsError(f"run {run_id} already exists in {self.state_dir}")
        self._cur.execute(
            "INSERT INTO runs (run_id, plan_id, ir_digest, ir, status, started_at,"
            " max_concurrency, argv, host, owner_pid, owner_start_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                plan_id,
                ir_digest,
                ir_bytes,
                RUNNING,
                ts,
                max_concurrency,
                json.dumps(argv),
                host,
                self._pid,
                self._start_time,
            ),
        )

    def _replace_ir(self, run_id: str, ir_digest: str, ir_bytes: bytes) -> None:
        """A resume with an edited plan: the run goes on with its IR (a later `--resume RUN`
        without PLAN uses it too)."""
        with self._lock, self._writing():
            with transaction(self._conn):
                self._cur.execute(
                    "UPDATE runs SET ir_digest = ?, ir = ? WHERE run_id = ?",
                    (ir_digest, ir_bytes, run_id),
                )
            run_fd = open_dirs(self._files.root_fd, ("runs", run_id), create=True)
            try:  # no link followed, as every file under the state dir (docs/state.md)
                replace_whole("ir.json", ir_bytes, PRIVATE_FILE, run_fd)
            finally:
                os.close(run_fd)

    def fingerprints(self, plan_id: str) -> dict[str, FingerprintRecord]:
        """Each step's latest success in this state dir among runs of plan `plan_id`."""
        with self._lock:
            return queries.read_fingerprints(self._conn, plan_id)

    def _hold(self, run_id: str) -> None:
        """Called with the lock held: rebuild the derived files from SQLite, load the counters."""
        with reading(self.state_dir / "state.db"):  # a damaged row: one line, exit 2
            (ir,) = self._cur.execute("SELECT ir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            rows = self._cur.execute(
                "SELECT seq, ts, type, step_id, attempt, payload FROM events WHERE run_id = ?"
                " ORDER BY seq",
                (run_id,),
            ).fetchall()
            lines = [
                render_line(s, ts, run_id, t, st, a, p).encode() for s, ts, t, st, a, p in rows
            ]
            attempts = dict(
                self._cur.execute(
                    "SELECT step_id, attempts FROM steps WHERE run_id = ?", (run_id,)
                ).fetchall()
            )
        run_fd, logs_fd, fd, reemitted = open_run_files(self._files.root_fd, run_id, ir, lines)
        self._held[run_id] = _HeldRun(
            fd, run_fd, logs_fd, rows[-1][0] if rows else 0, attempts, reemitted
        )
