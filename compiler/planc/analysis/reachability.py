"""Reachability: which outcomes each step can have, so which steps can never run, which conditions
are decided in advance, and which fallbacks are never needed.

The abstract domain (docs/analysis.md, "Reachability") is, per step, the set of outcomes it can end
with: `success`, `failed`, `timed_out` (each failure either tolerated or not), `skipped`,
`cancelled`. It is computed once, in topological order, from the dependencies' sets, the step's
trigger rule, its condition, `on_failure`, `critical` and whether it has a timeout. Every set is an
over-approximation (dependencies are treated as independent), so every "never" reported is a
certainty.

The condition verdict reuses `planc.condition_verdict`, as the rule in `planc.rules.conditions`
does (here over the IR condition AST, read back with `planrun.core.conditions.from_json`). The rule
already reports what it can prove from direct dependencies alone; this analysis only adds what
needs the finer sets (a dependency that can never time out, a step that never runs, a step read
further upstream), so nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from typing import Any

from planc.analysis.context import AnalysisContext, typed
from planc.condition_verdict import KIND_SETS, constant_value, possible_statuses
from planc.conditions import parse_condition
from planc.diagnostics import Diagnostic, Span, error, warning
from planrun.core import trigger_rules as tr
from planrun.core.conditions import STATUSES, Expr, StepRef, from_json, walk
from planrun.core.ir_types import IRPlan, IRStep, OnFailure
from planrun.core.status import FAILURES
from planrun.core.trigger_rules import TriggerRule

# An outcome: a final status, and for failures whether they are tolerated (semantics.md §4).
Outcome = tuple[str, bool]

SUCCESS: Outcome = ("success", False)
SKIPPED: Outcome = ("skipped", False)
UPSTREAM_FAILED: Outcome = ("upstream_failed", False)
CANCELLED: Outcome = ("cancelled", False)


@dataclass(eq=False, repr=False)
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


@dataclass(eq=False, repr=False)
class Flow:
    steps: dict[str, StepFlow] = field(default_factory=dict)
    can_abort: bool = True  # some step can abort the plan, so `cancelled` can mean an abort
    conditions: dict[str, Expr] = field(default_factory=dict)  # each step's, read from the IR once


def flow_of(ctx: AnalysisContext) -> Flow:
    """The flow of `ctx.ir`, computed once for every analysis that needs it."""
    flow = ctx.memo.get("reachability")
    if not isinstance(flow, Flow):
        flow = ctx.memo["reachability"] = analyse(ctx.typed_ir)
    return flow


def analyse(ir: IRPlan | Mapping[str, Any]) -> Flow:
    """Outcome sets of every step: one pass in topological order, one over fallback chains."""
    steps = typed(ir).steps
    by_id = {step.id: step for step in steps}
    conditions = {s.id: from_json(s.condition["ast"]) for s in steps if s.condition is not None}
    # A cancelled dependency reads as a failure only when an abort cancelled it. First assume
    # nothing aborts: the first abort of any run comes from a step that started before it, so
    # if no step that can run in that world aborts, none ever does. Otherwise assume aborts.
    flow = _pass(steps, by_id, Flow(can_abort=False, conditions=conditions))
    if any(_aborts(s) and flow.steps[s.id].can_run for s in steps):
        flow = _pass(steps, by_id, Flow(can_abort=True, conditions=conditions))
    return flow


def _pass(steps: Sequence[IRStep], by_id: dict[str, IRStep], flow: Flow) -> Flow:
    for step in steps:
        if not step.is_fallback:
            flow.steps[step.id] = _ordinary(step, by_id, flow)
    _fallbacks(steps, by_id, flow)
    return flow


# --- the transfer function -----------------------------------------------------------------------


def _ran(step: IRStep) -> set[Outcome]:
    """Outcomes of a step that starts: any command can succeed and fail (time out only with a
    limit); whether a failure is tolerated follows its policy (a fallback can succeed or fail)."""
    limited = step.timeout_sec is not None or step.heartbeat_timeout_sec is not None
    failures = [s for s in FAILURES if s == "failed" or limited]
    policy = step.on_failure
    tolerance = {OnFailure.CONTINUE: (True,), OnFailure.FALLBACK_STEP: (True, False)}.get(
        policy, (False,)
    )
    return {SUCCESS} | {(status, t) for status in failures for t in tolerance}


def _aborts(step: IRStep) -> bool:
    return bool(step.on_failure is OnFailure.ABORT and step.critical)


def _satisfies(rule: str, outcome: Outcome) -> bool:
    """Whether one dependency's outcome lets an all_success / none_failed step run."""
    status, tolerated = outcome
    return status == "success" or tolerated or (rule == "none_failed" and status == "skipped")


def _ordinary(step: IRStep, by_id: dict[str, IRStep], flow: Flow) -> StepFlow:
    rule = step.trigger_rule
    deps = step.depends_on
    verdicts = _verdicts(rule, deps, by_id, flow)
    met = "run" in verdicts
    outcomes: set[Outcome] = set()
    if not rule.is_cleanup:
        # A first SIGINT cancels every pending ordinary step, wherever it is in the plan.
        outcomes.add(CANCELLED)
    if "skipped" in verdicts:
        outcomes.add(SKIPPED)
    if "upstream_failed" in verdicts:
        outcomes.add(UPSTREAM_FAILED)
    verdict: bool | None = None
    if met and step.condition is not None:
        verdict = condition_verdict(step, flow)
    can_run = met and verdict is not False
    if met and verdict is not True and step.condition is not None:
        outcomes.add(SKIPPED)
    if can_run:
        outcomes |= _ran(step)
    if not met:
        blocked = _blame(rule, deps, by_id, flow)
    elif verdict is False:
        blocked = "its condition can never be true"
    else:
        blocked = None
    return StepFlow(frozenset(outcomes), can_run, blocked, verdict, met)


def _kinds(outcome: Outcome, aborts: bool, cleanup: bool, can_abort: bool = True) -> frozenset[str]:
    """How a step's rule can read a dependency that ended with `outcome` (trigger_rules.KINDS).
    For a step that is not cleanup, an outcome that means an abort or an interrupt is left
    out: the step is cancelled then, whatever its rule."""
    status, tolerated = outcome
    if status == "success":
        return frozenset({tr.OK})
    if status in FAILURES:
        if tolerated:
            return frozenset({tr.TOLERATED})
        return frozenset() if aborts and not cleanup else frozenset({tr.FAILED})
    if status == "skipped":
        return frozenset({tr.SKIPPED})
    if status == "cancelled":
        if not cleanup:
            return frozenset()
        return frozenset({tr.FAILED, tr.INTERRUPTED}) if can_abort else frozenset({tr.INTERRUPTED})
    return frozenset({tr.FAILED})  # upstream_failed


def _verdicts(
    rule: TriggerRule, deps: Sequence[str], by_id: dict[str, IRStep], flow: Flow
) -> set[str]:
    """Every decision the rule can reach: the kinds present among the dependencies are all a
    rule reads (trigger_rules), so the sets of kinds reachable one dependency at a time (at
    most 32) are all the cases. Dependencies are treated as independent: an over-approximation.
    """
    cleanup = rule.is_cleanup
    # Dependencies with the same options contribute any non-empty subset of them, up to their
    # number: grouping keeps this linear in the dependencies (at most 32 distinct options).
    groups: dict[frozenset[str], int] = {}
    for dep in deps:
        options = _options(flow.steps[dep].outcomes, _aborts(by_id[dep]), cleanup, flow.can_abort)
        groups[options] = groups.get(options, 0) + 1
    shape = frozenset((options, min(count, len(options))) for options, count in groups.items())
    return set(_decisions(rule, shape))


@cache
def _options(
    outcomes: frozenset[Outcome], aborts: bool, cleanup: bool, can_abort: bool
) -> frozenset[str]:
    return frozenset(kind for o in outcomes for kind in _kinds(o, aborts, cleanup, can_abort))


@cache
def _decisions(rule: str, shape: frozenset[tuple[frozenset[str], int]]) -> frozenset[str]:
    """The decisions of `rule` over every kind set that dependencies grouped as `shape` (options,
    how many dependencies have them) can present. Plans repeat few shapes: cached."""
    present: set[frozenset[str]] = {frozenset()}
    for options, count in shape:
        picks = [
            frozenset(pick)
            for size in range(1, count + 1)
            for pick in combinations(sorted(options), size)
        ]
        present = {seen | pick for seen in present for pick in picks}
    return frozenset(tr.verdict(rule, kinds) for kinds in present)


def _blame(rule: TriggerRule, deps: Sequence[str], by_id: dict[str, IRStep], flow: Flow) -> str:
    """Why a rule can never be met, naming the dependency to blame where there is one."""
    if rule in ("all_success", "none_failed"):
        wanted = "succeed" if rule == "all_success" else "succeed or be skipped"
        never = [d for d in deps if not any(_satisfies(rule, o) for o in flow.steps[d].outcomes)]
        if never:
            first = never[0]
            return (
                f"under trigger_rule: {rule} it needs `{first}` to {wanted}, and `{first}`"
                " never runs"
            )
    names = ", ".join(f"`{d}`" for d in deps)
    if rule in ("one_failed", "one_success"):
        verb = "fail" if rule == "one_failed" else "succeed"
        return f"under trigger_rule: {rule} one of {names} must {verb}, and none of them ever runs"
    if not deps:
        return f"under trigger_rule: {rule} it needs dependencies, and it has none"
    return f"under trigger_rule: {rule} ({rule.spec.meaning}) no outcome of {names} meets it"


def _fallbacks(steps: Sequence[IRStep], by_id: dict[str, IRStep], flow: Flow) -> None:
    """A fallback runs when a step naming it runs and fails; a run step can always fail. Chains
    (a fallback with its own fallback) are followed from each step that can run."""
    named_by: dict[str, list[str]] = {}
    for step in steps:
        if step.on_failure is OnFailure.FALLBACK_STEP and step.fallback is not None:
            named_by.setdefault(step.fallback, []).append(step.id)
    runnable: set[str] = set()
    for step in steps:
        current = step.id
        if step.is_fallback or not flow.steps[current].can_run:
            continue
        # Walk the chain until it reaches a fallback already known to run: linear overall.
        nxt = (
            by_id[current].fallback
            if by_id[current].on_failure is OnFailure.FALLBACK_STEP
            else None
        )
        while nxt is not None and nxt not in runnable:
            runnable.add(nxt)
            fb = by_id[nxt]
            nxt = fb.fallback if fb.on_failure is OnFailure.FALLBACK_STEP else None
    for step in steps:
        if not step.is_fallback:
            continue
        sid = step.id
        # Skipped `not_needed` is always possible: the step naming it may succeed.
        outcomes = {SKIPPED} | (_ran(step) if sid in runnable else set())
        names = ", ".join(f"`{n}`" for n in named_by.get(sid, []))
        blame = None if sid in runnable else f"no step that falls back to it ever runs ({names})"
        flow.steps[sid] = StepFlow(frozenset(outcomes), sid in runnable, blame)


# --- conditions ----------------------------------------------------------------------------------


def condition_verdict(step: IRStep, flow: Flow) -> bool | None:
    """True/False when the condition has that value for every outcome the steps it reads can
    have when this step gets to decide; None when it depends on what happens."""
    ast = flow.conditions[step.id]  # asked only of a step with a condition
    return constant_value(ast, _visible(step, ast, flow))


def _visible(step: IRStep, ast: Expr, flow: Flow) -> dict[str, frozenset[str]]:
    """Statuses the condition can read: for direct dependencies those the trigger rule lets
    through (`possible_statuses`, as the rule does), intersected with what each can really end
    with."""
    rule = step.trigger_rule
    deps = step.depends_on
    read = {node.step for node in walk(ast) if isinstance(node, StepRef)}
    visible: dict[str, frozenset[str]] = {}
    for sid in read:
        if sid not in flow.steps:
            continue
        outcomes = flow.steps[sid].outcomes
        if sid in deps:
            several = min(len(deps), 2)
            outcomes = frozenset(o for o in outcomes if _lets_run(rule, o, several))
        visible[sid] = frozenset(status for status, _ in outcomes)
    return visible


@cache
def _lets_run(rule: TriggerRule, outcome: Outcome, dep_count: int) -> bool:
    """Whether a direct dependency ending with `outcome` can be seen by a step with `rule`
    that runs (with one dependency, alone; with more, alongside any kinds of the others)."""
    cleanup = rule.is_cleanup
    others = KIND_SETS if dep_count > 1 else (frozenset(),)
    kinds = _kinds(outcome, False, cleanup)
    return any(rule.spec.met(other | {kind}) for kind in kinds for other in others)


def _rule_verdict(step: IRStep, ast: Expr, ctx: AnalysisContext) -> bool | None:
    """What `planc.rules.conditions` concludes on its own (it reports that itself)."""
    if ctx.graph is None:
        return None
    deps = step.depends_on
    rule = step.trigger_rule
    known = {d: possible_statuses(rule, ctx.graph.steps[d], len(deps)) for d in deps}
    return constant_value(ast, known)


# --- the `planc check` analysis ------------------------------------------------------------------


def check(ctx: AnalysisContext) -> Iterator[Diagnostic]:
    flow = flow_of(ctx)
    for step in ctx.steps:
        sid = step.id
        state = flow.steps[sid]
        if step.is_fallback:
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
                    sid,
                    "trigger_rule" if step.trigger_rule is not TriggerRule.ALL_SUCCESS else None,
                ),
                "never-runs",
                f"step `{sid}` can never run: {state.blocked_by}",
                "every run skips it: fix the cause upstream first",
            )
        elif state.condition_verdict is not None:
            yield from _condition(ctx, step, state, flow)


def _condition(
    ctx: AnalysisContext, step: IRStep, state: StepFlow, flow: Flow
) -> Iterator[Diagnostic]:
    assert step.condition is not None  # asked only of a step with a condition
    ast = flow.conditions[step.id]
    if _rule_verdict(step, ast, ctx) is not None:
        return  # planc.rules.conditions has reported this one already
    sid = step.id
    visible = _visible(step, ast, flow)
    read = [r for r in dict.fromkeys(n.step for n in walk(ast) if isinstance(n, StepRef))]
    why = "; ".join(_can_only(r, visible[r], flow) for r in read if r in visible)
    span = _condition_span(ctx, sid, step.condition["source"])
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
