"""The Python API of planrun (docs/api.md): run a plan or an IR, supervise one command, read
and follow recorded runs. Versioned by API_VERSION (semantic versioning, docs/api.md).

Everything here is a thin layer over what the `planrun` commands use (runner, supervise, the
store's read model), so a run started here is the same run the CLI would record: masked, durable,
cancelled cleanly on Ctrl-C, no orphans. Importing this module is cheap: the runtime is loaded
by the first call that needs it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from planrun.console import Observer
    from planrun.core.ir import IR
    from planrun.core.params import ParamValue
    from planrun.events import Event
    from planrun.store import Reader, RunInfo

API_VERSION = "1.0.0"

__all__ = [
    "API_VERSION",
    "Event",
    "Interrupted",
    "PlanrunError",
    "RunInfo",
    "RunResult",
    "StepResult",
    "events",
    "follow",
    "load_result",
    "new_run_id",
    "run_command",
    "run_plan",
    "runs",
]

Sync = Literal["normal", "full"]
EventCallback = Callable[["Event"], None]
FINISHED_STATUSES = frozenset({"success", "failed", "cancelled", "interrupted"})


class PlanrunError(Exception):
    """Bad input (plan, IR, params, options) or an unusable state dir; `str()` is one line.
    Nothing was run, or, for a store that failed mid-run, the run was stopped and kept."""


@dataclass(frozen=True)
class StepResult:
    step_id: str
    status: str  # success | failed | timed_out | skipped | cancelled (pending/running if live)
    attempts: int
    exit_code: int | None
    duration_sec: float | None
    reason: str | None
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # success | failed | cancelled; running or interrupted for a live or dead run
    exit_code: int  # 0/1/130 for a plan; the command's exit status for run_command
    steps: dict[str, StepResult]  # in plan order
    state_dir: str

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def outputs(self) -> dict[str, dict[str, str]]:
        """Each step's outputs (`$PLAN_OUTPUT`), for the steps that set any."""
        return {sid: dict(step.outputs) for sid, step in self.steps.items() if step.outputs}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM/SIGHUP) stopped the run: its process trees were killed and the run
    was recorded `cancelled`. Raised after that, with the result; a KeyboardInterrupt, so a
    program that does not catch it stops as on any Ctrl-C."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"run {result.run_id} was interrupted")
        self.result = result


def new_run_id() -> str:
    """A fresh run id, as planrun makes them: pass it as `run_id` to know it before the run."""
    from planrun.runner import new_run_id as fresh

    return fresh()


def run_plan(
    plan: str | os.PathLike[str] | bytes | Mapping[str, object],
    *,
    params: Mapping[str, ParamValue] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    max_concurrency: int | None = None,
    kill_grace: float | None = None,
    sync: Sync = "normal",
    on_event: EventCallback | None = None,
    executor: str | None = None,
) -> RunResult:
    """Run a plan as `planrun PLAN -p …` does and return its result.

    `plan` is a path (an IR file, or a plan file compiled in memory when planc is installed),
    the bytes of an IR, or an IR as a dict (its digest is checked like a file's). `on_event`
    sees each event once it is recorded. `executor` is where the steps run, as `--executor`
    (`dask://HOST:PORT`…; None or "local": here; `$PLANRUN_EXECUTOR` is not read). Call from
    the main thread (signals, child reaping)."""
    from planrun import runner
    from planrun.core.launcher import LauncherError
    from planrun.core.params import ParamError, bind
    from planrun.executor import RunOptions
    from planrun.launchers import open_launcher

    directory = _directory(state_dir)
    with _errors():
        ir = _load(plan)
        try:
            bound = dict(bind(ir.model.params, dict(params or {})))
        except ParamError as exc:
            raise runner.UsageError(str(exc)) from None
        options = RunOptions(max_concurrency=max_concurrency, kill_grace_sec=kill_grace)
        options.params = bound
        if workdir is not None:
            options.workdir = os.fspath(workdir)
        fresh = run_id or runner.new_run_id()
        _main_thread_only()
        try:
            options.launcher = open_launcher(executor, ir)
        except LauncherError as exc:
            raise runner.UsageError(str(exc)) from None
        output = runner.Output(observer=_observer(on_event) or _ignore)
        code = runner.run(ir, directory, options, sync, output, run_id=fresh)
    return _finished(load_result(fresh, directory, exit_code=code))


def run_command(
    command: Sequence[str],
    *,
    name: str | None = None,
    run_id: str | None = None,
    timeout: float | None = None,
    heartbeat: float | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    backoff: float = 1.0,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    kill_grace: float | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    sync: Sync = "normal",
    echo: bool = False,
    on_event: EventCallback | None = None,
    executor: str | None = None,
) -> RunResult:
    """Supervise one command as `planrun exec` does (the seed's `run_cli_tool`); the result's
    `exit_code` is the exec exit status (124 timeout or stall, 127 not found… docs/cli.md).
    With `echo`, its output is also copied (masked) to this process's stdout and stderr.
    `executor`: where it runs, as for run_plan."""
    from planrun.supervise import CommandSpec, supervise

    spec = CommandSpec(
        argv=list(command),
        name=name,
        timeout_sec=timeout,
        heartbeat_sec=heartbeat,
        retries=retries,
        retry_delay_sec=retry_delay,
        backoff=backoff,
        cwd=None if cwd is None else os.fspath(cwd),
        env=dict(env or {}),
        secrets=list(secrets),
        kill_grace_sec=kill_grace,
    )
    directory = _directory(state_dir)
    with _errors():
        _main_thread_only()
        done = supervise(
            spec, directory, run_id=run_id, sync=sync, echo=echo, observer=_observer(on_event),
            executor=executor,
        )  # fmt: skip
    return _finished(load_result(done.run_id, directory, exit_code=done.exit_status))


def runs(state_dir: str | os.PathLike[str] | None = None, limit: int = 20) -> list[RunInfo]:
    """The recorded runs, newest first (what `planrun runs` lists)."""
    with _reader(state_dir) as reader, _errors():
        return reader.runs(limit)


def load_result(
    run_id: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    exit_code: int | None = None,
) -> RunResult:
    """A recorded run (an id, a unique prefix, or the latest run) as a RunResult, also while it
    is going. `exit_code` defaults to the recorded one (0/1/130; -1 while it runs)."""
    with _reader(state_dir) as reader, _errors():
        full_id = _pick(reader, run_id)
        info = reader.run(full_id)
        steps = {
            s.step_id: StepResult(
                s.step_id, s.status, s.attempts, s.exit_code, s.duration_sec, s.reason, s.outputs
            )
            for s in reader.steps(full_id)
        }
    code = exit_code if exit_code is not None else info.exit_code
    code = -1 if code is None else code
    return RunResult(full_id, info.status, code, steps, str(reader.state_dir))


def events(
    run_id: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    after_seq: int = 0,
) -> list[Event]:
    """The recorded events of a run (the latest by default) after `after_seq`, in order."""
    with _reader(state_dir) as reader, _errors():
        return reader.events(_pick(reader, run_id), after_seq)


def follow(
    run_id: str,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    after_seq: int = 0,
    poll: float = 0.1,
    timeout: float | None = None,
) -> Iterator[Event]:
    """The run's events as they are recorded, until it ends: its `run_finished`, or its owner
    died (status `interrupted`). Waits for the state dir and the run to appear. Tails the store
    with one read-only query every `poll` seconds (at most 1 s); TimeoutError after `timeout`."""
    from planrun.store import (
        AmbiguousRunError,
        NoStateError,
        StoreError,
        UnknownRunError,
        open_reader,
    )

    interval = min(max(poll, 0.01), 1.0)
    deadline = None if timeout is None else time.monotonic() + timeout
    directory = _directory(state_dir)
    seq = after_seq
    while True:
        try:
            with open_reader(directory) as reader:
                new = reader.events(run_id, seq)
                status = reader.run(run_id).status if not new else "running"
        except AmbiguousRunError as exc:
            raise PlanrunError(str(exc)) from None
        except (NoStateError, UnknownRunError):  # not recorded yet
            new, status = [], "not yet"
        except StoreError as exc:
            raise PlanrunError(str(exc)) from None
        for event in new:
            seq = event.seq
            yield event
            if event.type == "run_finished":
                return
        if not new and status == "interrupted":
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"run {run_id} did not finish within {timeout:g}s")
        if not new:
            time.sleep(interval)


# --- helpers --------------------------------------------------------------------------------


def __getattr__(name: str) -> object:
    """Event and RunInfo are the store's own types, imported on first use."""
    if name == "Event":
        from planrun.events import Event

        return Event
    if name == "RunInfo":
        from planrun.store import RunInfo

        return RunInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _observer(callback: EventCallback | None) -> Observer | None:
    if callback is None:
        return None

    def observe(event: Event) -> None:
        callback(event)

    return observe


def _ignore(event: Event) -> None:
    """The API prints nothing of a run; its events are for `on_event`."""


def _directory(state_dir: str | os.PathLike[str] | None) -> str:
    if state_dir is not None:
        return os.fspath(state_dir)
    from planrun.runner import state_dir_default

    return state_dir_default()


def _load(plan: str | os.PathLike[str] | bytes | Mapping[str, object]) -> IR:
    from planrun.core import ir as ir_module

    if isinstance(plan, bytes):
        return ir_module.parse_ir(plan)
    if isinstance(plan, Mapping):
        return ir_module.parse_ir(ir_module.canonical_json(dict(plan)) + b"\n")
    import io

    from planrun.plan_loader import load_runnable
    from planrun.runner import UsageError

    diagnostics = io.StringIO()
    try:
        return load_runnable(os.fspath(plan), diagnostics)
    except (UsageError, ir_module.IRError) as exc:
        text = diagnostics.getvalue().strip()
        raise PlanrunError(f"{exc}\n{text}" if text else str(exc)) from None


class _errors:
    """planrun's one-line errors as PlanrunError (a store that failed mid-run included)."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        from planrun.core.ir import IRError
        from planrun.runner import UsageError
        from planrun.store import StoreError

        if exc is not None and isinstance(exc, UsageError | IRError | StoreError):
            raise PlanrunError(str(exc)) from None
        return False


def _main_thread_only() -> None:
    import threading

    if threading.current_thread() is not threading.main_thread():
        from planrun.runner import UsageError

        raise UsageError("planrun runs must be started from the main thread (signals, reaping)")


def _reader(state_dir: str | os.PathLike[str] | None) -> Reader:
    from planrun.store import StoreError, open_reader

    try:
        return open_reader(_directory(state_dir))
    except StoreError as exc:
        raise PlanrunError(str(exc)) from None


def _pick(reader: Reader, run_id: str | None) -> str:
    from planrun.store import StoreError

    try:
        if run_id is not None:
            return reader.resolve(run_id)
        latest = reader.latest_run_id()
    except StoreError as exc:
        raise PlanrunError(str(exc)) from None
    if latest is None:
        raise PlanrunError(f"no runs in {reader.state_dir}")
    return latest


def _finished(result: RunResult) -> RunResult:
    if result.status == "cancelled":
        raise Interrupted(result)
    return result
