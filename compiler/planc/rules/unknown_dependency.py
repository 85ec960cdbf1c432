"""`depends_on` naming a step that does not exist, or the step itself."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean

CODES = {
    "unknown-dependency": (
        "`depends_on` names a step that does not exist",
        "Every id in `depends_on` must be the id of a step of the same plan.\n\n"
        "    - id: test\n      depends_on: [biuld]   # did you mean `build`?",
    ),
    "self-dependency": (
        "a step depends on itself",
        "A step cannot wait for itself to finish.\n\n    - id: test\n      depends_on: [test]",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    ids = ctx.graph.steps.keys()
    for step in ctx.plan.steps:
        for ref in step.refs("depends_on"):
            if ref.name == step.id:
                yield error(
                    ctx.path, ref.span, "self-dependency", f"step `{step.id}` depends on itself"
                )
            elif ref.name not in ids:
                yield error(
                    ctx.path,
                    ref.span,
                    "unknown-dependency",
                    f"step `{step.id}` depends on `{ref.name}`, which is not a step of this plan",
                    did_you_mean(ref.name, ids),
                )
