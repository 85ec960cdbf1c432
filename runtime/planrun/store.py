"""The durable run store: SQLite (WAL) is the truth, events.jsonl and summary.json derive from it.

Write side: `RunStore` (one per planrun process; it holds the run lock of the runs it writes).
Read side: `open_reader` / `Reader`, the one read model the views use; it opens the database
read-only, so it works while a planrun process is writing. See docs/state.md for the contract.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self

from planrun.events import (
    RUN_FINISHED,
    RUN_RESUMED,
    RUN_STARTED,
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
    Event,
    dump_payload,
    render_line,
    utc_now,
)
from planrun.ir import conforms as conforms_to_ir_schema
from planrun.procinfo import create_time, proc_stat
from planrun.procinfo import start_time as process_start_time
from planrun.safefs import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    kind,
    open_dirs,
    read_fd,
    read_regular,
    trust_problem,
)
from planrun.semantics import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCESS,
    TIMED_OUT,
    UPSTREAM_FAILED,
)
from planrun.writes import replace_whole

SCHEMA_VERSION = 3
INTERRUPTED = "interrupted"  # read-side only: a `running` run whose owner process is gone
BUSY_TIMEOUT = 10.0  # seconds a writer waits for another writer (another run, same state dir)

# Start times are psutil's create_time (computed by planrun.procinfo): "jiffies since boot +
# /proc/stat btime"; btime is whole seconds and is recomputed from the wall clock, so two
# processes may see the same process start up to 1 s apart.
START_TIME_TOLERANCE_SEC = 1.5
SQLITE_MAX_INT = 2**63 - 1

# Each entry upgrades the schema from version i to i + 1 (user_version); never edit a shipped one.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id           TEXT PRIMARY KEY,
        plan_id          TEXT NOT NULL,
        ir_digest        TEXT NOT NULL,
        ir               BLOB NOT NULL,
        status           TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        finished_at      TEXT,
        duration_sec     REAL,
        exit_code        INTEGER,
        max_concurrency  INTEGER NOT NULL,
        argv             TEXT NOT NULL,
        host             TEXT NOT NULL,
        owner_pid        INTEGER,
        owner_start_time REAL
    );
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE steps (
        run_id       TEXT NOT NULL,
        step_id      TEXT NOT NULL,
        ordinal      INTEGER NOT NULL,
        status       TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        exit_code    INTEGER,
        started_at   TEXT,
        finished_at  TEXT,
        duration_sec REAL,
        reason       TEXT,
        detail       TEXT,
        recovered_by TEXT,
        PRIMARY KEY (run_id, step_id)
    ) WITHOUT ROWID;
    CREATE TABLE attempts (
        run_id          TEXT NOT NULL,
        step_id         TEXT NOT NULL,
        attempt         INTEGER NOT NULL,
        pid             INTEGER,
        pgid            INTEGER,
        proc_start_time REAL,
        started_at      TEXT NOT NULL,
        finished_at     TEXT,
        duration_sec    REAL,
        status          TEXT NOT NULL,
        exit_code       INTEGER,
        signal          INTEGER,
        reason          TEXT,
        stdout_log      TEXT,
        stderr_log      TEXT,
        PRIMARY KEY (run_id, step_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        run_id  TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        ts      TEXT NOT NULL,
        type    TEXT NOT NULL,
        step_id TEXT,
        attempt INTEGER,
        payload TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    """,
    # 2: step outputs (docs/dataflow.md), the latest attempt's, as a JSON object
    """
    ALTER TABLE steps ADD COLUMN outputs TEXT;
    """,
    # 3: fingerprints (docs/fingerprints.md): each step's, its latest success per plan, and the
    # stat cache of input files
    """
    ALTER TABLE steps ADD COLUMN fingerprint TEXT;
    ALTER TABLE steps ADD COLUMN fingerprint_parts TEXT;
    CREATE TABLE fingerprints (
        plan_id     TEXT NOT NULL,
        step_id     TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        parts       TEXT NOT NULL,
        run_id      TEXT NOT NULL,
        outputs     TEXT,
        PRIMARY KEY (plan_id, step_id)
    ) WITHOUT ROWID;
    CREATE TABLE stat_cache (
        path     TEXT PRIMARY KEY,
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode    INTEGER NOT NULL,
        digest   TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)


class StoreError(Exception):
    """A run-store problem the CLI reports in one line."""


class NoStateError(StoreError):
    pass


class UnknownRunError(StoreError):
    pass


class AmbiguousRunError(UnknownRunError):
    pass


class RunExistsError(StoreError):
    pass


class RunLockedError(StoreError):
    pass


class DigestMismatchError(StoreError):
    pass


class StoreWriteError(StoreError):
    """Recording failed (disk full, I/O error, file size limit…): the run cannot go on."""


class StateLostError(StoreError):
    """state.db was deleted or truncated under a live run: recording into it would write into a
    file nobody can read again, so the run stops (exit 2, docs/state.md "Trust")."""


class DamagedStateError(StoreError):
    """state.db holds something this planrun cannot read (wrong tables, bad data): one line."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    plan_id: str
    ir_digest: str
    status: str  # running | success | failed | cancelled, or interrupted (see docs/state.md)
    started_at: str
    finished_at: str | None
    duration_sec: float | None
    exit_code: int | None
    max_concurrency: int
    argv: list[str]
    host: str
    owner_pid: int | None
    step_counts: dict[str, int]  # step status -> number of steps


@dataclass(frozen=True)
class StepInfo:
    step_id: str
    ordinal: int
    status: str
    attempts: int
    exit_code: int | None
    started_at: str | None  # the fields below describe the latest attempt
    finished_at: str | None
    duration_sec: float | None
    reason: str | None
    detail: str | None
    recovered_by: str | None
    outputs: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None  # schema 3: docs/fingerprints.md


@dataclass(frozen=True)
class FingerprintRecord:
    """A step's latest success in the state dir (table `fingerprints`)."""

    fingerprint: str
    parts: dict[str, Any]
    run_id: str
    outputs: dict[str, str]


@dataclass(frozen=True)
class AttemptInfo:
    step_id: str
    attempt: int
    pid: int | None
    pgid: int | None
    proc_start_time: float | None
    started_at: str
    finished_at: str | None
    duration_sec: float | None
    status: str
    exit_code: int | None
    signal: int | None
    reason: str | None
    stdout_log: str | None
    stderr_log: str | None


@dataclass(frozen=True)
class ResumeInfo:
    run: RunInfo  # as recorded before the resume (status `interrupted` if it was left running)
    previous_status: str
    steps: list[StepInfo]
    running_attempts: list[AttemptInfo]  # leftovers the executor must make sure are dead
    reemitted_events: int  # events the JSONL repair had to copy back from SQLite


def process_alive(pid: int | None, start_time: float | None) -> bool:
    """Whether `pid` is still the process that started at `start_time` (not a reused pid)."""
    if pid is None or pid <= 0:
        return False
    st = proc_stat(pid)
    if st is None:
        try:
            os.kill(pid, 0)
        except PermissionError:
            return True  # it exists and is not ours to inspect: assume it is the owner
        except OSError:
            return False
        return False  # it exited while we looked
    if st.state == "Z":
        return False
    if start_time is None:
        return True
    return abs(process_start_time(st.starttime) - start_time) < START_TIME_TOLERANCE_SEC


def run_dir(state_dir: str | Path, run_id: str) -> Path:
    return Path(state_dir) / "runs" / run_id


# ---------------------------------------------------------------------------------------------
# Projections: how each event type updates runs/steps/attempts, inside the event's transaction.

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
    cur.execute(
        "UPDATE steps SET status = ?, attempts = ?, exit_code = NULL, started_at = ?,"
        " finished_at = NULL, duration_sec = NULL, reason = NULL, detail = NULL"
        " WHERE run_id = ? AND step_id = ?",
        (RUNNING, n, ts, run_id, step_id),
    )
    if "fingerprint" in p:
        _record_fingerprint(cur, run_id, step_id, p)
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


def _record_fingerprint(
    cur: sqlite3.Cursor, run_id: str, step_id: str | None, p: dict[str, Any]
) -> None:
    """A step starts with a fingerprint: its latest success no longer describes what is on disk
    (the step may change its files), so it is forgotten until the step succeeds again."""
    cur.execute(
        "UPDATE steps SET fingerprint = ?, fingerprint_parts = ? WHERE run_id = ? AND step_id = ?",
        (p["fingerprint"], json.dumps(p.get("fingerprint_parts"), sort_keys=True), run_id, step_id),
    )
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


_PROJECTIONS: dict[str, Projection] = {
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
_REQUIRED_PAYLOAD = {
    RUN_FINISHED: "status",
    STEP_RETRYING: "previous_status",
    STEP_RECOVERED: "fallback",
    UI_ACTION: "action",
    STEP_EXPANDED: "instances",
}

_INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, ts, type, step_id, attempt, payload)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


# ---------------------------------------------------------------------------------------------
# Write side


_CREATE_DB = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_JSONL_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SHOWN_PATH = 160  # characters of a path quoted in a message; a longer one is elided


class _StateFiles:
    """The state dir as a checked descriptor, and its state.db (docs/state.md, "Trust"): both
    belong to the user running planrun and nobody else can write them; the database is a
    regular file (not a link), and is the file SQLite opened by name. Its identity (device,
    inode) and size then tell whether it was deleted, replaced or truncated under a live run
    (`check_alive`).

    state.db is only ever looked at with lstat, never opened here (but once, to create it
    0600): closing any descriptor of it would drop every POSIX lock this process holds on
    it, SQLite's included, and another process could then delete the WAL under an open
    connection."""

    def __init__(self, root_fd: int, db: os.stat_result) -> None:
        self.root_fd = root_fd
        self.db_size = db.st_size
        self.db_id = (db.st_dev, db.st_ino)
        self.lost: str | None = None

    @classmethod
    def open(cls, root: Path, *, create: bool) -> _StateFiles:
        try:
            if create:
                os.makedirs(root, PRIVATE_DIR, exist_ok=True)
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _no_state(root) from None
        except OSError as exc:
            raise _unusable(root, exc) from None
        try:
            _trust(os.fstat(root_fd), f"refusing to use {shown(root)} as the state directory")
            db = _check_db(root, root_fd, create)
        except BaseException:
            os.close(root_fd)
            raise
        return cls(root_fd, db)

    def verify(self, root: Path) -> None:
        """After SQLite opened state.db by name: it is the file checked, and its -wal/-shm are
        regular files of ours too (SQLite opens them following links)."""
        named = self._stat("state.db")
        if named is None or (named.st_dev, named.st_ino) != self.db_id:
            raise StoreError(f"{shown(root / 'state.db')} was replaced while it was opened")
        for suffix in ("-wal", "-shm"):
            st = self._stat(f"state.db{suffix}")
            if st is None:
                continue
            where = f"refusing to use {shown(root / ('state.db' + suffix))}"
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"{where}: it is {kind(st.st_mode)}, not a regular file")
            _trust(st, where)
        self.db_size = named.st_size

    def check_alive(self, state_dir: Path) -> None:
        """One stat (relative to the dir fd): StateLostError if DIR/state.db is gone, is
        another file than the one SQLite writes into, or shrank (a database only grows:
        planrun never vacuums) since the last call."""
        if self.lost is None:
            st = self._stat("state.db")
            if st is None:
                self.lost = "deleted (or moved away)"
            elif (st.st_dev, st.st_ino) != self.db_id:
                self.lost = "replaced by another file"
            elif st.st_size < self.db_size:
                self.lost = f"truncated ({self.db_size} bytes, now {st.st_size})"
            else:
                self.db_size = st.st_size
                return
        raise StateLostError(
            f"{shown(state_dir / 'state.db')} was {self.lost} under the run: the run was stopped"
            " rather than record into a database nobody can read (its logs are kept under"
            f" {shown(state_dir / 'runs')})"
        )

    def close(self) -> None:
        fd, self.root_fd = self.root_fd, -1
        if fd >= 0:
            os.close(fd)

    def _stat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None


def _check_db(root: Path, root_fd: int, create: bool) -> os.stat_result:
    """lstat of DIR/state.db (created 0600 first if `create` and missing), checked like the
    dir: a regular file of ours that nobody else can write."""
    db = root / "state.db"
    try:
        if create:
            with suppress(FileExistsError):
                # Nothing else in this process can have it open: it did not exist.
                os.close(os.open("state.db", _CREATE_DB, PRIVATE_FILE, dir_fd=root_fd))
        st = os.stat("state.db", dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise _no_state(root) from None
    except OSError as exc:
        if exc.errno == errno.EACCES and create:
            raise StoreError(f"cannot create {shown(db)}: {shown(root)} is not writable") from None
        raise StoreError(f"cannot open {shown(db)}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{shown(db)} is a directory, not a planrun state database")
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(f"refusing to use {shown(db)}: it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{shown(db)} is {kind(st.st_mode)}, not a planrun state database")
    _trust(st, f"refusing to use {shown(db)}")
    return st


def _trust(st: os.stat_result, refusal: str) -> None:
    problem = trust_problem(st)
    if problem is not None:
        raise StoreError(f"{refusal}: {problem}")


def _no_state(root: Path) -> NoStateError:
    return NoStateError(
        f"no planrun state in {shown(root)} (no state.db): no run has been started there"
    )


def shown(path: str | Path) -> str:
    """A path as quoted in a one-line message: a very long one (past PATH_MAX, say) elided."""
    text = str(path)
    if len(text) <= _SHOWN_PATH:
        return text
    return f"{text[: _SHOWN_PATH // 2]}…{text[-_SHOWN_PATH // 2 :]} ({len(text)} characters)"


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


class RunStore:
    """Writes runs under a state directory. Thread-safe; one instance per planrun process."""

    def __init__(self, state_dir: Path, conn: sqlite3.Connection, files: _StateFiles) -> None:
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
        files = _StateFiles.open(root, create=True)
        try:
            # isolation_level=None: transactions are explicit, so one event is one commit.
            conn = sqlite3.connect(
                root / "state.db",
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT,
            )
        except (OSError, sqlite3.Error) as exc:
            files.close()
            raise _unusable(root, exc) from None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}")
            _migrate(conn)
            files.verify(root)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            files.close()
            raise _unusable(root, exc) from None
        except BaseException:
            conn.close()
            files.close()
            raise
        return cls(root, conn, files)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

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
        payload = {
            "plan_id": plan_id,
            "ir_digest": ir_digest,
            "max_concurrency": max_concurrency,
            "pid": self._pid,
            "host": host,
            "argv": argv,
            "params": params or {},
        }
        if watch is not None:
            payload["watch"] = watch
        ts = utc_now()
        with self._lock, self._writing():
            self._begin()
            try:
                self._insert_run(
                    run_id, plan_id, ir_digest, ir_bytes, ts, argv, host, max_concurrency
                )
                self._cur.executemany(
                    "INSERT INTO steps (run_id, step_id, ordinal, status) VALUES (?, ?, ?, ?)",
                    [(run_id, step_id, i, PENDING) for i, step_id in enumerate(step_ids)],
                )
                self._cur.execute(
                    _INSERT_EVENT, (run_id, 1, ts, RUN_STARTED, None, None, dump_payload(payload))
                )
                self._cur.execute("COMMIT")
            except BaseException:
                _rollback(self._conn)
                raise
            self._hold(run_id)
        return Event(1, ts, run_id, RUN_STARTED, None, None, payload)

    def acquire(self, run_id: str) -> None:
        """Take the run lock (taking over from a dead owner), repair events.jsonl, load counters.

        Raises RunLockedError when another live process holds the run.
        """
        with self._lock, self._writing():
            if run_id in self._held:
                return
            self._begin()
            try:
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
                self._cur.execute("COMMIT")
            except BaseException:
                _rollback(self._conn)
                raise
            self._hold(run_id)

    def begin_resume(
        self, run_id: str, ir_digest: str, ir_bytes: bytes | None = None,
        step_ids: list[str] | None = None,
    ) -> ResumeInfo:  # fmt: skip
        """Lock a previous run (full id or unique prefix) for resuming; the executor then kills
        the leftovers in `running_attempts` and emits run_resumed. With `ir_bytes` (an edited
        plan with the same steps, `step_ids`) the run goes on with that IR from now on; without,
        another IR than the recorded one is refused."""
        with self._lock, _reading(self.state_dir / "state.db"):
            run_id = _resolve_run_id(self._conn, run_id, self.state_dir)
            recorded = _read_run(self._conn, run_id).ir_digest
            recorded_ids = [s.step_id for s in _read_steps(self._conn, run_id)]
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
        with self._lock, _reading(self.state_dir / "state.db"):
            run = _read_run(self._conn, run_id)  # as recorded: with the IR it had until now
            if recorded != ir_digest and ir_bytes is not None:
                self._replace_ir(run_id, ir_digest, ir_bytes)
            # We own the run now, so a `running` status can only be a crashed previous owner's.
            previous = INTERRUPTED if run.status == RUNNING else run.status
            attempts = _read_attempts(self._conn, run_id, None)
            return ResumeInfo(
                run=replace(run, status=previous),
                previous_status=previous,
                steps=_read_steps(self._conn, run_id),
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
        project = _PROJECTIONS.get(type)
        if project is None:
            raise ValueError(f"cannot emit event type {type!r} (run_started comes from create_run)")
        required = _REQUIRED_PAYLOAD.get(type)
        if required is not None and required not in payload:
            raise ValueError(f"{type} needs a {required!r} payload field")
        payload_json = dump_payload(payload)
        with self._lock:
            held = self._held.get(run_id)
            if held is None:
                raise StoreError(f"run {run_id} is not held by this store (create or resume it)")
            attempt = _check_step(held, type, step_id, attempt)
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
                self._begin()
                try:
                    self._cur.executemany(
                        _INSERT_EVENT,
                        [
                            (e.run_id, e.seq, e.ts, e.type, e.step_id, e.attempt, p.payload_json)
                            for p in pending
                            for e in (p.event,)
                        ],
                    )
                    for p in pending:
                        e = p.event
                        p.project(self._cur, e.run_id, e.step_id, e.attempt, e.ts, e.payload)
                    self._cur.execute("COMMIT")
                except BaseException:
                    _rollback(self._conn)
                    raise
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
                _write_all(fd, b"".join(chunks))
            return [p.event for p in pending]

    def write_summary(self, run_id: str) -> Path:
        """Write DIR/runs/RUN_ID/summary.json from SQLite (normally once run_finished is in)."""
        path = run_dir(self.state_dir, run_id) / "summary.json"
        with self._lock, self._writing():
            summary = _summary(self._conn, run_id)
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

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock up front, so a concurrent writer (another run in the
        # same state dir) makes us wait busy_timeout instead of failing on lock upgrade.
        self._cur.execute("BEGIN IMMEDIATE")

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
            self._begin()
            try:
                self._cur.execute(
                    "UPDATE runs SET ir_digest = ?, ir = ? WHERE run_id = ?",
                    (ir_digest, ir_bytes, run_id),
                )
                self._cur.execute("COMMIT")
            except BaseException:
                _rollback(self._conn)
                raise
            run_fd = open_dirs(self._files.root_fd, ("runs", run_id), create=True)
            try:  # no link followed, as every file under the state dir (docs/state.md)
                replace_whole("ir.json", ir_bytes, PRIVATE_FILE, run_fd)
            finally:
                os.close(run_fd)

    def fingerprints(self, plan_id: str) -> dict[str, FingerprintRecord]:
        """Each step's latest success in this state dir among runs of plan `plan_id`."""
        with self._lock:
            return _read_fingerprints(self._conn, plan_id)

    def _hold(self, run_id: str) -> None:
        """Called with the lock held: rebuild the derived files from SQLite, load the counters."""
        with _reading(self.state_dir / "state.db"):  # a damaged row: one line, exit 2
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
        run_fd = open_dirs(self._files.root_fd, ("runs", run_id), create=True)
        fds = [run_fd]
        try:
            fds.append(open_dirs(self._files.root_fd, ("runs", run_id, "logs"), create=True))
            try:
                same = read_regular("ir.json", len(ir), dir_fd=run_fd) == ir
            except OSError:
                same = False
            if not same:
                replace_whole("ir.json", bytes(ir), PRIVATE_FILE, run_fd)
            fds.append(_open_jsonl(run_fd))
            reemitted = _repair_jsonl(fds[2], lines)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._held[run_id] = _HeldRun(
            fds[2], run_fd, fds[1], rows[-1][0] if rows else 0, attempts, reemitted
        )


def _check_step(held: _HeldRun, type: str, step_id: str | None, attempt: int | None) -> int | None:
    """Validate an event's step/attempt against the run and resolve the default attempt."""
    if type not in STEP_EVENTS:
        if step_id is not None or attempt is not None:
            raise ValueError(f"{type} is a run event: it takes no step_id or attempt")
        return None
    latest = held.attempts.get(step_id) if step_id is not None else None
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_jsonl(run_fd: int) -> int:
    """events.jsonl for reading and appending; anything else found at that name (a link, a pipe)
    is replaced by a new file (it is derived from SQLite), never written through."""
    try:
        fd = os.open("events.jsonl", _JSONL_FLAGS, PRIVATE_FILE, dir_fd=run_fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    else:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)
    os.unlink("events.jsonl", dir_fd=run_fd)
    return os.open("events.jsonl", _JSONL_FLAGS | os.O_EXCL, PRIVATE_FILE, dir_fd=run_fd)


def _repair_jsonl(fd: int, lines: list[bytes]) -> int:
    """Make events.jsonl hold exactly `lines` (SQLite's events); return how many were appended.

    Keeps the longest prefix of the file that matches SQLite byte for byte, truncates the rest (a
    torn line from a crash mid-write, or anything SQLite does not have) and appends the events the
    file is missing (a crash between the SQLite commit and the file write).
    """
    data = read_fd(fd, 0, os.fstat(fd).st_size)
    offset = kept = 0
    for line in lines:
        if not data.startswith(line, offset):
            break
        offset += len(line)
        kept += 1
    if offset != len(data):
        os.ftruncate(fd, offset)
    _write_all(fd, b"".join(lines[kept:]))
    return len(lines) - kept


def _migrate(conn: sqlite3.Connection) -> None:
    if _schema_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        for version in range(_schema_version(conn), SCHEMA_VERSION):
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    # There may be nothing to roll back: SQLite has already rolled back a transaction whose
    # commit failed for lack of space, and an interrupt can land before BEGIN or after COMMIT.
    # ROLLBACK would then fail and hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _schema_version(conn: sqlite3.Connection) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"state.db has schema version {version}, newer than this planrun understands"
            f" ({SCHEMA_VERSION}); upgrade planrun"
        )
    return version


# ---------------------------------------------------------------------------------------------
# Read side: functions of a connection, shared by Reader and RunStore.

_RUN_COLUMNS = (
    "run_id, plan_id, ir_digest, status, started_at, finished_at, duration_sec, exit_code,"
    " max_concurrency, argv, host, owner_pid, owner_start_time"
)
_STEP_COLUMNS = (
    "step_id, ordinal, status, attempts, exit_code, started_at, finished_at, duration_sec,"
    " reason, detail, recovered_by, outputs, fingerprint"
)
_ATTEMPT_COLUMNS = (
    "a.step_id, a.attempt, a.pid, a.pgid, a.proc_start_time, a.started_at, a.finished_at,"
    " a.duration_sec, a.status, a.exit_code, a.signal, a.reason, a.stdout_log, a.stderr_log"
)


def _resolve_run_id(conn: sqlite3.Connection, ref: str, state_dir: Path) -> str:
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


def _run_info(conn: sqlite3.Connection, row: tuple[Any, ...]) -> RunInfo:
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
        run_id=run_id,
        plan_id=plan_id,
        ir_digest=digest,
        status=status,
        started_at=started,
        finished_at=finished,
        duration_sec=duration,
        exit_code=exit_code,
        max_concurrency=max_conc,
        argv=json.loads(argv),
        host=host,
        owner_pid=owner_pid,
        step_counts=dict(counts.fetchall()),
    )


def _read_run(conn: sqlite3.Connection, run_id: str) -> RunInfo:
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return _run_info(conn, row)


def _read_steps(conn: sqlite3.Connection, run_id: str) -> list[StepInfo]:
    rows = conn.execute(
        f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY ordinal", (run_id,)
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


def _read_attempts(conn: sqlite3.Connection, run_id: str, step_id: str | None) -> list[AttemptInfo]:
    rows = conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM attempts a JOIN steps s USING (run_id, step_id)"
        " WHERE a.run_id = ?1 AND (?2 IS NULL OR a.step_id = ?2) ORDER BY s.ordinal, a.attempt",
        (run_id, step_id),
    )
    return [AttemptInfo(*row) for row in rows]


def _summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    run = _read_run(conn, run_id)
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
        for s in _read_steps(conn, run_id)
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


def _read_fingerprints(conn: sqlite3.Connection, plan_id: str) -> dict[str, FingerprintRecord]:
    rows = conn.execute(
        "SELECT step_id, fingerprint, parts, run_id, outputs FROM fingerprints WHERE plan_id = ?",
        (plan_id,),
    )
    return {
        step: FingerprintRecord(fp, json.loads(parts) or {}, run, json.loads(outs or "{}") or {})
        for step, fp, parts, run, outs in rows
    }


def open_reader(state_dir: str | Path) -> Reader:
    """A read-only view of DIR/state.db; safe while planrun processes write to it."""
    root = Path(state_dir)
    files = _StateFiles.open(root, create=False)
    db = root / "state.db"
    try:
        conn = sqlite3.connect(
            Path(os.path.abspath(db)).as_uri() + "?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=BUSY_TIMEOUT,
        )
    except (OSError, sqlite3.Error) as exc:
        files.close()
        raise _unusable(root, exc) from None
    try:
        with _reading(db):
            files.verify(root)
            if _schema_version(conn) < SCHEMA_VERSION:
                raise NoStateError(f"{shown(db)} holds no runs yet (schema not initialised)")
            for table, columns in _TABLE_COLUMNS:
                conn.execute(f"SELECT {columns} FROM {table} LIMIT 0")
    except BaseException:
        conn.close()
        files.close()
        raise
    return Reader(root, conn, files)


# What the read side selects from each table: all of it must exist (a damaged or foreign
# database fails at open with one line, not in the middle of a view).
_TABLE_COLUMNS = (
    ("runs", f"{_RUN_COLUMNS}, ir"),
    ("steps", _STEP_COLUMNS),
    ("attempts a", _ATTEMPT_COLUMNS),
    ("events", "seq, ts, type, step_id, attempt, payload"),
)


# What a damaged state.db makes the read side raise: SQLite errors, text that is not UTF-8,
# JSON that does not parse, rows of the wrong shape.
_DAMAGE = (sqlite3.Error, ValueError, TypeError, KeyError, IndexError)


@contextmanager
def _reading(db: Path) -> Iterator[None]:
    try:
        yield
    except _DAMAGE as exc:
        raise _damaged(db, exc) from None


def _damaged(db: Path, exc: BaseException) -> DamagedStateError:
    return DamagedStateError(
        f"{shown(db)} is damaged or not planrun's ({type(exc).__name__}: {exc});"
        " move it away or use another --state-dir"
    )


def _unusable(root: Path, exc: OSError | sqlite3.Error) -> StoreError:
    """The state directory or its database cannot be used: one line that says which and why."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return StoreError(f"cannot use {shown(root)} as the state directory: it is not a directory")
    if isinstance(exc, OSError):
        return StoreError(f"cannot use {shown(root)} as the state directory: {exc.strerror or exc}")
    db = shown(root / "state.db")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return StoreError(
            f"{db} is not a planrun state database ({exc}); move it away or use another --state-dir"
        )
    return StoreError(f"cannot open {db}: {exc}")


class Reader:
    """The read model. Every method accepts a full run id or a unique prefix of one; whatever
    a damaged database makes a query raise comes out as one DamagedStateError."""

    def __init__(self, state_dir: Path, conn: sqlite3.Connection, files: _StateFiles) -> None:
        self.state_dir = state_dir
        self._conn = conn
        self._files = files  # closed after the connection (_StateFiles.close)
        self._db = state_dir / "state.db"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._files.close()

    def runs(self, limit: int = 20) -> list[RunInfo]:
        """Newest first."""
        with self._snapshot():
            rows = self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [_run_info(self._conn, row) for row in rows]

    def latest_run_id(self) -> str | None:
        with _reading(self._db):
            row = self._conn.execute(
                "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
        return str(row[0]) if row else None

    def resolve(self, ref: str) -> str:
        with _reading(self._db):
            return _resolve_run_id(self._conn, ref, self.state_dir)

    def run(self, run_id: str) -> RunInfo:
        with self._snapshot():
            return _read_run(self._conn, self.resolve(run_id))

    def steps(self, run_id: str) -> list[StepInfo]:
        """In IR order."""
        with self._snapshot():
            return _read_steps(self._conn, self.resolve(run_id))

    def attempts(self, run_id: str, step_id: str | None = None) -> list[AttemptInfo]:
        """In IR order of their steps, then by attempt number."""
        with self._snapshot():
            return _read_attempts(self._conn, self.resolve(run_id), step_id)

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
            return _summary(self._conn, self.resolve(run_id))

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
        with _reading(self._db):
            document = json.loads(data)
            if not conforms_to_ir_schema(document):
                raise ValueError(f"the IR of run {self.resolve(run_id)} is not a valid IR")
        return dict(document)

    def fingerprints(self, plan_id: str) -> dict[str, FingerprintRecord]:
        """Each step's latest success in this state dir among runs of plan `plan_id`."""
        return _read_fingerprints(self._conn, plan_id)

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
        with _reading(self._db):
            self._conn.execute("BEGIN")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        with suppress(sqlite3.Error):
            self._conn.execute("COMMIT")
        if isinstance(ev, _DAMAGE):
            raise _damaged(self._db, ev) from None
