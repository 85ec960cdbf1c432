"""A watcher's live state, for the views: one small JSON file per watch session in
`STATE_DIR/watchers/`, rewritten whole on each change of state (docs/state.md).

The runs themselves are ordinary runs in state.db, each with its session in its `run_started`
event; this file only says what the watcher is doing between them (idle, running, backing off),
what last triggered it and when it will next run. It is kept out of state.db on purpose: it
changes when nothing is recorded, and a watcher killed with SIGKILL leaves a file whose pid is
dead, which readers show as `gone` instead of trusting it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from planrun.core.writes import replace_whole
from planrun.procinfo import create_time
from planrun.safefs import PRIVATE_DIR, PRIVATE_FILE, read_regular
from planrun.store import process_alive

WATCHERS_DIR = "watchers"
STATES = ("starting", "running", "idle", "backing_off", "stopped")
MAX_FILE_BYTES = 64 * 1024  # a state file is ~1 KB; anything larger is not ours
MAX_FILES = 200  # read at most this many (the newest): the state dir is untrusted
_FIELDS: dict[str, tuple[type, ...]] = {
    "session": (str,),
    "plan_id": (str,),
    "pid": (int,),
    "pid_start_time": (float, int, type(None)),
    "state": (str,),
    "started_at": (str,),
    "updated_at": (str,),
    "runs": (int,),
    "failures": (int,),
    "last_trigger": (dict, type(None)),
    "last_run": (dict, type(None)),
    "next_run_at": (str, type(None)),
    "next_run_reason": (str, type(None)),
    "paths": (list,),
    "interval_sec": (float, int, type(None)),
    "pending_changes": (int,),  # changed paths waiting for the next run
}


def state_path(state_dir: str | Path, session: str) -> Path:
    return Path(state_dir) / WATCHERS_DIR / f"{session}.json"


def this_process() -> dict[str, Any]:
    """The pid fields that tell a live watcher from a dead one whose pid was reused."""
    return {"pid": os.getpid(), "pid_start_time": create_time(os.getpid())}


def publish(state_dir: str | Path, state: dict[str, Any]) -> None:
    """Write the watcher's state whole (readers never see half a file)."""
    path = state_path(state_dir, str(state["session"]))
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    data = (json.dumps(state, sort_keys=True) + "\n").encode()
    replace_whole(path.name, data, PRIVATE_FILE, str(path.parent))


def prune(state_dir: str | Path) -> None:
    """Remove the files of watchers that are no longer running (stopped or killed)."""
    for state in read_watchers(state_dir, live_only=False):
        if state["state"] in ("stopped", "gone"):
            state_path(state_dir, state["session"]).unlink(missing_ok=True)


def read_watchers(state_dir: str | Path, live_only: bool = True) -> list[dict[str, Any]]:
    """The watchers of a state dir, newest first; a watcher whose process is gone without
    saying so has state `gone`. Files that are not well-formed watcher states are skipped."""
    folder = Path(state_dir) / WATCHERS_DIR
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".json") and e.is_file()]
    except OSError:
        return []
    entries.sort(key=lambda e: e.name, reverse=True)  # session ids start with a UTC time
    found = []
    for entry in entries[:MAX_FILES]:
        state = _load(Path(entry.path))
        if state is None:
            continue
        alive = process_alive(state["pid"], state["pid_start_time"])
        if state["state"] != "stopped" and not alive:
            state = {**state, "state": "gone", "next_run_at": None, "next_run_reason": None}
        if live_only and state["state"] in ("stopped", "gone"):
            continue
        found.append(state)
    return found


def _load(path: Path) -> dict[str, Any] | None:
    try:  # a link, FIFO or oversized file planted there is skipped unread (docs/state.md)
        value = json.loads(read_regular(path, MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    for key, types in _FIELDS.items():
        if type(value.get(key)) not in types:
            return None
    if value["state"] not in STATES or value["session"] != path.stem:
        return None
    return {key: value[key] for key in _FIELDS}
