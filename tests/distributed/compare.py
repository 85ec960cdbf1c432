"""What must be the same when a plan runs locally and on Dask: its events without what differs
between machines and runs (pids, host, timings, paths, the run id), and its logs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from support import RunResult

# Where an attempt ran and how long it took differ between runs; the rest must not.
VOLATILE = {"pid", "pgid", "proc_start_time", "tag", "duration_sec", "host"}
# Events that only say where or how planrun ran: they are not in both.
_PLACES = {"run_started", "run_resumed", "step_placed"}
_KEYED = re.compile(r'"k:[0-9a-f]+"')


def normalized_event(result: RunResult, event: Any, work: Path) -> tuple[Any, ...]:
    payload = {k: v for k, v in event.payload.items() if k not in VOLATILE}
    parts = payload.get("fingerprint_parts") or {}
    if parts.get("secrets"):
        # Secrets are fingerprinted with a key of each state dir (docs/fingerprints.md), and so
        # are the fingerprints made of theirs.
        del payload["fingerprint"]
        payload["fingerprint_parts"] = {k: v for k, v in parts.items() if k != "upstream"}
    rendered = _KEYED.sub('"k:KEYED"', json.dumps(payload, sort_keys=True))
    rendered = rendered.replace(str(result.state_dir), "STATE").replace(str(work), "WORK")
    rendered = rendered.replace(result.run_id, "RUN")
    return (event.type, event.step_id, event.attempt, rendered)


def normalized(result: RunResult, work: Path) -> dict[str | None, list[tuple[Any, ...]]]:
    """Each step's events in order (steps that run at once interleave differently)."""
    per_step: dict[str | None, list[tuple[Any, ...]]] = {}
    for event in result.events:
        if event.type not in _PLACES:
            per_step.setdefault(event.step_id, []).append(normalized_event(result, event, work))
    return per_step


def sequence(result: RunResult, work: Path) -> list[tuple[Any, ...]]:
    """All the run's events in order (for runs of one step at a time)."""
    return [normalized_event(result, e, work) for e in result.events if e.type not in _PLACES]


def logs(result: RunResult, work: Path | None = None) -> dict[str, bytes]:
    """The run's log files (the work directory in them as WORK)."""
    directory = result.state_dir / "runs" / result.run_id / "logs"
    found = {p.name: p.read_bytes() for p in sorted(directory.iterdir())}
    if work is None:
        return found
    return {name: data.replace(bytes(work), b"WORK") for name, data in found.items()}
