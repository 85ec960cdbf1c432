"""What a plan offers, read from its IR: its params (`planrun --help-params PLAN`) and its steps
(`planc describe PLAN`, in the spirit of `task --list` and `just --list`)."""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

_WIDTH = 100


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


def params_help(plan_id: str, params: Mapping[str, Mapping[str, Any]]) -> str:
    """Each param: name, type, required or its default, its choices and its description."""
    if not params:
        return f"plan {plan_id} takes no params\n"
    lines = [f"params of plan {plan_id} (pass them with -p NAME=VALUE or --params-file FILE):"]
    width = max(len(name) for name in params)
    type_width = max(len(str(spec.get("type", "string"))) for spec in params.values())
    for name, spec in sorted(params.items()):
        facts = [str(spec.get("type", "string")).ljust(type_width)]
        if spec.get("required"):
            facts.append("required")
        else:
            facts.append(f"default: {_value(spec.get('default'))}")
        choices = spec.get("choices")
        if choices:
            facts.append("choices: " + ", ".join(_value(c) for c in choices))
        lines.append(f"  {name.ljust(width)}  " + "  ".join(facts))
        description = str(spec.get("description") or "")
        if description:
            lines.extend(textwrap.wrap(description, _WIDTH, initial_indent=" " * 6,
                                       subsequent_indent=" " * 6))  # fmt: skip
    return "\n".join(lines) + "\n"


def describe(ir: Mapping[str, Any]) -> str:
    """The plan's title, its params and its steps in order: what each does and runs."""
    plan = ir.get("plan", {})
    head = str(plan.get("id", ""))
    if plan.get("version"):
        head += f" {plan['version']}"
    if plan.get("description"):
        head += f": {plan['description']}"
    steps: Sequence[Mapping[str, Any]] = ir.get("steps", [])
    out = [head, "", params_help(str(plan.get("id", "")), ir.get("params", {})).rstrip("\n"), ""]
    out.append(
        f"{len(steps)} {'step' if len(steps) == 1 else 'steps'} (in the order they may start):"
    )
    width = max((len(str(s["id"])) for s in steps), default=0)
    for step in steps:
        what = str(step.get("description") or "")
        if not what and step.get("name") and step.get("name") != step["id"]:
            what = str(step["name"])
        words = [str(step.get("command", "")), *(str(a) for a in step.get("args", []))]
        runs = " ".join(words) if step.get("shell") else shlex.join(words)
        runs = runs.replace("\n", "\\n")
        if len(runs) > 60:
            runs = runs[:57] + "..."
        facts = []
        if step.get("depends_on"):
            facts.append("after " + ", ".join(step["depends_on"]))
        if step.get("condition"):
            facts.append(f"if {step['condition']['source']}")
        if step.get("is_fallback"):
            facts.append("fallback")
        line = f"  {str(step['id']).ljust(width)}  {what or runs}"
        out.append(line.rstrip())
        detail = ([f"$ {runs}"] if what else []) + ([f"({'; '.join(facts)})"] if facts else [])
        out.extend(f"  {' ' * width}    {text}" for text in detail)
    return "\n".join(out) + "\n"
