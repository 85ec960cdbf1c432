"""The plan's `invariants:` (docs/invariants.md): the language's errors placed in the file, and
every step an invariant names exists. Whether an invariant can be violated is the proof's
business (planc.analysis.invariants), run by `planc check` after the rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from planc.diagnostics import Diagnostic, error
from planc.model import SourcePlan
from planc.nodes import ScalarNode, SeqNode
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean

_FORMS = (
    "\n\n    invariants:\n      - push requires validate.success\n"
    "      - merge after snapshot.success\n      - never push when tests.failed"
)

CODES: dict[str, tuple[str, str]] = {
    "invariant-syntax": (
        "an invariant is not well formed",
        "An invariant is `<step> requires <guard>`, `<step> after <guard>` or `never <step> when"
        " <guard>`; the guard combines `<step>.<status>` terms with `and`, `or`, `not` and"
        " parentheses (docs/invariants.md)." + _FORMS,
    ),
    "invariant-bad-term": (
        "an invariant's guard has a term that is not `<step>.<status>`",
        "The status is one of success, failed (a timeout too), timed_out, skipped,"
        " upstream_failed, cancelled. Comparisons, literals, `env.` and `params.` belong in a"
        " step's `condition`: an invariant speaks only of what steps ended with." + _FORMS,
    ),
    "invariant-too-complex": (
        "an invariant is too long or nested too deeply",
        "Invariants are limited to 4096 characters and 100 nested parentheses. Split it.",
    ),
    "invariant-unknown-step": (
        "an invariant names a step the plan does not have",
        "Both the step an invariant guards and every step its guard reads must be steps of the"
        " plan." + _FORMS,
    ),
}


def invariant_nodes(plan: SourcePlan) -> list[ScalarNode]:
    """The plan's `invariants:` items as written (the schema made them strings)."""
    seq = plan.node.get("invariants")
    if not isinstance(seq, SeqNode):
        return []
    return [item for item in seq.items if isinstance(item, ScalarNode)]


def invariants_ir(plan: SourcePlan) -> list[dict[str, Any]] | None:
    """The IR's `invariants` (None when the plan declares none: the key is then left out)."""
    nodes = invariant_nodes(plan)
    if "invariants" not in plan.raw:
        return None
    from planc.invariants import parse_invariant, to_ir

    found = [parse_invariant(str(node.value)).invariant for node in nodes]
    return [to_ir(invariant) for invariant in found if invariant is not None]


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    nodes = invariant_nodes(ctx.plan)
    if not nodes:
        return
    # The language (and lark, its parser: ~25 ms of `planc check`'s start-up) only for a plan
    # that has invariants.
    from planc.invariants import parse_invariant, terms

    for node in nodes:
        text = str(node.value)
        parsed = parse_invariant(text)
        for e in parsed.errors:
            yield error(ctx.path, node.position_of(e.offset, e.length), e.code, e.message, e.hint)
        invariant = parsed.invariant
        if invariant is None:
            continue
        named = [(invariant.step, invariant.step_offset, len(invariant.step))]
        named += [(t.step, t.offset, len(t.step)) for t in terms(invariant.guard)]
        for step, offset, length in named:
            if step not in ctx.graph.steps:
                yield error(
                    ctx.path,
                    node.position_of(offset, length),
                    "invariant-unknown-step",
                    f"invariant `{text}` names `{step}`, which is not a step of this plan",
                    did_you_mean(step, ctx.graph.steps.keys()),
                )
