"""The plan's DAG as Graphviz dot or Mermaid text, drawn from the IR."""

from __future__ import annotations

import json
from typing import Any


def draw(ir: dict[str, Any], fmt: str) -> str:
    return _dot(ir) if fmt == "dot" else _mermaid(ir)


def _label(step: dict[str, Any]) -> str:
    rule = step["trigger_rule"]
    # A real line break: json.dumps writes it as the two characters backslash and n, which
    # Graphviz reads as a new line (an escaped backslash was drawn as a literal backslash-n).
    return step["id"] if rule == "all_success" else f"{step['id']}\n[{rule}]"


def _dot(ir: dict[str, Any]) -> str:
    lines = [f"digraph {json.dumps(ir['plan']['id'])} {{", "  rankdir=LR;", "  node [shape=box];"]
    for step in ir["steps"]:
        style = ", style=dashed" if step["is_fallback"] else ""
        lines.append(f"  {json.dumps(step['id'])} [label={json.dumps(_label(step))}{style}];")
    for step in ir["steps"]:
        for dep in step["depends_on"]:
            lines.append(f"  {json.dumps(dep)} -> {json.dumps(step['id'])};")
        if step["fallback"]:
            fallback = json.dumps(step["fallback"])
            lines.append(
                f'  {json.dumps(step["id"])} -> {fallback} [style=dashed, label="on failure"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid(ir: dict[str, Any]) -> str:
    node_names = {step["id"]: f"s{i}" for i, step in enumerate(ir["steps"])}
    lines = ["flowchart LR"]
    for step in ir["steps"]:
        label = _label(step).replace("\n", "<br/>").replace('"', "#quot;")
        shape = f'(["{label}"])' if step["is_fallback"] else f'["{label}"]'
        lines.append(f"  {node_names[step['id']]}{shape}")
    for step in ir["steps"]:
        for dep in step["depends_on"]:
            lines.append(f"  {node_names[dep]} --> {node_names[step['id']]}")
        if step["fallback"]:
            lines.append(
                f"  {node_names[step['id']]} -. on failure .-> {node_names[step['fallback']]}"
            )
    return "\n".join(lines) + "\n"
