"""Fallback steps: they exist, have no dependencies, nobody depends on them, no chain loops."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean

CODES = {
    "unknown-fallback": (
        "`fallback` names a step that does not exist",
        "    - id: merge\n      on_failure: fallback_step\n      fallback: restore   # no step"
        " `restore`",
    ),
    "fallback-has-dependencies": (
        "a fallback step has `depends_on` or `consumes`",
        "A fallback step runs only when the step naming it fails, so it cannot wait for other"
        " steps.\n\n    - id: restore\n      depends_on: [snapshot]   # remove this",
    ),
    "depends-on-fallback": (
        "a step depends on a fallback step",
        "A fallback step runs only on failure, so a step that needs it could never be ordered."
        " Depend on the failing step with `trigger_rule: one_failed` or `all_done` instead.",
    ),
    "fallback-cycle": (
        "fallback steps name each other in a loop",
        "    - id: a\n      on_failure: fallback_step\n      fallback: b\n"
        "    - id: b\n      on_failure: fallback_step\n      fallback: a",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    graph = ctx.graph
    for step in ctx.plan.steps:
        fallback = step.get("fallback")
        if isinstance(fallback, str) and fallback not in graph.steps:
            yield error(
                ctx.path,
                step.span_of("fallback"),
                "unknown-fallback",
                f"step `{step.id}` falls back to `{fallback}`, which is not a step of this plan",
                did_you_mean(fallback, graph.steps),
            )
    for fallback_id in sorted(graph.fallback_steps, key=lambda s: graph.steps[s].index):
        step = graph.steps[fallback_id]
        for key in ("depends_on", "consumes"):
            if step.refs(key):
                yield error(
                    ctx.path,
                    step.key_span(key),
                    "fallback-has-dependencies",
                    f"fallback step `{fallback_id}` has `{key}`; fallback steps run only when"
                    " the step naming them fails",
                    "remove it; a fallback starts as soon as the failure is final",
                )
    yield from _depends_on_fallback(ctx)
    yield from _loops(ctx)


def _depends_on_fallback(ctx: RuleContext) -> Iterator[Diagnostic]:
    graph = ctx.graph
    for step in ctx.plan.steps:
        for ref in step.refs("depends_on"):
            if ref.name in graph.fallback_steps:
                yield error(
                    ctx.path,
                    ref.span,
                    "depends-on-fallback",
                    f"step `{step.id}` depends on fallback step `{ref.name}`, which only runs"
                    " when another step fails",
                    "depend on the failing step with `trigger_rule: one_failed` instead",
                )


def _loops(ctx: RuleContext) -> Iterator[Diagnostic]:
    graph = ctx.graph
    reported: set[str] = set()
    for step in ctx.plan.steps:
        chain = [step.id]
        current = step.get("fallback")
        while isinstance(current, str) and current in graph.steps:
            if current in chain:
                loop = chain[chain.index(current) :]
                if not reported.intersection(loop):
                    reported.update(loop)
                    yield error(
                        ctx.path,
                        step.span_of("fallback"),
                        "fallback-cycle",
                        "fallback chain loops: " + " -> ".join([*loop, current]),
                        "a fallback step must not (transitively) fall back to itself",
                    )
                break
            chain.append(current)
            current = graph.steps[current].get("fallback")
