"""Step conditions: the language's own errors (planc.conditions) placed in the file, then what
needs the graph: each step a condition reads exists and is upstream, and the condition can be
true (and is not trivially true) given the step's trigger rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from planc.condition_syntax import (
    STATUSES,
    And,
    Compare,
    EnvRef,
    Expr,
    ListLit,
    Literal,
    Not,
    Or,
    OutputRef,
    ParamRef,
    StepRef,
    walk,
)
from planc.conditions import parse_condition, to_ir
from planc.diagnostics import Diagnostic, error, warning
from planc.model import SourceStep
from planc.nodes import ScalarNode
from planc.references import Problem, output_problem, param_problem
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean

_ALL = frozenset(STATUSES)
_FAILED = frozenset({"failed", "timed_out"})
_SUCCESS = frozenset({"success"})
_ADVICE = {
    "all_success": "; use trigger_rule: all_done or one_failed to react to failures",
    "none_failed": "; use trigger_rule: all_done or one_failed to react to failures",
    "one_failed": "; use trigger_rule: all_done to react to any outcome",
    "one_success": "; use trigger_rule: all_done to react to any outcome",
}

# What a step's condition may know about each direct dependency: its possible statuses.
Outcomes = dict[str, frozenset[str]]


def condition_ir(text: str) -> dict[str, Any] | None:
    """The IR's `condition` object for a valid condition text; None when it has errors."""
    parsed = parse_condition(text)
    return None if parsed.ast is None else {"source": text, "ast": to_ir(parsed.ast)}


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
    outcomes = {dep: _possible(rule, ctx.graph.steps[dep], len(deps)) for dep in deps}
    verdict = _abstract(ast, outcomes)
    if verdict is None:
        return
    read = list(dict.fromkeys(r.step for r in nodes if _is_status_of(r, outcomes)))
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
    elif all(outcomes[dep] == _ALL for dep in read):
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


def _possible(rule: str, dep: SourceStep, dep_count: int) -> frozenset[str]:
    """The statuses a direct dependency can have when a step with `rule` gets to run."""
    if rule in ("all_success", "none_failed"):
        tolerated = dep.get("on_failure") in ("continue", "fallback_step")
        statuses = _SUCCESS | (_FAILED if tolerated else frozenset())
        return statuses | {"skipped"} if rule == "none_failed" else statuses
    # With several dependencies, "one failed" says nothing about any particular one.
    if rule == "one_failed" and dep_count == 1:
        return _FAILED
    if rule == "one_success" and dep_count == 1:
        return _SUCCESS
    return _ALL


def _abstract(node: Expr, outcomes: Outcomes) -> bool | None:
    """True / False when the condition has that value for every possible outcome, else None.

    Only `status` tests on direct dependencies are known; everything else (including a literal
    `true`/`false`, written on purpose) is unknown. Recursion is bounded by the nesting limit.
    """
    if isinstance(node, Or | And):
        values = [_abstract(operand, outcomes) for operand in node.operands]
        decisive = isinstance(node, Or)  # the operand value that decides the whole
        if decisive in values:
            return decisive
        return (not decisive) if all(v is not None for v in values) else None
    if isinstance(node, Not):
        value = _abstract(node.operand, outcomes)
        return None if value is None else not value
    if isinstance(node, Compare):
        return _status_test(node, outcomes)
    return None


def _status_test(node: Compare, outcomes: Outcomes) -> bool | None:
    if node.op in ("in", "not in"):
        if not _is_status_of(node.left, outcomes) or not isinstance(node.right, ListLit):
            return None
        found = _contains(outcomes[node.left.step], {item.value for item in node.right.items})
        return found if node.op == "in" or found is None else not found
    if node.op not in ("==", "!="):
        return None
    for ref, other in ((node.left, node.right), (node.right, node.left)):
        if _is_status_of(ref, outcomes) and isinstance(other, Literal):
            equal = _contains(outcomes[ref.step], {other.value})
            return equal if node.op == "==" or equal is None else not equal
    return None


def _is_status_of(node: Expr, outcomes: Outcomes) -> TypeGuard[StepRef]:
    return isinstance(node, StepRef) and node.attr == "status" and node.step in outcomes


def _contains(statuses: frozenset[str], values: set[object]) -> bool | None:
    """Whether the dependency's status is among `values`: always, never, or it depends."""
    if statuses <= values:
        return True
    if not statuses & values:
        return False
    return None


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
