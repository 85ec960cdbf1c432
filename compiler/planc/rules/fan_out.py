"""`for_each` steps: what they read, what they may combine with, and where `${{ item }}` is set."""

from __future__ import annotations

import re
from collections.abc import Iterator

from planc.diagnostics import Diagnostic, Span, error
from planc.references import output_problem
from planc.rules.base import RuleContext
from planc.rules.dataflow import placeholder_strings

CODES = {
    "for-each-invalid": (
        "a `for_each` that is not one `${{ steps.ID.outputs.NAME }}`",
        "A fan-out runs one instance per element of a step's output, a JSON list:\n\n"
        '    for_each: "${{ steps.list_tasks.outputs.tasks }}"\n    max_items: 20',
    ),
    "item-outside-fan-out": (
        "`${{ item }}` in a step that is neither a `for_each` step nor its fallback",
        "Only an instance of a fan-out has an element to read.",
    ),
}

_FOR_EACH = re.compile(
    r"\$\{\{\s*steps\.([A-Za-z_][A-Za-z0-9_.-]*?)\.outputs\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}"
)
_ITEM = re.compile(r"\$\{\{\s*item\s*\}\}")


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    fan_outs = {step.id for step in ctx.plan.steps if step.has("for_each")}
    fallbacks = {str(s.get("fallback")) for s in ctx.plan.steps if s.id in fan_outs}
    for step in ctx.plan.steps:
        if step.has("for_each") != step.has("max_items"):
            present, missing = ("for_each", "max_items") if step.has("for_each") else (
                "max_items", "for_each")  # fmt: skip
            yield error(
                ctx.path,
                step.key_span(present),
                "for-each-invalid",
                f"step `{step.id}` has `{present}` without `{missing}`",
                "a fan-out needs both: the list to run over and its largest size",
            )
        if step.has("for_each"):
            yield from _for_each(ctx, step.id, str(step.get("for_each")), step.span_of("for_each"))
            if step.id in ctx.graph.fallback_steps:
                yield error(
                    ctx.path,
                    step.id_span,
                    "for-each-invalid",
                    f"fallback step `{step.id}` cannot fan out: it runs once per failure",
                )
        if step.id in fan_outs:
            continue
        if step.id in fallbacks:
            others = [s.id for s in ctx.plan.steps if s.get("fallback") == step.id]
            ordinary = [sid for sid in others if sid not in fan_outs]
            if ordinary:
                yield error(
                    ctx.path,
                    step.id_span,
                    "item-outside-fan-out",
                    f"`{step.id}` is the fallback of for_each step(s) and of `{ordinary[0]}`,"
                    " which runs it once, without an element",
                    "give the for_each step a fallback of its own",
                )
            continue
        for _, scalar in placeholder_strings(step):
            match = _ITEM.search(str(scalar.value))
            if match is not None:
                yield error(
                    ctx.path,
                    scalar.position_of(match.start(), match.end() - match.start()),
                    "item-outside-fan-out",
                    f"step `{step.id}` reads `${{{{ item }}}}`, but it has no `for_each`",
                    "add `for_each` and `max_items`, or make it the fallback of a for_each step",
                )


def _for_each(ctx: RuleContext, reader: str, text: str, span: Span) -> Iterator[Diagnostic]:
    match = _FOR_EACH.fullmatch(text.strip())
    if match is None:
        yield error(
            ctx.path,
            span,
            "for-each-invalid",
            f"`for_each` of `{reader}` must be one `${{{{ steps.ID.outputs.NAME }}}}`",
            "the output is a JSON list written to $PLAN_OUTPUT by an upstream step",
        )
        return
    problem = output_problem(ctx, reader, match.group(1), match.group(2))
    if problem is not None:
        yield error(ctx.path, span, problem.code, problem.message, problem.hint)
