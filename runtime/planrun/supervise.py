"""One command supervised as a one-step run: `planrun exec` and `planrun.api.run_command`.

The seed's `run_cli_tool(tool_name, args, execution_id, timeout, heartbeat_timeout)`. The IR is
built here, by the runtime alone (no planc), and then goes through `ir.parse_ir` like any IR
file: the same schema, digest and graph checks. The run itself is an ordinary run (runner.run):
recorded in the same store, shown by every view, resumable with `planrun --resume RUN`.
The exit status follows coreutils' `timeout` and the shells (docs/cli.md, *planrun exec*).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TextIO

from planrun import __version__
from planrun.console import LineReporter, Observer
from planrun.core.byvalue import ByValue
from planrun.core.interpolate import Malformed, find
from planrun.core.ir import IR, IR_VERSION, canonical_json, compute_digest, parse_ir
from planrun.core.ir_types import STEP_ID
from planrun.core.launcher import LauncherError
from planrun.events import Event
from planrun.executor import EXIT_INTERRUPTED, RunOptions
from planrun.launchers import open_launcher
from planrun.runner import Output, UsageError, new_run_id, run
from planrun.store import AttemptInfo, StepInfo, open_reader
from planrun.streams import surviving

EXIT_TIMEOUT = 124  # timed out or stalled (coreutils timeout says 124 for a timeout)
EXIT_CANNOT_RUN = 126  # found but not runnable, or the cwd is unusable (as the shells)
EXIT_NOT_FOUND = 127  # command not found (as the shells)
EXIT_SIGNAL_BASE = 128  # killed by signal N: 128 + N (as the shells)

SOURCE = "<planrun exec>"
DEFAULT_KILL_GRACE_SEC = 5.0  # the IR's default (docs/ir.md, globals)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_FOUND = "command not found"  # process.SpawnError's wording for a missing program


@dataclass(frozen=True, eq=False, repr=False)
class CommandSpec(ByValue):
    """What `planrun exec` supervises: one command and the limits of a step (docs/ir.md)."""

    argv: Sequence[str]
    name: str | None = None  # the step id; by default the command's base name
    timeout_sec: float | None = None
    heartbeat_sec: float | None = None  # a stall: no output on stdout or stderr for this long
    retries: int = 0
    retry_delay_sec: float = 0.0
    backoff: float = 1.0
    cwd: str | None = None  # default: the current directory (made absolute)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()  # names of environment variables holding secrets
    kill_grace_sec: float | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Supervised(ByValue):
    run_id: str
    step_id: str
    exit_status: int  # the mapping above
    step: StepInfo


def build_ir(spec: CommandSpec) -> IR:
    """The one-step IR of `spec`, checked like an IR file (UsageError for bad input)."""
    argv = list(spec.argv)
    if not argv or not argv[0]:
        raise UsageError("missing the COMMAND to run (planrun exec [OPTIONS] -- COMMAND [ARGS...])")
    _check_numbers(spec)
    step_id = _step_id(argv[0], spec.name)
    env = dict(spec.env)
    for name in [*env, *spec.secrets]:
        if not _ENV_NAME.fullmatch(name):
            raise UsageError(f"{name!r} is not an environment variable name")
    cwd = os.path.abspath(spec.cwd or ".")
    secrets = sorted(set(spec.secrets))
    for text in [*argv, cwd]:
        _check_placeholders(text, secrets)
    for text in env.values():
        _check_placeholders(text, ())
    grace = DEFAULT_KILL_GRACE_SEC if spec.kill_grace_sec is None else spec.kill_grace_sec
    step = {
        "id": step_id,
        "index": 0,
        "name": step_id,
        "description": shlex.join(argv),
        "command": argv[0],
        "args": argv[1:],
        "cwd": cwd,
        "shell": False,
        "env": env,
        "secrets": secrets,
        "depends_on": [],
        "dependents": [],
        "timeout_sec": spec.timeout_sec,
        "heartbeat_timeout_sec": spec.heartbeat_sec,
        "retries": spec.retries,
        "retry_delay_sec": spec.retry_delay_sec,
        "retry_backoff": spec.backoff,
        "max_retry_delay_sec": None,
        "critical": True,
        "trigger_rule": "all_success",
        "condition": None,
        "on_failure": "abort",
        "fallback": None,
        "is_fallback": False,
        "provides": [],
        "consumes": [],
        "tags": ["exec"],
        "ui_hints": {},
        "location": SOURCE,
    }
    body: dict[str, Any] = {
        "ir_version": IR_VERSION,
        "compiler": {"name": "planrun exec", "version": __version__},
        "source": {"path": SOURCE, "sha256": hashlib.sha256(canonical_json(step)).hexdigest()},
        "plan": {"id": f"exec.{step_id}", "version": "", "description": "", "metadata": {}},
        "globals": {
            "max_concurrency": 1,
            "default_timeout_sec": spec.timeout_sec,
            "default_retries": spec.retries,
            "default_retry_delay_sec": spec.retry_delay_sec,
            "heartbeat_timeout_sec": spec.heartbeat_sec,
            "kill_grace_sec": grace,
            "env": {},
        },
        "params": {},
        "secrets": secrets,
        "steps": [step],
    }
    data = canonical_json({**body, "digest": compute_digest(body)}) + b"\n"
    return parse_ir(data, SOURCE)


def supervise(
    spec: CommandSpec,
    state_dir: str,
    *,
    run_id: str | None = None,
    sync: Literal["normal", "full"] = "normal",
    echo: bool = False,
    observer: Observer | None = None,
    err: TextIO = sys.stderr,
    executor: str | None = None,
) -> Supervised:
    """Run `spec` as a new one-step run; with `echo`, its output also goes to our stdout and
    stderr as it comes (masked like the logs). `err` gets only planrun's warnings. `executor`:
    where the command runs, as `planrun PLAN --executor` (docs/distributed.md)."""
    ir = build_ir(spec)
    options = RunOptions(argv=list(sys.argv), echo_fds=(1, 2) if echo else None)
    try:
        options.launcher = open_launcher(executor, ir)
    except LauncherError as exc:
        raise UsageError(str(exc)) from None
    run_id = run_id or new_run_id()
    run(ir, state_dir, options, sync, Output(err=err, observer=observer or _ignore), run_id=run_id)
    with open_reader(state_dir) as reader:
        (step,) = reader.steps(run_id)
        attempts = reader.attempts(run_id, step.step_id)
        status = reader.run(run_id).status
    last = attempts[-1] if attempts else None
    return Supervised(run_id, step.step_id, exit_status(status, step, last), step)


def exec_command(
    spec: CommandSpec,
    state_dir: str,
    run_id: str | None,
    sync: str,
    quiet: bool,
    executor: str | None = None,
) -> int:
    """`planrun exec`: the command's output live on our stdout/stderr, planrun's own lines on
    stderr (only failures with `quiet`); returns the exit status."""
    _, err = surviving(sys.stdout, sys.stderr)
    done = supervise(
        spec,
        state_dir,
        run_id=run_id,
        sync="full" if sync == "full" else "normal",
        echo=True,
        observer=exec_reporter(err, quiet),
        err=err,
        executor=executor,
    )
    if not quiet:
        step = done.step
        why = "" if step.status == "success" else f": {step.detail or step.reason}"
        took = f" in {step.duration_sec:.2f}s" if step.duration_sec is not None else ""
        status = f"{step.status}{why}{took} (exit {done.exit_status})"
        err.write(f"planrun: run {done.run_id} {status}\n")
        err.flush()
    return done.exit_status


def env_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """`--env NAME=VALUE` options as a dict (the names are checked by build_ir)."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def exit_status(run_status: str, step: StepInfo, last: AttemptInfo | None) -> int:
    """The exit status of a supervised command's run (docs/cli.md, *planrun exec*)."""
    if run_status == "cancelled" or step.status == "cancelled":
        return EXIT_INTERRUPTED
    if step.status == "success":
        return 0
    if step.status == "timed_out":
        return EXIT_TIMEOUT
    if step.exit_code is not None:
        return step.exit_code
    if last is not None and last.signal is not None:
        return EXIT_SIGNAL_BASE + last.signal
    if (step.reason or "").startswith(_NOT_FOUND):
        return EXIT_NOT_FOUND
    return EXIT_CANNOT_RUN


def exec_reporter(err: TextIO, quiet: bool) -> Observer:
    """planrun's own lines for a command whose output the user already sees: the plain lines of
    a run, without the stderr tail a failure line carries (it was just on the terminal)."""
    from planrun.views.style import use_color

    lines = LineReporter(err, 1, quiet=quiet, color=use_color(err), heartbeat_sec=None)

    def observe(event: Event) -> None:
        if event.type == "run_started" and not quiet:
            err.write(f"planrun: run {event.run_id} (plan {event.payload.get('plan_id')})\n")
        if "stderr_tail" in event.payload:
            payload = {k: v for k, v in event.payload.items() if k != "stderr_tail"}
            event = replace(event, payload=payload)
        lines(event)

    return observe


def _ignore(event: Event) -> None:
    """No view: the caller reads the outcome from the store."""


def _step_id(program: str, name: str | None) -> str:
    if name is not None:
        if not STEP_ID.fullmatch(name):
            raise UsageError(
                f"--name {name!r} is not a step id (a letter or _, then letters, digits, _ . -;"
                " at most 128)"
            )
        return name
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(program.rstrip("/")) or "command")
    if not re.match(r"[A-Za-z_]", base):
        base = "_" + base
    return base[:128]


def _check_numbers(spec: CommandSpec) -> None:
    optional = [("timeout", spec.timeout_sec, 0.0), ("heartbeat", spec.heartbeat_sec, 0.0)]
    for label, value, low in [*optional, ("kill grace", spec.kill_grace_sec, -1.0)]:
        if value is not None:
            _check_seconds(label, value, low, "more than 0" if low == 0 else "at least 0")
    _check_seconds("retry delay", spec.retry_delay_sec, -1.0, "at least 0")
    _check_seconds("backoff", spec.backoff, 0.0, "at least 1", at_least=1.0)
    if isinstance(spec.retries, bool) or not isinstance(spec.retries, int) or spec.retries < 0:
        raise UsageError(f"retries must be a whole number of at least 0, not {spec.retries!r}")


def _check_seconds(
    label: str, value: object, above: float, wanted: str, at_least: float = 0.0
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"the {label} must be a number {wanted}, not {value!r}")
    if not (math.isfinite(value) and value > above and value >= at_least):
        raise UsageError(f"the {label} must be a finite number {wanted}, not {value!r}")


def _check_placeholders(text: str, secrets: Sequence[str]) -> None:
    """`${{ env.NAME }}` is resolved as in a plan; a command has no params or step outputs. A
    secret is refused where the resolved value would be recorded (the argv of step_started, the
    cwd), as planc refuses it in a plan (`secret-in-args`): the command reads it from its
    environment."""
    for found in find(text):
        if isinstance(found, Malformed) or found.kind != "env":
            raise UsageError(
                f"{text!r} holds a `${{{{ }}}}` placeholder planrun exec cannot resolve: only"
                " `${{ env.NAME }}` is known here (a command has no params or step outputs)"
            )
        if found.name in secrets:
            raise UsageError(
                f"secret {found.name} in the command line would be recorded with it; the command"
                f" gets it in its environment (e.g. sh -c '... \"${found.name}\"')"
            )
