"""Reachability: which outcomes each step can have, so which steps can never run, which conditions
are decided in advance, and which fallbacks are never needed.

The abstract domain (docs/analysis.md, "Reachability") is, per step, the set of outcomes it can end
with: `success`, `failed`, `timed_out` (each failure either tolerated or not), `skipped`,
`cancelled`. It is computed once, in topological order, from the dependencies' sets, the step's
trigger rule, its condition, `on_failure`, `critical` and whether it has a timeout. Every set is an
over-approximation (dependencies are treated as independent), so every "never" reported is a
certainty.

The condition verdict reuses `planc.condition_verdict`, as the rule in `planc.rules.conditions`
does (here over the IR condition AST). The rule already reports what it can prove from direct
dependencies alone; this analysis only adds what needs the finer sets (a dependency that can
never time out, a step that never runs, a step read further upstream), so nothing is reported
twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from planc.analysis.context import AnalysisContext
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
from planc.condition_verdict import constant_value, possible_statuses
from planc.conditions import parse_condition
from planc.diagnostics import Diagnostic, Span, error, warning

# An outcome: a final status, and for failures whether they are tolerated (semantics.md §4).
Outcome = tuple[str, bool]

SUCCESS: Outcome = ("success", False)
SKIPPED: Outcome = ("skipped", False)
CANCELLED: Outcome = ("cancelled", False)
FAILURE_STATUSES = ("failed", "timed_out")
CLEANUP_RULES = ("all_done", "one_failed")


@dataclass
class StepFlow:
    """What the analysis knows about one step."""

    outcomes: frozenset[Outcome]
    can_run: bool
    # Why the step never runs (a sentence naming the dependency to blame), when it never runs.
    blocked_by: str | None = None
    condition_verdict: bool | None = None
    trigger_can_be_met: bool = True

    def statuses(self) -> frozenset[str]:
        return frozenset(status for status, _ in self.outcomes)


@dataclass
class Flow:
    steps: dict[str, StepFlow] = field(default_factory=dict)


def flow_of(ctx: AnalysisContext) -> Flow:
    """The flow of `ctx.ir`, computed once for every analysis that needs it."""
    flow = ctx.memo.get("reachability")
    if not isinstance(flow, Flow):
        flow = ctx.memo["reachability"] = analyse(ctx.ir)
    return flow


def analyse(ir: dict[str, Any]) -> Flow:
    """Outcome sets of every step: one pass in topological order, one over fallback chains."""
    steps: list[dict[str, Any]] = ir["steps"]
    by_id = {step["id"]: step for step in steps}
    flow = Flow()
    for step in steps:
        if not step["is_fallback"]:
            flow.steps[step["id"]] = _ordinary(step, by_id, flow)
    _fallbacks(steps, by_id, flow)
    return flow


# --- the transfer function -----------------------------------------------------------------------


def _ran(step: dict[str, Any]) -> set[Outcome]:
    """Outcomes of a step that starts: any command can succeed and fail (time out only with a
    limit); whether a failure is tolerated follows its policy (a fallback can succeed or fail)."""
    limited = step["timeout_sec"] is not None or step["heartbeat_timeout_sec"] is not None
    failures = [s for s in FAILURE_STATUSES if s == "failed" or limited]
    policy = step["on_failure"]
    tolerance = {"continue": (True,), "fallback_step": (True, False)}.get(policy, (False,))
    return {SUCCESS} | {(status, t) for status in failures for t in tolerance}


def _aborts(step: dict[str, Any]) -> bool:
    return bool(step["on_failure"] == "abort" and step["critical"])


def _satisfies(rule: str, outcome: Outcome) -> bool:
    """Whether one dependency's outcome lets an all_success / none_failed step run."""
    status, tolerated = outcome
    return status == "success" or tolerated or (rule == "none_failed" and status == "skipped")


def _ordinary(step: dict[str, Any], by_id: dict[str, dict[str, Any]], flow: Flow) -> StepFlow:
    rule = step["trigger_rule"]
    deps: list[str] = step["depends_on"]
    met, unmet_skips, blame = _trigger(rule, deps, by_id, flow)
    outcomes: set[Outcome] = set()
    if rule not in CLEANUP_RULES:
        # A first SIGINT cancels every pending ordinary step, wherever it is in the plan.
        outcomes.add(CANCELLED)
    if unmet_skips:
        outcomes.add(SKIPPED)
    verdict: bool | None = None
    if met and step["condition"] is not None:
        verdict = condition_verdict(step, flow)
    can_run = met and verdict is not False
    if met and verdict is not True and step["condition"] is not None:
        outcomes.add(SKIPPED)
    if can_run:
        outcomes |= _ran(step)
    if not met:
        blocked = blame
    elif verdict is False:
        blocked = "its condition can never be true"
    else:
        blocked = None
    return StepFlow(frozenset(outcomes), can_run, blocked, verdict, met)


def _trigger(
    rule: str, deps: list[str], by_id: dict[str, dict[str, Any]], flow: Flow
) -> tuple[bool, bool, str]:
    """(can the rule be met, can it be unmet in a way that skips the step, who to blame)."""
    if not deps or rule == "all_done":
        return True, False, ""
    if rule in ("all_success", "none_failed"):
        never = [d for d in deps if not any(_satisfies(rule, o) for o in flow.steps[d].outcomes)]
        # A dependency that fails untolerated with a critical abort cancels the step instead.
        skips = any(
            not _satisfies(rule, o)
            and o != CANCELLED
            and not (o[0] in FAILURE_STATUSES and _aborts(by_id[d]))
            for d in deps
            for o in flow.steps[d].outcomes
        )
        wanted = "succeed" if rule == "all_success" else "succeed or be skipped"
        # A dependency that starts can always succeed, so only one that never runs blocks it.
        blame = ""
        if never:
            first = never[0]
            blame = f"under trigger_rule: {rule} it needs `{first}` to {wanted}, and `{first}`"
            blame += " never runs"
        return not never, skips, blame
    wanted_statuses = FAILURE_STATUSES if rule == "one_failed" else ("success",)
    can_meet = any(o[0] in wanted_statuses for d in deps for o in flow.steps[d].outcomes)
    can_miss = all(any(o[0] not in wanted_statuses for o in flow.steps[d].outcomes) for d in deps)
    verb = "fail" if rule == "one_failed" else "succeed"
    names = ", ".join(f"`{d}`" for d in deps)
    blame = f"under trigger_rule: {rule} one of {names} must {verb}, and none of them ever runs"
    return can_meet, can_miss, blame


def _fallbacks(steps: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], flow: Flow) -> None:
    """A fallback runs when a step naming it runs and fails; a run step can always fail. Chains
    (a fallback with its own fallback) are followed from each step that can run."""
    named_by: dict[str, list[str]] = {}
    for step in steps:
        if step["on_failure"] == "fallback_step" and step["fallback"] is not None:
            named_by.setdefault(step["fallback"], []).append(step["id"])
    runnable: set[str] = set()
    for step in steps:
        current = step["id"]
        if step["is_fallback"] or not flow.steps[current].can_run:
            continue
        # Walk the chain until it reaches a fallback already known to run: linear overall.
        nxt = (
            by_id[current]["fallback"] if by_id[current]["on_failure"] == "fallback_step" else None
        )
        while nxt is not None and nxt not in runnable:
            runnable.add(nxt)
            fb = by_id[nxt]
            nxt = fb["fallback"] if fb["on_failure"] == "fallback_step" else None
    for step in steps:
        if not step["is_fallback"]:
            continue
        sid = step["id"]
        # Skipped `not_needed` is always possible: the step naming it may succeed.
        outcomes = {SKIPPED} | (_ran(step) if sid in runnable else set())
        names = ", ".join(f"`{n}`" for n in named_by.get(sid, []))
        blame = None if sid in runnable else f"no step that falls back to it ever runs ({names})"
        flow.steps[sid] = StepFlow(frozenset(outcomes), sid in runnable, blame)


# --- conditions ----------------------------------------------------------------------------------


def from_ir(node: dict[str, Any]) -> Expr:
    """The compiler's AST for an IR condition AST (the inverse of `planc.conditions.to_ir`), so
    `constant_value` can read it without parsing the text again. Positions are left at 0:
    a diagnostic re-parses its source for them. planc caps nesting at ~100 levels, so the
    recursion is bounded."""
    kind = node["kind"]
    if kind in ("or", "and"):
        operands = tuple(from_ir(operand) for operand in node["operands"])
        return Or(0, 0, operands) if kind == "or" else And(0, 0, operands)
    if kind == "not":
        return Not(0, 0, from_ir(node["operand"]))
    if kind == "compare":
        return Compare(0, 0, node["op"], from_ir(node["left"]), from_ir(node["right"]))
    if kind == "step":
        return StepRef(0, 0, node["step"], node["attr"])
    if kind == "env":
        return EnvRef(0, 0, node["name"])
    if kind == "param":
        return ParamRef(0, 0, node["name"])
    if kind == "output":
        return OutputRef(0, 0, node["step"], node["name"])
    if kind == "list":
        return ListLit(0, 0, tuple(Literal(0, 0, item["value"]) for item in node["items"]))
    return Literal(0, 0, node["value"])


def condition_verdict(step: dict[str, Any], flow: Flow) -> bool | None:
    """True/False when the condition has that value for every outcome the steps it reads can
    have when this step gets to decide; None when it depends on what happens."""
    ast = from_ir(step["condition"]["ast"])
    return constant_value(ast, _visible(step, ast, flow))


def _visible(step: dict[str, Any], ast: Expr, flow: Flow) -> dict[str, frozenset[str]]:
    """Statuses the condition can read: for direct dependencies those the trigger rule lets
    through (`possible_statuses`, as the rule does), intersected with what each can really end
    with."""
    rule = step["trigger_rule"]
    deps = step["depends_on"]
    read = {node.step for node in walk(ast) if isinstance(node, StepRef)}
    visible: dict[str, frozenset[str]] = {}
    for sid in read:
        if sid not in flow.steps:
            continue
        outcomes = flow.steps[sid].outcomes
        if sid in deps and rule in ("all_success", "none_failed"):
            outcomes = frozenset(o for o in outcomes if _satisfies(rule, o))
        elif sid in deps and len(deps) == 1 and rule in ("one_failed", "one_success"):
            wanted = FAILURE_STATUSES if rule == "one_failed" else ("success",)
            outcomes = frozenset(o for o in outcomes if o[0] in wanted)
        visible[sid] = frozenset(status for status, _ in outcomes)
    return visible


def _rule_verdict(step: dict[str, Any], ast: Expr, ctx: AnalysisContext) -> bool | None:
    """What `planc.rules.conditions` concludes on its own (it reports that itself)."""
    if ctx.graph is None:
        return None
    deps = step["depends_on"]
    rule = step["trigger_rule"]
    known = {d: possible_statuses(rule, ctx.graph.steps[d], len(deps)) for d in deps}
    return constant_value(ast, known)


# --- the `planc check` analysis ------------------------------------------------------------------


def check(ctx: AnalysisContext) -> Iterator[Diagnostic]:
    flow = flow_of(ctx)
    for step in ctx.steps:
        sid = step["id"]
        state = flow.steps[sid]
        if step["is_fallback"]:
            if not state.can_run:
                yield warning(
                    ctx.path,
                    ctx.step_span(sid),
                    "fallback-never-needed",
                    f"fallback step `{sid}` is never needed: {state.blocked_by}",
                    "fix the step that should fall back to it, or remove the fallback",
                )
            continue
        if not state.trigger_can_be_met:
            yield warning(
                ctx.path,
                ctx.step_span(
                    sid, "trigger_rule" if step["trigger_rule"] != "all_success" else None
                ),
                "never-runs",
                f"step `{sid}` can never run: {state.blocked_by}",
                "every run skips it: fix the cause upstream first",
            )
        elif state.condition_verdict is not None:
            yield from _condition(ctx, step, state, flow)


def _condition(
    ctx: AnalysisContext, step: dict[str, Any], state: StepFlow, flow: Flow
) -> Iterator[Diagnostic]:
    ast = from_ir(step["condition"]["ast"])
    if _rule_verdict(step, ast, ctx) is not None:
        return  # planc.rules.conditions has reported this one already
    sid = step["id"]
    visible = _visible(step, ast, flow)
    read = [r for r in dict.fromkeys(n.step for n in walk(ast) if isinstance(n, StepRef))]
    why = "; ".join(_can_only(r, visible[r], flow) for r in read if r in visible)
    span = _condition_span(ctx, sid, step["condition"]["source"])
    if state.condition_verdict:
        yield warning(
            ctx.path,
            span,
            "condition-always-true",
            f"the condition of `{sid}` is always true when `{sid}` gets to run",
            f"{why}; the condition changes nothing, remove it",
        )
    else:
        yield error(
            ctx.path,
            span,
            "condition-never-true",
            f"the condition of `{sid}` can never be true, so the step would always be skipped",
            why,
        )


def _can_only(step_id: str, statuses: frozenset[str], flow: Flow) -> str:
    shown = [s for s in STATUSES if s in statuses]
    text = ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else "".join(shown)
    reason = ""
    if "timed_out" not in flow.steps[step_id].statuses() and flow.steps[step_id].can_run:
        reason = " (it has no timeout, so it never times out)"
    elif not flow.steps[step_id].can_run:
        reason = " (it never runs)"
    return f"`{step_id}` can only be {text or 'nothing'} here{reason}"


def _condition_span(ctx: AnalysisContext, step_id: str, source: str) -> Span:
    """The condition's text, as planc.rules.conditions underlines it."""
    parsed = parse_condition(source).ast
    if parsed is not None and ctx.graph is not None and step_id in ctx.graph.steps:
        node = ctx.graph.steps[step_id].scalar("condition")
        if node is not None:
            return node.position_of(parsed.offset, parsed.length)
    return ctx.step_span(step_id, "condition")
