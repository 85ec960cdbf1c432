"""`planrun watch`: the click command (arguments only; planrun.watch does the work)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from planrun import plan_loader, runner
from planrun.cli_options import COUNT, RunArgs, run_args
from planrun.core.cli_group import CompletingCommand
from planrun.executor import RunOptions

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_PART = re.compile(rf"({_NUMBER.pattern})(ms|s|m|h|d)")


if TYPE_CHECKING:  # generic in click's stubs since 8.2; the runtime class may not be
    _ParamType = click.ParamType[float, object]
else:
    _ParamType = click.ParamType


class Duration(_ParamType):
    """`1.5` (seconds), `250ms`, `10s`, `5m`, `2h`, `1h30m`, `1d`."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        if _NUMBER.fullmatch(text):
            text += "s"  # plain seconds; never inf, nan or an exponent
        parts = _PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration such as 30s, 500ms, 5m, 1h30m", param, ctx)
        return sum(float(number) * _UNITS[unit] for number, unit in parts)


DURATION = Duration()


def watch_command(exit_with: Callable[[Callable[[], int]], None]) -> click.Command:
    """The command, with the options it shares with `planrun run` (planrun.cli passes in how
    its commands exit)."""

    @click.command(cls=CompletingCommand)
    @click.argument("plan", type=click.Path(dir_okay=False))
    @run_args
    @click.option(
        "--path",
        "paths",
        multiple=True,
        metavar="PATH|GLOB",
        help="Watch this instead of the plan's watch.paths (repeatable).",
    )
    @click.option("--no-files", is_flag=True, help="Watch no files: run on --interval only.")
    @click.option("--ignore", multiple=True, metavar="GLOB", help="Also ignore (repeatable).")
    @click.option("--debounce", type=DURATION, help="Quiet time before a run [plan, or 0.2s].")
    @click.option("--interval", type=DURATION, help="Also run this long after each run started.")
    @click.option("--backoff", type=DURATION, help="First wait after a failed run [plan, or 5s].")
    @click.option("--backoff-max", type=DURATION, help="Longest failure backoff [plan, or 5m].")
    @click.option("--exit-on-failure", is_flag=True, help="Stop at the first failed run.")
    @click.option("--max-runs", type=COUNT, help="Stop after this many runs.")
    @click.option("--poll", is_flag=True, help="Poll the files instead of inotify.")
    def watch(
        plan: str,
        args: RunArgs,
        paths: tuple[str, ...],
        no_files: bool,
        ignore: tuple[str, ...],
        debounce: float | None,
        interval: float | None,
        backoff: float | None,
        backoff_max: float | None,
        exit_on_failure: bool,
        max_runs: int | None,
        poll: bool,
    ) -> None:
        """Run PLAN, then again when watched files change (or every --interval). Exit 130 on
        Ctrl-C/SIGTERM, or the last run's code with --max-runs / --exit-on-failure."""
        from planrun import watch as watching

        def action() -> int:
            state_dir, workdir = args.checked_state_dir(), args.checked_workdir()
            if no_files and paths:
                raise runner.UsageError("--no-files and --path cannot be combined")
            if interval is not None and interval <= 0:
                raise runner.UsageError("--interval must be more than 0")
            ir = plan_loader.load_runnable(plan, sys.stderr)
            params = runner.bind_params(ir, args.param_values, args.params_file)
            settings = watching.WatchSettings.from_ir(ir)
            plan_paths = watching.bind_paths(settings.paths, params)
            settings.paths = [] if no_files else list(paths) or plan_paths
            settings.ignore = [*watching.bind_paths(settings.ignore, params), *ignore]
            for name, value in (
                ("debounce_sec", debounce),
                ("interval_sec", interval),
                ("backoff_sec", backoff),
                ("max_backoff_sec", backoff_max),
            ):
                if value is not None:
                    setattr(settings, name, value)
            settings.exit_on_failure, settings.max_runs, settings.poll = (
                exit_on_failure,
                max_runs,
                poll,
            )
            if not settings.paths and settings.interval_sec is None:
                raise runner.UsageError("nothing to watch: no paths and no --interval")

            def make_options() -> RunOptions:
                options = args.run_options()
                options.argv, options.params = sys.argv, dict(params)
                if workdir is not None:
                    options.workdir = workdir
                return options

            request = watching.RunRequest(ir, state_dir, args.sync, args.output(), make_options)
            return watching.watch(request, settings, workdir or ".")

        exit_with(action)

    return watch
