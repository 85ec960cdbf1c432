"""What a step may read: params, other steps' outputs, secrets. Shared by the interpolation and
condition rules, so both give the same verdict and the same words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from planc.conditions import parse_condition
from planc.model import SourceStep
from planc.rules.base import RuleContext
from planc.suggest import did_you_mean
from planrun.core.byvalue import ByValue
from planrun.core.conditions import OutputRef, walk
from planrun.core.interpolate import Reference, find


@dataclass(frozen=True, eq=False, repr=False)
class Problem(ByValue):
    code: str
    message: str
    hint: str | None = None


def declared_params(ctx: RuleContext) -> dict[str, dict[str, object]]:
    params = ctx.plan.raw.get("params") or {}
    return params if isinstance(params, dict) else {}


def param_problem(ctx: RuleContext, name: str) -> Problem | None:
    params = declared_params(ctx)
    if name in params:
        return None
    hint = did_you_mean(name, params) or "declare it under `params:`"
    return Problem("unknown-param", f"`params.{name}` is not a declared param", hint)


def is_visible_producer(ctx: RuleContext, producer: str, reader: str) -> bool:
    """Whether `producer` has certainly finished when `reader` starts. A fallback step has no
    dependencies: it runs after a step naming it failed, so what every such step depends on
    (and the step itself) is finished."""
    graph = ctx.graph
    if reader not in graph.fallback_steps:
        return graph.is_upstream(producer, reader)
    namers = [s.id for s in ctx.plan.steps if s.get("fallback") == reader]
    return all(producer == n or graph.is_upstream(producer, n) for n in namers)


def output_problem(ctx: RuleContext, reader: str, producer: str, name: str) -> Problem | None:
    graph = ctx.graph
    if producer not in graph.steps:
        return Problem(
            "unknown-step-reference",
            f"`{producer}` is not a step of this plan",
            did_you_mean(producer, graph.steps),
        )
    provides = [r.name for r in graph.steps[producer].refs("provides")]
    if name not in provides:
        hint = did_you_mean(name, provides) or f"add `{name}` to `provides` of `{producer}`"
        return Problem(
            "unknown-output", f"step `{producer}` does not provide an output `{name}`", hint
        )
    if not is_visible_producer(ctx, producer, reader):
        return Problem(
            "output-not-upstream",
            f"`{reader}` reads an output of `{producer}`, which it does not depend on, so the"
            " value may not exist yet",
            f"add `{producer}` to depends_on of `{reader}`"
            if reader not in graph.fallback_steps
            else f"every step that falls back to `{reader}` must depend on `{producer}`",
        )
    return None


def referenced_outputs(ctx: RuleContext) -> set[tuple[str, str]]:
    """(producer, output) pairs that some placeholder or condition reads."""
    found: set[tuple[str, str]] = set()
    for step in ctx.plan.steps:
        texts = [step.get("command"), step.get("cwd"), step.get("for_each")]
        texts += list(step.get("args") or [])
        texts += list((step.get("env") or {}).values())
        for text in texts:
            if isinstance(text, str) and "${{" in text:
                found.update(
                    (ref.step, ref.name)
                    for ref in find(text)
                    if isinstance(ref, Reference) and ref.step is not None
                )
        condition = step.get("condition")
        if isinstance(condition, str) and ".outputs." in condition:
            ast = parse_condition(condition).ast
            if ast is not None:
                found.update((n.step, n.name) for n in walk(ast) if isinstance(n, OutputRef))
    return found


def secret_scope(ctx: RuleContext, step: SourceStep) -> frozenset[str]:
    """The secrets `step` receives: the plan's and its own."""
    return frozenset([*(ctx.plan.raw.get("secrets") or []), *(step.get("secrets") or [])])


def _texts(step: SourceStep) -> list[str]:
    texts = [step.get("command"), step.get("cwd"), *(step.get("args") or [])]
    texts += list((step.get("env") or {}).values())
    return [text for text in texts if isinstance(text, str)]


def possibly_secret_steps(ctx: RuleContext) -> dict[str, str]:
    """The steps whose outputs may hold a secret, each with why (docs/dataflow.md, "Secrets").

    A step *reads a secret* when it declares one itself (step-level `secrets:`), when its
    command, args, env or cwd name a secret it receives as a word (`$TOKEN`, `${TOKEN}`,
    `${{ env.TOKEN }}`, `$env:TOKEN`), or when they interpolate a secret param or an output of
    a step that reads a secret. A plan-level secret a step never names does not count: every
    step receives those, and planrun still refuses at run time a command line whose value holds
    a secret.
    """
    plan = ctx.plan
    if not plan.secret_names and not plan.secret_params:
        return {}
    found: dict[str, str] = {}
    plan_level = frozenset(plan.raw.get("secrets") or [])
    words = _words(plan_level)
    reads: dict[str, list[tuple[str, str]]] = {}  # step -> (producer, output) in its texts
    for step in plan.steps:
        texts = _texts(step)
        own = sorted(set(step.get("secrets") or []) - plan_level)
        named = _named_secrets(words, texts)
        if own or named:
            found[step.id] = f"`{step.id}` reads secret `{(own or named)[0]}`"
            continue
        refs = [ref for text in texts for ref in find(text) if isinstance(ref, Reference)]
        param = next(
            (r.name for r in refs if r.kind == "param" and r.name in plan.secret_params), None
        )
        if param is not None:
            found[step.id] = f"`{step.id}` reads secret param `{param}`"
            continue
        reads[step.id] = [(r.step, r.name) for r in refs if r.step is not None]
    changed = True
    while changed:  # outputs carry a secret on to the steps that read them
        changed = False
        for step_id, outputs in reads.items():
            producer = next((p for p, _ in outputs if p in found), None)
            if step_id not in found and producer is not None:
                found[step_id] = (
                    f"`{step_id}` reads outputs of `{producer}`, which may hold a secret"
                )
                changed = True
    return found


def _named_secrets(words: re.Pattern[str] | None, texts: list[str]) -> list[str]:
    if words is None:
        return []
    return sorted({m.group(1) for text in texts for m in words.finditer(text)})


def _words(names: frozenset[str]) -> re.Pattern[str] | None:
    """Matches any of `names` as a whole word (`$NAME`, `${NAME}`, `env.NAME`, `%NAME%`)."""
    if not names:
        return None
    alternatives = "|".join(map(re.escape, sorted(names)))
    return re.compile(rf"(?<![A-Za-z0-9_])({alternatives})(?![A-Za-z0-9_])")
