"""What the store hands out (runs, steps, attempts, fingerprints); whether a run owner lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.procinfo import proc_stat
from planrun.procinfo import start_time as process_start_time

INTERRUPTED = "interrupted"  # read-side only: a `running` run whose owner process is gone

# Start times are psutil's create_time (computed by planrun.procinfo): "jiffies since boot +
# /proc/stat btime"; btime is whole seconds and is recomputed from the wall clock, so two
# processes may see the same process start up to 1 s apart.
START_TIME_TOLERANCE_SEC = 1.5
SQLITE_MAX_INT = 2**63 - 1


@dataclass(frozen=True, eq=False, repr=False)
class RunInfo(ByValue):
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


@dataclass(frozen=True, eq=False, repr=False)
class StepInfo(ByValue):
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


@dataclass(frozen=True, eq=False, repr=False)
class FingerprintRecord(ByValue):
    """A step's latest success in the state dir (table `fingerprints`)."""

    fingerprint: str
    parts: dict[str, Any]
    run_id: str
    outputs: dict[str, str]


@dataclass(frozen=True, eq=False, repr=False)
class AttemptInfo(ByValue):
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


@dataclass(frozen=True, eq=False, repr=False)
class ResumeInfo(ByValue):
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
