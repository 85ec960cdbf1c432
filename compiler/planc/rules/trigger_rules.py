"""Trigger rules that need dependencies to mean anything."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.rules.base import RuleContext
from planrun.trigger_rules import NEEDS_DEPENDENCIES, verdict

CODES = {
    "trigger-without-dependencies": (
        "a trigger rule that reads dependencies' outcomes on a step with no dependencies",
        "Every rule but all_success, all_done and none_failed looks at the dependencies'"
        " outcomes (one_failed: did one fail? all_skipped: were they all skipped?); with none"
        " the step could never run, or the rule would say nothing.\n\n"
        "    - id: alert\n      trigger_rule: one_failed   # add depends_on: [deploy]",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    for step in ctx.plan.steps:
        rule = step.get("trigger_rule")
        if rule in NEEDS_DEPENDENCIES and not ctx.graph.deps.get(step.id):
            if step.id in ctx.graph.fallback_steps:
                continue  # reported as a fallback problem if it has deps; none is right here
            never = verdict(rule, frozenset()) != "run"
            yield error(
                ctx.path,
                step.span_of("trigger_rule"),
                "trigger-without-dependencies",
                f"step `{step.id}` has `trigger_rule: {rule}` but no dependencies, so "
                + ("it could never run" if never else "the rule has nothing to read"),
                "add the steps it reacts to in `depends_on`",
            )
