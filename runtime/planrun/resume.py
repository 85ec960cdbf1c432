"""What a resumed run carries over: the steps it keeps or leaves out, and the processes a dead
planrun left running."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from planrun.core import semantics as sem
from planrun.core.ir_types import IRStep
from planrun.core.loop import StepRecord
from planrun.process import kill_leftover
from planrun.reuse import Candidate
from planrun.store import AttemptInfo, open_reader

if TYPE_CHECKING:
    from planrun.executor import Executor


def kept_on_resume(previous: Mapping[str, StepRecord], steps: Iterable[IRStep]) -> set[str]:
    """The steps a resumed run does not run again: those that succeeded, except fallbacks (a
    fallback answers a failure of its own session, so it runs again if that failure recurs),
    and those an --only/--from run reused from an earlier run (its selection holds)."""
    steps = list(steps)
    fallbacks = {step.id for step in steps if step.is_fallback}
    reused = _skipped_as(previous, "reused")
    succeeded = {sid for sid, record in previous.items() if record.status == sem.SUCCESS}
    kept = (succeeded | reused) - fallbacks
    # Work between a setup and its teardown runs again only inside the scope: setup first,
    # teardown after, once each (semantics.md §5b).
    for teardown, (setup, between) in sem.setup_scopes(steps).items():
        if not between <= kept or setup not in kept:
            kept -= {setup, teardown}
    return kept


def left_out_on_resume(previous: Mapping[str, StepRecord]) -> set[str]:
    """The steps an --only/--from run left out of its selection: its resume leaves them out."""
    return _skipped_as(previous, "not_selected")


def _skipped_as(previous: Mapping[str, StepRecord], reason: str) -> set[str]:
    return {
        sid
        for sid, record in previous.items()
        if record.status == sem.SKIPPED and record.reason == reason
    }


def kill_leftovers(
    attempts: list[AttemptInfo], grace: float, tags: dict[tuple[str, int], str]
) -> int:
    """Kill what a dead planrun left running: the recorded process group and pid (if it is still
    the same process: same start time), and daemons carrying the attempt's tag."""
    killed = 0
    for attempt in attempts:
        if attempt.pgid is not None and attempt.pid is not None:
            start = attempt.proc_start_time or 0.0
            tag = tags.get((attempt.step_id, attempt.attempt))
            killed += kill_leftover(attempt.pgid, attempt.pid, start, grace, tag)
    return killed


def recorded_params_and_tags(
    state_dir: str, run_id: str
) -> tuple[
    dict[str, Any],
    dict[tuple[str, int], str],
    dict[str, set[str]],
    int,
    dict[str, dict[str, Any]],
]:
    """From the run's events, in one read: the params it started with (a resumed run keeps
    them), the PLANRUN_ATTEMPT_TAG of each attempt (to find daemons a dead planrun left), each
    step's secret outputs (whose values were not recorded), how many times it was resumed
    before, and the fingerprint parts each step was last started with (to say why a step runs
    again)."""
    with open_reader(state_dir) as reader:
        events = reader.events(run_id)
        parts = reader.fingerprint_parts(run_id)
    params = events[0].payload.get("params") if events else None
    tags = {
        (str(e.step_id), int(e.attempt or 0)): str(e.payload["tag"])
        for e in events
        if e.type == "step_started" and e.payload.get("tag")
    }
    secret_outputs: dict[str, set[str]] = {}
    if any("secret_outputs" in e.payload for e in events):
        from planrun.secrecy import secret_outputs_in

        secret_outputs = secret_outputs_in(events)
    resumed = sum(1 for e in events if e.type == "run_resumed")  # before this session
    params = dict(params) if isinstance(params, dict) else {}
    return params, tags, secret_outputs, resumed, parts


def restore(ex: Executor, previous: dict[str, StepRecord], ir_changed: bool) -> None:
    """Resume: what earlier sessions recorded per step (`ir_changed`: with another IR than
    theirs) goes into the executor's records, its reuse candidates and its plan state."""
    known = {sid: r for sid, r in previous.items() if sid in ex.records}
    kept = kept_on_resume(known, ex.ir.steps)
    legacy: set[str] = set()  # successes recorded before fingerprints: kept as before
    for step_id, record in previous.items():
        if step_id not in ex.records:  # a fan-out's instance: made again if needed
            ex.fanout.previous[step_id] = record
            continue
        # In place: the run context reads each record's outputs dict.
        current = ex.records[step_id]
        current.attempts, current.exit_code = record.attempts, record.exit_code
        current.duration_sec, current.status = record.duration_sec, record.status
        current.outputs.update(record.outputs)
        ex.unavailable[step_id] = set(record.secret_outputs)
        if record.fingerprint is not None:
            # What its dependents saw of it, until it is decided again: a step an interrupt
            # cancels before it starts must not look changed to them.
            ex.reuse.fingerprints[step_id] = record.fingerprint
        if step_id not in kept:
            ex.reuse.why_no_candidate[step_id] = f"no success in this run yet ({record.status})"
            continue
        if record.fingerprint is not None:
            parts = record.fingerprint_parts
            ex.reuse.offer(step_id, Candidate("kept", record.fingerprint, parts, ex.run_id))
        elif not ir_changed:
            legacy.add(step_id)
    ex.plan.restore(legacy)
    ex.plan.exclude(left_out_on_resume(known))
