"""A step's status and the reason it was recorded with (docs/semantics.md §1): the names that
the semantics, the store, the views and planc's analyses share.

The values are what events, state.db and summary.json hold; the code compares them as the plain
strings they are (`semantics.SUCCESS` is `Status.SUCCESS.value`).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UPSTREAM_FAILED = "upstream_failed"  # never started: an upstream failure blocked it (§1)

    @property
    def is_terminal(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)

    @property
    def is_failure(self) -> bool:
        """The step's own failure: what its `on_failure` policy answers."""
        return self in (Status.FAILED, Status.TIMED_OUT)


class Reason(StrEnum):
    """Why a step ended as it did, beside its status (docs/semantics.md §1)."""

    TIMEOUT = "timeout"  # timed_out: the wall-clock timeout
    STALLED = "stalled"  # timed_out: the heartbeat timeout
    UPSTREAM = "upstream"  # skipped or upstream_failed: the trigger rule is not met
    CONDITION = "condition"  # skipped: the condition is false
    NOT_NEEDED = "not_needed"  # skipped: a fallback nobody needed
    INVARIANT = "invariant"  # upstream_failed: an invariant refused the start
    ABORTED = "aborted"  # cancelled: the plan aborted
    INTERRUPTED = "interrupted"  # cancelled: the run was interrupted
    FAIL_FAST = "fail_fast"  # cancelled: a member of its group failed
    NOT_SELECTED = "not_selected"  # skipped: left out by --only/--from
    REUSED = "reused"  # skipped: an earlier run's success with the same fingerprint
    UP_TO_DATE = "up_to_date"  # skipped: its generated files are newer than its sources

    @property
    def is_reuse(self) -> bool:
        """The step's work stands from an earlier run: it counts as done."""
        return self in (Reason.REUSED, Reason.UP_TO_DATE)


TERMINAL = frozenset(status.value for status in Status if status.is_terminal)
FAILURES = frozenset(status.value for status in Status if status.is_failure)
REUSE_REASONS = frozenset(reason.value for reason in Reason if reason.is_reuse)
