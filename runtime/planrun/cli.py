"""`planrun` command line: parses arguments and calls planrun.runner."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from planrun import __version__, completion, plan_loader, runner
from planrun.cli_options import (
    COUNT,
    Count,
    Decorator,
    RunArgs,
    checked_state_dir,
    color_option,
    grouped,
    run_args,
    state_dir_option,
)
from planrun.core.byvalue import ByValue
from planrun.core.cli_group import DefaultCommandProgram
from planrun.core.entry import EXIT_OWN_ERROR
from planrun.core.ir import IRError
from planrun.core.launcher import LauncherError
from planrun.core.printable import printable
from planrun.core.reads import as_text
from planrun.launchers import EXECUTOR_ENV, open_launcher
from planrun.store import StoreError, StoreWriteError
from planrun.views.style import ColorMode
from planrun.watch_cli import watch_command


def _exit_with(action: Callable[[], int], own_error: int | None = None) -> None:
    """Run `action`; `own_error` replaces the exit codes of planrun's own errors (exec: 125).
    An interrupt goes on to planrun.core.entry, which says so and exits 130."""
    try:
        code = action()
    except StoreWriteError as exc:
        sys.stderr.write(f"planrun: {printable(str(exc))}\n")
        code = own_error or runner.EXIT_STORE
    except (runner.UsageError, IRError, StoreError) as exc:
        sys.stderr.write(f"planrun: {printable(str(exc))}\n")
        code = own_error or runner.EXIT_USAGE
    sys.exit(code)


@click.group(
    cls=DefaultCommandProgram,
    default_command="run",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="planrun")
def main() -> None:
    """Run a compiled plan (IR.json) or a plan file, and inspect runs.

    `planrun PLAN …` is `planrun run PLAN …`, the default command (its options: `planrun run
    --help`)."""


# What a `--force` without a value gives: no argument can hold a NUL byte, so no step id is it.
FORCE_ALL = "\0all"


@dataclass(frozen=True, eq=False, repr=False)
class Selection(ByValue):
    """Which steps a new run runs, and which are not up to date (`--force` values as given)."""

    only: tuple[str, ...]
    from_: tuple[str, ...]
    force: tuple[str, ...]

    def resolve(self, plan: str | None) -> tuple[str | None, bool, tuple[str, ...]]:
        """(PLAN, --force of every step, the steps forced). click gives `--force plan.yaml`
        the file as --force's value: when PLAN is missing, the last value naming an existing
        file is PLAN, and that --force forces every step (docs/cli.md)."""
        values = list(self.force)
        if plan is None:
            named = [i for i, value in enumerate(values) if os.path.isfile(value)]
            if named:
                plan = values[named[-1]]
                values[named[-1]] = FORCE_ALL
        steps = tuple(dict.fromkeys(v for v in values if v != FORCE_ALL))
        return plan, FORCE_ALL in values, steps


def _steps_option(*names: str, help: str, **extra: Any) -> Decorator:
    settings: dict[str, Any] = {"metavar": "STEP", "multiple": True, **extra}
    return click.option(*names, shell_complete=completion.step_ids, help=help, **settings)


selection_options = grouped(
    Selection,
    "selection",
    [
        _steps_option("--only", help="Run only STEP (repeatable)."),
        _steps_option("--from", "from_", help="Run STEP and its dependents."),
        _steps_option(
            "--force",
            help="STEP is not up to date (repeatable); without STEP, no step is.",
            is_flag=False,
            flag_value=FORCE_ALL,
            metavar="[STEP]",
        ),
    ],
)


@main.command()
@click.argument("plan", required=False, type=click.Path(dir_okay=False))
@run_args
@click.option(
    "--resume",
    "resume_id",
    metavar="RUN_ID",
    shell_complete=completion.run_ids,
    help="Continue an earlier run: with PLAN, as it is now (the same steps; a step whose"
    " fingerprint changed runs again), or without, the IR the run has.",
)
@click.option("--dry-run", is_flag=True, help="Print the order steps would start in; run nothing.")
@selection_options
@click.option(
    "--help-params", is_flag=True, help="List PLAN's params (type, default, choices) and exit."
)
@click.option(
    "--executor",
    envvar=EXECUTOR_ENV,
    metavar="URL",
    help="Where steps run: local, dask://HOST:PORT or dask+tls://HOST:PORT [default: local].",
)
def run(
    plan: str | None,
    args: RunArgs,
    resume_id: str | None,
    dry_run: bool,
    selection: Selection,
    help_params: bool,
    executor: str | None,
) -> None:
    """Run PLAN (an IR file, or a plan compiled in memory). Exit 0/1/2/130."""
    only, from_ = selection.only, selection.from_
    plan, force_all, force = selection.resolve(plan)

    def action() -> int:
        directory = args.checked_state_dir()
        if plan is not None:
            ir = plan_loader.load_runnable(plan, sys.stderr)
        elif resume_id is not None:
            ir = runner.recorded_ir(directory, resume_id)
        else:
            raise runner.UsageError("missing PLAN (an IR file or a plan file) to run")
        if help_params:
            from planrun.core.describe import params_help

            sys.stdout.write(params_help(ir.plan_id, ir.raw["params"]))
            return 0
        if dry_run:
            params = runner.bind_params(ir, args.param_values, args.params_file)
            forced = None if force_all else runner.forced_steps(ir, force)
            return runner.dry_run(ir, sys.stdout, params, directory, only, from_, forced)
        options = args.run_options()
        options.force = runner.forced_steps(ir, force)
        options.force_all = force_all
        options.argv = [as_text(word) for word in sys.argv]  # a file name may not be UTF-8
        if resume_id is not None and args.params_file:
            raise runner.UsageError("a resumed run keeps its params; --params-file starts new runs")
        if resume_id is None:
            options.params = runner.bind_params(ir, args.param_values, args.params_file)
        workdir = args.checked_workdir()
        if workdir is not None:
            options.workdir = workdir
        runner.check_environment(ir)
        output = args.output()
        if resume_id is not None and (only or from_):
            raise runner.UsageError("--only/--from start a new run; they cannot --resume one")
        try:
            options.launcher = open_launcher(executor, ir)
        except LauncherError as exc:
            raise runner.UsageError(str(exc)) from None
        if resume_id is not None:
            return runner.resume(
                resume_id, ir, directory, options, args.sync, output, args.param_values
            )
        return runner.run(ir, directory, options, args.sync, output, only, from_)

    _exit_with(action)


@main.command()
@click.argument("run_id", required=False, shell_complete=completion.run_ids)
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def status(run_id: str | None, state_dir: str, as_json: bool) -> None:
    """Print a run's summary (the latest run by default), even while it is going."""
    _exit_with(lambda: runner.status(checked_state_dir(state_dir), run_id, as_json, sys.stdout))


@main.command()
@click.argument("step_id", shell_complete=completion.step_ids)
@click.argument("run_id", required=False, shell_complete=completion.run_ids)
@state_dir_option
def explain(step_id: str, run_id: str | None, state_dir: str) -> None:
    """Why STEP ran or did not run in RUN (the latest run by default)."""
    from planrun.explain import ExplainError, explain_step

    def action() -> int:
        try:
            return explain_step(checked_state_dir(state_dir), step_id, run_id, sys.stdout)
        except ExplainError as exc:
            raise runner.UsageError(str(exc)) from None

    _exit_with(action)


# The views are imported inside each command, so a plain `planrun PLAN` never loads them.


@main.command()
@state_dir_option
@click.option("-n", "--limit", type=COUNT, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@color_option
def runs(state_dir: str, limit: int, as_json: bool, color: ColorMode) -> None:
    """List recent runs, newest first: id, plan, status, start, duration, steps."""
    from planrun.views import inspect

    _exit_with(
        lambda: inspect.runs(checked_state_dir(state_dir), limit, as_json, sys.stdout, color)
    )


@main.command()
@click.argument("run_id", required=False, shell_complete=completion.run_ids)
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the run, steps and attempts as JSON.")
@color_option
def show(run_id: str | None, state_dir: str, as_json: bool, color: ColorMode) -> None:
    """Print the step table of RUN (an id or unique prefix; the latest run by default)."""
    from planrun.views import inspect

    _exit_with(
        lambda: inspect.show(checked_state_dir(state_dir), run_id, as_json, sys.stdout, color)
    )


@main.command()
@click.argument(
    "run_and_step",
    nargs=-1,
    required=True,
    metavar="[RUN] STEP",
    shell_complete=completion.run_then_step,
)
@state_dir_option
@click.option("--attempt", type=COUNT, help="Attempt number [default: latest].")
@click.option("--stderr", "use_stderr", is_flag=True, help="Print stderr instead of stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the step or run ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per log line.")
def logs(
    run_and_step: tuple[str, ...],
    state_dir: str,
    attempt: int | None,
    use_stderr: bool,
    follow: bool,
    as_json: bool,
) -> None:
    """Print (or follow) the output of STEP in RUN (the latest run by default)."""
    from planrun.views import logs as log_view

    if len(run_and_step) > 2:
        raise click.UsageError("expected [RUN] STEP")
    run_id, step_id = run_and_step if len(run_and_step) == 2 else (None, run_and_step[0])

    def action() -> int:
        request = log_view.LogRequest(
            checked_state_dir(state_dir),
            run_id,
            step_id,
            attempt,
            "stderr" if use_stderr else "stdout",
            follow,
            as_json,
        )
        return log_view.logs(request, sys.stdout, sys.stderr)

    _exit_with(action)


@main.command()
@click.argument("run_id", required=False, shell_complete=completion.run_ids)
@state_dir_option
@click.option("-o", "--output", help="The HTML file to write [default: report-RUN_ID.html].")
def report(run_id: str | None, state_dir: str, output: str | None) -> None:
    """Write a self-contained HTML report of RUN (the latest run by default)."""
    from planrun.views import report as report_view

    _exit_with(lambda: report_view.report(checked_state_dir(state_dir), run_id, output, sys.stderr))


@main.command()
@click.argument("plans", nargs=-1, type=click.Path(dir_okay=False))
@state_dir_option
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8765, show_default=True)
def ui(plans: tuple[str, ...], state_dir: str, port: int) -> None:
    """Serve a live web view of the runs on http://127.0.0.1:PORT/ (0 picks a free port).

    PLANS (plan or IR files) can be started from the page, as can every plan already run in
    the state dir. Every request needs the token in the URL printed at start
    ($PLANRUN_UI_TOKEN sets it).
    """
    from planrun.views import web
    from planrun.views.webauth import TOKEN_ENV

    token = os.environ.get(TOKEN_ENV)
    _exit_with(lambda: web.serve(checked_state_dir(state_dir), port, sys.stdout, token, plans))


class _ExecCommand(click.Command):
    """`planrun exec` keeps 1-124 for the command: its own usage errors exit 125, like timeout."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _ExecUsageError(exc.format_message(), exc.ctx) from None


class _ExecUsageError(click.UsageError):
    exit_code = EXIT_OWN_ERROR


SECONDS = click.FloatRange(min=0, min_open=True)


@main.command(
    "exec",
    cls=_ExecCommand,
    options_metavar="[OPTIONS] --",
    context_settings={"allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", type=SECONDS, metavar="SEC", help="Kill the tree after SEC; exit 124.")
@click.option(
    "--heartbeat", type=SECONDS, metavar="SEC", help="Stalled: no output for SEC; exit 124."
)
@click.option(
    "--retries", type=Count(0), default=0, metavar="N",
    help="Run again after a failure, timeout or stall, up to N times.",
)  # fmt: skip
@click.option(
    "--retry-delay", type=click.FloatRange(min=0), default=0.0, metavar="SEC", help="Wait first."
)
@click.option(
    "--backoff", type=click.FloatRange(min=1), default=1.0, metavar="F", help="Delay factor."
)
@click.option("--cwd", metavar="DIR", help="Run the command there [default: here].")
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE", help="Repeatable.")
@click.option(
    "--secret", "secrets", multiple=True, metavar="NAME", help="Mask $NAME's value (repeatable)."
)
@click.option(
    "--kill-grace", type=click.FloatRange(min=0), metavar="SEC", help="SIGTERM→SIGKILL grace."
)
@click.option("--name", help="The step's id [default: the command's base name].")
@click.option("--id", "run_id", metavar="RUN_ID", help="The run's id [default: a fresh one].")
@state_dir_option
@click.option("--sync", type=click.Choice(["normal", "full"]), default="normal", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Only the command's output and failures.")
@click.option(
    "--executor", envvar=EXECUTOR_ENV, metavar="URL", help="Where it runs, as for `planrun PLAN`."
)
def exec_(
    command: tuple[str, ...],
    timeout: float | None,
    heartbeat: float | None,
    retries: int,
    retry_delay: float,
    backoff: float,
    cwd: str | None,
    env_pairs: tuple[str, ...],
    secrets: tuple[str, ...],
    kill_grace: float | None,
    name: str | None,
    run_id: str | None,
    state_dir: str,
    sync: str,
    quiet: bool,
    executor: str | None,
) -> None:
    """Supervise one COMMAND as a one-step run; exit with its status (124 timeout or stall,
    125 planrun's own error, 126/127 cannot run / not found, 128+N signal N, 130 interrupted)."""
    from planrun import supervise

    def action() -> int:
        env = supervise.env_assignments(env_pairs)
        spec = supervise.CommandSpec(
            command, name, timeout, heartbeat, retries, retry_delay, backoff, cwd, env, secrets,
            kill_grace,
        )  # fmt: skip
        directory = checked_state_dir(state_dir)
        return supervise.exec_command(spec, directory, run_id, sync, quiet, executor)

    _exit_with(action, own_error=EXIT_OWN_ERROR)


def _resources(values: tuple[str, ...]) -> dict[str, float]:
    resources: dict[str, float] = {}
    for item in ",".join(values).split(","):
        name, _, amount = item.strip().partition("=")
        if not item.strip():
            continue
        try:
            resources[name] = float(amount)
        except ValueError:
            raise runner.UsageError(f"--resources {item!r}: expected NAME=NUMBER") from None
    return resources


@main.command()
@click.argument("scheduler")
@click.option("--resources", multiple=True, metavar="NAME=N", help="e.g. gpu=1 (repeatable).")
@click.option("--name", help="The worker's name [default: Dask's].")
@click.option("--nthreads", type=COUNT, help="Steps run at once here [default: CPU count].")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
def worker(
    scheduler: str, resources: tuple[str, ...], name: str | None, nthreads: int | None, host: str
) -> None:
    """Serve a Dask scheduler's planrun runs as a worker (the dask extra; docs/distributed.md)."""

    def action() -> int:
        try:
            from planrun import dask_worker
        except ImportError as exc:
            raise runner.UsageError(
                f"needs the dask extra (pip install 'plan[dask]'): {exc}"
            ) from None
        address = scheduler.replace("dask+tls://", "tls://").replace("dask://", "tcp://")
        threads = nthreads or os.cpu_count() or 1
        return dask_worker.serve_worker(address, _resources(resources), name, threads, host)

    _exit_with(action)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8786, show_default=True)
@click.argument("dask_args", nargs=-1, type=click.UNPROCESSED)
def scheduler(host: str, port: int, dask_args: tuple[str, ...]) -> None:
    """`dask scheduler` with planrun's settings: no re-runs, dashboard off (docs/distributed.md);
    DASK_ARGS (e.g. --tls-cert) are passed on."""

    def action() -> int:
        try:
            from planrun import dask_worker
        except ImportError as exc:
            raise runner.UsageError(
                f"needs the dask extra (pip install 'plan[dask]'): {exc}"
            ) from None
        dask_worker.exec_scheduler(host, port, dask_args)
        return 0  # not reached: exec replaced this process

    _exit_with(action)


main.add_command(watch_command(_exit_with))
