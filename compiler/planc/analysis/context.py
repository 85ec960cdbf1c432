"""What every analysis sees: the IR (typed), and the checked plan when there is one (for spans)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from planc.diagnostics import Span
from planc.graph import PlanGraph
from planc.model import SourcePlan
from planc.nodes import MapNode, ScalarNode, SeqNode
from planrun.core.ir_types import IRPlan, IRStep

_LOCATION = re.compile(r":(\d+):(\d+)$")


def typed(ir: IRPlan | Mapping[str, Any]) -> IRPlan:
    """The IR as `IRPlan`: callers with the JSON document (an IR file, `planc bound`) pass it."""
    return ir if isinstance(ir, IRPlan) else IRPlan.from_json(ir)


@dataclass(eq=False, repr=False)
class AnalysisContext:
    """An analysis reads `ir` (resolved values, topological order) and reports at plan spans.

    `ir` is the IR document or lowering's `IRPlan`; `typed_ir` is the `IRPlan`, built once.

    `plan` and `graph` are absent when an analysis runs over an IR file alone; spans then come
    from each step's `location` (`path:line:col`), which is where the step starts.
    """

    ir: IRPlan | Mapping[str, Any]
    plan: SourcePlan | None = None
    graph: PlanGraph | None = None
    _path: str | None = field(default=None, repr=False)
    # Results several analyses share (the reachability flow), computed once per plan.
    memo: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> str:
        if self.plan is not None:
            return self.plan.path
        return self._path or str(self.typed_ir.source.get("path", "<ir>"))

    @cached_property
    def typed_ir(self) -> IRPlan:
        return typed(self.ir)

    @property
    def steps(self) -> tuple[IRStep, ...]:
        return self.typed_ir.steps

    @cached_property
    def by_id(self) -> dict[str, IRStep]:
        return {step.id: step for step in self.steps}

    def applies(self, analysis: str) -> bool:
        """Whether the plan has what `analysis` reads: a deadline, cleanup resources, invariants
        (reachability reads every plan). Each analysis's `check` starts with this question;
        `run_analyses` asks it before importing the analysis, so that a plan without those does
        not load their machinery (planrun's bound and semantics, the prover)."""
        if analysis == "bound":
            return self.plan_global("deadline_sec") is not None
        if analysis == "cleanup":
            return bool(self.plan_global("cleanup_required"))
        if analysis == "invariants":
            return bool(self.typed_ir.invariants)
        return True

    def plan_global(self, key: str) -> Any:
        """A `globals` value as written in the plan. The IR (version 1) only carries the keys the
        runtime needs, so plan-only settings such as `deadline_sec` are read from the plan."""
        value = getattr(self.typed_ir.globals, key, None)
        if value is None and self.plan is not None:
            value = self.plan.globals.get(key)
        return value

    def globals_span(self, key: str) -> Span:
        if self.plan is not None:
            return self.plan.globals_span(key)
        return Span(1, 1)

    def globals_item_span(self, key: str, item: str) -> Span:
        """Where `item` is written in the list `globals.<key>`."""
        if self.plan is not None:
            holder = self.plan.node.get("globals")
            seq = holder.get(key) if isinstance(holder, MapNode) else None
            if isinstance(seq, SeqNode):
                for node in seq.items:
                    if isinstance(node, ScalarNode) and node.value == item:
                        return node.span
        return self.globals_span(key)

    def step_span(self, step_id: str, key: str | None = None) -> Span:
        """Where `key` of the step is written (its id when `key` is None or absent)."""
        if self.graph is not None and step_id in self.graph.steps:
            source = self.graph.steps[step_id]
            if key is not None and source.has(key):
                return source.span_of(key)
            return source.id_span
        match = _LOCATION.search(self.by_id[step_id].location)
        return Span(int(match.group(1)), int(match.group(2))) if match else Span(1, 1)

    def ref_span(self, step_id: str, key: str, name: str) -> Span:
        """Where `name` is written in the list `key` (provides, consumes…) of the step."""
        if self.graph is not None and step_id in self.graph.steps:
            for ref in self.graph.steps[step_id].refs(key):
                if ref.name == name:
                    return ref.span
        return self.step_span(step_id, key)
