"""Trigger rules that need dependencies to mean anything; teardowns that name a real setup."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, error
from planc.model import SourceStep
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean
from planrun.core.trigger_rules import NEEDS_DEPENDENCIES, verdict

CODES = {
    "trigger-without-dependencies": (
        "a trigger rule that reads dependencies' outcomes on a step with no dependencies",
        "Every rule but all_success, all_done and none_failed looks at the dependencies'"
        " outcomes (one_failed: did one fail? all_skipped: were they all skipped?); with none"
        " the step could never run, or the rule would say nothing.\n\n"
        "    - id: alert\n      trigger_rule: one_failed   # add depends_on: [deploy]",
    ),
    "unknown-setup": (
        "`teardown_for` names a step that does not exist, or the step itself",
        "A teardown undoes the work of one setup step of the same plan (docs/semantics.md"
        " §5b).\n\n    - id: release_lock\n      teardown_for: take_lock",
    ),
    "teardown-trigger-rule": (
        "a teardown has a `trigger_rule`",
        "A teardown runs once its setup and its other dependencies are settled, if and only if"
        " the setup succeeded; no trigger rule says that, so none may be given.\n\n"
        "    - id: release_lock\n      teardown_for: take_lock   # remove trigger_rule: all_done",
    ),
}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    for step in ctx.plan.steps:
        yield from _teardown(ctx, step)
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


def _teardown(ctx: RuleContext, step: SourceStep) -> Iterator[Diagnostic]:
    setup = step.get("teardown_for")
    if not isinstance(setup, str):
        return
    if setup not in ctx.graph.steps or setup == step.id:
        yield error(
            ctx.path,
            step.span_of("teardown_for"),
            "unknown-setup",
            f"step `{step.id}` is the teardown of `{setup}`, which is not another step of this"
            " plan",
            did_you_mean(setup, [s for s in ctx.graph.steps if s != step.id]),
        )
    if step.has("trigger_rule"):
        yield error(
            ctx.path,
            step.span_of("trigger_rule"),
            "teardown-trigger-rule",
            f"teardown `{step.id}` has a `trigger_rule`; it runs when its setup `{setup}`"
            " succeeded, whatever its other dependencies did",
            "remove `trigger_rule`",
        )
