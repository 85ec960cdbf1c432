"""The click options planrun's commands share, each declared once: the state dir, colour,
counts, and the options `planrun run` and `planrun watch` both take, which reach either
command as one RunArgs (docs/cli.md)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import click

from planrun import completion, runner
from planrun.core.byvalue import ByValue
from planrun.executor import RunOptions
from planrun.store import SQLITE_MAX_INT
from planrun.views.style import COLOR_MODES, ColorMode

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
T = TypeVar("T")


class Count(click.IntRange):
    """An integer from `least` up to what SQLite's INTEGER holds: past it, a usage error rather
    than an OverflowError from the store. The help says `x>=least`; an error names both bounds."""

    def __init__(self, least: int) -> None:
        super().__init__(min=least)
        self.least = least

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        unchecked: Any = self  # click's parsing of an integer, its message naming this type
        number: int = click.types.IntParamType.convert(unchecked, value, param, ctx)
        if not self.least <= number <= SQLITE_MAX_INT:
            bounds = f"{self.least}<=x<={SQLITE_MAX_INT}"
            self.fail(f"{number} is not in the range {bounds}.", param, ctx)
        return number


COUNT = Count(1)


def _state_dir_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """--state-dir, else $PLANRUN_STATE_DIR, else .planrun; an empty one counts as not given."""
    return value or param.resolve_envvar_value(ctx) or runner.STATE_DIR_DEFAULT


state_dir_option = click.option(
    "--state-dir",
    envvar=runner.STATE_DIR_ENV,
    callback=_state_dir_value,
    shell_complete=completion.directories,
    help="Where runs are recorded [default: $PLANRUN_STATE_DIR or .planrun].",
)

color_option = click.option(
    "--color",
    type=click.Choice(COLOR_MODES),
    default="auto",
    show_default=True,
    help="Colour output; auto honours NO_COLOR and FORCE_COLOR.",
)


def checked_state_dir(value: str) -> str:
    """The state dir's path, refused (a usage error, raised inside the command's action) when
    it is not UTF-8."""
    return runner.text_option("the state dir", value)


def grouped(cls: type[T], keyword: str, options: Sequence[Decorator]) -> Decorator:
    """Declare `options` on a command whose callback receives their values as one `cls` (a
    dataclass whose fields are the options' names), passed as `keyword`."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]

    def declare(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def grouping(**values: Any) -> Any:
            group = cls(**{name: values.pop(name) for name in names})
            return command(**{keyword: group}, **values)

        callback: Callable[..., Any] = grouping
        for option in reversed(options):
            callback = option(callback)
        return callback

    return declare


@dataclass(frozen=True, eq=False, repr=False)
class RunArgs(ByValue):
    """What `planrun run` and `planrun watch` both take: where runs go, params, limits, output."""

    state_dir: str
    param_values: tuple[str, ...]
    params_file: str | None
    max_concurrency: int | None
    workdir: str | None
    kill_grace: float | None
    sync: str
    quiet: bool
    verbose: bool
    json_events: bool
    color: ColorMode

    def run_options(self) -> RunOptions:
        return RunOptions(max_concurrency=self.max_concurrency, kill_grace_sec=self.kill_grace)

    def checked_state_dir(self) -> str:
        """The state dir, refused (UsageError) when it is not UTF-8: call inside the action."""
        return checked_state_dir(self.state_dir)

    def checked_workdir(self) -> str | None:
        """--workdir, refused (UsageError) when it is not UTF-8: call inside the action."""
        return None if self.workdir is None else runner.text_option("--workdir", self.workdir)

    def output(self) -> runner.Output:
        return runner.Output(
            quiet=self.quiet, json_events=self.json_events, verbose=self.verbose, color=self.color
        )


run_args = grouped(
    RunArgs,
    "args",
    [
        state_dir_option,
        click.option(
            "-p",
            "--param",
            "param_values",
            multiple=True,
            metavar="NAME=VALUE",
            help="Bind a plan param (repeatable).",
        ),
        click.option(
            "--params-file",
            type=click.Path(dir_okay=False),
            help="Params as a JSON object; -p wins.",
        ),
        click.option("-j", "--max-concurrency", type=COUNT, help="Override the plan."),
        click.option(
            "--workdir",
            default=None,
            help="Base for relative step cwd (and watch paths) [default: here].",
        ),
        click.option(
            "--kill-grace", type=click.FloatRange(min=0), help="SIGTERM→SIGKILL grace (s)."
        ),
        click.option(
            "--sync", type=click.Choice(["normal", "full"]), default="normal", show_default=True
        ),
        click.option("-q", "--quiet", is_flag=True, help="Only failures and the summary."),
        click.option(
            "-v", "--verbose", is_flag=True, help="Also each step's command and its output."
        ),
        click.option(
            "--json", "json_events", is_flag=True, help="Stream events as JSONL on stdout."
        ),
        color_option,
    ],
)
"""The options RunArgs holds, for `planrun run` and `planrun watch`."""
