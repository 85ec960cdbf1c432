"""`planc` command line: parses arguments and calls planc.commands."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

from planc import __version__, analysis, commands
from planc.render import FORMATS
from planrun.core.cli_group import Program
from planrun.core.entry import EXIT_INTERRUPTED
from planrun.core.writes import abandon


def _run(action: Callable[[], int]) -> None:
    """Run `action` and exit with its code; an interrupt goes on to planrun.core.entry
    (exit 130)."""
    try:
        code = action()
    except BrokenPipeError:
        code = EXIT_INTERRUPTED
    except OSError as exc:  # the input is read as diagnostics: this is stdout failing
        sys.stderr.write(f"planc: cannot write to stdout: {exc.strerror or exc}\n")
        abandon(sys.stdout.fileno())
        code = commands.EXIT_USAGE
    except Exception as exc:  # the one place a bug becomes exit 3 instead of a traceback
        code = commands.internal_error(exc)
    sys.exit(code)


@click.group(cls=Program, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="planc")
def main() -> None:
    """Check plans and compile them into frozen IR for planrun."""


@main.command()
@click.argument("plans", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option(
    "--analyses",
    default=",".join(analysis.DEFAULT),
    show_default=True,
    metavar="NAMES",
    help=f"Analyses to run after the rules: {', '.join(analysis.ANALYSES)}, all or none.",
)
def check(plans: tuple[str, ...], fmt: str, strict: bool, analyses: str) -> None:
    """Check PLANS (files, or directories: every plan file under them) and report every problem.
    Exit 0 clean, 1 findings, 2 usage, 3 internal."""
    try:
        selected = analysis.parse_selection(analyses)
    except analysis.UnknownAnalysis as exc:
        raise click.BadParameter(str(exc), param_hint="--analyses") from None
    _run(lambda: commands.check(plans, fmt, strict, sys.stdout, selected))


@main.command(name="compile")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("-o", "--output", help="Write the IR here instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def compile_command(plan: str, output: str | None, fmt: str) -> None:
    """Compile PLAN to IR (stdout by default); diagnostics go to stderr."""
    _run(lambda: commands.compile_plan(plan, output, fmt, sys.stdout, sys.stderr))


@main.command()
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot")
def graph(plan: str, fmt: str) -> None:
    """Draw PLAN's dependency graph as Graphviz dot or Mermaid."""
    _run(lambda: commands.graph(plan, fmt, sys.stdout, sys.stderr))


@main.command()
@click.argument("plan", type=click.Path(dir_okay=False))
def describe(plan: str) -> None:
    """List PLAN's params (types, defaults, choices) and steps (what each does, in order)."""
    _run(lambda: commands.describe(plan, sys.stdout, sys.stderr))


@main.command()
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("-j", "--max-concurrency", type=click.IntRange(min=1), help="Override the plan.")
def bound(plan: str, fmt: str, max_concurrency: int | None) -> None:
    """Worst-case duration of PLAN: per step, critical path, max_concurrency; exit 1 past
    deadline_sec."""
    _run(lambda: commands.bound(plan, fmt, max_concurrency, sys.stdout, sys.stderr))


@main.command()
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option(
    "--fail",
    multiple=True,
    metavar="STEP[,STEP…]",
    help="Steps that exit 1 (also NAME[*]: a matrix's instances, and globs).",
)
@click.option("--timeout", multiple=True, metavar="STEP[,STEP…]", help="Steps that time out.")
@click.option("--env", multiple=True, metavar="NAME=VALUE", help="Environment conditions read.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="A param.")
@click.option("--all-single-failures", is_flag=True, help="Table every single-step failure.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--state-dir",
    metavar="DIR",
    help="planrun's state dir: show each step's reuse decision; reused steps do not run.",
)
def simulate(
    plan: str,
    fail: tuple[str, ...],
    timeout: tuple[str, ...],
    env: tuple[str, ...],
    params: tuple[str, ...],
    all_single_failures: bool,
    fmt: str,
    state_dir: str | None,
) -> None:
    """Replay planrun's decisions with STEPs failing, running nothing; exit 0 (the plan's exit
    code is printed)."""
    chosen = (fail, timeout, env, params, all_single_failures, fmt)
    _run(lambda: commands.simulate(plan, *chosen, sys.stdout, sys.stderr, state_dir))


@main.command()
def schema() -> None:
    """Print the plan JSON Schema (draft-07)."""
    _run(lambda: commands.schema(sys.stdout))


def _codes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from planc.codes import all_codes

    return [
        CompletionItem(code, help=summary)
        for code, (summary, _) in all_codes().items()
        if code.startswith(incomplete)
    ]


@main.command()
@click.argument("code", required=False, shell_complete=_codes)
@click.option("--list", "list_all", is_flag=True, help="List every diagnostic code.")
def explain(code: str | None, list_all: bool) -> None:
    """Explain a diagnostic CODE, with an example."""
    if list_all or code is None:
        _run(lambda: commands.list_codes(sys.stdout))
    else:
        _run(lambda: commands.explain(code, sys.stdout, sys.stderr))
