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
# Only the names live here: the modules (the condition machinery, planrun's bound) are imported
# by the first run, so that `planc compile`, which runs none, does not pay ~0.1 s for them.
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
    checks = _checks()
    return [diagnostic for name in names for diagnostic in checks[name](ctx)]


def _checks() -> dict[str, Analysis]:
    from planc.analysis import bound, cleanup, invariants, reachability

    return {
        "bound": bound.check,
        "reachability": reachability.check,
        "cleanup": cleanup.check,
        "invariants": invariants.check,
    }
