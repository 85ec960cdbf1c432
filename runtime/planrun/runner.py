"""The planrun commands as importable functions returning exit codes (the CLI only parses)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from planrun import semantics as sem
from planrun.console import Observer, reporter, summary_table, tee
from planrun.events import Event
from planrun.executor import (
    Executor,
    Interrupts,
    RunOptions,
    StepRecord,
    kept_on_resume,
    kill_leftovers,
    left_out_on_resume,
    run_masker,
    secret_names,
)
from planrun.ir import IR, IRError, load_ir, parse_if_ir, parse_ir
from planrun.params import ParamError, bind, parse_assignments, read_params_file
from planrun.store import RunStore, StoreError, StoreWriteError, open_reader
from planrun.streams import surviving
from planrun.views.style import ColorMode

if TYPE_CHECKING:  # --only/--from and --dry-run import them when used
    from planrun.reuse import Decider
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


def state_dir_default() -> str:
    return os.environ.get("PLANRUN_STATE_DIR") or ".planrun"


def new_run_id() -> str:
    # os.urandom(3).hex() is secrets.token_hex(3), without importing secrets (hmac, random…)
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


def load_runnable(path: str, err: TextIO) -> IR:
    """An IR file as is; a plan file (YAML/JSON) compiled in memory when planc is installed."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    ir = parse_if_ir(data, path)
    if ir is not None:
        return ir
    try:
        from planc.pipeline import compile_bytes
        from planc.render import render_text
    except ModuleNotFoundError as exc:
        if exc.name != "planc":
            raise  # a broken planc install is a bug to see, not "planc is missing"
        raise UsageError(f"{path} is not an IR file and planc is not installed") from None
    result = compile_bytes(path, data)
    if result.diagnostics:
        err.write(render_text(result.diagnostics, {path: result.text or ""}))
    if result.ir is None:
        raise UsageError(f"{path} has errors; nothing was run")
    return parse_ir(result.ir, path)


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
    run_id: str | None = None,
) -> int:
    """Run `ir` as a new run, `run_id` (a fresh id when None; an existing one is refused)."""
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"run id {run_id!r} must be 1 to 128 letters, digits, _ . or -, starting with a letter"
            " or digit"
        )
    selection = _selection(ir, only, from_) if only or from_ else None
    output = _surviving(output)
    run_id = run_id or new_run_id()
    with _recording(state_dir, sync) as (store, interrupts):
        capacity = options.max_concurrency or int(ir.globals["max_concurrency"])
        step_ids = [s["id"] for s in ir.steps]
        argv, params = _recordable(ir, options)
        started = store.create_run(
            run_id, ir.plan_id, ir.digest, ir.data, step_ids, argv, capacity, params
        )
        if output.observer is None:
            output.err.write(f"planrun: run {run_id} (plan {ir.plan_id}, {len(step_ids)} steps)\n")
        observer = _observer(output, len(step_ids))
        observer(started)  # run_started was recorded before any observer existed
        executor = Executor(ir, store, run_id, options, observer, interrupts)
        return _drive(executor, state_dir, output, lambda: executor.run(selection=selection))


@contextmanager
def _recording(state_dir: str, sync: str) -> Iterator[tuple[RunStore, Interrupts]]:
    """The store of a run about to be recorded or resumed, and the interrupt counters that from
    then on cancel the run instead of raising in the middle of a write; kept until the store is
    closed (closing must not be cut short)."""
    store = RunStore.open(state_dir, _sync(sync))
    interrupts = Interrupts()
    interrupts.install()
    try:
        yield store, interrupts
    finally:
        try:
            store.close()
        finally:
            interrupts.restore()


def _drive(executor: Executor, state_dir: str, output: Output, execute: Callable[[], int]) -> int:
    """Run the executor, then print the summary; a store that fails mid-run stops the run."""
    _warn_unmasked(executor, output)
    try:
        code = execute()
    except StoreWriteError as exc:
        raise _stopped(exc, executor.run_id) from exc
    if output.observer is None:
        _print_summary(state_dir, executor.run_id, output)
    return code


def _recordable(ir: IR, options: RunOptions) -> tuple[list[str], dict[str, Any]]:
    """planrun's argv and the bound params as run_started records them: secret params' values
    `***`, and every secret masked in the command line (`-p TOKEN=…`)."""
    ir_params = ir.raw["params"]
    masker = run_masker(ir, secret_names(ir), os.environ, options.params)
    if masker is None and not any(spec.get("secret") for spec in ir_params.values()):
        return options.argv, options.params
    from planrun.secrecy import masked_argv, masked_params

    argv, params = masked_argv(options.argv, ir_params), masked_params(ir_params, options.params)
    if masker is not None:
        argv, params = masker.payload(argv), masker.payload(params)
    return argv, params


def _warn_unmasked(executor: Executor, output: Output) -> None:
    ir_params = executor.ir.raw["params"]
    if not executor.context.all_secrets and not any(s.get("secret") for s in ir_params.values()):
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
        return select(ir.steps, only, from_)
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
    output = _surviving(output)
    with _recording(state_dir, sync) as (store, interrupts):
        step_ids = [s["id"] for s in ir.steps]
        info = store.begin_resume(run_ref, ir.digest, ir.data, step_ids)
        run_id = info.run.run_id
        ir_changed = info.run.ir_digest != ir.digest
        grace = float(ir.globals["kill_grace_sec"])
        recorded, tags, secret_outputs, parts = _recorded_params_and_tags(state_dir, run_id)
        params = _resumed_params(ir, run_id, recorded, secret_assignments)
        killed = kill_leftovers(info.running_attempts, grace, tags)
        changed: dict[str, Any] = {"ir_digest": ir.digest} if ir_changed else {}
        store.emit(
            run_id, "run_resumed", pid=os.getpid(), previous_status=info.previous_status, **changed
        )
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
        observer = _observer(output, len(ir.steps) - len(carried))
        executor = Executor(ir, store, run_id, options, observer, interrupts)
        executor.scrub_outputs((a.step_id, a.attempt) for a in info.running_attempts)
        return _drive(executor, state_dir, output, lambda: executor.run(previous, None, ir_changed))


def forced_steps(ir: IR, names: tuple[str, ...]) -> frozenset[str]:
    """The steps of `--force-step`, each checked to be a step of the plan."""
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
        return dict(bind(ir.raw["params"], given))
    except ParamError as exc:
        raise UsageError(str(exc)) from None


def _recorded_params_and_tags(
    state_dir: str, run_id: str
) -> tuple[
    dict[str, Any], dict[tuple[str, int], str], dict[str, set[str]], dict[str, dict[str, Any]]
]:
    """From the run's events, in one read: the params it started with (a resumed run keeps
    them), the PLANRUN_ATTEMPT_TAG of each attempt (to find daemons a dead planrun left),
    each step's secret outputs (whose values were not recorded), and the fingerprint parts
    each step was last started with (to say why a step runs again)."""
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
    return (dict(params) if isinstance(params, dict) else {}), tags, secret_outputs, parts


def _resumed_params(
    ir: IR, run_id: str, recorded: dict[str, Any], assignments: tuple[str, ...]
) -> dict[str, Any]:
    """The recorded params, with each secret param's value given again on the command line
    (the run recorded `***`); -p for any other param is refused."""
    declared = ir.raw["params"]
    secret = {name for name, spec in declared.items() if spec.get("secret")}
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
    """The order steps would start in if every step succeeded and every condition held; the
    commands with the bound params filled in (outputs are not known before a run). With the
    state dir of earlier runs, each step's reuse decision (docs/fingerprints.md); `force` None:
    --force."""
    rules = sem.rules_from_ir(ir.steps)
    plan = sem.PlanState.create(rules, lambda _step: True)
    selection = _selection(ir, only, from_) if only or from_ else None
    if selection is not None:
        plan.exclude(set(selection.excluded))
    decider = None
    if state_dir is not None:
        decider = _dry_decider(ir, state_dir, params or {}, selection, force)
    from planrun.reuse import dry_verdict
    from planrun.scheduler import ReadyQueue

    queue = ReadyQueue(rules)
    pending = plan.begin()
    order = 0
    while True:
        for action in pending:
            if isinstance(action, sem.Start):
                queue.push(action.step_id, action.urgent)
        step_id = queue.pop()
        if step_id is None:
            break
        order += 1
        command = _command_line(ir.steps_by_id[step_id], _shown_params(ir, params or {}))
        verdict = "" if decider is None else "  " + dry_verdict(decider, step_id)
        out.write(f"{order:4}. {step_id}  ({command}){verdict}\n")
        plan.started(step_id)
        pending = plan.finished(step_id, sem.SUCCESS)
    return 0


def _dry_decider(
    ir: IR, state_dir: str, params: dict[str, Any], selection: Selection | None,
    force: frozenset[str] | None,
) -> Decider | None:  # fmt: skip
    from planrun.launch import RunContext
    from planrun.reuse import dry_decider

    environ = dict(os.environ)
    secrets = secret_names(ir)
    context = RunContext(
        run_id="dry-run", workdir=os.getcwd(), params=params,
        outputs={s["id"]: {} for s in ir.steps}, environ=environ, all_secrets=secrets,
        masker=run_masker(ir, secrets, environ, params), unavailable={}, kill_grace_sec=0.0,
    )  # fmt: skip
    secret_params = frozenset(n for n, p in ir.raw["params"].items() if p.get("secret"))
    needed = selection.needed if selection is not None else frozenset()
    return dry_decider(state_dir, ir.steps_by_id, ir.plan_id, context, secret_params, needed, force)


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
        except StoreError as exc:
            raise UsageError(str(exc)) from None
    if as_json:
        out.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return 0
    out.write(f"run {summary['run_id']}  plan {summary['plan_id']}  status {summary['status']}\n")
    out.write(summary_table(steps))
    return 0


def _shown_params(ir: IR, params: dict[str, Any]) -> dict[str, Any]:
    """The params a dry run fills in: not the secret ones (their placeholders stay)."""
    declared = ir.raw["params"]
    return {n: v for n, v in params.items() if not declared.get(n, {}).get("secret")}


def _command_line(step: dict[str, Any], params: dict[str, Any]) -> str:
    """One line: params substituted, words shell-quoted, newlines shown as `\\n`, clipped."""
    from planrun.interpolate import Reference, substitute
    from planrun.launch import format_param

    def resolve(ref: Reference) -> str:
        if ref.kind == "param" and ref.name in params:
            return format_param(params[ref.name])
        scope = (
            f"steps.{ref.step}.outputs" if ref.step else {"param": "params"}.get(ref.kind, "env")
        )
        return f"${{{{ {scope}.{ref.name} }}}}"

    words = [substitute(word, resolve) for word in [step["command"], *step["args"]]]
    text = shlex.join(words).replace("\n", "\\n")
    return text if len(text) <= 72 else text[:69] + "..."


def _observer(output: Output, total: int) -> Observer:
    """Human text on `err` (live view on a terminal, else plain lines); with --json the JSONL
    event stream on `out` as well, and then never the live view, so headless runs stay rich-free."""
    human = output.observer or reporter(
        output.err,
        total,
        quiet=output.quiet,
        verbose=output.verbose,
        color=output.color,
        live=False if output.json_events else output.live,
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


def _print_summary(state_dir: str, run_id: str, output: Output) -> None:
    with open_reader(state_dir) as reader:
        run_info = reader.run(run_id)
        steps = reader.steps(run_id)
    stream = output.err
    stream.write(summary_table(steps))
    stream.write(
        f"planrun: run {run_id} {run_info.status} in {run_info.duration_sec or 0:.2f}s"
        f" (exit {run_info.exit_code})\n"
    )


def _surviving(output: Output) -> Output:
    """The run's output, on streams whose failure (a closed pipe, a full disk) ends the output
    but never the run (planrun.streams)."""
    out, err = surviving(output.out, output.err)
    return replace(output, out=out, err=err)


def _sync(value: str) -> Literal["normal", "full"]:
    return "full" if value == "full" else "normal"


__all__ = ["IRError", "Output", "UsageError", "dry_run", "load_ir", "resume", "run", "status"]
