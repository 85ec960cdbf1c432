"""Params declarations and `${{ }}` placeholders in command, args, env and cwd (and in
`watch.paths`/`ignore`, where only params and env can be read)."""

from __future__ import annotations

from collections.abc import Iterator

from planc.diagnostics import Diagnostic, Span, error
from planc.model import SourceStep
from planc.nodes import MapNode, ScalarNode, string_scalars
from planc.references import (
    Problem,
    declared_params,
    output_problem,
    param_problem,
    possibly_secret_steps,
    secret_scope,
)
from planc.rules.base import RuleContext
from planrun.core.interpolate import Malformed, Reference, find

CODES = {
    "interpolation-syntax": (
        "a `${{ … }}` placeholder that is not a reference",
        "Placeholders are `${{ params.NAME }}`, `${{ steps.ID.outputs.NAME }}` or"
        ' `${{ env.NAME }}`.\n\n    args: ["${{ param.repo }}"]   # write params.repo',
    ),
    "unknown-param": (
        "a reference to a param the plan does not declare",
        '    params:\n      repo: {type: string}\n    …\n    args: ["${{ params.rpeo }}"]',
    ),
    "unknown-step-reference": (
        "a placeholder names a step that does not exist",
        '    args: ["${{ steps.snapshto.outputs.ref }}"]   # did you mean `snapshot`?',
    ),
    "unknown-output": (
        "a placeholder reads an output its step does not provide",
        "Only names in the producer's `provides` can be written to $PLAN_OUTPUT and read.\n\n"
        "    - id: snapshot\n      provides: [snapshot_ref]\n"
        '    - id: restore\n      args: ["${{ steps.snapshot.outputs.ref }}"]',
    ),
    "output-not-upstream": (
        "a step reads an output of a step it does not depend on",
        "The producer may not have run yet. Add it to `depends_on` (for a fallback step: make"
        " every step that names the fallback depend on it).",
    ),
    "interpolation-in-shell": (
        "a placeholder inside a `shell: true` command line",
        "A value pasted into a shell string could be parsed as shell syntax. Pass it through"
        " the environment and quote the variable:\n\n"
        '    env: {TARGET: "${{ params.target }}"}\n    command: \'git checkout "$TARGET"\'\n'
        "    shell: true",
    ),
    "secret-in-args": (
        "a secret, a secret param or an output that may hold a secret in command, args or cwd",
        "Arguments are visible to every process on the machine and are recorded in events."
        " Steps receive secrets through their environment only. An output may hold a secret"
        " when its step reads one: it declares a secret itself, names one in its command, args,"
        " env or cwd (`$TOKEN`), or reads a secret param or such an output (docs/dataflow.md)."
        " Pass the value through `env:` instead:\n\n"
        '    env: {TOKEN: "${{ steps.mint.outputs.token }}"}',
    ),
    "secret-out-of-scope": (
        "a step reads a secret that only other steps declare",
        "A step-level `secrets:` entry gives the secret to that step alone; `${{ env.NAME }}` in"
        " another step would hand it on. Declare it on the step that reads it too, or at plan"
        " level.\n\n"
        "    - id: b\n      secrets: [TOKEN]\n"
        '    - id: c\n      env: {Y: "${{ env.TOKEN }}"}   # add `secrets: [TOKEN]` to c',
    ),
    "secret-param-default": (
        "a secret param has a default",
        "A default is written in the plan file and recorded in the IR, so it is no secret."
        " Leave it out: the caller gives the value (`-p NAME=VALUE`).",
    ),
    "secret-in-condition": (
        "a condition reads a secret",
        "Conditions and their results are recorded in the IR and the run's events. Test the"
        " secret inside the step instead.\n\n    condition: env.GITHUB_TOKEN != null   # refused",
    ),
    "watch-reads-output": (
        "a `watch:` path or ignore pattern reads a step output",
        "`planrun watch` decides what to watch before any run, when no step has an output yet."
        " Watch paths may use params and env:\n\n"
        '    watch:\n      paths: ["${{ params.repo }}"]',
    ),
    "param-default-type": (
        "a param's default does not have the param's type",
        "    params:\n      jobs: {type: int, default: '4'}   # write 4",
    ),
    "param-default-not-a-choice": (
        "a param's default is not one of its choices",
        "    params:\n      target: {choices: [main, develop], default: master}",
    ),
}

_PY_TYPES = {"string": (str,), "int": (int,), "bool": (bool,)}
_ARTICLE = {"string": "a", "int": "an", "bool": "a"}


def check(ctx: RuleContext) -> Iterator[Diagnostic]:
    yield from _params(ctx)
    yield from _watch(ctx)
    carriers = possibly_secret_steps(ctx)
    for step in ctx.plan.steps:
        for field_name, scalar in placeholder_strings(step):
            yield from _placeholders(ctx, step, field_name, scalar, carriers)


def placeholder_strings(step: SourceStep) -> Iterator[tuple[str, ScalarNode]]:
    """The string scalars of the fields placeholders may appear in, with the field's name."""
    for name in ("command", "args", "env", "cwd"):
        node = step.node.get(name)
        if node is not None:
            for scalar in string_scalars(node):
                yield name, scalar


def _placeholders(
    ctx: RuleContext, step: SourceStep, field_name: str, node: ScalarNode, carriers: dict[str, str]
) -> Iterator[Diagnostic]:
    text = str(node.value)
    if "${{" not in text:
        return
    shell_string = step.get("shell") is True and field_name in ("command", "args")
    for found in find(text):
        span = node.position_of(found.start, found.end - found.start)
        if isinstance(found, Malformed):
            forms = "`${{ params.NAME }}`, `${{ steps.ID.outputs.NAME }}` or `${{ env.NAME }}`"
            yield _not_a_reference(ctx, span, text, found, forms)
            continue
        if shell_string:
            yield error(
                ctx.path,
                span,
                "interpolation-in-shell",
                f"step `{step.id}` interpolates into a shell command line (`shell: true`)",
                "pass the value through `env:` and quote the variable in the command",
            )
        yield from _reference(ctx, step, field_name, found, span, carriers)


def _reference(
    ctx: RuleContext,
    step: SourceStep,
    field_name: str,
    ref: Reference,
    span: Span,
    carriers: dict[str, str],
) -> Iterator[Diagnostic]:
    in_args = field_name != "env"
    if ref.kind == "param":
        problem = param_problem(ctx, ref.name)
        if problem is None and in_args and ref.name in ctx.plan.secret_params:
            problem = Problem(
                "secret-in-args",
                f"secret param `{ref.name}` is interpolated into `{field_name}` of step"
                f" `{step.id}`",
                f'pass it through `env:` (`env: {{{ref.name.upper()}: "${{{{ params.{ref.name}'
                ' }}"}`) and read it there',
            )
    elif ref.kind == "output":
        assert ref.step is not None
        problem = output_problem(ctx, step.id, ref.step, ref.name)
        if problem is None and in_args and ref.step in carriers:
            problem = Problem(
                "secret-in-args",
                f"output `{ref.name}` of step `{ref.step}` may hold a secret"
                f" ({carriers[ref.step]}) and is interpolated into `{field_name}` of step"
                f" `{step.id}`",
                "pass it through `env:` and read it there",
            )
    else:
        problem = _env_problem(ctx, step, field_name, ref.name)
    if problem is not None:
        yield error(ctx.path, span, problem.code, problem.message, problem.hint)


def _env_problem(ctx: RuleContext, step: SourceStep, field_name: str, name: str) -> Problem | None:
    if name not in ctx.plan.secret_names:
        return None
    if name not in secret_scope(ctx, step):
        declared_by = [s.id for s in ctx.plan.steps if name in (s.get("secrets") or [])]
        return Problem(
            "secret-out-of-scope",
            f"step `{step.id}` reads secret `{name}`, which only"
            f" {', '.join(f'`{s}`' for s in declared_by)} declare{'s' * (len(declared_by) == 1)}",
            f"add `{name}` to `secrets` of `{step.id}` (or of the plan)",
        )
    if field_name != "env":
        return Problem(
            "secret-in-args",
            f"secret `{name}` is interpolated into `{field_name}` of step `{step.id}`",
            f"steps receive `{name}` in their environment: read it there",
        )
    return None


def _not_a_reference(
    ctx: RuleContext, span: Span, text: str, found: Malformed, forms: str
) -> Diagnostic:
    """A `${{ … }}` in `text` that is no reference; `forms`: the ones that may be written there."""
    return error(
        ctx.path,
        span,
        "interpolation-syntax",
        f"`{text[found.start : found.end]}` is not a reference",
        f"write {forms}",
    )


def _watch(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Placeholders in `watch.paths` and `watch.ignore`: params and env only."""
    watch = ctx.plan.node.get("watch")
    if not isinstance(watch, MapNode):
        return
    for name in ("paths", "ignore"):
        node = watch.get(name)
        for scalar in string_scalars(node) if node is not None else ():
            text = str(scalar.value)
            for found in find(text) if "${{" in text else ():
                span = scalar.position_of(found.start, found.end - found.start)
                if isinstance(found, Malformed):
                    forms = "`${{ params.NAME }}` or `${{ env.NAME }}`"
                    yield _not_a_reference(ctx, span, text, found, forms)
                elif found.kind == "output":
                    yield error(
                        ctx.path,
                        span,
                        "watch-reads-output",
                        f"`watch.{name}` reads an output of step `{found.step}`, which does not"
                        " exist before the runs it triggers",
                        "use a param (`${{ params.NAME }}`) or `${{ env.NAME }}`",
                    )
                elif found.kind == "param" and (problem := param_problem(ctx, found.name)):
                    yield error(ctx.path, span, problem.code, problem.message, problem.hint)


def _params(ctx: RuleContext) -> Iterator[Diagnostic]:
    params_node = ctx.plan.node.get("params")
    if not isinstance(params_node, MapNode):
        return
    for key, value in params_node.entries:
        if not isinstance(value, MapNode):
            continue
        declared = declared_params(ctx).get(str(key.value), {})
        kind = str(declared.get("type", "string"))
        allowed = _PY_TYPES[kind]
        default_node = value.get("default")
        default = declared.get("default")
        ok_type = isinstance(default, allowed) and not (kind == "int" and isinstance(default, bool))
        if default_node is not None and not ok_type:
            yield error(
                ctx.path,
                default_node.span,
                "param-default-type",
                f"the default of param `{key.value}` must be {_ARTICLE[kind]} {kind},"
                f" got {default!r}",
            )
        if declared.get("secret") is True and default_node is not None:
            yield error(
                ctx.path,
                default_node.span,
                "secret-param-default",
                f"secret param `{key.value}` has a default, written in the plan and the IR",
                "leave the default out: the caller gives the value with -p",
            )
        choices = declared.get("choices")
        if default_node is not None and isinstance(choices, list) and default not in choices:
            yield error(
                ctx.path,
                default_node.span,
                "param-default-not-a-choice",
                f"the default of param `{key.value}` is not one of its choices",
                "choices: " + ", ".join(str(c) for c in choices),
            )
