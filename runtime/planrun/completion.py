"""Shell completion of what planrun's words name: run ids from the state dir, step ids from the
plan file on the command line (or the run given, or the latest run), directories for
--state-dir. click runs these when the shell asks (docs/cli.md, *Shell completion*).

The state dir and the plan are untrusted: whatever they hold (nothing, damage, another user's
files) gives no candidates, never a traceback, and never a word the shell could misread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

import click
from click.shell_completion import CompletionItem

from planrun.core.printable import printable

# A candidate is offered only as one plain word: ids are made of these, and a value from a
# damaged or foreign state.db must not reach the shell's completion line otherwise.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_RUNS_OFFERED = 200


def directories(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(incomplete, type="dir")]


def run_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The runs of the state dir, newest first, each with its plan and status."""
    return _offered(lambda: _runs(ctx), incomplete)


def step_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The steps of PLAN when given, else of --resume's run or RUN_ID when given, else of the
    latest run."""
    return _offered(lambda: _steps(ctx), incomplete)


def run_then_step(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """`planrun logs [RUN] STEP`: first a run or a step (of the latest run), then a step of the
    run given."""
    given = ctx.params.get(param.name or "") or ()
    if not given:
        return _offered(lambda: [*_runs(ctx), *_steps(ctx)], incomplete)
    if len(given) == 1:
        return _offered(lambda: _steps(ctx, given[0]), incomplete)
    return []


def _offered(
    candidates: Callable[[], Iterable[tuple[str, str | None]]], incomplete: str
) -> list[CompletionItem]:
    try:
        found = list(candidates())
    except Exception:  # an unreadable, damaged or untrusted state dir or plan: nothing to offer
        return []
    items: dict[str, CompletionItem] = {}
    for value, help_text in found:
        if value.startswith(incomplete) and _PLAIN_WORD.fullmatch(value) and value not in items:
            items[value] = CompletionItem(value, help=help_text and printable(help_text))
    return list(items.values())


def _state_dir(ctx: click.Context) -> str:
    from planrun import runner

    value = ctx.params.get("state_dir")
    return value if isinstance(value, str) and value else runner.STATE_DIR_DEFAULT


def _runs(ctx: click.Context) -> list[tuple[str, str | None]]:
    from planrun.store import open_reader

    with open_reader(_state_dir(ctx)) as reader:
        return [
            (run.run_id, f"{run.plan_id} {run.status} {run.started_at}")
            for run in reader.runs(_RUNS_OFFERED)
        ]


def _steps(ctx: click.Context, run_ref: str | None = None) -> list[tuple[str, str | None]]:
    plan = ctx.params.get("plan")
    if isinstance(plan, str) and run_ref is None:
        from planrun import plan_loader

        ir = plan_loader.load_runnable(plan, io.StringIO())  # its diagnostics are not for the shell
        return [(step_id, None) for step_id in ir.steps_by_id]
    from planrun.store import open_reader

    run_ref = run_ref or ctx.params.get("resume_id") or ctx.params.get("run_id")
    with open_reader(_state_dir(ctx)) as reader:
        run_id = reader.resolve(run_ref) if isinstance(run_ref, str) else reader.latest_run_id()
        if run_id is None:
            return []
        return [(step.step_id, step.status) for step in reader.steps(run_id)]
