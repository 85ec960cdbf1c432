"""Analyses over the compiled IR, run by `planc check --analyses=…` after the rules.

One analysis per module; each `check(ctx)` yields ordinary positioned diagnostics. `planc bound`
and `planc simulate` print the tables behind them. See docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from planc.analysis import bound, cleanup, reachability
from planc.analysis.context import AnalysisContext
from planc.diagnostics import Diagnostic

Analysis = Callable[[AnalysisContext], Iterable[Diagnostic]]

# Simulation has no verdict of its own to report in `check`: it answers "what if" questions.
ANALYSES: dict[str, Analysis] = {
    "bound": bound.check,
    "reachability": reachability.check,
    "cleanup": cleanup.check,
}
# All three are linear in steps + edges, so `planc check` runs them unless told otherwise.
DEFAULT: tuple[str, ...] = ("bound", "reachability", "cleanup")


class UnknownAnalysis(ValueError):
    pass


def parse_selection(text: str) -> tuple[str, ...]:
    """`bound,cleanup` → the names; `all`; `none` or empty → nothing."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names in (["none"], []):
        return ()
    if names == ["all"]:
        return tuple(ANALYSES)
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        known = ", ".join(ANALYSES)
        raise UnknownAnalysis(f"unknown analysis `{unknown[0]}`; choose from {known}, all, none")
    return tuple(dict.fromkeys(names))


def run_analyses(ctx: AnalysisContext, names: Sequence[str]) -> list[Diagnostic]:
    return [diagnostic for name in names for diagnostic in ANALYSES[name](ctx)]
