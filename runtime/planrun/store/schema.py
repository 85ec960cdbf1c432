"""The schema of state.db: its migrations, and the one way a transaction is opened and closed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from planrun.store.errors import StoreError

SCHEMA_VERSION = 3
BUSY_TIMEOUT = 10.0  # seconds a writer waits for another writer (another run, same state dir)

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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back when it raises.

    IMMEDIATE takes the write lock up front, so a concurrent writer (another run in the same
    state dir) makes us wait busy_timeout instead of failing on lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def migrate(conn: sqlite3.Connection) -> None:
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        # Re-read under the write lock: another process may have migrated meanwhile.
        for version in range(schema_version(conn), SCHEMA_VERSION):
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def _rollback(conn: sqlite3.Connection) -> None:
    # There may be nothing to roll back: SQLite has already rolled back a transaction whose
    # commit failed for lack of space, and an interrupt can land before BEGIN or after COMMIT.
    # ROLLBACK would then fail and hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def schema_version(conn: sqlite3.Connection) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"state.db has schema version {version}, newer than this planrun understands"
            f" ({SCHEMA_VERSION}); upgrade planrun"
        )
    return version
