"""Event types and the one JSON rendering shared by events.jsonl and its repair (docs/state.md)."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Event:
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
