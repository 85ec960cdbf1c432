"""Two steps with the same id."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.rules.base import RuleContext
from planc.sourcemap import LINE_BLOCK

CODES = {
    "duplicate-step-id": (
        "two steps have the same id",
        "Step ids name steps in `depends_on`, conditions and the run's records, so each must be"
        " unique.\n\n    steps:\n      - id: build\n      - id: build   # rename one of them",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    first_line: dict[str, int] = {}
    for step in ctx.plan.steps:
        if step.id in first_line:
            line = first_line[step.id]
            # A line of an included file is not a line of this one (sourcemap.py).
            where = f"the step at line {line}" if line < LINE_BLOCK else "an included step"
            yield error(
                ctx.path,
                step.id_span,
                "duplicate-step-id",
                f"step id `{step.id}` is already used by {where}",
                "give every step a unique id",
            )
        else:
            first_line[step.id] = step.id_span.line
