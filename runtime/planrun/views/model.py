"""What the views need from a run, composed from `planrun.store.Reader` (and nothing else).

The store's read model answers runs, steps, attempts, events and the IR; this module adds the
view-level questions on top of those answers: which step or attempt a user meant (with a clear
error), where an attempt's log files are, and one JSON-ready snapshot of a run that the HTML
report and the web UI both render. No SQL, no JSONL parsing here.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from planrun.ci import tolerated
from planrun.core.bound import bound_for_ir
from planrun.core.status import FAILURES
from planrun.events import utc_now
from planrun.groups import instance_of, view_groups
from planrun.store import AttemptInfo, Reader, RunInfo, StepInfo, StoreError, run_dir
from planrun.views.dag import layered_layout
from planrun.views.style import parse_ts
from planrun.views.tail import read_tail

Stream = Literal["stdout", "stderr"]
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 8192
LOG_BUDGET_BYTES = 2_000_000  # all failed steps' log tails together, so a report stays loadable


class ViewError(StoreError):
    """A view cannot do what was asked (write its file, listen on its port): one line, exit 2."""


class UnknownStepError(StoreError):
    """The run has no such step (the CLI prints it in one line, exit 2)."""


class NoAttemptError(StoreError):
    """The step exists but has no such attempt (or never started)."""


class NoRunsError(StoreError):
    """No run is recorded in the state dir yet."""


def pick_run(reader: Reader, run_ref: str | None) -> str:
    """The full id of `run_ref` (an id or unique prefix), or of the latest run when None."""
    if run_ref is not None:
        return reader.resolve(run_ref)
    latest = reader.latest_run_id()
    if latest is None:
        raise NoRunsError(f"no runs in {reader.state_dir}")
    return latest


def find_step(reader: Reader, run_ref: str, step_id: str) -> StepInfo:
    steps = reader.steps(run_ref)
    for step in steps:
        if step.step_id == step_id:
            return step
    names = [s.step_id for s in steps]
    close = difflib.get_close_matches(step_id, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    run_id = reader.resolve(run_ref)
    raise UnknownStepError(f"run {run_id} has no step {step_id!r}{hint}")


def find_attempt(
    reader: Reader, run_ref: str, step_id: str, attempt: int | None = None
) -> AttemptInfo:
    """The step's attempt `attempt`, or its latest one."""
    step = find_step(reader, run_ref, step_id)
    attempts = reader.attempts(run_ref, step_id)
    if not attempts:
        why = f"{step.status}" + (f": {step.reason}" if step.reason else "")
        raise NoAttemptError(f"step {step_id!r} never started ({why}), so it has no log")
    if attempt is None:
        return attempts[-1]
    for info in attempts:
        if info.attempt == attempt:
            return info
    raise NoAttemptError(
        f"step {step_id!r} has no attempt {attempt} (it has 1..{attempts[-1].attempt})"
    )


def log_path(state_dir: Path, run_id: str, attempt: AttemptInfo, stream: Stream) -> Path:
    """An attempt's log file, found from the reader's state dir (docs/state.md layout).

    The recorded path is relative to the cwd of the planrun that wrote it, so it is only the
    fallback (for a state dir that was moved after the run).
    """
    path = run_dir(state_dir, run_id) / "logs" / f"{attempt.step_id}.{attempt.attempt}.{stream}"
    recorded = attempt.stdout_log if stream == "stdout" else attempt.stderr_log
    if not path.exists() and recorded and Path(recorded).is_absolute():
        return Path(recorded)
    return path


def elapsed(started_at: str, finished_at: str | None, now: datetime | None = None) -> float:
    end = parse_ts(finished_at) if finished_at else now or datetime.now(UTC)
    return max(0.0, (end - parse_ts(started_at)).total_seconds())


def run_duration(run: RunInfo, now: datetime | None = None) -> float:
    """The recorded duration of a finished run, or how long a running one has been going."""
    if run.duration_sec is not None:
        return run.duration_sec
    return elapsed(run.started_at, run.finished_at, now)


def record_dict(record: RunInfo | StepInfo | AttemptInfo) -> dict[str, Any]:
    """A store record as JSON-ready data: what dataclasses.asdict gives for these flat records
    (their one nested value is a dict of strings), without its deep copy of every field, which
    was a third of a 10,000-step snapshot."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in vars(record).items()}


def run_dict(run: RunInfo) -> dict[str, Any]:
    data = record_dict(run)
    data["done"] = sum(n for status, n in run.step_counts.items() if status not in _OPEN)
    data["total"] = sum(run.step_counts.values())
    # From the start to the end of the run: after a resume, `duration_sec` is the last session's.
    data["span_sec"] = elapsed(run.started_at, run.finished_at) if run.finished_at else None
    return data


_OPEN = frozenset({"pending", "running"})


def snapshot(reader: Reader, run_ref: str, *, with_logs: bool = True) -> dict[str, Any]:
    """Everything the report and the web UI draw for one run, as JSON-ready data.

    `steps` carry their IR fields (name, command, depends_on) next to their state, `groups` the
    matrices' and fan-outs' instances (folded into one row), `attempts` are every attempt (the
    Gantt bars), `dag` is the layered layout, `logs` the tails of each failed step's latest
    attempt.
    """
    run = reader.run(run_ref)
    run_id = run.run_id
    ir = reader.ir_document(run_id)
    ir_steps = {s["id"]: s for s in ir["steps"]}
    steps = reader.steps(run_id)
    attempts = reader.attempts(run_id)
    why = tolerated(ir["steps"], steps)
    data: dict[str, Any] = {
        "generated_at": utc_now(),
        "run": run_dict(run),
        "plan": {k: ir["plan"].get(k) or "" for k in ("id", "version", "description")},
        "steps": [_step_dict(step, _ir_step(ir_steps, step.step_id), why) for step in steps],
        "groups": view_groups(ir.get("groups", {}), [step.step_id for step in steps]),
        "attempts": [_attempt_dict(a) for a in attempts],
        "dag": _dag(ir["steps"]),
        "bound": bound_for_ir(ir).to_json(),
    }
    if with_logs:
        data["logs"] = failed_logs(reader.state_dir, run_id, steps, attempts)
    return data


def _ir_step(ir_steps: dict[str, dict[str, Any]], step_id: str) -> dict[str, Any]:
    """A step's IR fields; a fan-out's instance (`build[2]`) shows its template's, named
    `NAME [2]` as planrun names it (docs/composition.md)."""
    found = ir_steps.get(step_id)
    if found is not None:
        return found
    instance = instance_of(step_id)
    template = None if instance is None else ir_steps.get(instance[0])
    if instance is None or template is None:
        return {}
    return {**template, "name": f"{template['name']} [{instance[1]}]", "depends_on": []}


def _step_dict(step: StepInfo, ir_step: dict[str, Any], why: dict[str, str]) -> dict[str, Any]:
    data = record_dict(step)
    data["tolerated"] = why.get(step.step_id)  # a failure that did not fail the run: why
    data["name"] = ir_step.get("name", step.step_id)
    data["depends_on"] = list(ir_step.get("depends_on", []))
    data["command"] = _command(ir_step)
    return data


def _attempt_dict(attempt: AttemptInfo) -> dict[str, Any]:
    keep = ("step_id", "attempt", "status", "started_at", "finished_at", "duration_sec")
    data = {k: getattr(attempt, k) for k in keep}
    data.update(exit_code=attempt.exit_code, signal=attempt.signal, reason=attempt.reason)
    return data


def _command(ir_step: dict[str, Any]) -> str:
    words = [str(ir_step.get("command", "")), *(str(a) for a in ir_step.get("args", []))]
    return " ".join(words).strip()


def _dag(ir_steps: list[dict[str, Any]]) -> dict[str, Any]:
    layout = layered_layout([(s["id"], s.get("depends_on", [])) for s in ir_steps])
    return {
        "layers": layout.layers,
        "rows": layout.rows,
        "nodes": {step_id: list(pos) for step_id, pos in layout.positions.items()},
        "sizes": layout.layer_sizes,
    }


def failed_logs(
    state_dir: Path, run_id: str, steps: list[StepInfo], attempts: list[AttemptInfo]
) -> dict[str, dict[str, Any]]:
    """Tails of stderr and stdout of each failed step's latest attempt, within a total budget."""
    latest = {a.step_id: a for a in attempts}  # attempts come in attempt order per step
    logs: dict[str, dict[str, Any]] = {}
    budget = LOG_BUDGET_BYTES
    for step in steps:
        attempt = latest.get(step.step_id)
        if step.status not in FAILURES or attempt is None:
            continue
        entry: dict[str, Any] = {"attempt": attempt.attempt, "omitted": budget <= 0}
        for stream in ("stderr", "stdout"):
            if budget <= 0:
                break
            text, cut = read_tail(
                log_path(state_dir, run_id, attempt, stream), LOG_TAIL_LINES, LOG_TAIL_BYTES
            )
            entry[stream] = text
            entry[f"{stream}_cut"] = cut
            budget -= len(text)
        logs[step.step_id] = entry
    return logs
