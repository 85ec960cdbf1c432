"""`planrun explain STEP [RUN]`: why a step of a recorded run ran or did not run, from the run's
events (docs/fingerprints.md, "The decision, recorded")."""

from __future__ import annotations

from typing import TextIO

from planrun.core.status import REUSE_REASONS
from planrun.reuse import stood_in_detail
from planrun.store import StoreError, open_reader


class ExplainError(Exception):
    """One line for the CLI (exit 2)."""


def explain_step(state_dir: str, step_id: str, run_ref: str | None, out: TextIO) -> int:
    try:
        with open_reader(state_dir) as reader:
            run_id = run_ref or reader.latest_run_id()
            if run_id is None:
                raise ExplainError(f"no runs in {state_dir}")
            run_id = reader.resolve(run_id)
            steps = {s.step_id: s for s in reader.steps(run_id)}
            events = reader.events(run_id)
    except StoreError as exc:
        raise ExplainError(str(exc)) from None
    if step_id not in steps:
        raise ExplainError(f"run {run_id} has no step `{step_id}`")
    session = max((e.seq for e in events if e.type == "run_resumed"), default=0)
    mine = [e for e in events if e.step_id == step_id and e.seq > session]
    started = next((e for e in mine if e.type == "step_started"), None)
    skipped = next((e for e in mine if e.type == "step_skipped"), None)
    step = steps[step_id]
    if started is not None:
        why = started.payload.get("why")
        verdict = f"ran (why: {why})" if why else "ran (no recorded success could stand in)"
        fingerprint = started.payload.get("fingerprint")
    elif skipped is not None and skipped.payload.get("reason") in REUSE_REASONS:
        word = "up to date" if skipped.payload["reason"] == "up_to_date" else "reused"
        verdict = f"{word} ({stood_in_detail(skipped.payload.get('from_run'))})"
        fingerprint = skipped.payload.get("fingerprint")
    elif skipped is not None:
        verdict = f"skipped ({skipped.payload.get('reason')}: {skipped.payload.get('detail')})"
        fingerprint = None
    elif session and step.status == "success":
        verdict = "kept: its success in this run still had the same fingerprint"
        fingerprint = step.fingerprint
    else:
        verdict = step.status + (f" ({step.reason})" if step.reason else "")
        fingerprint = step.fingerprint
    out.write(f"{step_id} in run {run_id}: {verdict}\n")
    if fingerprint:
        out.write(f"  fingerprint {fingerprint}\n")
    return 0
