"""`provides`/`consumes`: every consumed name has exactly one provider; unused names warn."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error, warning
from planc.references import referenced_outputs
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean

CODES = {
    "unprovided-resource": (
        "a step consumes a resource that no step provides",
        "`consumes: [X]` makes the step depend on the one step with `provides: [X]`; without"
        " such a step the plan cannot be ordered.\n\n"
        "    - id: report\n      consumes: [registry]   # no step provides `registry`",
    ),
    "duplicate-provider": (
        "two steps provide the same resource",
        "A resource name must have a single provider, or `consumes` would be ambiguous.\n\n"
        "    - id: a\n      provides: [db]\n    - id: b\n      provides: [db]",
    ),
    "unused-provides": (
        "warning: a provided resource is consumed by no step",
        "Not an error: the name documents what the step makes. Remove it, or add a"
        " consumer, if it was meant to order steps.",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    provider_of = ctx.graph.provider_of
    consumed: set[str] = set()
    for step in ctx.plan.steps:
        for ref in step.refs("consumes"):
            consumed.add(ref.name)
            if ref.name not in provider_of:
                yield error(
                    ctx.path,
                    ref.span,
                    "unprovided-resource",
                    f"step `{step.id}` consumes `{ref.name}`, which no step provides",
                    did_you_mean(ref.name, provider_of) or "add it to some step's `provides`",
                )
    read = referenced_outputs(ctx)
    for step in ctx.plan.steps:
        for ref in step.refs("provides"):
            owner = provider_of.get(ref.name)
            if owner is not None and owner != step.id:
                yield error(
                    ctx.path,
                    ref.span,
                    "duplicate-provider",
                    f"`{ref.name}` is provided by both `{owner}` and `{step.id}`",
                    "a resource has one provider; rename one of them",
                )
            elif ref.name not in consumed and (step.id, ref.name) not in read:
                yield warning(
                    ctx.path,
                    ref.span,
                    "unused-provides",
                    f"step `{step.id}` provides `{ref.name}`, which no step consumes or reads",
                )
