"""What every semantic rule sees, and the shape of a rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from planc.diagnostics import Diagnostic
from planc.graph import PlanGraph
from planc.model import SourcePlan


@dataclass(frozen=True, eq=False, repr=False)
class RuleContext:
    plan: SourcePlan
    graph: PlanGraph

    @property
    def path(self) -> str:
        return self.plan.path


Rule = Callable[[RuleContext], Iterable[Diagnostic]]
