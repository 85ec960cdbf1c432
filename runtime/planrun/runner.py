"""The planrun commands as importable functions returning exit codes (the CLI only parses)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from planrun.console import Observer, plural, reporter, summary_table, tee
from planrun.core.ir import IR, IRError, load_ir, parse_ir
from planrun.core.launcher import LauncherError
from planrun.core.loop import StepRecord
from planrun.core.params import ParamError, bind, parse_assignments, read_params_file
from planrun.core.printable import printable
from planrun.core.reads import not_utf8
from planrun.events import Event, RunResumed, UiAction
from planrun.executor import Executor, RunOptions
from planrun.interrupts import Interrupts
from planrun.launchers import kill_remote_leftovers
from planrun.run_secrets import run_masker, secret_names
from planrun.run_summary import print_summary
from planrun.store import RunStore, StoreError, StoreWriteError, open_reader
from planrun.streams import surviving
from planrun.views.style import ColorMode

if TYPE_CHECKING:  # --only/--from and --dry-run import them when used
    from planrun.selection import Selection

EXIT_USAGE = 2
EXIT_STORE = 3  # the run's events could not be recorded: it was stopped (docs/cli.md)
# A run id chosen by the caller (`planrun exec --id`, the API) names a directory of the state dir.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class UsageError(Exception):
    """Bad input to planrun: printed as one line, exit 2."""


@dataclass
class Output:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    quiet: bool = False
    json_events: bool = False
    verbose: bool = False  # -v: each step's command and its output as it runs
    color: ColorMode = "auto"
    live: bool | None = None  # the rich live view; None: when `err` is a terminal (not --json)
    # Replaces the human view (start line, progress, summary): `planrun exec` and the Python API
    # get every recorded event here and say themselves what they need to.
    observer: Observer | None = None


STATE_DIR_ENV, STATE_DIR_DEFAULT = "PLANRUN_STATE_DIR", ".planrun"  # the CLI's --state-dir too


def state_dir_default() -> str:
    return os.environ.get(STATE_DIR_ENV) or STATE_DIR_DEFAULT


def text_option(option: str, value: str) -> str:
    """`value` of a path option, refused (exit 2, nothing recorded) when it is not UTF-8: the
    paths under it are recorded in state.db and events, which hold text (docs/cli.md)."""
    problem = not_utf8(value)
    if problem is not None:
        raise UsageError(f"{option} is not UTF-8 text ({problem}); use a path that is")
    return value


def check_environment(ir: IR, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, before the run is recorded, an environment variable the plan reads (a secret, a
    `${{ env.NAME }}`, a condition's `env.NAME`) whose value is not UTF-8: its value is
    recorded, masked and shown. A variable the plan does not read is passed to steps as is."""
    for name in sorted(_environment_names(ir)):
        problem = not_utf8(environ.get(name, ""))
        if problem is not None:
            raise UsageError(
                f"environment variable {name}, which the plan reads, is not UTF-8 text ({problem})"
            )


def _environment_names(ir: IR) -> set[str]:
    from planrun.core.interpolate import Reference, find

    names = set(ir.model.secrets).union(*(step.secrets for step in ir.steps))
    pending: list[Any] = list(ir.raw["steps"])
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "${{" not in value:  # most strings: step ids in depends_on, plain arguments
                continue
            names.update(
                r.name for r in find(value) if isinstance(r, Reference) and r.kind == "env"
            )
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            if value.get("kind") == "env" and isinstance(value.get("name"), str):
                names.add(value["name"])  # a condition's `env.NAME`
            pending.extend(value.values())
    return names


def new_run_id() -> str:
    # os.urandom(3).hex() is secrets.token_hex(3), without importing secrets (hmac, random…)
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


def recorded_ir(state_dir: str, run_ref: str) -> IR:
    """The IR a recorded run started with (kept in state.db): what `--resume RUN` without a PLAN
    continues, whatever became of the plan file since."""
    try:
        reader = open_reader(state_dir)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    with reader:
        run_id = reader.resolve(run_ref)
        data = reader.ir(run_id)
    return parse_ir(data, f"the IR of run {run_id}")


def run(
    ir: IR,
    state_dir: str,
    options: RunOptions,
    sync: str,
    output: Output,
    only: tuple[str, ...] = (),
    from_: tuple[str, ...] = (),
    watch: dict[str, Any] | None = None,
    run_id: str | None = None,
    interrupts: Interrupts | None = None,
) -> int:
    """Run `ir` as a new run, `run_id` (a fresh id when None; an existing one is refused);
    `watch` (planrun watch: its session and trigger) goes into run_started, and `interrupts`
    tells the watcher afterwards of a signal that came as the run was ending."""
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"run id {run_id!r} must be 1 to 128 letters, digits, _ . or -, starting with a letter"
            " or digit"
        )
    selection = _selection(ir, only, from_) if only or from_ else None
    output = _surviving(output)
    run_id = run_id or new_run_id()
    with _recording(state_dir, sync, interrupts) as (store, interrupts):
        capacity = options.max_concurrency or int(ir.globals.max_concurrency)
        step_ids = [s.id for s in ir.steps]
        argv, params = _recordable(ir, options)
        started = store.create_run(
            run_id, ir.plan_id, ir.digest, ir.data, step_ids, argv, capacity, params, watch=watch
        )
        if output.observer is None:
            count = f"{len(step_ids)} {plural(len(step_ids), 'step')}"
            plan_id = printable(ir.plan_id)
            output.err.write(f"planrun: run {run_id} (plan {plan_id}, {count})\n")
        observer = _observer(output, len(step_ids), ir)
        observer(started)  # run_started was recorded before any observer existed
        _record_ui_action(store, run_id, observer)
        executor = Executor(ir, store, run_id, options, observer, interrupts)
        return _drive(executor, state_dir, output, lambda: executor.run(selection=selection))


@contextmanager
def _recording(
    state_dir: str, sync: str, interrupts: Interrupts | None = None
) -> Iterator[tuple[RunStore, Interrupts]]:
    """The store of a run about to be recorded or resumed, and the interrupt counters that from
    then on cancel the run instead of raising in the middle of a write; kept until the store is
    closed (closing must not be cut short)."""
    store = RunStore.open(state_dir, _sync(sync))
    interrupts = interrupts or Interrupts()
    interrupts.install()
    try:
        yield store, interrupts
    finally:
        try:
            store.close()
        finally:
            interrupts.restore()


def _drive(
    executor: Executor,
    state_dir: str,
    output: Output,
    execute: Callable[[], int],
    resumes: int = 0,  # how many times the run was resumed, this session's included
) -> int:
    """Run the executor, then print the summary; a store that fails mid-run stops the run."""
    _warn_unmasked(executor, output)
    try:
        code = execute()
    except StoreWriteError as exc:
        raise _stopped(exc, executor.run_id) from exc
    if output.observer is None:
        print_summary(state_dir, executor.run_id, output.err, executor.ir.raw["steps"], resumes)
    return code


def _recordable(ir: IR, options: RunOptions) -> tuple[list[str], dict[str, Any]]:
    """planrun's argv and the bound params as run_started records them: secret params' values
    `***`, and every secret masked in the command line (`-p TOKEN=…`)."""
    ir_params = ir.model.params
    masker = run_masker(ir, secret_names(ir), os.environ, options.params)
    if masker is None and not ir.model.secret_params:
        return options.argv, options.params
    from planrun.secrecy import masked_argv, masked_params

    argv, params = masked_argv(options.argv, ir_params), masked_params(ir_params, options.params)
    if masker is not None:
        argv, params = masker.payload(argv), masker.payload(params)
    return argv, params


def _warn_unmasked(executor: Executor, output: Output) -> None:
    ir_params = executor.ir.model.params
    if not executor.context.all_secrets and not executor.ir.model.secret_params:
        return
    from planrun.masking import MIN_SECRET_LENGTH
    from planrun.secrecy import too_short

    secrets = sorted(executor.context.all_secrets)
    for what in too_short(secrets, ir_params, executor.environ, executor.options.params):
        output.err.write(
            f"planrun: warning: {what} is shorter than {MIN_SECRET_LENGTH} characters, too"
            " short to mask: its value appears as is in logs and events\n"
        )


def _stopped(exc: StoreWriteError, run_id: str) -> StoreWriteError:
    """The run's events can no longer be recorded, so the executor stopped it (its running
    steps were killed with their process trees): say what is on disk and how to go on."""
    return StoreWriteError(
        f"{exc}; run {run_id} was stopped (its running steps were killed). Everything recorded"
        f" so far is kept: once the cause is fixed, `planrun --resume {run_id} PLAN` continues it"
    )


def _selection(ir: IR, only: tuple[str, ...], from_: tuple[str, ...]) -> Selection:
    from planrun.selection import SelectionError, select

    try:
        return select(ir.steps, only, from_, ir.model.groups or {})
    except SelectionError as exc:
        raise UsageError(str(exc)) from None


def resume(
    run_ref: str,
    ir: IR,
    state_dir: str,
    options: RunOptions,
    sync: str,
    output: Output,
    secret_assignments: tuple[str, ...] = (),
) -> int:
    """Continue a run; `secret_assignments` (`-p NAME=VALUE`) give again the values of its
    secret params, which were recorded as `***`."""
    from planrun.resume import (
        kept_on_resume,
        kill_leftovers,
        left_out_on_resume,
        recorded_params_and_tags,
    )

    output = _surviving(output)
    with _recording(state_dir, sync) as (store, interrupts):
        step_ids = [s.id for s in ir.steps]
        info = store.begin_resume(run_ref, ir.digest, ir.data, step_ids)
        run_id = info.run.run_id
        ir_changed = info.run.ir_digest != ir.digest
        grace = float(ir.globals.kill_grace_sec)
        recorded, tags, secret_outputs, resumed, parts = recorded_params_and_tags(state_dir, run_id)
        params = _resumed_params(ir, run_id, recorded, secret_assignments)
        killed = kill_leftovers(info.running_attempts, grace, tags)
        try:
            killed += kill_remote_leftovers(options.launcher, info.running_attempts, tags)
        except LauncherError as exc:
            raise UsageError(str(exc)) from None
        changed: dict[str, Any] = {"ir_digest": ir.digest} if ir_changed else {}
        resumed_event = RunResumed(pid=os.getpid(), previous_status=info.previous_status, **changed)
        store.emit(run_id, resumed_event.TYPE, **resumed_event.payload())
        output.err.write(
            f"planrun: resuming run {run_id} (was {info.previous_status};"
            f" {killed} leftover process group(s) killed"
            + (
                "; the plan changed: steps whose fingerprint changed run again"
                if ir_changed
                else ""
            )
            + ")\n"
        )
        previous = {
            s.step_id: StepRecord(
                s.status,
                s.attempts,
                0,
                s.exit_code,
                s.duration_sec,
                s.outputs,
                s.reason,
                secret_outputs.get(s.step_id, set()),
                s.fingerprint,
                parts.get(s.step_id, {}),
            )
            for s in info.steps
        }
        options.params = params
        # Progress counts this session's work: steps that succeeded before are not redone.
        carried = kept_on_resume(previous, ir.steps) | left_out_on_resume(previous)
        observer = _observer(output, len(ir.steps) - len(carried), ir)
        _record_ui_action(store, run_id, observer)
        executor = Executor(ir, store, run_id, options, observer, interrupts)
        executor.scrub_outputs((a.step_id, a.attempt) for a in info.running_attempts)
        return _drive(
            executor,
            state_dir,
            output,
            lambda: executor.run(previous, None, ir_changed),
            resumed + 1,
        )


def _record_ui_action(store: RunStore, run_id: str, observer: Observer) -> None:
    """`planrun ui` started this process: record who and when (planrun.uiactions)."""
    from planrun.uiactions import take_from_environment

    action = take_from_environment()
    if action is not None:
        typed = UiAction(**action)
        observer(store.emit(run_id, typed.TYPE, None, None, **typed.payload()))


def forced_steps(ir: IR, names: tuple[str, ...]) -> frozenset[str]:
    """The steps of `--force STEP`, each checked to be a step of the plan."""
    if not names:
        return frozenset()
    from planrun.selection import SelectionError, select

    try:
        select(ir.steps, names, ())
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    return frozenset(names)


def bind_params(ir: IR, assignments: tuple[str, ...], params_file: str | None) -> dict[str, Any]:
    """The run's param values, checked against the plan before anything runs."""
    try:
        given: dict[str, Any] = read_params_file(params_file) if params_file else {}
        given.update(parse_assignments(assignments))
        return dict(bind(ir.model.params, given))
    except ParamError as exc:
        raise UsageError(str(exc)) from None


def _resumed_params(
    ir: IR, run_id: str, recorded: dict[str, Any], assignments: tuple[str, ...]
) -> dict[str, Any]:
    """The recorded params, with each secret param's value given again on the command line
    (the run recorded `***`); -p for any other param is refused."""
    declared = ir.model.params
    secret = ir.model.secret_params
    try:
        given = parse_assignments(assignments)
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    other = sorted(set(given) - secret)
    if other:
        raise UsageError(
            "a resumed run keeps its params; -p with --resume only gives again a secret"
            f" param, and {', '.join(other)} is not one"
        )
    missing = sorted(secret & set(recorded) - set(given))
    if missing:
        flags = " ".join(f"-p {name}=VALUE" for name in missing)
        raise UsageError(
            f"run {run_id} has secret param(s) {', '.join(missing)}, whose values planrun does"
            f" not store: give them again ({flags})"
        )
    try:
        values = bind({name: declared[name] for name in given}, given)
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    return {**recorded, **values}


def dry_run(
    ir: IR, out: TextIO, params: dict[str, Any] | None = None, state_dir: str | None = None,
    only: tuple[str, ...] = (), from_: tuple[str, ...] = (), force: frozenset[str] | None = None,
) -> int:  # fmt: skip
    """The order steps would start in if every step succeeded and every condition held
    (planrun.dry_run); with the state dir of earlier runs, each step's reuse decision
    (docs/fingerprints.md); `force` None: --force."""
    from planrun.dry_run import DryRun, dry_decider

    selection = _selection(ir, only, from_) if only or from_ else None
    decider = None
    if state_dir is not None:
        decider = dry_decider(ir, state_dir, params or {}, selection, force)
    DryRun(ir, out, params or {}, selection, decider).replay()
    return 0


def status(state_dir: str, run_ref: str | None, as_json: bool, out: TextIO) -> int:
    try:
        reader = open_reader(state_dir)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    with reader:
        run_id = run_ref or reader.latest_run_id()
        if run_id is None:
            raise UsageError(f"no runs in {state_dir}")
        try:
            summary = reader.summary(run_id)
            steps = reader.steps(run_id)
            from planrun.ci import recorded_tolerance

            why = recorded_tolerance(reader, run_id, steps)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    if as_json:
        out.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return 0
    head = f"run {summary['run_id']}  plan {summary['plan_id']}  status {summary['status']}"
    out.write(printable(head) + "\n")
    out.write(summary_table(steps, tolerated=why))
    return 0


def _observer(output: Output, total: int, ir: IR) -> Observer:
    """Human text on `err` (live view on a terminal, else plain lines); with --json the JSONL
    event stream on `out` as well, and then never the live view, so headless runs stay rich-free."""
    human = output.observer or reporter(
        output.err,
        total,
        quiet=output.quiet,
        verbose=output.verbose,
        color=output.color,
        live=False if output.json_events else output.live,
        plan_steps=ir.raw["steps"],
        groups=ir.model.groups,
    )
    if output.json_events:
        return tee(_JsonStream(output.out), human)
    return human


class _JsonStream:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        self.out.write(event.to_json() + "\n")
        self.out.flush()


def _surviving(output: Output) -> Output:
    """The run's output, on streams whose failure (a closed pipe, a full disk) ends the output
    but never the run (planrun.streams)."""
    out, err = surviving(output.out, output.err)
    return replace(output, out=out, err=err)


def _sync(value: str) -> Literal["normal", "full"]:
    return "full" if value == "full" else "normal"


__all__ = ["IRError", "Output", "UsageError", "dry_run", "load_ir", "resume", "run", "status"]
