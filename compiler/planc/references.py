"""What a step may read: params, other steps' outputs, secrets. Shared by the interpolation and
condition rules, so both give the same verdict and the same words."""

from __future__ import annotations

from dataclasses import dataclass

from planc.condition_syntax import OutputRef, walk
from planc.conditions import parse_condition
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean
from planrun.interpolate import Reference, find


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    hint: str | None = None


def declared_params(ctx: RuleContext) -> dict[str, dict[str, object]]:
    params = ctx.plan.raw.get("params") or {}
    return params if isinstance(params, dict) else {}


def param_problem(ctx: RuleContext, name: str) -> Problem | None:
    params = declared_params(ctx)
    if name in params:
        return None
    hint = did_you_mean(name, params) or "declare it under `params:`"
    return Problem("unknown-param", f"`params.{name}` is not a declared param", hint)


def is_visible_producer(ctx: RuleContext, producer: str, reader: str) -> bool:
    """Whether `producer` has certainly finished when `reader` starts. A fallback step has no
    dependencies: it runs after a step naming it failed, so what every such step depends on
    (and the step itself) is finished."""
    graph = ctx.graph
    if reader not in graph.fallback_steps:
        return graph.is_upstream(producer, reader)
    namers = [s.id for s in ctx.plan.steps if s.get("fallback") == reader]
    return all(producer == n or graph.is_upstream(producer, n) for n in namers)


def output_problem(ctx: RuleContext, reader: str, producer: str, name: str) -> Problem | None:
    graph = ctx.graph
    if producer not in graph.steps:
        return Problem(
            "unknown-step-reference",
            f"`{producer}` is not a step of this plan",
            did_you_mean(producer, graph.steps),
        )
    provides = [r.name for r in graph.steps[producer].refs("provides")]
    if name not in provides:
        hint = did_you_mean(name, provides) or f"add `{name}` to `provides` of `{producer}`"
        return Problem(
            "unknown-output", f"step `{producer}` does not provide an output `{name}`", hint
        )
    if not is_visible_producer(ctx, producer, reader):
        return Problem(
            "output-not-upstream",
            f"`{reader}` reads an output of `{producer}`, which it does not depend on, so the"
            " value may not exist yet",
            f"add `{producer}` to depends_on of `{reader}`"
            if reader not in graph.fallback_steps
            else f"every step that falls back to `{reader}` must depend on `{producer}`",
        )
    return None


def referenced_outputs(ctx: RuleContext) -> set[tuple[str, str]]:
    """(producer, output) pairs that some placeholder or condition reads."""
    found: set[tuple[str, str]] = set()
    for step in ctx.plan.steps:
        texts = [step.get("command"), step.get("cwd"), step.get("for_each")]
        texts += list(step.get("args") or [])
        texts += list((step.get("env") or {}).values())
        for text in texts:
            if isinstance(text, str) and "${{" in text:
                found.update(
                    (ref.step, ref.name)
                    for ref in find(text)
                    if isinstance(ref, Reference) and ref.step is not None
                )
        condition = step.get("condition")
        if isinstance(condition, str) and ".outputs." in condition:
            ast = parse_condition(condition).ast
            if ast is not None:
                found.update((n.step, n.name) for n in walk(ast) if isinstance(n, OutputRef))
    return found
