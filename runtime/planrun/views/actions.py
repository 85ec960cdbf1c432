"""What `planrun ui` can do to runs: start a plan, cancel, resume, re-run a step (docs/views.md).

The UI never runs a plan itself: each action starts (or signals) a separate `planrun` process,
exactly what the user would type, so a run behaves the same whoever started it.

- **Which plans can be started**: the plan files given on `planrun ui`'s command line
  (compiled again at each start, so an edit is picked up) and, for every other plan run from
  this state dir, the IR its latest run recorded. A request names one of these by its key;
  it never carries a path.
- **Started runs** are `planrun` processes in their own session (Ctrl-C on the UI's terminal
  does not reach them) whose output goes to `STATE/ui/launches/*.log`. They outlive the UI on
  purpose: stopping the UI must not cancel a run or lose what it would record.
- **Cancel** sends SIGTERM to the run's planrun process, as Ctrl-C does (the first stops the
  run cleanly, a second kills what is left). The process is the run's recorded owner, checked
  by pid *and* start time (the Reader says `running` only then) after a pidfd is opened on it,
  so a reused pid can never be signalled.
- **Who did it**: every action is recorded in the run's events as `ui_action` by the run's
  own planrun process (planrun.uiactions).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from planrun.core.byvalue import ByValue
from planrun.core.ir import IR, IRError, parse_ir
from planrun.core.params import ParamError, bind
from planrun.core.writes import replace_whole
from planrun.events import utc_now
from planrun.safefs import PRIVATE_DIR, PRIVATE_FILE, create_private, read_slice
from planrun.store import NoStateError, Reader, open_reader, run_dir
from planrun.uiactions import ACTION_ENV, encode, write_request
from planrun.views.model import ViewError, find_step

MAX_BODY = 64 * 1024
LAUNCH_WAIT_SEC = 20.0  # how long a POST waits for its planrun to record the run
RESUMABLE = ("failed", "cancelled", "interrupted")
UI_DIR = "ui"
_HIDDEN_ENV = ("PLANRUN_UI_TOKEN",)  # the UI's secret is not the runs' business


class ActionError(Exception):
    """An action refused: the route answers `status` with `{"error": message}`."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def bad_request(message: str) -> ActionError:
    return ActionError(HTTPStatus.BAD_REQUEST, message)


def conflict(message: str) -> ActionError:
    return ActionError(HTTPStatus.CONFLICT, message)


def read_body(headers: Any, rfile: io.BufferedIOBase) -> dict[str, Any]:
    """The request's JSON object (an empty body is `{}`), at most MAX_BODY bytes."""
    length_text = headers.get("Content-Length") or "0"
    if not length_text.isascii() or not length_text.isdigit():
        raise bad_request(f"Content-Length must be a number of bytes, not {length_text[:40]!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise ActionError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    data = rfile.read(length) if length else b""
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise bad_request("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


@dataclass(frozen=True, eq=False, repr=False)
class Startable(ByValue):
    key: str
    ir: IR | None
    source: str  # "file" or "recorded"
    origin: str  # the file, or the run whose IR it is
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "source": self.source, "origin": self.origin}
        if self.ir is None:
            return {**data, "plan_id": None, "error": self.error}
        plan = self.ir.raw["plan"]
        return {
            **data,
            "plan_id": self.ir.plan_id,
            "description": plan.get("description") or "",
            "params": self.ir.raw["params"],
            "steps": [step.id for step in self.ir.steps],
        }


class Actions:
    def __init__(self, state_dir: str, plan_files: tuple[str, ...] = ()) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.cwd = os.getcwd()  # runs start where `planrun ui` was started, as typed there
        self.plan_files = tuple(os.path.abspath(path) for path in plan_files)
        self.by = f"planrun ui (pid {os.getpid()})"
        self.children: list[tuple[subprocess.Popen[bytes], str]] = []
        self._lock = threading.Lock()
        for path in self.plan_files:  # a plan that does not compile is an error at start
            try:
                _compile(path)
            except ActionError as exc:
                raise ViewError(f"cannot start {path} from the UI: {exc}") from None

    # --- what can be started ---------------------------------------------------------------

    def plans(self) -> list[Startable]:
        found: list[Startable] = []
        for index, path in enumerate(self.plan_files):
            try:
                found.append(Startable(f"file-{index}", _compile(path), "file", path))
            except ActionError as exc:
                found.append(Startable(f"file-{index}", None, "file", path, str(exc)))
        seen = {p.ir.plan_id for p in found if p.ir is not None}
        try:
            with open_reader(self.state_dir) as reader:
                for run in reader.runs(2000):  # newest first: each plan's latest IR
                    if run.plan_id in seen:
                        continue
                    seen.add(run.plan_id)
                    key = f"run-{run.run_id}"
                    try:  # the state dir is not trusted: a damaged IR is listed, not run
                        ir = parse_ir(reader.ir(run.run_id), f"the IR of run {run.run_id}")
                    except IRError as exc:
                        found.append(Startable(key, None, "recorded", run.run_id, str(exc)))
                        continue
                    found.append(Startable(key, ir, "recorded", run.run_id))
        except NoStateError:
            pass
        return found

    def _startable(self, key: Any) -> tuple[IR, str]:
        """The IR to run for `key` and the file to give planrun (never a path from a request)."""
        if not isinstance(key, str):
            raise bad_request("plan must be the key of a startable plan (GET /api/plans)")
        index = key.removeprefix("file-")
        numbered = key.startswith("file-") and index.isascii() and index.isdigit()
        if numbered and len(index) < 7 and int(index) < len(self.plan_files):
            path = self.plan_files[int(index)]
            return _compile(path), path
        for plan in self.plans() if key.startswith("run-") else ():
            if plan.key == key and plan.source == "recorded" and plan.ir is not None:
                with self._reader() as reader:
                    return plan.ir, self._ir_file(reader, plan.origin)
        raise ActionError(
            HTTPStatus.NOT_FOUND, f"no startable plan {key[:80]!r} (see GET /api/plans)"
        )

    def _ir_file(self, reader: Reader, run_id: str) -> str:
        """The recorded IR of `run_id` as a file planrun can run, named by its content."""
        data = reader.ir(run_id)
        directory = Path(self.state_dir, UI_DIR, "ir")
        directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        path = directory / f"{hashlib.sha256(data).hexdigest()[:24]}.json"
        # Written anew each time: a file planted at that name is replaced, never trusted.
        replace_whole(path.name, data, PRIVATE_FILE, str(directory))
        return str(path)

    # --- the actions -----------------------------------------------------------------------

    def start(self, body: dict[str, Any], remote: str) -> dict[str, Any]:
        ir, plan_file = self._startable(body.get("plan"))
        given = body.get("params", {})
        if not isinstance(given, dict):
            raise bad_request("params must be a JSON object of name: value")
        try:
            bind(ir.model.params, given)
        except ParamError as exc:
            raise bad_request(str(exc)) from None
        _no_secret_params(ir.raw)
        args = [plan_file, *_param_args(given)]
        child, log = self._spawn(args, self._action("start", remote))
        run_id = self._wait(child, log, lambda reader, since: _new_run(reader, child.pid, since))
        return {"action": "start", "run_id": run_id, "pid": child.pid, "log": log}

    def cancel(self, run_ref: str, remote: str) -> dict[str, Any]:
        with self._reader() as reader:
            run = reader.run(run_ref)
            _must_be_running(run.run_id, run.status, run.host)
            pid = run.owner_pid
            assert pid is not None
            try:
                handle = os.pidfd_open(pid)
            except ProcessLookupError:
                raise conflict(f"run {run.run_id} is not running (its planrun has ended)") from None
            except OSError as exc:
                raise conflict(
                    f"cannot reach planrun process {pid}: {exc.strerror or exc}"
                ) from None
            try:
                # With the pidfd open, the pid cannot be reused: check it is still the owner
                # (pid and start time, read again) and only then signal through the pidfd.
                again = reader.run(run.run_id)
                _must_be_running(again.run_id, again.status, again.host)
                if again.owner_pid != pid:
                    raise conflict(f"run {run.run_id} changed owner; try again")
                request = write_request(
                    run_dir(self.state_dir, run.run_id), self._action("cancel", remote)
                )
                try:
                    signal.pidfd_send_signal(handle, signal.SIGTERM)
                except OSError as exc:
                    request.unlink(missing_ok=True)
                    raise conflict(
                        f"cannot signal planrun process {pid}: {exc.strerror or exc}"
                    ) from None
            finally:
                os.close(handle)
        return {
            "action": "cancel",
            "run_id": run.run_id,
            "pid": pid,
            "signal": "SIGTERM",
            "message": f"asked planrun (pid {pid}) to cancel run {run.run_id}; cancel again to"
            " kill its steps at once",
        }

    def resume(self, run_ref: str, remote: str) -> dict[str, Any]:
        with self._reader() as reader:
            run = reader.run(run_ref)
            if run.status not in RESUMABLE:
                why = "nothing to resume" if run.status == "success" else "it is still running"
                raise conflict(f"run {run.run_id} is {run.status}: {why}")
            after = len(reader.events(run.run_id))
        args = ["--resume", run.run_id]
        child, log = self._spawn(args, self._action("resume", remote))
        self._wait(child, log, lambda reader, since: _resumed(reader, run.run_id, after, child.pid))
        return {"action": "resume", "run_id": run.run_id, "pid": child.pid, "log": log}

    def rerun(self, run_ref: str, step_id: str, remote: str) -> dict[str, Any]:
        with self._reader() as reader:
            run = reader.run(run_ref)
            find_step(reader, run.run_id, step_id)  # a 404 naming the steps it has
            plan_file = self._ir_file(reader, run.run_id)
            recorded = reader.ir_document(run.run_id)
            first = reader.events(run.run_id)[:1]
        params = first[0].payload.get("params") if first else None
        given = {k: v for k, v in (params or {}).items() if v is not None}
        _no_secret_params(recorded)
        args = [plan_file, "--only", step_id, *_param_args(given)]
        action = {**self._action("rerun", remote), "step": step_id}
        child, log = self._spawn(args, action)
        run_id = self._wait(child, log, lambda reader, since: _new_run(reader, child.pid, since))
        return {"action": "rerun", "run_id": run_id, "pid": child.pid, "log": log, "of": run.run_id}

    def still_running(self) -> list[int]:
        with self._lock:
            return [child.pid for child, _ in self.children if child.poll() is None]

    # --- starting planrun ------------------------------------------------------------------

    def _action(self, action: str, remote: str) -> dict[str, str]:
        return {"action": action, "by": self.by, "remote": remote, "requested_at": utc_now()}

    def _reader(self) -> Reader:
        return open_reader(self.state_dir)

    def _spawn(
        self, args: list[str], action: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], str]:
        launches = Path(self.state_dir, UI_DIR, "launches")
        launches.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        log = launches / f"{stamp}-{action['action']}-{os.urandom(3).hex()}.log"
        env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_ENV}
        env[ACTION_ENV] = encode(action)
        argv = [sys.executable, "-m", "planrun", "run", *args]
        argv += ["--state-dir", self.state_dir, "--color", "never"]
        with os.fdopen(create_private(log), "wb") as out:
            child = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # not stopped by Ctrl-C on the UI, nor by its end
            )
        # Reaped by a thread of its own, so no zombie is left while the UI runs.
        threading.Thread(target=child.wait, daemon=True).start()
        with self._lock:
            self.children = [c for c in self.children if c[0].poll() is None]
            self.children.append((child, str(log)))
        return child, str(log)

    def _wait(
        self,
        child: subprocess.Popen[bytes],
        log: str,
        probe: Callable[[Reader, str], str | None],
    ) -> str | None:
        """The run planrun recorded, once it is; its own error if it ended without one."""
        since = _seconds_ago(2.0)
        deadline = time.monotonic() + LAUNCH_WAIT_SEC
        while time.monotonic() < deadline:
            ended = child.poll() is not None
            try:
                with self._reader() as reader:
                    found = probe(reader, since)
            except NoStateError:
                found = None
            if found is not None:
                return found
            if ended:
                raise conflict(f"planrun exited with {child.returncode}: {_last_line(log)}")
            time.sleep(0.05)
        return None  # still starting: the page finds the run in the list


def _compile(path: str) -> IR:
    from planrun.plan_loader import load_runnable
    from planrun.runner import UsageError

    err = io.StringIO()
    try:
        return load_runnable(path, err)
    except (UsageError, IRError) as exc:
        detail = err.getvalue().strip().splitlines()
        raise conflict(f"{exc}" + (f": {detail[0]}" if detail else "")) from None


def _no_secret_params(ir: dict[str, Any]) -> None:
    """A secret param's value would travel in the new planrun's argv (readable by every local
    user) and a recorded one is only `***`: such plans are started from a terminal."""
    secret = sorted(name for name, spec in ir["params"].items() if spec.get("secret"))
    if secret:
        raise bad_request(
            f"plan {ir['plan']['id']} has secret params ({', '.join(secret)}): start it from a"
            " terminal with -p, the UI does not pass secrets"
        )


def _param_args(given: dict[str, Any]) -> list[str]:
    """`--param=NAME=VALUE` in one word each: a value can never be taken for an option."""
    words = []
    for name, value in sorted(given.items()):
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        words.append(f"--param={name}={text}")
    return words


def _must_be_running(run_id: str, status: str, host: str) -> None:
    if status != "running":
        raise conflict(f"run {run_id} is not running (it is {status})")
    if host != os.uname().nodename:
        raise conflict(f"run {run_id} runs on {host}, not on this machine")


def _new_run(reader: Reader, pid: int, since: str) -> str | None:
    for run in reader.runs(20):
        if run.started_at < since:
            break
        first = reader.events(run.run_id)[:1]
        if first and first[0].payload.get("pid") == pid:
            return run.run_id
    return None


def _resumed(reader: Reader, run_id: str, after: int, pid: int) -> str | None:
    for event in reader.events(run_id, after):
        if event.type == "run_resumed" and event.payload.get("pid") == pid:
            return run_id
    return None


def _seconds_ago(seconds: float) -> str:
    stamp = time.time() - seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + ".000000Z"


def _last_line(log: str) -> str:
    try:
        data, _ = read_slice(log, -4096, 4096)
        lines = data.decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return lines[-1][:400] if lines else "(no output)"


def recorded_actions(reader: Reader, run_ref: str) -> dict[str, Any]:
    """The run's `ui_action` events: who did what to it from `planrun ui`, and when."""
    events = reader.events(run_ref)
    found = [{"seq": e.seq, "ts": e.ts, **e.payload} for e in events if e.type == "ui_action"]
    return {"run_id": reader.resolve(run_ref), "actions": found}


def dispatch(
    actions: Actions, parts: list[str], body: dict[str, Any], remote: str
) -> dict[str, Any] | None:
    """The POST routes; None for a path that is not one (the server answers 405)."""
    if parts == ["api", "start"]:
        return actions.start(body, remote)
    if len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "cancel":
        return actions.cancel(parts[2], remote)
    if len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "resume":
        return actions.resume(parts[2], remote)
    if len(parts) == 6 and parts[:2] == ["api", "runs"] and parts[3::2] == ["steps", "rerun"]:
        return actions.rerun(parts[2], parts[4], remote)
    return None
