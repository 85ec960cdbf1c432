"""The durable run store: SQLite (WAL) is the truth, events.jsonl and summary.json derive from it.

Write side: `RunStore` (writer; one per planrun process, it holds the run lock of the runs it
writes). Read side: `open_reader` / `Reader` (reader), the one read model the views use; it opens
the database read-only, so it works while a planrun process is writing. Beside them: schema
(migrations and the one transaction helper), projections (event -> rows), queries (reads of a
connection), files (state.db's trust checks, events.jsonl repair), records and errors (what the
store hands out and raises). See docs/state.md for the contract.

May import: the runtime's leaf modules (events, semantics, safefs, procinfo, writes, ir),
never the executor, the views or planc. Import the public names from here, not the submodules.
"""

from planrun.store.errors import (
    AmbiguousRunError,
    DamagedStateError,
    DigestMismatchError,
    NoStateError,
    RunExistsError,
    RunLockedError,
    StateLostError,
    StoreError,
    StoreWriteError,
    UnknownRunError,
    shown,
)
from planrun.store.reader import Reader, open_reader
from planrun.store.records import (
    INTERRUPTED,
    SQLITE_MAX_INT,
    START_TIME_TOLERANCE_SEC,
    AttemptInfo,
    FingerprintRecord,
    ResumeInfo,
    RunInfo,
    StepInfo,
    process_alive,
    run_dir,
)
from planrun.store.schema import BUSY_TIMEOUT, SCHEMA_VERSION
from planrun.store.writer import RunStore

__all__ = [
    "BUSY_TIMEOUT",
    "INTERRUPTED",
    "SCHEMA_VERSION",
    "SQLITE_MAX_INT",
    "START_TIME_TOLERANCE_SEC",
    "AmbiguousRunError",
    "AttemptInfo",
    "DamagedStateError",
    "DigestMismatchError",
    "FingerprintRecord",
    "NoStateError",
    "Reader",
    "ResumeInfo",
    "RunExistsError",
    "RunInfo",
    "RunLockedError",
    "RunStore",
    "StateLostError",
    "StepInfo",
    "StoreError",
    "StoreWriteError",
    "UnknownRunError",
    "open_reader",
    "process_alive",
    "run_dir",
    "shown",
]
