"""The analysis pass of the plan's invariants (docs/invariants.md, "The proof"): each invariant
the prover (planc.analysis.prover) can violate is an error with the counterexample as its hint;
one it cannot decide in time is a warning (planrun still checks it at run time)."""

from __future__ import annotations

from collections.abc import Iterator

from planc.analysis.context import AnalysisContext
from planc.analysis.prover import MAX_WORLDS, Counterexample, Prover, Undecided
from planc.diagnostics import Diagnostic, Span, error, warning

__all__ = ["Counterexample", "Prover", "Undecided", "check"]


def check(ctx: AnalysisContext) -> Iterator[Diagnostic]:
    if not ctx.applies("invariants"):
        return
    invariants = ctx.typed_ir.invariants or ()
    prover = Prover(ctx.steps)
    spans = _invariant_spans(ctx)
    for index, invariant in enumerate(invariants):
        found = prover.counterexample(invariant)
        if found is None:
            continue
        span = spans[index] if index < len(spans) else Span(1, 1)
        if isinstance(found, Undecided):
            yield warning(
                ctx.path,
                span,
                "invariant-undecided",
                f"invariant `{invariant['source']}` is not proved: at `{found.at}` more than"
                f" {MAX_WORLDS} combinations of outcomes stay relevant",
                "planrun still checks it before the step starts; fewer steps between the"
                " guarded step and the steps its guard reads make it decidable",
            )
            continue
        hint = " -> ".join(found.trace)
        related: tuple[tuple[str, Span], ...] = ()
        if found.through is not None:
            where = ctx.step_span(found.through, found.through_key)
            related = ((f"`{found.through}` lets it through", where),)
        diagnostic = error(
            ctx.path,
            span,
            "invariant-violable",
            f"invariant `{invariant['source']}` can be violated",
            hint,
        )
        yield Diagnostic(
            diagnostic.path, diagnostic.span, diagnostic.severity, diagnostic.code,
            diagnostic.message, diagnostic.hint, related,
        )  # fmt: skip


def _invariant_spans(ctx: AnalysisContext) -> list[Span]:
    if ctx.plan is None:
        return []
    from planc.rules.invariants import invariant_nodes

    return [node.span for node in invariant_nodes(ctx.plan)]
