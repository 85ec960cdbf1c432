"""Analyses over the compiled IR, run by `planc check --analyses=…` after the rules.

One analysis per module; each `check(ctx)` yields ordinary positioned diagnostics. `planc bound`
and `planc simulate` print the tables behind them. See docs/analysis.md. May import planc's
stages and planrun.core (the kernel's semantics, replay and bound are what they reason with).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from planc.diagnostics import Diagnostic

if TYPE_CHECKING:
    from planc.analysis.context import AnalysisContext

Analysis = Callable[["AnalysisContext"], Iterable[Diagnostic]]

# Simulation has no verdict of its own to report in `check`: it answers "what if" questions.
# Only the names live here: each module is imported by the first run that needs it (see
# `AnalysisContext.applies`), so that `planc compile`, which runs none, does not pay for them.
ANALYSES: tuple[str, ...] = ("bound", "reachability", "cleanup", "invariants")
# The first three are linear in steps + edges, the proof of invariants in steps × worlds
# (docs/invariants.md), so `planc check` runs them all unless told otherwise.
DEFAULT: tuple[str, ...] = ("bound", "reachability", "cleanup", "invariants")


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
    return [d for name in names if ctx.applies(name) for d in _check(name)(ctx)]


def _check(name: str) -> Analysis:
    if name == "bound":
        from planc.analysis import bound

        return bound.check
    if name == "cleanup":
        from planc.analysis import cleanup

        return cleanup.check
    if name == "invariants":
        from planc.analysis import invariants

        return invariants.check
    from planc.analysis import reachability

    return reachability.check
