"""Trigger rules that need dependencies to mean anything."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.rules.base import RuleContext

CODES = {
    "trigger-without-dependencies": (
        "`one_failed`/`one_success` on a step with no dependencies",
        "These rules look at the dependencies' outcomes; with none, the step could never run.\n\n"
        "    - id: alert\n      trigger_rule: one_failed   # add depends_on: [deploy]",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    for step in ctx.plan.steps:
        rule = step.get("trigger_rule")
        if rule in ("one_failed", "one_success") and not ctx.graph.deps.get(step.id):
            if step.id in ctx.graph.fallback_steps:
                continue  # reported as a fallback problem if it has deps; none is right here
            yield error(
                ctx.path,
                step.span_of("trigger_rule"),
                "trigger-without-dependencies",
                f"step `{step.id}` has `trigger_rule: {rule}` but no dependencies, so it could"
                " never run",
                "add the steps it reacts to in `depends_on`",
            )
