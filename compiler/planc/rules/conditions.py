"""Step conditions: the language's own errors (planc.conditions) placed in the file, then what
needs the graph: each step a condition reads exists and is upstream, and the condition can be
true (and is not trivially true) given the step's trigger rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from planc.condition_verdict import (
    ALL_STATUSES,
    Outcomes,
    constant_value,
    is_status_of,
    possible_statuses,
)
from planc.conditions import parse_condition
from planc.diagnostics import Diagnostic, error, warning
from planc.model import SourceStep
from planc.nodes import ScalarNode
from planc.references import Problem, output_problem, param_problem
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean
from planrun.core.conditions import (
    STATUSES,
    EnvRef,
    Expr,
    OutputRef,
    ParamRef,
    StepRef,
    to_json,
    walk,
)

_ADVICE = {
    "all_success": "; use trigger_rule: all_done or one_failed to react to failures",
    "none_failed": "; use trigger_rule: all_done or one_failed to react to failures",
    "one_failed": "; use trigger_rule: all_done to react to any outcome",
    "one_success": "; use trigger_rule: all_done to react to any outcome",
}

# What a step's condition may know about each direct dependency: its possible statuses.


def condition_ir(text: str) -> dict[str, Any] | None:
    """The IR's `condition` object for a valid condition text; None when it has errors."""
    parsed = parse_condition(text)
    return None if parsed.ast is None else {"source": text, "ast": to_json(parsed.ast)}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    for step in ctx.plan.steps:
        node = step.scalar("condition")
        if node is not None and isinstance(node.value, str):
            yield from _check_condition(ctx, step, node, node.value)


def _check_condition(
    ctx: RuleContext, step: SourceStep, node: ScalarNode, text: str
) -> Iterator[Diagnostic]:
    parsed = parse_condition(text)
    if parsed.ast is None:
        for e in parsed.errors:
            yield error(ctx.path, node.position_of(e.offset, e.length), e.code, e.message, e.hint)
        return
    nodes = list(walk(parsed.ast))  # every check below reads them all
    reference_errors = list(_reference_errors(ctx, step, node, text, nodes))
    yield from reference_errors
    # Reasoning about outcomes of steps that are missing or not upstream would only add noise.
    if not reference_errors:
        yield from _trigger_rule_verdict(ctx, step, node, parsed.ast, nodes)


def _dataflow_errors(
    ctx: RuleContext, step: SourceStep, node: ScalarNode, nodes: list[Expr]
) -> Iterator[Diagnostic]:
    """Params, step outputs and secrets read by the condition (docs/dataflow.md)."""
    secrets = ctx.plan.secret_names
    for ref in nodes:
        problem = None
        if isinstance(ref, ParamRef):
            problem = param_problem(ctx, ref.name)
            if problem is None and ref.name in ctx.plan.secret_params:
                problem = Problem(
                    "secret-in-condition",
                    f"the condition of `{step.id}` reads secret param `{ref.name}`",
                    "a condition's text and result are recorded; test the secret inside the step",
                )
        elif isinstance(ref, OutputRef):
            problem = output_problem(ctx, step.id, ref.step, ref.name)
        elif isinstance(ref, EnvRef) and ref.name in secrets:
            problem = Problem(
                "secret-in-condition",
                f"the condition of `{step.id}` reads secret `{ref.name}`",
                "a condition's text and result are recorded; test the secret inside the step",
            )
        if problem is not None:
            span = node.position_of(ref.offset, ref.length)
            yield error(ctx.path, span, problem.code, problem.message, problem.hint)


def _reference_errors(
    ctx: RuleContext, step: SourceStep, node: ScalarNode, text: str, nodes: list[Expr]
) -> Iterator[Diagnostic]:
    yield from _dataflow_errors(ctx, step, node, nodes)
    for ref in nodes:
        if not isinstance(ref, StepRef) or ctx.graph.is_upstream(ref.step, step.id):
            continue
        # Point at the id itself, past `steps.` or `prev.`.
        prefix = len("prev.") if text.startswith("prev.", ref.offset) else len("steps.")
        span = node.position_of(ref.offset + prefix, len(ref.step))
        if ref.step not in ctx.graph.steps:
            yield error(
                ctx.path,
                span,
                "condition-unknown-step",
                f"the condition of `{step.id}` reads `{ref.step}`, which is not a step of this"
                " plan",
                did_you_mean(ref.step, ctx.graph.steps.keys()),
            )
        elif ref.step == step.id:
            yield error(
                ctx.path,
                span,
                "condition-not-upstream",
                f"the condition of `{step.id}` reads `{step.id}` itself, which has not run yet",
                "a condition can only read steps its step depends on",
            )
        else:
            yield error(
                ctx.path,
                span,
                "condition-not-upstream",
                f"the condition of `{step.id}` reads `{ref.step}`, which `{step.id}` does not"
                f" depend on, so `{ref.step}` may not have finished",
                f"add `{ref.step}` to depends_on of `{step.id}`",
            )


def _trigger_rule_verdict(
    ctx: RuleContext, step: SourceStep, node: ScalarNode, ast: Expr, nodes: list[Expr]
) -> Iterator[Diagnostic]:
    rule = str(step.get("trigger_rule") or "all_success")
    deps = ctx.graph.deps.get(step.id, [])
    outcomes = {dep: possible_statuses(rule, ctx.graph.steps[dep], len(deps)) for dep in deps}
    verdict = constant_value(ast, outcomes)
    if verdict is None:
        return
    read = list(dict.fromkeys(r.step for r in nodes if is_status_of(r, outcomes)))
    runs_when = _runs_when(read, outcomes)
    span = node.position_of(ast.offset, ast.length)
    if verdict:
        yield warning(
            ctx.path,
            span,
            "condition-always-true",
            f"the condition of `{step.id}` is always true under trigger_rule: {rule}",
            f"under trigger_rule: {rule} this step only runs when {runs_when}, so the condition"
            " changes nothing; remove it",
        )
    elif all(outcomes[dep] == ALL_STATUSES for dep in read):
        yield error(
            ctx.path,
            span,
            "condition-never-true",
            f"the condition of `{step.id}` can never be true, so the step would always be skipped",
            f"no outcome of {_join([f'`{dep}`' for dep in read])} makes it true",
        )
    else:
        yield error(
            ctx.path,
            span,
            "condition-never-true",
            f"the condition of `{step.id}` can never be true under trigger_rule: {rule}, so the"
            " step would always be skipped",
            f"under trigger_rule: {rule} this step only runs when {runs_when}"
            + _ADVICE.get(rule, ""),
        )


def _runs_when(deps: list[str], outcomes: Outcomes) -> str:
    parts = []
    for dep in deps:
        statuses = [s for s in STATUSES if s in outcomes[dep]]
        if statuses == ["success"]:
            parts.append(f"`{dep}` succeeded")
        else:
            parts.append(f"`{dep}` ended {_join(statuses, 'or')}")
    return _join(parts)


def _join(words: list[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {last} " + words[-1]
