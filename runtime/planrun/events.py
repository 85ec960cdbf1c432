"""Event types and the one JSON rendering shared by events.jsonl and its repair (docs/state.md).

Emitters build an event's payload as one of the dataclasses below (`StepStarted(pid=…, …)`), so
mypy checks every field name and type at the emit site; `payload()` is the one way to the
stored dict (the store renders it as text). The run, step and attempt are the event's envelope,
given to the store beside the payload (the store numbers attempts). Readers keep reading the
stored dicts.
"""

from __future__ import annotations

import enum
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final

from planrun.core.byvalue import ByValue

RUN_STARTED = "run_started"
RUN_RESUMED = "run_resumed"
RUN_FINISHED = "run_finished"
STEP_STARTED = "step_started"
STEP_PLACED = "step_placed"  # a remote attempt reached its worker (docs/distributed.md)
STEP_RETRYING = "step_retrying"
STEP_SUCCEEDED = "step_succeeded"
STEP_FAILED = "step_failed"
STEP_TIMED_OUT = "step_timed_out"
STEP_SKIPPED = "step_skipped"
STEP_UPSTREAM_FAILED = "step_upstream_failed"
STEP_CANCELLED = "step_cancelled"
STEP_RECOVERED = "step_recovered"
UI_ACTION = "ui_action"  # who did what from `planrun ui` (planrun.uiactions)
STEP_EXPANDED = "step_expanded"  # a for_each step made its instances (docs/composition.md)

RUN_EVENTS = frozenset({RUN_STARTED, RUN_RESUMED, RUN_FINISHED, UI_ACTION})
STEP_EVENTS = frozenset(
    {
        STEP_STARTED,
        STEP_PLACED,
        STEP_RETRYING,
        STEP_SUCCEEDED,
        STEP_FAILED,
        STEP_TIMED_OUT,
        STEP_SKIPPED,
        STEP_UPSTREAM_FAILED,
        STEP_CANCELLED,
        STEP_RECOVERED,
        STEP_EXPANDED,
    }
)

# The status each step event shows in the views (its symbol and colour: planrun.views.style).
EVENT_STATUS = {
    STEP_STARTED: "running",
    STEP_RETRYING: "retrying",
    STEP_SUCCEEDED: "success",
    STEP_FAILED: "failed",
    STEP_TIMED_OUT: "timed_out",
    STEP_SKIPPED: "skipped",
    STEP_UPSTREAM_FAILED: "upstream_failed",
    STEP_CANCELLED: "cancelled",
    STEP_RECOVERED: "recovered",
}
# The events that end a step, and those of them that are its failures.
FINAL_EVENTS = frozenset(
    {
        STEP_SUCCEEDED,
        STEP_FAILED,
        STEP_TIMED_OUT,
        STEP_SKIPPED,
        STEP_UPSTREAM_FAILED,
        STEP_CANCELLED,
    }
)
FAILURE_EVENTS = frozenset({STEP_FAILED, STEP_TIMED_OUT})


# utc_now is on the hot path (every event): format the seconds once per second, not per call.
_second_cache: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """UTC ISO-8601 with microseconds and "Z": fixed width, so timestamps also sort as text."""
    global _second_cache
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{micros:06d}Z"


# One encoder for every payload: json.dumps with non-default options builds a new one per call.
dump_payload = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""The payload text stored in SQLite; events.jsonl embeds it verbatim."""


def render_line(
    seq: int,
    ts: str,
    run_id: str,
    type: str,
    step_id: str | None,
    attempt: int | None,
    payload_json: str,
) -> str:
    """One events.jsonl line, newline included.

    Built from the stored payload text rather than re-serialised, so a line written live and the
    same line re-emitted by the repair from SQLite are byte-identical.
    """
    return (
        f'{{"seq":{seq},"ts":"{ts}","run_id":{_json_text(run_id)},'
        f'"type":"{type}","step_id":{_json_text(step_id)},'
        f'"attempt":{"null" if attempt is None else attempt},"payload":{payload_json}}}\n'
    )


@functools.lru_cache(maxsize=4096)
def _json_text(value: str | None) -> str:
    """A run or step id as JSON; cached, as the same few ids are rendered at every event."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Event(ByValue):
    seq: int
    ts: str
    run_id: str
    type: str
    step_id: str | None
    attempt: int | None
    payload: dict[str, Any]

    def to_json(self) -> str:
        """The events.jsonl line for this event, without the newline."""
        return render_line(
            self.seq,
            self.ts,
            self.run_id,
            self.type,
            self.step_id,
            self.attempt,
            dump_payload(self.payload),
        )[:-1]


# --- typed payloads ----------------------------------------------------------------------------


class Absent(enum.Enum):
    """An optional payload field left out of the stored payload (not the same as null)."""

    ABSENT = "absent"


ABSENT: Final = Absent.ABSENT


class EventPayload(ByValue):
    """The payload of one event type; `TYPE` is its name. Fields are keyword-only, declared in
    the order their keys are stored; a field at ABSENT is left out."""

    __slots__ = ()
    TYPE: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        """The stored payload: the fields in declaration order, absent ones left out."""
        out: dict[str, Any] = {}
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        for name in names:
            value = getattr(self, name)
            if value is not ABSENT:
                out[name] = value
        return out


_FIELD_NAMES: dict[type[EventPayload], tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class RunStarted(EventPayload):
    TYPE: ClassVar[str] = RUN_STARTED
    plan_id: str
    ir_digest: str
    max_concurrency: int
    pid: int
    host: str
    argv: Sequence[str]
    params: dict[str, Any]
    watch: dict[str, Any] | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class RunResumed(EventPayload):
    TYPE: ClassVar[str] = RUN_RESUMED
    pid: int
    previous_status: str
    ir_digest: str | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class RunFinished(EventPayload):
    TYPE: ClassVar[str] = RUN_FINISHED
    status: str
    exit_code: int
    duration_sec: float


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class UiAction(EventPayload):
    """Built from planrun.uiactions' cleaned dicts, whose keys are these fields."""

    TYPE: ClassVar[str] = UI_ACTION
    action: str
    by: str | Absent = ABSENT
    remote: str | Absent = ABSENT
    requested_at: str | Absent = ABSENT
    step: str | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepStarted(EventPayload):
    TYPE: ClassVar[str] = STEP_STARTED
    pid: int | None
    pgid: int | None
    proc_start_time: float | Absent | None = ABSENT
    tag: str | Absent = ABSENT
    argv: Sequence[str] | Absent = ABSENT
    cwd: str | Absent = ABSENT
    stdout_log: str | Absent = ABSENT
    stderr_log: str | Absent = ABSENT
    fingerprint: str | Absent = ABSENT
    fingerprint_parts: dict[str, Any] | Absent = ABSENT
    why: str | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepPlaced(EventPayload):
    TYPE: ClassVar[str] = STEP_PLACED
    worker: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepRetrying(EventPayload):
    """The fields after `reason` are those of the attempt that just ended (StepFailed's, and
    StepTimedOut's `limit_sec`, `detail`)."""

    TYPE: ClassVar[str] = STEP_RETRYING
    delay_sec: float
    previous_status: str
    reason: str
    exit_code: int | Absent | None = ABSENT
    signal: int | Absent | None = ABSENT
    stderr_tail: str | Absent = ABSENT
    duration_sec: float | Absent = ABSENT
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT
    output_tail: dict[str, Any] | Absent = ABSENT
    limit_sec: float | Absent | None = ABSENT
    detail: str | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepSucceeded(EventPayload):
    TYPE: ClassVar[str] = STEP_SUCCEEDED
    exit_code: int
    duration_sec: float
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepFailed(EventPayload):
    TYPE: ClassVar[str] = STEP_FAILED
    reason: str
    exit_code: int | None
    signal: int | Absent | None = ABSENT
    stderr_tail: str | Absent = ABSENT
    duration_sec: float | Absent = ABSENT
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT
    output_tail: dict[str, Any] | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepTimedOut(EventPayload):
    TYPE: ClassVar[str] = STEP_TIMED_OUT
    reason: str
    exit_code: int | Absent | None = ABSENT
    signal: int | Absent | None = ABSENT
    stderr_tail: str | Absent = ABSENT
    duration_sec: float | Absent = ABSENT
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT
    output_tail: dict[str, Any] | Absent = ABSENT
    limit_sec: float | Absent | None = ABSENT
    detail: str | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepSkipped(EventPayload):
    TYPE: ClassVar[str] = STEP_SKIPPED
    reason: str
    detail: str
    fingerprint: str | Absent | None = ABSENT
    from_run: str | Absent = ABSENT
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepUpstreamFailed(EventPayload):
    TYPE: ClassVar[str] = STEP_UPSTREAM_FAILED
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepCancelled(EventPayload):
    """An attempt cancelled while it ran also has its ending's fields (StepFailed's)."""

    TYPE: ClassVar[str] = STEP_CANCELLED
    reason: str
    exit_code: int | Absent | None = ABSENT
    signal: int | Absent | None = ABSENT
    stderr_tail: str | Absent = ABSENT
    duration_sec: float | None
    outputs: dict[str, str] | Absent = ABSENT
    secret_outputs: list[str] | Absent = ABSENT


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepRecovered(EventPayload):
    TYPE: ClassVar[str] = STEP_RECOVERED
    fallback: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class StepExpanded(EventPayload):
    TYPE: ClassVar[str] = STEP_EXPANDED
    instances: list[str]
    items: int


# Every event type and its payload class (docs/state.md's event table; a test keeps them equal).
PAYLOADS: dict[str, type[EventPayload]] = {
    cls.TYPE: cls
    for cls in (
        RunStarted,
        RunResumed,
        RunFinished,
        UiAction,
        StepStarted,
        StepPlaced,
        StepRetrying,
        StepSucceeded,
        StepFailed,
        StepTimedOut,
        StepSkipped,
        StepUpstreamFailed,
        StepCancelled,
        StepRecovered,
        StepExpanded,
    )
}
