"""Who acted on a run from `planrun ui`: the `ui_action` events (docs/views.md, "Actions").

A run's events have one writer, the planrun process that owns the run, so `planrun ui` never
writes them itself. It hands the owner what to record instead:

- a run it starts (start, resume, re-run of a step) gets the action in the environment variable
  PLANRUN_UI_ACTION, which the runner takes out of its environment (steps never see it) and
  records right after run_started / run_resumed;
- a run it cancels gets a request file in `runs/RUN/ui-actions/`, written before the signal;
  the executor records and removes it when it reacts to the interrupt.

Both carry only a few short text fields: the state dir and the environment are not trusted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from planrun.core.writes import replace_whole
from planrun.safefs import PRIVATE_DIR, PRIVATE_FILE, read_regular

ACTION_ENV = "PLANRUN_UI_ACTION"
REQUESTS_DIR = "ui-actions"
ACTIONS = ("start", "resume", "rerun", "cancel")
_FIELDS = ("action", "by", "remote", "requested_at", "step")
_MAX_TEXT = 200
_MAX_REQUEST_BYTES = 4096
_MAX_REQUESTS = 64


def clean(data: Any) -> dict[str, str] | None:
    """The known short text fields of an action, or None when it is not one."""
    if not isinstance(data, dict) or data.get("action") not in ACTIONS:
        return None
    return {
        key: data[key][:_MAX_TEXT]
        for key in _FIELDS
        if isinstance(data.get(key), str) and data[key]
    }


def encode(action: dict[str, str]) -> str:
    return json.dumps(action, sort_keys=True)


def take_from_environment() -> dict[str, str] | None:
    """The action that started this process (PLANRUN_UI_ACTION), removed from the environment
    so the steps do not inherit it."""
    text = os.environ.pop(ACTION_ENV, None)
    if not text:
        return None
    try:
        return clean(json.loads(text))
    except ValueError:
        return None


def requests_dir(run_path: Path) -> Path:
    return run_path / REQUESTS_DIR


def write_request(run_path: Path, action: dict[str, str]) -> Path:
    """Leave `action` for the run's owner to record (before signalling it)."""
    directory = requests_dir(run_path)
    directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    # Names sort in the order written: nanoseconds, then a random tail against collisions.
    path = directory / f"{time.time_ns():020d}-{os.urandom(3).hex()}.json"
    replace_whole(path.name, encode(action).encode(), PRIVATE_FILE, str(directory))
    return path


def take_requests(run_path: Path) -> list[dict[str, str]]:
    """The pending requests, oldest first, each removed once read; unreadable ones are dropped."""
    directory = requests_dir(run_path)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except OSError:
        return []
    taken: list[dict[str, str]] = []
    for name in names[:_MAX_REQUESTS]:
        path = directory / name
        try:  # a link, FIFO or oversized file planted here is dropped unread (docs/state.md)
            data: bytes | None = read_regular(path, _MAX_REQUEST_BYTES)
        except OSError:
            data = None
        try:
            os.unlink(path)
        except OSError:
            continue
        try:
            action = clean(json.loads(data)) if data is not None else None
        except ValueError:
            action = None
        if action is not None:
            taken.append(action)
    return taken
